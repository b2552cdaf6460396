"""Training: the leaderboard of the families a run tries, the live curves of the one at work
(or of the row picked), progress, Stop, the result, and Register for a family that lost."""

from __future__ import annotations

import contextlib
import html
import subprocess
import time
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.events import Candidate, Done, Event, Failed, Log, Metric, Progress, Started
from studio.core.workspace import Workspace
from studio.gui.job_bridge import JobBridge
from studio.gui.widgets.leaderboard import Leaderboard
from studio.gui.worker import run_in_thread

if TYPE_CHECKING:
    from studio.gui.widgets.live_curve import LiveCurve

IDLE_TEXT = "Pick a dataset and a target on the Datasets page, then press Train."
SCORES = {"val_accuracy": ("Validation accuracy", "accuracy"), "val_r2": ("Validation R²", "R²")}
STAGE_FORMATS = {"train": "epoch %v / %m", "decode": "decoding pictures %v / %m"}
ERROR = "#d93025"


DEVICE_MEMORY = "device_memory_gb"  # a GPU's peak memory, per epoch


def _duration(seconds: float) -> str:
    minutes, s = divmod(int(seconds), 60)
    hours, m = divmod(minutes, 60)
    return f"{hours}:{m:02d}:{s:02d}" if hours else f"{m}:{s:02d}"


