"""The list of versions, one row each from the registry's listing columns (no manifest is
read): aliases and tags as chips, sortable by any column, several rows selectable."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from studio.core.registry.listing import VersionRow
from studio.gui.pages.evaluation.plain import tip
from studio.gui.pages.models.chips import ALIAS, CHIPS_ROLE, TAG, ChipDelegate
from studio.gui.pages.models.text import score_text, size_text, source_text, when_text
from studio.gui.widgets.sort_item import SortItem

COLUMNS = ["Version", "Kind", "Aliases", "Test score", "Size", "Tags", "Source", "Created"]
REF_ROLE = Qt.ItemDataRole.UserRole
ARCHIVED_INK = QColor("#9aa5b1")


class VersionTable(QTableWidget):
    def __init__(self) -> None:
        super().__init__(0, len(COLUMNS))
        self.rows: dict[str, VersionRow] = {}
        self.setHorizontalHeaderLabels(COLUMNS)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        # Ctrl/Shift+click selects several versions, to compare them
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setWordWrap(False)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.verticalHeader().hide()
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(False)
        for col in ("Aliases", "Tags"):
            header.setSectionResizeMode(COLUMNS.index(col), QHeaderView.ResizeMode.Stretch)
        self.setItemDelegateForColumn(COLUMNS.index("Aliases"), ChipDelegate(ALIAS, self))
        self.setItemDelegateForColumn(COLUMNS.index("Tags"), ChipDelegate(TAG, self))
        self.setSortingEnabled(True)
        self.sortByColumn(COLUMNS.index("Created"), Qt.SortOrder.DescendingOrder)

    def fill(self, rows: list[VersionRow], keep: list[str], current: str | None) -> None:
        """Show ``rows``; select again the versions of ``keep`` that are still listed, with
        ``current`` (else the first row) the current one."""
        self.rows = {r.ref: r for r in rows}
        self.setSortingEnabled(False)  # rows are filled in place, then sorted once
        self.setRowCount(len(rows))
        for i, r in enumerate(rows):
            for col, item in enumerate(_items(r)):
                item.setData(REF_ROLE, r.ref)
                if r.archived:
                    item.setForeground(ARCHIVED_INK)
                    font = QFont(self.font())
                    font.setItalic(True)
                    item.setFont(font)
                self.setItem(i, col, item)
        self.setSortingEnabled(True)
        self._fit_columns()
        self.select(keep if any(k in self.rows for k in keep) else [], current)

    def _fit_columns(self) -> None:
        header = self.horizontalHeader()
        for col, name in enumerate(COLUMNS):
            if name in ("Aliases", "Tags"):
                continue
            self.resizeColumnToContents(col)
            cap = 260 if name in ("Version", "Kind") else 150
            header.resizeSection(col, min(max(header.sectionSize(col), 60), cap))

    def row_of(self, ref: str) -> int | None:
        for i in range(self.rowCount()):
            item = self.item(i, 0)
            if item is not None and item.data(REF_ROLE) == ref:
                return i
        return None

    def select(self, refs: list[str], current: str | None = None) -> None:
        """Select ``refs`` (the first row when none of them is listed); ``current`` is the
        one the details show."""
        listed = [r for r in refs if r in self.rows]
        if current not in self.rows:
            current = listed[-1] if listed else None
        if current is None and self.rowCount():
            current = self.item(0, 0).data(REF_ROLE)
            listed = [current]
        model = self.selectionModel()
        self.blockSignals(True)
        model.blockSignals(True)
        self.clearSelection()
        flags = (model.SelectionFlag.Select | model.SelectionFlag.Rows)
        for ref in listed:
            row = self.row_of(ref)
            if row is not None:
                model.select(self.model().index(row, 0), flags)
        if current is not None:
            row = self.row_of(current)
            model.setCurrentIndex(self.model().index(row, 0),
                                  model.SelectionFlag.Select | model.SelectionFlag.Rows)
        model.blockSignals(False)
        self.blockSignals(False)
        if current is not None:
            self.scrollToItem(self.item(self.row_of(current), 0))
        self.itemSelectionChanged.emit()

    def selected_refs(self) -> list[str]:
        """The selected versions, in the order the list shows them."""
        rows = sorted(i.row() for i in self.selectionModel().selectedRows())
        return [self.item(r, 0).data(REF_ROLE) for r in rows]

    def current_ref(self) -> str | None:
        """The version the details show: the current row when it is selected, else the
        first selected one."""
        selected = self.selected_refs()
        item = self.item(self.currentRow(), 0) if self.currentRow() >= 0 else None
        if item is not None and item.data(REF_ROLE) in selected:
            return item.data(REF_ROLE)
        return selected[0] if selected else None


def _items(r: VersionRow) -> list[QTableWidgetItem]:
    tags = [f"{k}={v}" for k, v in r.tags.items()]
    about = r.ref + (" (archived)" if r.archived else "")
    if r.description:
        about += f"\n{r.description}"
    cells: list[tuple[str, Any, str | None]] = [
        (r.ref, (r.name, r.version), about),
        (r.kind or "—", r.kind or "", None),
        (", ".join(r.aliases), ",".join(r.aliases), None),
        (score_text(r.metric, r.score), r.score if r.score is not None else float("-inf"),
         None),
        (size_text(r.size_bytes), r.size_bytes or 0,
         f"model file {size_text(r.size_bytes)}; every file of the version "
         f"{size_text(r.total_bytes)}"),
        (", ".join(tags), ",".join(tags), None),
        (source_text(r.source), r.source or "",
         f"{source_text(r.source)} from {r.parent}" if r.parent else None),
        (when_text(r.created), r.created, None),
    ]
    items = []
    for text, key, hint in cells:
        item = SortItem(text, key)
        if hint:
            item.setToolTip(tip(hint))
        items.append(item)
    items[COLUMNS.index("Aliases")].setData(CHIPS_ROLE, list(r.aliases))
    items[COLUMNS.index("Tags")].setData(CHIPS_ROLE, tags)
    return items
