"""Models: every registered version, its test metrics, and its model card."""

from __future__ import annotations

import datetime as dt
from typing import Any

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QPushButton,
    QSplitter,
    QStackedWidget,
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
        self.evaluation_btn = QPushButton("Evaluation")
        self.evaluation_btn.setToolTip("The selected version's evaluation: confusion matrix, "
                                       "curves, errors, feature importance")
        self.evaluation_btn.setEnabled(False)
        self.evaluation_btn.clicked.connect(lambda: self.open_evaluation())
        self.evaluation: Any = None  # the EvaluationView shown, if any
        top = QHBoxLayout()
        top.addWidget(title)
        top.addStretch(1)
        top.addWidget(self.evaluation_btn)
        top.addWidget(self.serve_btn)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.
                                                           ResizeToContents)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(COLUMNS.index("Created"), Qt.SortOrder.DescendingOrder)
        self.table.itemSelectionChanged.connect(self._on_select)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.table.doubleClicked.connect(lambda _i: self.open_evaluation())
        self.card = QTextBrowser()
        self.card.setOpenExternalLinks(False)
        self.empty = QLabel("No models yet. Train one from the Datasets page.")
        self.empty.setObjectName("muted")

        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(self.card)
        split.setSizes([260, 440])
        self.list_panel = QWidget()
        layout = QVBoxLayout(self.list_panel)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.empty)
        layout.addWidget(split, 1)
        # The list and one version's evaluation share the page: the evaluation needs its room.
        self.stack = QStackedWidget()
        self.stack.addWidget(self.list_panel)
        outer = QVBoxLayout(self)
        outer.addWidget(self.stack)

    def refresh(self, select: str | None = None) -> None:
        from studio.core.registry import list_versions
        from studio.core.training.metrics import HEADLINE, headline

        if select is not None:
            self.close_evaluation()  # a version was just made: the list shows it
        self.versions = list_versions(self.ws)
        by_ref = {v.ref: v for v in self.versions}
        keep = select or (self._selected().ref if self._selected() is not None else None)
        self.empty.setVisible(not self.versions)
        self.table.setSortingEnabled(False)  # rows are filled in place, then sorted once
        self.table.setRowCount(len(self.versions))
        for row, v in enumerate(self.versions):
            m = v.manifest.raw
            created = dt.datetime.fromtimestamp(m["created"]).strftime("%Y-%m-%d %H:%M")
            score = v.test_metrics.get(HEADLINE.get(v.task, "accuracy"))
            cells = [(v.ref, (v.name, v.version)), (v.kind, v.kind), (m["target"], m["target"]),
                     (headline(v.task, v.test_metrics),
                      score if isinstance(score, float) else float("-inf")),
                     (m["dataset"]["name"], m["dataset"]["name"]),
                     (m["training"]["device"], m["training"]["device"]),
                     (created, m["created"])]
            for col, (text, key) in enumerate(cells):
                item = SortItem(str(text), key)
                item.setData(Qt.ItemDataRole.UserRole, v.ref)
                self.table.setItem(row, col, item)
        self.table.setSortingEnabled(True)
        if self.versions:
            rows = {self.table.item(r, 0).data(Qt.ItemDataRole.UserRole): r
                    for r in range(self.table.rowCount())}
            self.table.selectRow(rows.get(keep, 0) if keep in by_ref else 0)
        else:
            self.card.clear()

    def _selected(self) -> Any:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        ref = self.table.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole)
        return next((v for v in self.versions if v.ref == ref), None)

    def _context_menu(self, pos: QPoint) -> None:
        item = self.table.itemAt(pos)
        if item is None:
            return
        self.table.selectRow(item.row())
        self.menu_for(item.data(Qt.ItemDataRole.UserRole)).exec(
            self.table.viewport().mapToGlobal(pos))

    def menu_for(self, ref: str) -> QMenu:
        """The context menu of the selected version ``ref``."""
        menu = QMenu(self)
        menu.addAction("Evaluation", lambda: self.open_evaluation(ref))
        menu.addAction("Serve this version ▶", lambda: self.serve_requested.emit(ref))
        menu.addAction("Open the model card", self.open_card)
        menu.addAction(f"Copy “{ref}”", lambda: copy_text(ref))
        return menu

    def open_evaluation(self, ref: str | None = None) -> Any:
        """Show the evaluation of version ``ref`` (by default the selected one) in the page;
        returned, for callers."""
        v = self._selected() if ref is None else next(
            (v for v in self.versions if v.ref == ref), None)
        if v is None:
            return None
        from studio.gui.pages.evaluation.view import EvaluationView

        self.close_evaluation()
        self.evaluation = EvaluationView(self.ws, v)
        self.evaluation.closed.connect(self.close_evaluation)
        self.stack.addWidget(self.evaluation)
        self.stack.setCurrentWidget(self.evaluation)
        return self.evaluation

    def close_evaluation(self) -> None:
        if self.evaluation is not None:
            self.stack.setCurrentWidget(self.list_panel)
            self.stack.removeWidget(self.evaluation)
            self.evaluation.deleteLater()
            self.evaluation = None

    def open_card(self) -> QDialog | None:
        """The selected version's card in a window of its own (returned, for callers)."""
        v = self._selected()
        if v is None:
            return None
        dialog = QDialog(self)
        dialog.setWindowTitle(f"Model card — {v.ref}")
        dialog.resize(720, 640)
        view = QTextBrowser()
        view.setMarkdown(self._card_markdown(v))
        layout = QVBoxLayout(dialog)
        layout.addWidget(view)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    def _card_markdown(self, v: Any) -> str:
        from studio.core.registry import read_file

        card = read_file(self.ws, v, "card.md").decode("utf-8", errors="replace")
        return card + _confusion_markdown(v.manifest.raw)

    def _on_select(self) -> None:
        v = self._selected()
        self.serve_btn.setEnabled(v is not None)
        self.evaluation_btn.setEnabled(v is not None)
        if v is None:
            return
        self.card.setMarkdown(self._card_markdown(v))

    def _on_serve(self) -> None:
        v = self._selected()
        if v is not None:
            self.serve_requested.emit(v.ref)


class SortItem(QTableWidgetItem):
    """A cell that sorts by a key (a number, a date) rather than by its text."""

    def __init__(self, text: str, key: Any) -> None:
        super().__init__(text)
        self.key = key

    def __lt__(self, other: QTableWidgetItem) -> bool:
        if isinstance(other, SortItem):
            try:
                return bool(self.key < other.key)
            except TypeError:
                pass
        return super().__lt__(other)


def copy_text(text: str) -> None:
    from PySide6.QtGui import QGuiApplication

    QGuiApplication.clipboard().setText(text)


def _confusion_markdown(manifest: dict[str, Any]) -> str:
    test = manifest["metrics"]["test"]
    labels = manifest.get("labels")
    if "confusion" not in test or not labels:
        return ""
    from studio.core.training.card import md

    labels = [md(label) for label in labels]
    head = "| true \\ predicted | " + " | ".join(labels) + " |\n"
    head += "|---" * (len(labels) + 1) + "|\n"
    rows = "".join(f"| **{label}** | " + " | ".join(str(n) for n in row) + " |\n"
                   for label, row in zip(labels, test["confusion"], strict=True))
    return "\n\n## Confusion matrix (test split)\n\n" + head + rows
