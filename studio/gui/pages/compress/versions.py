"""The version to compress: every registered version, newest first, as ``NAME:N · kind ·
headline metric`` (from the registry's listing columns: no manifest is read)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QWidget

from studio.core.registry.listing import VersionRow
from studio.gui.pages.evaluation.plain import tip
from studio.gui.pages.models.text import score_text, source_text


def version_text(row: VersionRow) -> str:
    kind = " ".join(filter(None, (row.family, row.kind))) or "model"
    if row.source == "compression":
        kind += f", {source_text(row.source)}"
    return f"{row.ref}  ·  {kind}  ·  {score_text(row.metric, row.score)}"


class VersionPicker(QComboBox):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # a long name is elided in the box, never a reason for the page to widen
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(24)
        self.rows: dict[str, VersionRow] = {}

    def fill(self, rows: list[VersionRow], keep: str | None) -> None:
        """List ``rows`` newest first; ``keep`` (a ref) stays the current one when listed,
        else the newest is. Emits currentIndexChanged only when the current one changed."""
        before = self.current_ref()
        self.rows = {r.ref: r for r in rows}
        self.blockSignals(True)
        self.clear()
        for r in sorted(rows, key=lambda r: (r.created, r.version), reverse=True):
            self.addItem(version_text(r), r.ref)
            self.setItemData(self.count() - 1, tip(version_text(r) + (
                f"\n{r.description}" if r.description else "")), Qt.ItemDataRole.ToolTipRole)
        index = self.findData(keep) if keep else -1
        self.setCurrentIndex(index if index >= 0 else (0 if self.count() else -1))
        self.blockSignals(False)
        if self.current_ref() != before:
            self.currentIndexChanged.emit(self.currentIndex())

    def current_ref(self) -> str | None:
        ref = self.currentData()
        return str(ref) if ref else None

    def select(self, ref: str) -> bool:
        """Make ``ref`` current; False when it is not listed."""
        index = self.findData(ref)
        if index < 0:
            return False
        self.setCurrentIndex(index)
        return True
