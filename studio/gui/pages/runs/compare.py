"""The selected runs side by side: their curves overlaid, and their facts, parameters and
metrics in one column each, the rows that differ highlighted (``studio.core.runs.compare``
with one run or more)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.gui.pages.evaluation.plain import label, tip
from studio.gui.pages.models.text import value_text
from studio.gui.widgets.live_curve import PALETTE

SECTIONS = {"about": "Run", "params": "Parameters", "metrics": "Metrics"}
DIFFERENT = QColor("#fef7e0")
SECTION_BG = QColor("#f5f7fa")
# what the curve chooser offers: (caption, metric names in the order tried)
CURVES = [("Validation score", ("val_accuracy", "val_r2")), ("Validation loss", ("val_loss",)),
          ("Training loss", ("train_loss",))]
MORE_COLORS = ["#12b5cb", "#e52592", "#f9ab00", "#5f6368", "#7cb342"]


class RunCurves(QWidget):
    """One metric's curve per run, against the epoch."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.which = QComboBox()
        for caption, _ in CURVES:
            self.which.addItem(caption)
        self.which.currentIndexChanged.connect(self._draw)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setLabel("bottom", "epoch")
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.legend = self.plot.addLegend(offset=(-10, 10), brush=pg.mkBrush(255, 255, 255, 210))
        self.empty = label("", "muted")
        self.empty.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(label("Curves"))
        top.addWidget(self.which)
        top.addStretch(1)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addLayout(top)
        box.addWidget(self.plot, 1)
        box.addWidget(self.empty)
        self.curves: dict[str, dict[str, list[Any]]] = {}
        self.names: dict[str, str] = {}

    def show_runs(self, curves: dict[str, dict[str, list[Any]]], names: dict[str, str]) -> None:
        self.curves, self.names = curves, names
        self._draw()

    def drawn(self) -> dict[str, int]:
        """Points drawn per run label (for tests and the status line)."""
        return {item.name(): len(item.xData if item.xData is not None else [])
                for item in self.plot.listDataItems()}

    def _draw(self) -> None:
        self.plot.clear()
        self.legend.clear()
        names = CURVES[self.which.currentIndex()][1]
        missing = []
        for i, (run_id, by_metric) in enumerate(self.curves.items()):
            points = next((by_metric[n] for n in names if by_metric.get(n)), None)
            if not points:
                missing.append(run_id)
                continue
            color = (PALETTE + MORE_COLORS)[i % (len(PALETTE) + len(MORE_COLORS))]
            x = np.array([p[0] for p in points], dtype=float)
            y = np.array([p[1] for p in points], dtype=float)
            self.plot.plot(x, y, name=self.names.get(run_id, run_id),
                           pen=pg.mkPen(color, width=2), symbol="o", symbolSize=4,
                           symbolBrush=color, symbolPen=None)
        self.plot.setLabel("left", CURVES[self.which.currentIndex()][0].lower())
        self.empty.setText("" if not missing else
                           "No epochs recorded for " + ", ".join(missing)
                           + " (a run of a family trained without epochs, such as boosted "
                           "trees, or one that ended before its first epoch)")
        self.empty.setVisible(bool(missing))


class CompareTable(QWidget):
    """Rows of one value per run; a row whose values differ is tinted, and "Only what
    differs" hides the others."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTableWidget()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(False)
        self.only_diff = QCheckBox("Only what differs")
        self.only_diff.toggled.connect(self._fill)
        top = QHBoxLayout()
        top.addWidget(label("Side by side"))
        top.addStretch(1)
        top.addWidget(self.only_diff)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addLayout(top)
        box.addWidget(self.table, 1)
        self.doc: dict[str, Any] = {}

    def show_doc(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.only_diff.setEnabled(len(doc.get("runs", [])) > 1)
        self._fill()

    def differing(self) -> list[str]:
        return [row["name"] for section in SECTIONS for row in self.doc.get(section, [])
                if row["differs"]]

    def _fill(self) -> None:
        runs = self.doc.get("runs", [])
        only = self.only_diff.isChecked() and len(runs) > 1
        rows: list[tuple[str, dict[str, Any] | None]] = []
        for section, caption in SECTIONS.items():
            shown = [r for r in self.doc.get(section, []) if r["differs"] or not only]
            if shown:
                rows.append((caption, None))
                rows.extend((caption, r) for r in shown)
        t = self.table
        t.clear()
        t.setColumnCount(1 + len(runs))
        t.setHorizontalHeaderLabels(["", *runs])
        t.setRowCount(len(rows))
        bold = QFont(t.font())
        bold.setBold(True)
        for i, (caption, row) in enumerate(rows):
            if row is None:
                head = QTableWidgetItem(caption)
                head.setFont(bold)
                for col in range(t.columnCount()):
                    cell = head if col == 0 else QTableWidgetItem("")
                    cell.setBackground(SECTION_BG)
                    t.setItem(i, col, cell)
                continue
            name = QTableWidgetItem(row["name"])
            t.setItem(i, 0, name)
            for j, value in enumerate(row["values"]):
                text = value_text(row["name"], value)
                cell = QTableWidgetItem(text)
                cell.setToolTip(tip(text))
                t.setItem(i, 1 + j, cell)
            if row["differs"] and len(runs) > 1:
                for col in range(t.columnCount()):
                    t.item(i, col).setBackground(DIFFERENT)
                name.setFont(bold)
        header = t.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        t.resizeColumnsToContents()
        for col in range(t.columnCount()):
            header.resizeSection(col, min(max(header.sectionSize(col), 90), 220))
        t.setVerticalScrollMode(QTableWidget.ScrollMode.ScrollPerPixel)
        t.horizontalHeader().setDefaultAlignment(Qt.AlignmentFlag.AlignLeft)
