"""Models: every registered version, its test metrics, and its model card."""

from __future__ import annotations

import datetime as dt
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from studio.core.workspace import Workspace

COLUMNS = ["Version", "Task", "Target", "Test score", "Dataset", "Device", "Created"]


class ModelsPage(QWidget):
    serve_requested = Signal(str)  # a version ref

    def __init__(self, ws: Workspace, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ws = ws
        self.versions: list[Any] = []
        title = QLabel("Models")
        title.setObjectName("pageTitle")
        self.serve_btn = QPushButton("Serve this version ▶")
        self.serve_btn.setObjectName("primary")
        self.serve_btn.setEnabled(False)
        self.serve_btn.clicked.connect(self._on_serve)
        top = QHBoxLayout()
        top.addWidget(title)
        top.addStretch(1)
        top.addWidget(self.serve_btn)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._on_select)
        self.card = QTextBrowser()
        self.card.setOpenExternalLinks(False)
        self.empty = QLabel("No models yet. Train one from the Datasets page.")
        self.empty.setObjectName("muted")

        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(self.card)
        split.setSizes([260, 440])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.empty)
        layout.addWidget(split, 1)

    def refresh(self, select: str | None = None) -> None:
        from studio.core.registry import list_versions
        from studio.core.training.metrics import headline

        self.versions = list(reversed(list_versions(self.ws)))  # newest first
        self.empty.setVisible(not self.versions)
        self.table.setRowCount(len(self.versions))
        for row, v in enumerate(self.versions):
            m = v.manifest
            created = dt.datetime.fromtimestamp(m["created"]).strftime("%Y-%m-%d %H:%M")
            cells = [v.ref, v.kind, m["target"], headline(v.task, v.test_metrics),
                     m["dataset"]["name"], m["training"]["device"], created]
            for col, text in enumerate(cells):
                self.table.setItem(row, col, QTableWidgetItem(str(text)))
        if self.versions:
            refs = [v.ref for v in self.versions]
            self.table.selectRow(refs.index(select) if select in refs else 0)
        else:
            self.card.clear()

    def _selected(self) -> Any:
        rows = self.table.selectionModel().selectedRows()
        return self.versions[rows[0].row()] if rows else None

    def _on_select(self) -> None:
        from studio.core.registry import read_file

        v = self._selected()
        self.serve_btn.setEnabled(v is not None)
        if v is None:
            return
        card = read_file(self.ws, v, "card.md").decode("utf-8", errors="replace")
        self.card.setMarkdown(card + _confusion_markdown(v.manifest))

    def _on_serve(self) -> None:
        v = self._selected()
        if v is not None:
            self.serve_requested.emit(v.ref)


def _confusion_markdown(manifest: dict[str, Any]) -> str:
    test = manifest["metrics"]["test"]
    labels = manifest.get("labels")
    if "confusion" not in test or not labels:
        return ""
    head = "| true \\ predicted | " + " | ".join(labels) + " |\n"
    head += "|---" * (len(labels) + 1) + "|\n"
    rows = "".join(f"| **{label}** | " + " | ".join(str(n) for n in row) + " |\n"
                   for label, row in zip(labels, test["confusion"], strict=True))
    return "\n\n## Confusion matrix (test split)\n\n" + head + rows
