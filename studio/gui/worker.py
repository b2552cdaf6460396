"""Run a plain function on the thread pool and get its result back on the GUI thread."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal


class _Signals(QObject):
    done = Signal(object)
    failed = Signal(str)


class _Task(QRunnable):
    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__()
        self.fn = fn
        self.signals = _Signals()

    def run(self) -> None:
        try:
            result = self.fn()
        except Exception as exc:  # shown to the person; never lost in a worker thread
            self._emit(self.signals.failed, str(exc) or type(exc).__name__)
        else:
            self._emit(self.signals.done, result)

    @staticmethod
    def _emit(signal: Any, value: Any) -> None:
        # RuntimeError: the receiver is gone (its window closed); nobody is waiting
        with contextlib.suppress(RuntimeError):
            signal.emit(value)


_running: set[_Task] = set()


def run_in_thread(fn: Callable[[], Any], on_done: Callable[[Any], None],
                  on_failed: Callable[[str], None]) -> None:
    """``on_done``/``on_failed`` must be bound methods of a QObject living on the GUI thread:
    the signal then crosses threads as a queued call."""
    task = _Task(fn)
    task.setAutoDelete(False)
    _running.add(task)
    task.signals.done.connect(on_done)
    task.signals.failed.connect(on_failed)
    task.signals.done.connect(lambda _r: _running.discard(task))
    task.signals.failed.connect(lambda _e: _running.discard(task))
    QThreadPool.globalInstance().start(task)
