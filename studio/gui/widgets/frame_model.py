"""A virtual table model over a DataFrame's columns: cells are formatted only when shown."""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor

Index = QModelIndex | QPersistentModelIndex
MISSING_COLOR = QColor("#9aa0a6")


class FrameModel(QAbstractTableModel):
    def __init__(self, frame: Any = None, kinds: dict[str, str] | None = None) -> None:
        super().__init__()
        self._columns: list[Any] = []
        self._names: list[str] = []
        self._rows = 0
        self._kinds = kinds or {}
        if frame is not None:
            self.set_frame(frame, kinds)

    def set_frame(self, frame: Any, kinds: dict[str, str] | None = None) -> None:
        self.beginResetModel()
        self._names = [str(c) for c in frame.columns]
        self._columns = [frame[c].to_numpy() for c in frame.columns]
        self._rows = len(frame)
        self._kinds = kinds or {}
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._rows

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._names)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        value = self._columns[index.column()][index.row()]
        missing = value is None or (isinstance(value, float) and math.isnan(value)) \
            or str(value) in ("<NA>", "nan", "NaT")
        if role == Qt.ItemDataRole.DisplayRole:
            if missing:
                return "—"
            if isinstance(value, float):
                return f"{value:.6g}"
            return str(value)
        if role == Qt.ItemDataRole.ForegroundRole and missing:
            return MISSING_COLOR
        if role == Qt.ItemDataRole.TextAlignmentRole and not missing \
                and self._kinds.get(self._names[index.column()]) == "numeric":
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
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
