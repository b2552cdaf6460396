"""What the Evaluation view shows of a version: its evaluation.json, or, for a version made
before evaluations were stored, the test metrics its manifest carries."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from studio.core.errors import InputError
from studio.core.registry import Version, read_file
from studio.core.workspace import Workspace

FILENAME = "evaluation.json"


@dataclass(frozen=True)
class Evaluation:
    ref: str
    task: str  # "classification" | "regression"
    dataset: str
    split: str
    n: int
    metrics: dict[str, Any]
    labels: list[str] = field(default_factory=list)
    confusion: list[list[int]] | None = None
    doc: dict[str, Any] | None = None  # the whole evaluation.json; None: manifest only
    digest: str | None = None  # the snapshot evaluated, when it is known
    target: str = ""

    @property
    def full(self) -> bool:
        return self.doc is not None

    def section(self, key: str) -> Any:
        return (self.doc or {}).get(key)

    def cell_positions(self, actual: int, predicted: int) -> list[int]:
        """Positions in ``rows`` of the kept rows whose actual and predicted classes are these,
        the most confident prediction first."""
        rows = self.section("rows") or {}
        conf = rows.get("confidence") or []
        hits = [k for k, (a, p) in enumerate(zip(rows.get("actual", []),
                                                   rows.get("predicted", []), strict=True))
                if a == actual and p == predicted]
        if len(conf) == len(rows.get("actual", [])):
            hits.sort(key=lambda k: -(conf[k] if conf[k] is not None else -1.0))
        return hits

    def cell_rows(self, actual: int, predicted: int) -> list[int]:
        """The dataset row numbers of one confusion cell (the kept rows only)."""
        index = (self.section("rows") or {}).get("index", [])
        return [int(index[k]) for k in self.cell_positions(actual, predicted)]

    @property
    def truncated(self) -> bool:
        return bool((self.section("rows") or {}).get("truncated"))

    def evaluate_command(self) -> str:
        return f"studio evaluate {self.ref} {self.dataset}"


def load_evaluation(ws: Workspace, version: Version) -> Evaluation:
    """The version's evaluation; raises InputError when its evaluation.json cannot be read."""
    manifest = version.manifest.raw
    digest = (manifest.get("dataset") or {}).get("digest")
    dataset = str((manifest.get("dataset") or {}).get("name", ""))
    if FILENAME not in manifest.get("files", {}):
        test = dict((manifest.get("metrics") or {}).get("test") or {})
        confusion = test.pop("confusion", None)
        return Evaluation(version.ref, version.task, dataset, "test", int(test.get("n") or 0),
                          test, [str(x) for x in manifest.get("labels") or []], confusion,
                          None, digest, str(manifest.get("target", "")))
    try:
        doc = json.loads(read_file(ws, version, FILENAME))
        if not isinstance(doc, dict) or not isinstance(doc.get("metrics"), dict):
            raise ValueError("it holds no metrics")
    except ValueError as exc:
        raise InputError(f"the evaluation of {version.ref} cannot be read: {exc}") from None
    name = str(doc.get("dataset") or dataset)
    # The row numbers are those of the snapshot evaluated: the one trained on, when the
    # evaluation names the same dataset (a name keeps its content while it is listed).
    known = doc.get("digest") or (digest if name == dataset else None)
    return Evaluation(version.ref, str(doc.get("task") or version.task), name,
                      str(doc.get("split") or "test"), int(doc.get("n") or 0), doc["metrics"],
                      [str(x) for x in doc.get("labels") or manifest.get("labels") or []],
                      doc.get("confusion"), doc, known, str(manifest.get("target", "")))


def number(value: Any, digits: int = 3) -> str:
    """A metric as a person reads it; "—" for a value that is undefined."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return "—"
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 10 ** -digits):
        return f"{value:.{digits}g}" if abs(value) < 1e15 else f"{value:.3e}"
    if abs(value) >= 1000:
        return f"{value:,.1f}"
    return f"{value:.{digits}f}"
