"""How long one-click training may take, from the data's size; light enough for the GUI to
show the same number before a run (no torch)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple


def default_budget(rows: int, features: int, modality: str) -> float:
    """Seconds for the families to train, from the data's size (``features``: the input
    columns, a category counting once however many values it has): about 50 s for a
    50,000-row, 20-column table on two cores; pictures and text cost more per row."""
    if modality == "image":
        return float(min(3600, max(60, 30 + 0.05 * rows)))
    if modality == "text":
        return float(min(1800, max(30, 30 + 0.006 * rows)))
    return float(min(900, max(20, 15 + 35 * rows * max(1, features) / 1e6)))


class Planned(NamedTuple):
    """What a run on these columns will train on, as far as the profile tells."""

    rows: int  # rows with a target value
    features: int  # input columns
    modality: str  # "tabular", "text" or "image"

    def budget(self) -> float:
        return default_budget(self.rows, self.features, self.modality)


def planned(profile: Sequence[Mapping[str, Any]], target: str,
            options: Mapping[str, Any] | None = None, images: bool = False) -> Planned:
    """The rows, input columns and modality a recipe fitted on these columns will have,
    read from the column profile before any recipe exists: what decides which families fit
    and the automatic budget."""
    chosen = (options or {}).get("columns", {})
    rows, width, text = 0, 0, False
    for column in profile:
        name, kind = column["name"], column["kind"]
        choice = chosen.get(name, {})
        if name == target:
            rows = int(column.get("count", 0))
        elif images or choice.get("drop"):
            continue
        elif kind == "numeric" or kind in ("categorical", "boolean"):
            width += 1
        elif kind == "text":
            text = True
            width += 1
    return Planned(rows, width, "image" if images else "text" if text else "tabular")
