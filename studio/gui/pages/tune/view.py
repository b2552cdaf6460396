"""The Tune window: a hyperparameter search on the dataset and target of the Train form
(``studio tune`` as a job), its trials shown live as they end (a scatter of the score
against a parameter, the best so far, a table), Stop, and the best trial registered as a
version with one click."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.core.events import Done, Event, Failed, Log, Progress, Trial
from studio.core.workspace import Workspace
from studio.gui.job_bridge import JobBridge
from studio.gui.pages.evaluation.plain import label, tip
from studio.gui.pages.tune.charts import TrialCharts
from studio.gui.worker import run_in_thread

COLUMNS = ["Trial", "State", "Family", "Score", "Run", "Parameters"]
TUNE_FIELDS = ("dataset", "target", "task", "family", "epochs", "seed", "split", "device",
               "preprocessing")


def tune_fields(train_fields: dict[str, Any]) -> dict[str, Any]:
    """The Train form's choices a search keeps (what it searches, it chooses itself); the
    form's time budget becomes each trial's."""
    out = {k: v for k, v in train_fields.items() if k in TUNE_FIELDS and v is not None}
    if train_fields.get("time_budget_s"):
        out["trial_budget_s"] = float(train_fields["time_budget_s"])
    return out


class TuneWindow(QDialog):
    registered = Signal(str)  # a version ref
    search_ended = Signal(object)  # Done | Failed (QDialog's own `finished` is an int)

    def __init__(self, ws: Workspace, fields: dict[str, Any],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ws, self.fields = ws, tune_fields(fields)
        self.job: JobBridge | None = None
        self.trials: dict[int, dict[str, Any]] = {}
        self.score_name = ""
        self.best: Trial | None = None
        self.study: str | None = None
        self.final: Done | Failed | None = None
        self.setWindowTitle(f"Tune · {self.fields['dataset']} → {self.fields['target']}")
        self.resize(1100, 720)

        self.n_trials = QSpinBox()
        self.n_trials.setRange(1, 1000)
        self.n_trials.setValue(20)
        self.n_trials.setToolTip("How many trials the search runs at most")
        self.budget = QSpinBox()
        self.budget.setRange(0, 7 * 86_400)
        self.budget.setSingleStep(60)
        self.budget.setSpecialValueText("none")
        self.budget.setSuffix(" s")
        self.budget.setToolTip("End the search after this long, whatever the trials (none: "
                               "only the number of trials ends it)")
        self.start_btn = QPushButton("Start search")
        self.start_btn.setObjectName("primary")
        self.start_btn.clicked.connect(self.start)
        self.stop_btn = QPushButton("Stop")
        self.stop_btn.setEnabled(False)
        self.stop_btn.setToolTip("End the trial at work (it keeps what it trained) and the "
                                 "search with it")
        self.stop_btn.clicked.connect(self.stop)
        self.register_btn = QPushButton("Register best")
        self.register_btn.setEnabled(False)
        self.register_btn.setToolTip("Make the best trial's model a version")
        self.register_btn.clicked.connect(self.register_best)
        self.progress = QProgressBar()
        self.progress.setFormat("not started")
        self.progress.setValue(0)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.RichText)
        what = self.fields.get("family", "auto")
        self.about = label("Searches " + ("the model family and its parameters"
                                          if what == "auto" else f"the {what}'s parameters")
                           + " with Optuna (TPE sampler, median pruner on the validation "
                           "curve). Each trial is a run you find on the Runs page.", "muted")
        self.about.setWordWrap(True)

        self.charts = TrialCharts()
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)

        controls = QHBoxLayout()
        controls.addWidget(label("Trials"))
        controls.addWidget(self.n_trials)
        controls.addSpacing(12)
        controls.addWidget(label("Time budget"))
        controls.addWidget(self.budget)
        controls.addSpacing(12)
        controls.addWidget(self.progress, 1)
        controls.addWidget(self.start_btn)
        controls.addWidget(self.stop_btn)
        controls.addWidget(self.register_btn)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.charts)
        split.addWidget(self.table)
        split.setSizes([380, 260])
        box = QVBoxLayout(self)
        box.addWidget(self.about)
        box.addLayout(controls)
        box.addWidget(self.status)
        box.addWidget(split, 1)

    @property
    def running(self) -> bool:
        return self.job is not None and self.job.running

    def start(self) -> None:
        from studio.core.errors import StudioError
        from studio.core.training.spec import default_threads
        from studio.core.training.tune_spec import TuneSpec

        # beside the window: one core left to it, or every trial crawls when it repaints
        spec = {**self.fields, "trials": self.n_trials.value(),
                "time_budget_s": float(self.budget.value()),
                "threads": default_threads(leave_one_free=True)}

        try:
            TuneSpec.from_dict(spec)
        except StudioError as exc:
            self.status.setText(f"<span style='color:#d93025'>{html.escape(str(exc))}</span>")
            return
        self.trials.clear()
        self.best, self.final = None, None
        self.table.setRowCount(0)
        self.charts.set_trials([], "")
        self.start_btn.setEnabled(False)
        self.stop_btn.setEnabled(True)
        self.register_btn.setEnabled(False)
        self.progress.setRange(0, self.n_trials.value())
        self.progress.setValue(0)
        self.progress.setFormat("starting…")
        self.status.setText("Loading the data…")
        self.job = JobBridge(self.ws, "tune", spec, self)
        self.job.events.connect(self._on_events)
        self.job.finished.connect(self._on_finished)
        self.job.start()

    def stop(self) -> None:
        if self.job is not None and self.job.running:
            self.stop_btn.setEnabled(False)
            self.status.setText("Stopping after the current step of the trial at work…")
            self.job.stop()

    def _on_events(self, batch: list[Event]) -> None:
        changed = False
        for event in batch:
            if isinstance(event, Trial):
                self._on_trial(event)
                changed = changed or event.state != "running"
            elif isinstance(event, Progress) and event.stage == "tune":
                self.progress.setValue(int(event.current))
                self.progress.setFormat(f"%v of %m trials · {event.message}")
            elif isinstance(event, Log) and event.level in ("info", "warning") \
                    and event.message.startswith(("study ", "trial ")):
                self.status.setText(html.escape(event.message))
                if event.message.startswith("study "):
                    self.study = event.message.split()[1].rstrip(":")
        if changed:
            ordered = [self.trials[n] for n in sorted(self.trials)]
            self.charts.set_trials(ordered, self.score_name)

    def _on_trial(self, event: Trial) -> None:
        self.score_name = event.metric or self.score_name
        self.trials[event.number] = {"number": event.number, "state": event.state,
                                     "value": event.value, "family": event.family,
                                     "params": {"family": event.family, **event.params},
                                     "run": event.run_id, "message": event.message}
        self._row(event)
        if event.best_number is not None and event.best_value is not None and (
                self.best is None or event.best_number != self.best.number):
            best = self.trials.get(event.best_number)
            if best is not None:
                self.best = Trial(event.best_number, "complete", best["run"], best["family"],
                                  best["params"], event.best_value, event.metric)
        self.register_btn.setEnabled(self.best is not None)
        if self.best is not None:
            self.status.setText(f"Best so far: trial {self.best.number} "
                                f"({html.escape(self.best.family)}), validation "
                                f"{html.escape(self.score_name)} {self.best.value:.4f}")

    def _row(self, event: Trial) -> None:
        rows = [int(self.table.item(r, 0).text()) for r in range(self.table.rowCount())]
        if event.number in rows:
            r = rows.index(event.number)
        else:
            r = self.table.rowCount()
            self.table.insertRow(r)
        params = ", ".join(f"{k}={_short(v)}" for k, v in sorted(event.params.items()))
        score = f"{event.value:.4f}" if event.value is not None else "—"
        cells = [str(event.number), event.state, event.family, score, event.run_id, params]
        for c, text in enumerate(cells):
            item = QTableWidgetItem(text)
            item.setToolTip(tip(event.message or text))
            self.table.setItem(r, c, item)
        self.table.scrollToBottom()

    def _on_finished(self, final: Done | Failed) -> None:
        self.final = final
        self.start_btn.setEnabled(True)
        self.stop_btn.setEnabled(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        if isinstance(final, Done):
            r = final.result
            self.study = r["study"]
            best = r["best"]
            self.progress.setFormat(f"done: {r['ran']} trials")
            self.status.setText(
                f"Study <b>{html.escape(r['study'])}</b>: best trial {best['number']} "
                f"({html.escape(str(best['family']))}), validation {html.escape(r['metric'])}"
                f" {best['value']:.4f} (run {html.escape(str(best['run']))})")
        else:
            self.progress.setFormat("stopped" if final.cancelled else "failed")
            self.status.setText(f"<span style='color:#d93025'>Tuning ended: "
                                f"{html.escape(final.error)}</span>")
        self.search_ended.emit(final)

    def register_best(self) -> None:
        """The best trial's model becomes a version (off the GUI thread, on its own
        database connection, as the Training page registers a candidate)."""
        from studio.core.training import candidates

        if self.best is None:
            return
        run_id, family, root = self.best.run_id, self.best.family, self.ws.root
        self.register_btn.setEnabled(False)
        self.register_btn.setText("Registering…")

        def register() -> str:
            ws = Workspace.open(root)
            try:
                return candidates.register(ws, run_id, family).ref
            finally:
                ws.db.close()

        run_in_thread(register, self._on_registered, self._on_register_failed)

    def _on_registered(self, ref: str) -> None:
        self.register_btn.setText("Register best")
        self.status.setText(f"✔ Registered <b>{html.escape(ref)}</b> from trial "
                            f"{self.best.number if self.best else '?'}")
        self.registered.emit(ref)

    def _on_register_failed(self, error: str) -> None:
        self.register_btn.setText("Register best")
        self.register_btn.setEnabled(True)
        self.status.setText(f"<span style='color:#d93025'>{html.escape(error)}</span>")

    def reject(self) -> None:
        """Escape closes the window as its close button does: the search is asked to stop
        (what the trials kept stays in their runs)."""
        self._end_search()
        super().reject()

    def closeEvent(self, event: QCloseEvent) -> None:
        self._end_search()
        super().closeEvent(event)

    def _end_search(self) -> None:
        if self.job is not None and self.job.running:
            self.job.runner.stop(grace_s=None)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list):
        return "×".join(map(str, value))
    return str(value)
