"""A virtual table model over an Arrow table: rows are turned into Python values a block at a
time, only when the view asks for them, so a million-row table opens at once."""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor

Index = QModelIndex | QPersistentModelIndex
MISSING_COLOR = QColor("#9aa0a6")
DISPLAY = Qt.ItemDataRole.DisplayRole
FOREGROUND = Qt.ItemDataRole.ForegroundRole
ALIGNMENT = Qt.ItemDataRole.TextAlignmentRole
RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
BLOCK_ROWS = 256
CACHED_BLOCKS = 64


class TableModel(QAbstractTableModel):
    def __init__(self) -> None:
        super().__init__()
        self._table: Any = None  # pyarrow.Table
        self._names: list[str] = []
        self._rows = 0
        self._kinds: dict[str, str] = {}
        self._blocks: OrderedDict[int, list[list[Any]]] = OrderedDict()

    def set_table(self, table: Any, kinds: dict[str, str] | None = None,
                  first_block: list[list[str | None]] | None = None) -> None:
        """Show ``table``; ``first_block`` is its first rows already formatted (by
        :func:`format_block` in a worker), so the first paint formats nothing."""
        self.beginResetModel()
        self._table = table
        self._names = list(table.column_names)
        self._rows = table.num_rows
        self._kinds = kinds or {}
        self._blocks.clear()
        if first_block is not None:
            self._blocks[0] = first_block
        self.endResetModel()

    def set_kinds(self, kinds: dict[str, str]) -> None:
        self._kinds = kinds
        if self._rows:
            self.dataChanged.emit(self.index(0, 0),
                                  self.index(self._rows - 1, len(self._names) - 1))

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._rows

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._names)

    def _text(self, row: int, col: int) -> str | None:
        """The cell as display text; None when it is missing. Formatted a block at a time."""
        start = row - row % BLOCK_ROWS
        block = self._blocks.get(start)
        if block is None:
            block = format_block(self._table, start)
            self._blocks[start] = block
            if len(self._blocks) > CACHED_BLOCKS:
                self._blocks.popitem(last=False)
        return block[col][row - start]

    def head_texts(self, col: int, rows: int) -> list[str]:
        """The first ``rows`` cells of a column as shown (one block, no Qt indexes)."""
        return ["—" if t is None else t
                for t in (self._text(r, col) for r in range(min(rows, self._rows)))]

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == DISPLAY:
            text = self._text(index.row(), index.column())
            return "—" if text is None else text
        if role == FOREGROUND:
            return MISSING_COLOR if self._text(index.row(), index.column()) is None else None
        if role == ALIGNMENT and self._kinds.get(self._names[index.column()]) == "numeric":
            return RIGHT
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            if orientation == Qt.Orientation.Horizontal:
                return self._names[section]
            return str(section + 1)
        if role == Qt.ItemDataRole.ToolTipRole and orientation == Qt.Orientation.Horizontal:
            return self._kinds.get(self._names[section], "")
        return None


def format_block(table: Any, start: int) -> list[list[str | None]]:
    """Display texts of the block of rows from ``start``, column by column. No Qt: a worker
    thread may call it."""
    piece = table.slice(start, BLOCK_ROWS)
    return [[_format(v) for v in piece.column(c).to_pylist()] for c in range(piece.num_columns)]


def _format(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def fit_columns(view: Any, rows: int = 50, widest: int = 320) -> None:
    """Column widths from the header and the first rows. Qt's resizeColumnsToContents walks
    every row of a hidden view: seconds on a million rows."""
    model = view.model()
    metrics = view.fontMetrics()
    header = view.horizontalHeader().fontMetrics()
    for c in range(model.columnCount()):
        title = str(model.headerData(c, Qt.Orientation.Horizontal))
        texts = model.head_texts(c, rows) if isinstance(model, TableModel) else [
            str(model.data(model.index(r, c))) for r in range(min(rows, model.rowCount()))]
        width = max([header.horizontalAdvance(title) + 8]
                    + [metrics.horizontalAdvance(t) for t in texts])
        view.setColumnWidth(c, min(widest, width + 16))