class TrainingPage(QWidget):
    started = Signal()
    finished = Signal(object)  # Done | Failed
    registered = Signal(str)  # a version ref made from a candidate
    message = Signal(str)

    def __init__(self, ws: Workspace, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ws = ws
        self.job: JobBridge | None = None
        self.job_id: str | None = None  # the run the leaderboard is of
        self.final: Done | Failed | None = None
        self._stage = ""
        self._epoch = (0, 0)
        self._score: str | None = ""
        self._family = ""  # the family at work
        self._families = (0, 0)  # family i of n
        self._share_ends = 0.0  # when the family at work is out of time (0: unknown)
        # every family's curves, so any row picked can be shown again: family → name → points
        self.series: dict[str, dict[str, list[tuple[float, float]]]] = {}
        self.shown = ""  # the family whose curves are drawn

        title = QLabel("Training")
        title.setObjectName("pageTitle")
        self.heading = QLabel(IDLE_TEXT)
        self.heading.setObjectName("muted")
        self.device = QLabel()
        self.device.setObjectName("chip")
        self.device.hide()
        self.stop_btn = QPushButton("Stop")
        self.stop_btn.setEnabled(False)
        self.stop_btn.setToolTip("Stop after the current step and keep the best so far")
        self.stop_btn.clicked.connect(self.stop)
        top = QHBoxLayout()
        top.addWidget(title)
        top.addSpacing(12)
        top.addWidget(self.heading, 1)
        top.addWidget(self.device)
        top.addWidget(self.stop_btn)

        self.progress = QProgressBar()
        self.progress.setFormat("no run yet")
        self.progress.setValue(0)
        self.clock = QLabel()
        self.clock.setObjectName("muted")
        self.clock.setToolTip("time since the run started, and an estimate of what is left "
                              "for the family at work")
        self._started_at = 0.0
        self._train_started_at = 0.0
        self._first_epoch = 0
        self._ticker = QTimer(self)
        self._ticker.setInterval(1000)
        self._ticker.timeout.connect(self._show_clock)
        bar = QHBoxLayout()
        bar.addWidget(self.progress, 1)
        bar.addWidget(self.clock)

        self._curves = QHBoxLayout()
        self._loss: LiveCurve | None = None
        self._accuracy: LiveCurve | None = None

        self.board = Leaderboard()
        self.board.itemSelectionChanged.connect(self._on_pick)
        self.register_btn = QPushButton("Register as a version")
        self.register_btn.setEnabled(False)
        self.register_btn.setToolTip("Make the family picked in the leaderboard a version of "
                                     "the model too, beside the one the run chose")
        self.register_btn.clicked.connect(self.register_selected)
        self.result = QLabel()
        self.result.setObjectName("result")
        self.result.setWordWrap(True)
        ending = QHBoxLayout()
        ending.addWidget(self.result, 1)
        ending.addWidget(self.register_btn)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)
        self.log.setFixedHeight(90)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(bar)
        layout.addLayout(self._curves, 1)
        layout.addWidget(self.board)
        layout.addLayout(ending)
        layout.addWidget(self.log)

    @property
    def loss(self) -> LiveCurve:
        self._make_curves()
        assert self._loss is not None
        return self._loss

    @property
    def accuracy(self) -> LiveCurve:
        self._make_curves()
        assert self._accuracy is not None
        return self._accuracy

    def _make_curves(self) -> None:
        """Built on first use: pyqtgraph costs ~0.4 s to import, too much for start-up."""
        if self._loss is not None:
            return
        from studio.gui.widgets.live_curve import LiveCurve

        self._loss = LiveCurve("Loss", "cross-entropy / MSE")
        self._loss.add_series("train_loss", "train")
        self._loss.add_series("val_loss", "validation")
        self._accuracy = LiveCurve("Validation score", "accuracy or R²", legend=False)
        self._accuracy.add_series("val_accuracy", "validation")
        self._accuracy.add_series("val_r2", "validation")
        self._curves.addWidget(self._loss, 3)
        self._curves.addWidget(self._accuracy, 2)

    def showEvent(self, event: QShowEvent) -> None:
        self._make_curves()
        super().showEvent(event)

    @property
    def running(self) -> bool:
        return self.job is not None and self.job.running

    def start(self, **fields: Any) -> None:
        """Train with these TrainSpec fields (the Datasets page's choices)."""
        from studio.core.datasets.catalog import get_dataset
        from studio.core.names import check_name
        from studio.core.training.spec import TrainSpec, default_threads

        if self.running:
            self.message.emit("A training job is already running.")
            return
        info = get_dataset(self.ws, fields.get("dataset", ""))
        if fields.get("model") is not None:
            check_name(fields["model"], "model")
        spec = TrainSpec.from_dict({**fields, "threads": default_threads(leave_one_free=True)})
        spec.check_columns(info.column_names)
        self.series.clear()
        self.shown = ""
        self._show_curves("")
        self.board.clear_rows()
        self.register_btn.setEnabled(False)
        self.result.clear()
        self.log.clear()
        self.device.hide()
        self.heading.setText(f"{spec.dataset} → predicting “{spec.target}”"
                             + (f" (resuming run {spec.resume})" if spec.resume else ""))
        self._stage, self._epoch, self._family, self._families = "", (0, 0), "", (0, 0)
        self._score = None
        self._show_score("")  # the last run's title does not linger
        self.progress.setRange(0, 0)  # busy until the first stage reports its size
        self.progress.setFormat("starting…")
        self._started_at = time.monotonic()
        self._train_started_at = 0.0
        self._ticker.start()
        self._show_clock()
        self.stop_btn.setEnabled(True)
        self.final = None
        self.job = JobBridge(self.ws, "train", spec.to_dict(), self)
        self.job.events.connect(self._on_events)
        self.job.finished.connect(self._on_finished)
        self.job.start()
        self.job_id = self.job.runner.job_id
        self.started.emit()

    def stop(self) -> None:
        if self.job is not None and self.job.running:
            self.stop_btn.setEnabled(False)
            self.log.appendPlainText("Stopping after the current step…")
            self.job.stop()

    def shutdown(self) -> None:
        """The window closes: the run is asked to Stop and left to finish what it keeps (its
        own process, which a closed pipe no longer disturbs once it has the Stop)."""
        if self.job is not None and self.job.running:
            self.job.runner.stop(grace_s=None)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.job.runner.wait(timeout=2)

    # -- events -----------------------------------------------------------------------------

    def _on_events(self, batch: list[Event]) -> None:
        for event in batch:
            if isinstance(event, Metric):
                self._on_metric(event)
            elif isinstance(event, Candidate):
                self._on_candidate(event)
            elif isinstance(event, Progress):
                self._show_progress(event)
            elif isinstance(event, Log):
                if event.level != "debug":  # a traceback: the job's record keeps it
                    self.log.appendPlainText(event.message)
            elif isinstance(event, Started) and event.device:
                self.device.setText(f"device: {event.device}")
                self.device.show()
        self.loss.flush()
        self.accuracy.flush()

    def _on_metric(self, event: Metric) -> None:
        if event.name == DEVICE_MEMORY:
            device = self.device.text().partition(" · ")[0]
            self.device.setText(f"{device} · {event.value:.2f} GiB used at most")
            return
        family = event.series or self._family
        self.series.setdefault(family, {}).setdefault(event.name, []).append(
            (event.epoch, event.value))
        if family != self.shown:
            return
        if event.name in SCORES:
            self._show_score(event.name)
            self.accuracy.append(event.name, event.epoch, event.value)
        else:
            self.loss.append(event.name, event.epoch, event.value)

    def _on_candidate(self, event: Candidate) -> None:
        self.board.on_candidate(event)
        if event.status == "training":
            self._family = event.family
            self._train_started_at = 0.0
            self._share_ends = _share_ends(event.message)
            self.board.clearSelection()  # the curves follow the family at work again
            self._show_curves(event.family)
        elif event.chosen:
            self._show_curves(event.family)

    def _on_pick(self) -> None:
        row = self.board.selected()
        if row is not None:
            self._show_curves(row.family)
        self._update_register()

    def _show_curves(self, family: str) -> None:
        """Draw ``family``'s curves (kept from the start of the run); the loss chart's title
        names it (the score chart beside it is too narrow for both names at 1024 pixels)."""
        if family == self.shown and family:
            return
        self.shown = family
        self.loss.clear_data()
        self.accuracy.clear_data()
        self._score = None
        points = self.series.get(family, {})
        for name, values in points.items():
            curve = self.accuracy if name in SCORES else self.loss
            for x, y in values:
                curve.append(name, x, y)
        self._show_score(next((n for n in points if n in SCORES), ""))
        title = self.board.rows[family].title if family in self.board.rows else ""
        self.loss.setTitle(f"Loss · {title}" if title else "Loss", color="#202124",
                           size="11pt")
        self.loss.flush()
        self.accuracy.flush()

    def _show_score(self, name: str) -> None:
        if name == self._score:
            return
        self._score = name
        title, label = SCORES.get(name, ("Validation score", "accuracy or R²"))
        self.accuracy.setTitle(title, color="#202124", size="11pt")
        self.accuracy.setLabel("left", label)

    def _show_progress(self, event: Progress) -> None:
        """The bar follows the stage at work (decoding pictures, a family's epochs); a
        stage's first message goes to the log once, not every update of it."""
        if event.stage == "family":
            self._families = (int(event.current) + 1, int(event.total))
        if event.stage != self._stage:
            self._stage = event.stage
            if event.message and event.stage not in STAGE_FORMATS:  # the bar says those
                self.log.appendPlainText(event.message)
        if event.stage == "train" and not self._train_started_at:
            self._train_started_at = time.monotonic()
            self._first_epoch = int(event.current)
        if event.total:
            self.progress.setRange(0, int(event.total))
            self.progress.setValue(int(event.current))
        fmt = STAGE_FORMATS.get(event.stage)
        if event.stage == "train" and event.message:
            fmt = event.message.replace("%", "%%")  # "mlp: epoch 3/40", "linear: C=0.1"
        text = fmt or (event.message or event.stage).replace("%", "%%")
        i, n = self._families
        if n > 1 and event.stage in ("train", "decode"):
            text = f"family {i} of {n} · {text}"
        self.progress.setFormat(text)
        if event.stage == "train":
            self._epoch = (int(event.current), int(event.total))
        self._show_clock()

    def _show_clock(self) -> None:
        if not self._started_at:
            self.clock.clear()
            return
        now = time.monotonic()
        text = f"elapsed {_duration(now - self._started_at)}"
        done, total = self._epoch
        trained = done - self._first_epoch
        if self.running and self._stage == "train" and self._train_started_at \
                and trained > 0 and total > done:
            left = (now - self._train_started_at) / trained * (total - done)
            if self._share_ends:
                left = min(left, max(0.0, self._share_ends - now))
            text += f" · {self._family} about {_duration(left)} left"
        self.clock.setText(text)

    def _settle_bar(self) -> None:
        """A bar still busy (nothing measured yet) stops spinning and shows its text; one
        that measured keeps where it got to."""
        if not self.progress.maximum():
            self.progress.setRange(0, 1)
            self.progress.setValue(0)

    def _on_finished(self, final: Done | Failed) -> None:
        from studio.core.training.metrics import headline

        self.final = final
        self._ticker.stop()
        self._show_clock()
        self.stop_btn.setEnabled(False)
        if isinstance(final, Done):
            r = final.result
            note = " (stopped early)" if r.get("stopped_early") else ""
            family = f" ({r['family']})" if r.get("family") else ""
            text = (f"✔ Registered <b>{r['version']}</b>{family} — test "
                    f"{headline(r['task'], r['metrics'])}{note}")
            for warning in r.get("warnings", []):
                text += f"<br><span style='color:#b06000'>⚠ {html.escape(warning)}</span>"
            self.result.setText(text)
            self.progress.setValue(self.progress.maximum())
            self.progress.setFormat("done")
            self._load_board()
        elif final.cancelled:
            self._settle_bar()
            self.progress.setFormat("stopped")
            self.result.setText(f"Stopped: {html.escape(final.error)}")
        else:
            self._settle_bar()
            self.progress.setFormat("failed")
            self.result.setText(f"<span style='color:{ERROR}'>✖ Training failed: "
                                f"{html.escape(final.error)}</span>")
        self._update_register()
        self.finished.emit(final)

    # -- the leaderboard after the run ------------------------------------------------------

    def _load_board(self) -> None:
        """The stored leaderboard: sizes of every kept family and the versions they are."""
        from studio.core.errors import StudioError
        from studio.core.training import candidates

        if self.job_id is None:
            return
        try:
            _job, rows = candidates.board(self.ws, self.job_id)
        except StudioError:
            return  # a single family: nothing kept besides the version
        self.board.set_board(rows)

    def _update_register(self) -> None:
        row = self.board.selected()
        ok = (row is not None and isinstance(self.final, Done) and row.status == "done"
              and not row.chosen and not row.version and self.job_id is not None)
        self.register_btn.setEnabled(ok)

    def register_selected(self) -> None:
        """The picked family becomes a version of the run's model. Its files are read back
        verified and stored again: off the GUI thread, on its own database connection."""
        from studio.core.training import candidates

        row = self.board.selected()
        if row is None or self.job_id is None:
            return
        job_id, family, root = self.job_id, row.family, self.ws.root
        self.register_btn.setEnabled(False)
        self.register_btn.setText("Registering…")

        def register() -> tuple[str, str]:
            ws = Workspace.open(root)
            try:
                return family, candidates.register(ws, job_id, family).ref
            finally:
                ws.db.close()

        run_in_thread(register, self._on_registered,
                      lambda error: self._on_register_failed(family, error))

    def _on_registered(self, done: tuple[str, str]) -> None:
        family, ref = done
        self.register_btn.setText("Register as a version")
        self.board.set_version(family, ref)
        title = self.board.rows[family].title
        self.result.setText(f"✔ Registered <b>{html.escape(ref)}</b> from the "
                            f"{html.escape(title.lower())} of this run")
        self._update_register()
        self.registered.emit(ref)

    def _on_register_failed(self, family: str, error: str) -> None:
        self.register_btn.setText("Register as a version")
        self.result.setText(f"<span style='color:{ERROR}'>✖ Could not register the "
                            f"{html.escape(family)} candidate: {html.escape(error)}</span>")
        self._update_register()


def _share_ends(message: str) -> float:
    """The instant a family's share of the budget ends, from its "training" event's "N s"
    (0 when it carries none: a single family has the whole budget)."""
    value, _, unit = message.partition(" ")
    try:
        return time.monotonic() + float(value) if unit == "s" else 0.0
    except ValueError:
        return 0.0
