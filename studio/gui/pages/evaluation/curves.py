"""ROC and precision-recall curves, one per class, beside a legend table of the classes with
their AUC and average precision; selecting a class there brings its curves forward."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.gui.pages.evaluation.charts import color, new_plot, pen
from studio.gui.pages.evaluation.document import Evaluation, number
from studio.gui.pages.evaluation.plain import label, tip


class Curves(QWidget):
    def __init__(self, evaluation: Evaluation, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        curves = evaluation.section("curves") or {}
        self.roc_data: list[dict[str, Any]] = list(curves.get("roc") or [])
        pr_by_label = {c.get("label"): c for c in curves.get("pr") or []}
        self.classes = [str(c.get("label")) for c in self.roc_data] + [
            str(lb) for lb in pr_by_label if lb not in {c.get("label") for c in self.roc_data}]
        self.roc = new_plot("ROC curve", "false positive rate", "true positive rate")
        self.pr = new_plot("Precision-recall curve", "recall", "precision")
        for plot in (self.roc, self.pr):
            # room past 1: the end ticks show, and a curve along an edge is not hidden
            plot.setXRange(-0.02, 1.04, padding=0)
            plot.setYRange(-0.02, 1.04, padding=0)
        self.roc.plot([0, 1], [0, 1], pen=pen("#9aa5b1", 1, dashed=True))  # chance
        self.items: list[list[Any]] = []  # per class: its ROC and PR items
        roc_by_label = {str(c.get("label")): c for c in self.roc_data}
        pr_by_str = {str(k): v for k, v in pr_by_label.items()}
        for i, name in enumerate(self.classes):
            items = []
            roc = roc_by_label.get(name)
            if roc:
                items.append(self.roc.plot(roc.get("fpr", []), roc.get("tpr", []),
                                           pen=pen(color(i))))
            pr = pr_by_str.get(name)
            if pr:
                items.append(self.pr.plot(pr.get("recall", []), pr.get("precision", []),
                                          pen=pen(color(i))))
            self.items.append(items)
        self.legend = self._legend(roc_by_label, pr_by_str)
        binary = len(evaluation.labels) == 2 and len(self.classes) == 1
        note = label(f"Positive class: “{self.classes[0]}”." if binary and self.classes else
                     "One curve per class against the rest. Select classes to bring them "
                     "forward.", "muted")
        note.setWordWrap(True)
        side = QVBoxLayout()
        side.addWidget(self.legend, 1)
        side.addWidget(note)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.roc, 5)
        row.addWidget(self.pr, 5)
        row.addLayout(side, 4)

    def _legend(self, roc: dict[str, Any], pr: dict[str, Any]) -> QTableWidget:
        table = QTableWidget(len(self.classes), 3)
        table.setHorizontalHeaderLabels(["Class", "AUC", "AP"])
        table.horizontalHeaderItem(1).setToolTip("Area under the ROC curve")
        table.horizontalHeaderItem(2).setToolTip("Average precision: the area under the "
                                                 "precision-recall curve")
        table.verticalHeader().hide()
        table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 8)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        head = table.horizontalHeader()
        head.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2):
            head.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        for i, name in enumerate(self.classes):
            swatch = QPixmap(12, 12)
            swatch.fill(QColor(color(i)))
            item = QTableWidgetItem(name)
            item.setIcon(swatch)
            item.setToolTip(tip(name))
            table.setItem(i, 0, item)
            for col, value in ((1, (roc.get(name) or {}).get("auc")),
                               (2, (pr.get(name) or {}).get("average_precision"))):
                cell = QTableWidgetItem(number(value))
                cell.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                table.setItem(i, col, cell)
        table.itemSelectionChanged.connect(self._highlight)
        return table

    def _highlight(self) -> None:
        chosen = {ix.row() for ix in self.legend.selectionModel().selectedRows()}
        for i, items in enumerate(self.items):
            strong = not chosen or i in chosen
            for item in items:
                item.setPen(pen(color(i), 3 if chosen and strong else 2, 255 if strong else 40))
                item.setZValue(1 if chosen and strong else 0)
