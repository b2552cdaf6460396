"""Hop job events from the shared runner onto the GUI thread, batched per timer tick."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from studio.core.events import Event
from studio.core.workspace import Workspace
from studio.jobs.runner import JobRunner

TICK_MS = 60


class JobBridge(QObject):
    """Runs one job; ``events`` carries every event of a tick as one list, ``finished`` the end."""

    events = Signal(list)
    finished = Signal(object)  # Done | Failed

    def __init__(self, ws: Workspace, kind: str, spec: dict[str, Any],
                 parent: QObject | None = None, env: dict[str, str] | None = None) -> None:
        super().__init__(parent)
        self.runner = JobRunner(ws, kind, spec, nice=True, env=env)
        self.kind = kind
        self.timer = QTimer(self)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._drain)

    def start(self) -> None:
        self.runner.start()
        self.timer.start()

    def stop(self) -> None:
        self.runner.stop()

    def kill(self) -> None:
        self.runner.kill()

    @property
    def running(self) -> bool:
        return self.runner.running

    def _drain(self) -> None:
        batch: list[Event] = self.runner.poll()
        if batch:
            self.events.emit(batch)
        final = self.runner.final
        if final is not None and self.timer.isActive():
            self.timer.stop()
            self.finished.emit(final)
