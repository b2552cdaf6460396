"""Disk use per model, and Free space (``lifecycle.gc``): both read or remove many files, so
both run on the thread pool with a database connection of their own, and report back on
the GUI thread."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMessageBox, QPushButton, QWidget

from studio.core.workspace import Workspace
from studio.gui.pages.evaluation.plain import PlainElided
from studio.gui.pages.models.ask import show_message
from studio.gui.pages.models.text import size_text
from studio.gui.worker import run_in_thread


def _on_own_connection(root: Path, work: Any) -> Any:
    ws = Workspace(root)
    try:
        return work(ws)
    finally:
        ws.db.close()


class DiskUse(QObject):
    measured = Signal(dict)  # model name → bytes
    notice = Signal(str)

    def __init__(self, ws: Workspace, parent: QWidget) -> None:
        super().__init__(parent)
        self.ws = ws
        self.parent_widget = parent
        self.use: dict[str, int] = {}
        self.generation = 0
        self.freeing = False
        self.dialog: Any = None
        self.label = PlainElided("")
        self.label.setObjectName("muted")
        self.free_btn = QPushButton("Free space")
        self.free_btn.setToolTip("Remove the stored files no version, dataset or card uses any "
                                 "more (what deleted versions left)")
        self.free_btn.clicked.connect(self.free_space)

    def measure(self) -> None:
        """Disk use reads every manifest; an answer older than the last asked is dropped."""
        from studio.core.registry.lifecycle import disk_use

        self.generation += 1
        generation, root = self.generation, self.ws.root
        run_in_thread(lambda: (generation, _on_own_connection(root, disk_use)),
                      self._on_measured, self._on_measure_failed)

    def _on_measured(self, answer: tuple[int, dict[str, int]]) -> None:
        generation, use = answer
        if generation != self.generation:
            return
        self.use = use
        parts = [f"{name} {size_text(n)}" for name, n in sorted(use.items(),
                                                                   key=lambda kv: -kv[1])]
        self.label.setText(f"On disk: {size_text(sum(use.values()))} — " + " · ".join(parts)
                           if use else "")
        self.measured.emit(use)

    def _on_measure_failed(self, message: str) -> None:
        self.label.setText(f"Disk use unknown: {message}")

    def free_space(self) -> None:
        from studio.core.registry.lifecycle import gc

        if self.freeing:
            return
        self.freeing = True
        self.free_btn.setEnabled(False)
        self.free_btn.setText("Freeing…")
        root = self.ws.root
        run_in_thread(lambda: _on_own_connection(root, gc), self._on_freed, self._on_failed)

    def _on_freed(self, report: Any) -> None:
        self._free_done()
        text = report.summary()
        self.notice.emit(f"Free space: {text}")
        self.dialog = show_message(self.parent_widget, "Free space",
                                   text[:1].upper() + text[1:] + ".",
                                   QMessageBox.Icon.Information)
        self.measure()

    def _on_failed(self, message: str) -> None:
        self._free_done()
        self.dialog = show_message(self.parent_widget, "Free space", message)

    def _free_done(self) -> None:
        self.freeing = False
        self.free_btn.setEnabled(True)
        self.free_btn.setText("Free space")
