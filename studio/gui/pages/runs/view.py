"""Runs: every training run (finished, stopped, failed, still running) in one table that
sorts, filters and searches; the selected runs' curves overlaid and their parameters and
metrics side by side, differences highlighted. The list is one query on the jobs table;
while a run is active it is read again each second, so one killed with -9 shows as failed
within two."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QItemSelectionModel, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from studio.core import checkpoints, job_rows, runs
from studio.core.errors import StudioError
from studio.core.workspace import Workspace
from studio.gui.pages.evaluation.plain import label
from studio.gui.pages.models import ask
from studio.gui.pages.runs.compare import CompareTable, RunCurves
from studio.gui.pages.runs.table import COLUMNS, ID_ROLE, RunsFilter, RunsModel

ANY = "Any"
ACTIVE_POLL_MS = 1000
MAX_COMPARED = 12


class RunsPage(QWidget):
    version_requested = Signal(str)  # NAME:N, for the Models page
    resume_requested = Signal(dict)  # TrainSpec fields: the run's own, with resume set
    notice = Signal(str)

    def __init__(self, ws: Workspace, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ws = ws
        self.model = RunsModel()
        self.proxy = RunsFilter()
        self.proxy.setSourceModel(self.model)

        self.search = QLineEdit()
        self.search.setPlaceholderText("Search runs: id, dataset, version, error…")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._filter)
        self.dataset = QComboBox()
        self.family = QComboBox()
        self.state = QComboBox()
        for combo, tip_text in ((self.dataset, "Only runs on this dataset"),
                                (self.family, "Only runs whose model family is this"),
                                (self.state, "Only runs in this state")):
            combo.setToolTip(tip_text)
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
            combo.currentIndexChanged.connect(self._filter)
        self.count = label("", "muted")
        self.open_btn = QPushButton("Open version")
        self.open_btn.setToolTip("Show the version this run registered on the Models page")
        self.open_btn.clicked.connect(self._open_version)
        self.resume_btn = QPushButton("Resume")
        self.resume_btn.setToolTip("Go on with a stopped, failed or killed run from its last "
                                   "checkpoint, with its own settings")
        self.resume_btn.clicked.connect(self.resume_selected)
        self.delete_btn = QPushButton("Delete…")
        self.delete_btn.setToolTip("Delete the selected runs' records and checkpoints; the "
                                   "versions they registered are kept")
        self.delete_btn.clicked.connect(self.delete_selected)
        QShortcut(QKeySequence.StandardKey.Delete, self, self.delete_selected)

        self.view = QTableView()
        self.view.setModel(self.proxy)
        self.view.setSortingEnabled(True)
        self.view.sortByColumn(COLUMNS.index("Started"), Qt.SortOrder.DescendingOrder)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        # Ctrl/Shift+click selects several runs to compare
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.verticalHeader().hide()
        self.view.setWordWrap(False)
        self.view.setAlternatingRowColors(True)
        # fixed row heights: a thousand rows lay out without measuring each
        self.view.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.view.verticalHeader().setDefaultSectionSize(24)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        for col, width in enumerate((110, 80, 140, 120, 130, 80, 130, 130)):
            header.resizeSection(col, width)
        header.setStretchLastSection(True)
        self.view.selectionModel().selectionChanged.connect(lambda *_: self._selected())
        self.view.doubleClicked.connect(lambda *_: self._open_version())

        self.curves = RunCurves()
        self.side = CompareTable()
        self.hint = label("Select a run to see its curves and parameters; Ctrl+click more "
                          "to compare them.", "muted")
        self.hint.setWordWrap(True)

        top = QHBoxLayout()
        top.addWidget(label("Runs", "pageTitle"))
        top.addSpacing(12)
        top.addWidget(self.search, 1)
        for caption, combo in (("Dataset", self.dataset), ("Family", self.family),
                               ("State", self.state)):
            top.addWidget(label(caption))
            top.addWidget(combo)
        actions = QHBoxLayout()
        actions.addWidget(self.count, 1)
        actions.addWidget(self.resume_btn)
        actions.addWidget(self.open_btn)
        actions.addWidget(self.delete_btn)
        lower = QSplitter(Qt.Orientation.Horizontal)
        lower.addWidget(self.curves)
        lower.addWidget(self.side)
        lower.setSizes([500, 500])
        below = QWidget()
        below_box = QVBoxLayout(below)
        below_box.setContentsMargins(0, 0, 0, 0)
        below_box.addWidget(self.hint)
        below_box.addWidget(lower, 1)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.view)
        split.addWidget(below)
        split.setSizes([300, 400])
        split.setChildrenCollapsible(False)
        box = QVBoxLayout(self)
        box.addLayout(top)
        box.addLayout(actions)
        box.addWidget(split, 1)

        self.poll = QTimer(self)
        self.poll.setInterval(ACTIVE_POLL_MS)
        self.poll.timeout.connect(self._poll)
        self._shown: list[str] = []
        self._seen: tuple[Any, ...] = ()
        self._set_choices(self.state, [*runs.STATUSES, "stopped", "pruned"])
        self._selected()

    # -- the list ---------------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.refresh(if_changed=True)

    def _signature(self) -> tuple[Any, ...]:
        """What changes when a run is added, ends, learns its facts or is deleted (metric
        rows, written all along a run, do not count)."""
        return tuple(self.ws.db.conn.execute(
            "SELECT COUNT(*), MAX(rowid), MAX(ended), SUM(status IN ('queued', 'running')), "
            "SUM(facts IS NOT NULL), SUM(length(status)) FROM jobs WHERE kind = 'train'"
        ).fetchone())

    def refresh(self, if_changed: bool = False) -> None:
        """Read the runs again (one query), keeping the selection and the filters;
        ``if_changed``: only when a run changed since (showing the page again costs a
        thousand runs' rebuild otherwise)."""
        job_rows.reap(self.ws)  # runs whose process is gone are failed, not running
        signature = self._signature()
        if if_changed and signature == self._seen:
            self.model.tick()
            if any(r.status in runs.ACTIVE for r in self.model.runs):
                self.poll.start()
            return
        keep = self.selected_ids()
        try:
            listed = runs.list_runs(self.ws)
        except StudioError as exc:
            self.notice.emit(f"Could not read the runs: {exc}")
            return
        self.model.set_runs(listed)
        self._seen = signature  # only once read: a failed read is tried again next time
        self._set_choices(self.dataset, sorted({r.dataset for r in listed}))
        self._set_choices(self.family, sorted({r.family for r in listed}))
        self._count()
        self.select(keep)
        active = any(r.status in runs.ACTIVE for r in listed)
        if active and self.isVisible():
            self.poll.start()
        else:
            self.poll.stop()

    def _poll(self) -> None:
        """While runs are active: read again only when one has ended or begun (one small
        query; a full read of a thousand runs would hold the window ~70 ms a second), else
        let the running ones' times tick."""
        if not self.isVisible():
            self.poll.stop()
            return
        job_rows.reap(self.ws)
        known = {r.id: r.status for r in self.model.runs if r.status in runs.ACTIVE}
        marks = ",".join("?" * len(known))
        now_active = dict(self.ws.db.conn.execute(
            "SELECT id, status FROM jobs WHERE kind = 'train' AND (status IN "
            f"('queued', 'running') OR id IN ({marks}))", list(known)).fetchall())
        if now_active != known:
            self.refresh()
        else:
            self.model.tick()

    def _set_choices(self, combo: QComboBox, values: list[str]) -> None:
        current = combo.currentData()
        combo.blockSignals(True)
        combo.clear()
        combo.addItem(ANY, None)
        for v in values:
            combo.addItem(v or "—", v)
        at = combo.findData(current) if current is not None else 0
        combo.setCurrentIndex(max(at, 0))
        combo.blockSignals(False)
        if current is not None and at < 0:  # the chosen value is gone: show every run
            self._filter()

    def _filter(self) -> None:
        self.proxy.set_filter(self.dataset.currentData(), self.family.currentData(),
                              self.state.currentData(), self.search.text())
        self._count()

    def _count(self) -> None:
        shown, total = self.proxy.rowCount(), self.model.rowCount()
        self.count.setText(f"{total} runs" if shown == total else f"{shown} of {total} runs")

    # -- selection --------------------------------------------------------------------------

    def selected_ids(self) -> list[str]:
        rows = sorted(i.row() for i in self.view.selectionModel().selectedRows())
        return [self.proxy.index(r, 0).data(ID_ROLE) for r in rows]

    def select(self, ids: list[str]) -> None:
        model = self.view.selectionModel()
        model.blockSignals(True)
        model.clearSelection()
        flags = (QItemSelectionModel.SelectionFlag.Select
                 | QItemSelectionModel.SelectionFlag.Rows)
        for run_id in ids:
            row = self.model.row_of(run_id)
            if row is not None:
                index = self.proxy.mapFromSource(self.model.index(row, 0))
                if index.isValid():  # shown by the filters
                    model.select(index, flags)
        model.blockSignals(False)
        self._selected()

    def _selected(self) -> None:
        ids = self.selected_ids()
        by_id = {r.id: r for r in self.model.runs}
        chosen = [by_id[i] for i in ids if i in by_id]
        self.open_btn.setEnabled(len(chosen) == 1 and chosen[0].version is not None)
        self.delete_btn.setEnabled(bool(chosen))
        self.resume_btn.setEnabled(len(chosen) == 1 and self._resumable(chosen[0]))
        if ids == self._shown:
            return
        self._shown = ids
        self.hint.setVisible(not ids)
        if not ids:
            self.curves.show_runs({}, {})
            self.side.show_doc({})
            return
        shown = ids[:MAX_COMPARED]
        try:
            doc = runs.compare(self.ws, shown, least=1)
        except StudioError as exc:  # deleted meanwhile by another process
            self.notice.emit(str(exc))
            return
        names = {i: f"{i[:8]} {by_id[i].family}" if i in by_id else i for i in shown}
        self.curves.show_runs(doc["curves"], names)
        self.side.show_doc(doc)
        if len(ids) > MAX_COMPARED:
            self.notice.emit(f"Comparing the first {MAX_COMPARED} of {len(ids)} selected runs")

    # -- actions ----------------------------------------------------------------------------

    def _open_version(self) -> None:
        ids = self.selected_ids()
        run = next((r for r in self.model.runs if ids and r.id == ids[0]), None)
        if run is not None and run.version:
            self.version_requested.emit(run.version)

    def _resumable(self, run: runs.Run) -> bool:
        if not run.resumable:
            return False
        return bool(checkpoints.resumable(self.ws, run.id))

    def resume_selected(self) -> None:
        ids = self.selected_ids()
        if len(ids) != 1:
            return
        try:
            detail = runs.get_run(self.ws, ids[0], history=False)
        except StudioError as exc:
            self.notice.emit(str(exc))
            return
        self.resume_requested.emit(runs.resume_fields(detail))

    def delete_selected(self) -> None:
        ids = self.selected_ids()
        if not ids:
            return
        what = f"run {ids[0]}" if len(ids) == 1 else f"these {len(ids)} runs"
        if not ask.confirm(self, "Delete runs",
                           f"Delete {what}: records, curves and checkpoints? The versions "
                           "they registered are kept."):
            return
        try:
            gone = runs.delete(self.ws, ids)
        except StudioError as exc:
            ask.show_message(self, "Delete runs", str(exc))
            return
        self.notice.emit(f"Deleted {len(gone)} run(s)")
        self.refresh()

    def runs_shown(self) -> list[dict[str, Any]]:
        """What the table shows, row by row (for tests and screenshots)."""
        return [{COLUMNS[c]: self.proxy.index(r, c).data() for c in range(len(COLUMNS))}
                for r in range(self.proxy.rowCount())]
