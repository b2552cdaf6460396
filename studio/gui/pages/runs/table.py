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
       "pruned": QColor("#5f6368"),
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
        self._keys: list[tuple[Any, ...]] = []
        self._texts: dict[int, tuple[str, ...]] = {}
        self._rows: dict[str, int] | None = None
        self.sort_column, self.sort_order = -1, Qt.SortOrder.AscendingOrder

    def set_runs(self, runs: list[Run]) -> None:
        self.beginResetModel()
        self.runs = self._sorted(runs)
        # sort keys for every row now (sorting needs them all, and they cost no wording);
        # the text of a row when it is first painted (a screenful of a thousand)
        self._keys = [_keys(r) for r in self.runs]
        self._texts = {}
        self._rows = None
        self.endResetModel()

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sorted here, by the precomputed keys in one list sort: a proxy sorting a
        thousand rows asks ``data`` twenty thousand times, most of a refresh's time."""
        self.sort_column, self.sort_order = column, order
        self.layoutAboutToBeChanged.emit()
        # the selection and the current row follow their runs, not their row numbers
        kept = self.persistentIndexList()
        ids = [self.runs[i.row()].id if i.isValid() else None for i in kept]
        self.runs = self._sorted(self.runs)
        self._keys = [_keys(r) for r in self.runs]
        self._texts, self._rows = {}, None
        moved = []
        for old, run_id in zip(kept, ids, strict=True):
            row = self.row_of(run_id) if run_id is not None else None
            moved.append(self.index(row, old.column()) if row is not None else QModelIndex())
        self.changePersistentIndexList(kept, moved)
        self.layoutChanged.emit()

    def _sorted(self, runs: list[Run]) -> list[Run]:
        col = self.sort_column
        if col < 0:
            return list(runs)

        def key(r: Run) -> tuple[int, Any]:
            k = _keys(r)[col]
            return (0, k) if not isinstance(k, str) else (1, k)

        return sorted(runs, key=key, reverse=self.sort_order == Qt.SortOrder.DescendingOrder)

    def row_of(self, run_id: str) -> int | None:
        if self._rows is None:
            self._rows = {r.id: i for i, r in enumerate(self.runs)}
        return self._rows.get(run_id)

    def tick(self) -> None:
        """The active runs' times, worded again (they grow while a run goes on)."""
        col = COLUMNS.index("Time")
        for i, run in enumerate(self.runs):
            if run.ended is None and run.started is not None:
                self._texts.pop(i, None)
                self._keys[i] = _keys(run)
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
        row = index.row()
        run = self.runs[row]
        if role == Qt.ItemDataRole.DisplayRole:
            texts = self._texts.get(row)
            if texts is None:
                texts = self._texts[row] = _texts(run)
            return texts[index.column()]
        if role == SORT_ROLE:
            return self._keys[row][index.column()]
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


def _keys(r: Run) -> tuple[Any, ...]:
    return (r.id, r.state, r.dataset.casefold(), r.family,
            r.score if r.score is not None else float("-inf"),
            r.duration_s if r.duration_s is not None else -1.0, r.version or r.trial or "",
            r.started or r.created)


def _texts(r: Run) -> tuple[str, ...]:
    version = r.version or (f"— (trial {r.trial.rpartition('#')[2]})" if r.trial else "—")
    return (r.id, r.state, r.dataset, r.family, score_text(r.metric, r.score),
            duration_text(r.duration_s), version, when_text(r.started or r.created))


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

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """The source sorts itself (see RunsModel.sort); this proxy only filters."""
        model = self.sourceModel()
        assert isinstance(model, RunsModel)
        model.sort(column, order)

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
                     r.error or "", r.trial or "")
            return any(self.search in w.casefold() for w in words)
        return True
