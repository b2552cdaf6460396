"""How the page words a result's numbers (plain Python: no Qt)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

METRIC_TITLES = {"accuracy": "Accuracy", "r2": "R²"}


def metric_title(metric: str | None) -> str:
    return METRIC_TITLES.get(metric or "", metric or "Score")


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(
        value)


def value_text(value: Any) -> str:
    return f"{value:.3f}" if _finite(value) else "—"


def delta_text(points: Any) -> str:
    """Points of the headline metric (×100): +0.0, −12.3."""
    if not _finite(points):
        return "—"
    return ("+" if points >= 0 else "−") + f"{abs(points):.1f}"


def ratio_text(ratio: Any) -> str:
    """A result's figure over its source's: 0.28×."""
    if not _finite(ratio):
        return "—"
    return f"{ratio:.2f}×" if ratio < 10 else f"{ratio:.1f}×"


def ms_text(ms: Any) -> str:
    if not _finite(ms):
        return "—"
    return f"{ms:.3g}" if ms < 100 else f"{ms:,.0f}"


def results(n: int) -> str:
    """``1 result``, ``3 results``."""
    return f"{n} result" + ("" if n == 1 else "s")


def count_text(n: Any) -> str:
    return f"{int(n):,}" if _finite(n) else "—"


def settings_text(method: str, settings: Mapping[str, Any]) -> str:
    """The settings that differ from the method's defaults, shortly: ``sparsity 0.7``."""
    from studio.core.compress.methods import BY_NAME
    from studio.gui.widgets.knob import label, text_of

    known = BY_NAME.get(method)
    defaults = {p.name: p.default for p in known.settings} if known else {}
    changed = [(k, v) for k, v in settings.items() if k not in defaults or defaults[k] != v]
    return ", ".join(f"{label(k).lower()} {text_of(v)}" for k, v in changed)


def method_text(row: Mapping[str, Any], source: str | None = None) -> str:
    """``prune (sparsity 0.7)``; a chained step names what it started from (when that is
    not ``source``)."""
    method = str(row.get("method") or "?")
    extra = settings_text(method, row.get("settings") or {})
    parent = row.get("parent")
    return method + (f" ({extra})" if extra else "") + (
        f" of {parent}" if source and parent and parent != source else "")


def collapse_text(row: Mapping[str, Any]) -> str:
    """Why a collapsed result is flagged, with its loss."""
    metric = row.get("metric") or "the score"
    return (f"{row.get('version') or 'This result'} lost {-float(row['delta_points']):.1f} "
            f"points of {metric} ({value_text(row.get('source_value'))} → "
            f"{value_text(row.get('value'))}): more than 5 points is a collapse. It is "
            "registered and flagged, and never promoted on its own.")
