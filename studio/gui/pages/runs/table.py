"""The runs list as a Qt model: one row per :class:`studio.core.runs.Run`, no item objects
(a thousand runs show at once), sorted by a key per column and filtered by a proxy."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QColor

from studio.core.runs import Run
from studio.gui.pages.evaluation.plain import tip
from studio.gui.pages.models.text import score_text, when_text

COLUMNS = ["Run", "State", "Dataset", "Family", "Test score", "Time", "Version", "Started"]
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
ID_ROLE = Qt.ItemDataRole.UserRole
INK = {"failed": QColor("#d93025"), "running": QColor("#1a73e8"), "queued": QColor("#1a73e8"),
       "stopped": QColor("#b06000"), "cancelled": QColor("#5f6368"),
       "interrupted": QColor("#b06000")}
Index = QModelIndex | QPersistentModelIndex


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{seconds / 3600:.1f} h"


class RunsModel(QAbstractTableModel):
    def __init__(self) -> None:
        super().__init__()
        self.runs: list[Run] = []
        self._cells: list[tuple[tuple[str, Any], ...]] = []

    def set_runs(self, runs: list[Run]) -> None:
        self.beginResetModel()
        self.runs = runs
        # worded once here, not on every paint
        self._cells = [_cells(r) for r in runs]
        self.endResetModel()

    def tick(self) -> None:
        """The active runs' times, worded again (they grow while a run goes on)."""
        col = COLUMNS.index("Time")
        for i, run in enumerate(self.runs):
            if run.ended is None and run.started is not None:
                cells = list(self._cells[i])
                cells[col] = _cells(run)[col]
                self._cells[i] = tuple(cells)
                index = self.index(i, col)
                self.dataChanged.emit(index, index)

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self.runs)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        run = self.runs[index.row()]
        text, key = self._cells[index.row()][index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return text
        if role == SORT_ROLE:
            return key
        if role == ID_ROLE:
            return run.id
        if role == Qt.ItemDataRole.ForegroundRole and index.column() == 1:
            return INK.get(run.state)
        if role == Qt.ItemDataRole.ToolTipRole:
            if run.error and index.column() in (0, 1):
                return tip(run.error)
            if index.column() == 2 and run.digest:
                return tip(f"{run.dataset}@{run.digest[:12]}, target {run.target}")
        return None


def _cells(r: Run) -> tuple[tuple[str, Any], ...]:
    score = r.score if r.score is not None else float("-inf")
    return ((r.id, r.id), (r.state, r.state), (r.dataset, r.dataset.casefold()),
            (r.family, r.family), (score_text(r.metric, r.score), score),
            (duration_text(r.duration_s), r.duration_s if r.duration_s is not None else -1.0),
            (r.version or "—", r.version or ""),
            (when_text(r.started or r.created), r.started or r.created))


class RunsFilter(QSortFilterProxyModel):
    """Rows whose dataset, family and state match the chosen ones (None: any) and whose
    words contain the search text."""

    def __init__(self) -> None:
        super().__init__()
        self.dataset: str | None = None
        self.family: str | None = None
        self.state: str | None = None
        self.search = ""
        self.setSortRole(SORT_ROLE)

    def set_filter(self, dataset: str | None, family: str | None, state: str | None,
                   search: str) -> None:
        # Qt 6.10 replaced invalidateFilter() with a begin/end pair
        begin = getattr(self, "beginFilterChange", None)
        if begin is not None:
            begin()
        self.dataset, self.family, self.state = dataset, family, state
        self.search = search.strip().casefold()
        if begin is not None:
            self.endFilterChange()
        else:
            self.invalidateFilter()

    def filterAcceptsRow(self, row: int, parent: Index) -> bool:
        model = self.sourceModel()
        assert isinstance(model, RunsModel)
        r = model.runs[row]
        if self.dataset is not None and r.dataset != self.dataset:
            return False
        if self.family is not None and r.family != self.family:
            return False
        if self.state is not None and r.state != self.state:
            return False
        if self.search:
            words = (r.id, r.dataset, r.target, r.family, r.version or "", r.state,
                     r.error or "")
            return any(self.search in w.casefold() for w in words)
        return True
