"""One line under the page's title: what the lab is doing (the job's Progress message), how
far it is, and Stop; when idle, what the last run did or why Run waits."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QProgressBar, QPushButton, QWidget

from studio.core.events import Progress
from studio.gui.pages.evaluation.plain import PlainElided

LAB_STAGES = ("compress", "evaluate", "measure", "done")  # the lab's own, per step
SHARE = {"compress": 0.0, "evaluate": 0.8, "measure": 0.85}  # of a step, when it starts


class RunBar(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.text = PlainElided("")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(240)
        self.progress.setRange(0, 1000)
        self.stop_btn = QPushButton("Stop")
        self.stop_btn.setToolTip("End the run at its next step: results already registered "
                                 "stay, and no half-made version is kept")
        self.steps = 1
        self.step = 0
        self.lab_message = ""
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.text, 1)
        row.addWidget(self.progress)
        row.addWidget(self.stop_btn)
        # as tall idle as running: the page must not jump when a run starts
        self.setMinimumHeight(max(self.stop_btn.sizeHint().height(),
                                  self.progress.sizeHint().height()))
        self.idle("")

    def idle(self, text: str, error: bool = False) -> None:
        self.progress.hide()
        self.stop_btn.hide()
        self.say(text, error)

    def say(self, text: str, error: bool = False) -> None:
        self.text.setText(text)
        self.text.setStyleSheet("color: #d93025;" if error else "color: #616e7c;")

    def begin(self, steps: int, text: str) -> None:
        self.steps, self.step, self.lab_message = max(1, steps), 0, text
        self.progress.setRange(0, 0)  # busy until the first step starts
        self.progress.show()
        self.stop_btn.setEnabled(True)
        self.stop_btn.show()
        self.say(text)

    def stopping(self) -> None:
        self.stop_btn.setEnabled(False)
        self.say("Stopping at the next step…")

    def on_progress(self, event: Progress) -> None:
        """The lab's per-step stages move the bar a step at a time; a method's own training
        (epochs) fills the step it is in."""
        if event.stage in LAB_STAGES and event.total:
            self.step = int(event.current)
            share = 1.0 if event.stage == "done" else SHARE.get(event.stage, 0.0)
            self._set((self.step + share) / self.steps)
        elif event.total and self.progress.maximum():  # a method's epochs, inside its step
            self._set((self.step + 0.8 * min(event.current / event.total, 1.0)) / self.steps)
        if not event.message or not self.stop_btn.isEnabled():
            return
        if event.stage in LAB_STAGES or event.stage == "prepare":
            self.lab_message = event.message  # it begins with a method's name: as is
            self.say(self.lab_message + ("" if event.stage == "done" else "…"))
        else:
            self.say(f"{self.lab_message} · {event.message}")

    def _set(self, fraction: float) -> None:
        self.progress.setRange(0, 1000)
        self.progress.setValue(int(1000 * min(max(fraction, 0.0), 1.0)))
