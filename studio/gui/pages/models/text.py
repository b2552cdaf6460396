"""How the page words a version's numbers and origins (plain Python: no Qt)."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from studio.core.printable import human_bytes

SOURCES = {"training": "trained", "compression": "compressed", "import": "imported"}


def size_text(n: int | None) -> str:
    """Bytes as a person reads them: 491 bytes, 167.3 KiB, 1.2 GiB; "—" when unknown."""
    return "—" if n is None else human_bytes(n)


def source_text(source: str | None) -> str:
    return SOURCES.get(source or "", source or "—")


def score_text(metric: str | None, score: float | None) -> str:
    if not metric or score is None or not math.isfinite(score):
        return "—"
    return f"{metric} {score:.3f}"


def when_text(timestamp: float | None) -> str:
    if not timestamp:
        return "—"
    return dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


def value_text(field: str, value: Any) -> str:
    """One cell of the side-by-side comparison."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if field.endswith("bytes") and isinstance(value, int):
        return size_text(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "—"
        # a regularization of 1e-5 is not "0.0000"
        return f"{value:.4f}" if value == 0 or 1e-3 <= abs(value) < 1e5 else f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return " ".join(str(value).split())


def evaluation_missing(version: Any) -> str | None:
    """Why the version has no Evaluation to show; None when it has one."""
    m = version.manifest
    if "evaluation.json" in m.files or (m.task is not None and m.metrics):
        return None
    if m.task is None:
        how = "imported" if m.imported is not None else "made outside Model Studio"
        return (f"{version.ref} was {how}: it has no task or test split here, so there is no "
                "evaluation to show")
    return f"{version.ref} was never evaluated on a test split"
