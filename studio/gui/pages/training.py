"""Training: live loss and accuracy curves, epoch progress, Stop, and the result."""

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

from studio.core.events import Done, Event, Failed, Log, Metric, Progress, Started
from studio.core.workspace import Workspace
from studio.gui.job_bridge import JobBridge

if TYPE_CHECKING:
    from studio.gui.widgets.live_curve import LiveCurve

IDLE_TEXT = "Pick a dataset and a target on the Datasets page, then press Train."
SCORES = {"val_accuracy": ("Validation accuracy", "accuracy"), "val_r2": ("Validation R²", "R²")}
STAGE_FORMATS = {"train": "epoch %v / %m", "decode": "decoding pictures %v / %m"}


def _duration(seconds: float) -> str:
    minutes, s = divmod(int(seconds), 60)
    hours, m = divmod(minutes, 60)
    return f"{hours}:{m:02d}:{s:02d}" if hours else f"{m}:{s:02d}"


class TrainingPage(QWidget):
    started = Signal()
    finished = Signal(object)  # Done | Failed
    message = Signal(str)

    def __init__(self, ws: Workspace, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ws = ws
        self.job: JobBridge | None = None
        self._stage = ""
        self._epoch = (0, 0)
        self._score: str | None = ""

        title = QLabel("Training")
        title.setObjectName("pageTitle")
        self.heading = QLabel(IDLE_TEXT)
        self.heading.setObjectName("muted")
        self.device = QLabel()
        self.device.setObjectName("chip")
        self.device.hide()
        self.stop_btn = QPushButton("Stop")
        self.stop_btn.setEnabled(False)
        self.stop_btn.setToolTip("Stop after the current step and keep the best epoch so far")
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
        self.clock.setToolTip("time since the run started, and an estimate of what is left")
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

        self.result = QLabel()
        self.result.setObjectName("result")
        self.result.setWordWrap(True)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)
        self.log.setFixedHeight(110)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(bar)
        layout.addLayout(self._curves, 1)
        layout.addWidget(self.result)
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

    def start(self, dataset: str, target: str, epochs: int, task: str = "auto",
              split: list[float] | None = None,
              preprocessing: dict[str, Any] | None = None, model: str | None = None) -> None:
        from studio.core.datasets.catalog import check_name, get_dataset
        from studio.core.training.spec import TrainSpec, default_threads

        if self.running:
            self.message.emit("A training job is already running.")
            return
        info = get_dataset(self.ws, dataset)
        if model is not None:
            check_name(model, "model")
        spec = TrainSpec(dataset=dataset, target=target, model=model, epochs=epochs, task=task,
                         split=split or [0.7, 0.15, 0.15], preprocessing=preprocessing or {},
                         threads=default_threads(leave_one_free=True))
        spec.validate().check_columns(info.column_names)
        self.loss.clear_data()
        self.accuracy.clear_data()
        self.result.clear()
        self.log.clear()
        self.device.hide()
        self.heading.setText(f"{dataset} → predicting “{target}”")
        self._stage, self._epoch = "", (0, epochs)
        self._score = None
        self._show_score("")  # the last run's title does not linger
        self.progress.setRange(0, 0)  # busy until the first stage reports its size
        self.progress.setFormat("starting…")
        self._started_at = time.monotonic()
        self._train_started_at = 0.0
        self._ticker.start()
        self._show_clock()
        self.stop_btn.setEnabled(True)
        self.job = JobBridge(self.ws, "train", spec.to_dict(), self)
        self.job.events.connect(self._on_events)
        self.job.finished.connect(self._on_finished)
        self.job.start()
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

    def _on_events(self, batch: list[Event]) -> None:
        for event in batch:
            if isinstance(event, Metric):
                if event.name in SCORES:
                    self._show_score(event.name)
                    self.accuracy.append(event.name, event.epoch, event.value)
                else:
                    self.loss.append(event.name, event.epoch, event.value)
            elif isinstance(event, Progress):
                self._show_progress(event)
            elif isinstance(event, Log):
                self.log.appendPlainText(event.message)
            elif isinstance(event, Started) and event.device:
                self.device.setText(f"device: {event.device}")
                self.device.show()
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
        """The bar follows the stage at work (decoding pictures, then epochs); a stage's
        first message goes to the log once, not every update of it."""
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
        self.progress.setFormat(fmt or (event.message or event.stage).replace("%", "%%"))
        if event.stage == "train":
            self._epoch = (int(event.current), int(event.total))
        self._show_clock()

    def _show_clock(self) -> None:
        if not self._started_at:
            self.clock.clear()
            return
        elapsed = time.monotonic() - self._started_at
        text = f"elapsed {_duration(elapsed)}"
        done, total = self._epoch
        trained = done - self._first_epoch
        if self.running and self._train_started_at and trained > 0 and total > done:
            per_epoch = (time.monotonic() - self._train_started_at) / trained
            text += f" · about {_duration(per_epoch * (total - done))} left"
        self.clock.setText(text)

    def _settle_bar(self) -> None:
        """A bar still busy (nothing measured yet) stops spinning and shows its text; one
        that measured keeps where it got to."""
        if not self.progress.maximum():
            self.progress.setRange(0, 1)
            self.progress.setValue(0)

    def _on_finished(self, final: Done | Failed) -> None:
        from studio.core.training.metrics import headline

        self._ticker.stop()
        self._show_clock()
        self.stop_btn.setEnabled(False)
        if isinstance(final, Done):
            r = final.result
            note = " (stopped early)" if r.get("stopped_early") else ""
            text = (f"✔ Registered <b>{r['version']}</b> — test "
                    f"{headline(r['task'], r['metrics'])}{note}")
            for warning in r.get("warnings", []):
                text += f"<br><span style='color:#b06000'>⚠ {html.escape(warning)}</span>"
            self.result.setText(text)
            self.progress.setValue(self.progress.maximum())
        elif final.cancelled:
            self._settle_bar()
            self.progress.setFormat("stopped")
            self.result.setText(f"Stopped: {html.escape(final.error)}")
        else:
            self._settle_bar()
            self.progress.setFormat("failed")
            self.result.setText(f"<span style='color:#d93025'>✖ Training failed: "
                                f"{html.escape(final.error)}</span>")
        self.finished.emit(final)
