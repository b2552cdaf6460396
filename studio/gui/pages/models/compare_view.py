"""Versions side by side (``compare.compare``: what they are, test metrics, inputs, training
parameters; the rows that differ are marked) and one test metric across all versions of a
model (``compare.metric_series``), charted."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.workspace import Workspace
from studio.gui.pages.evaluation.plain import label, tip
from studio.gui.pages.models.text import value_text

SECTIONS = {"about": "About", "metrics": "Test metrics", "inputs": "Inputs",
            "params": "Training parameters"}
DIFFERENT = QColor("#fef7e0")
SECTION_BG = QColor("#f5f7fa")
HEADLINES = ("accuracy", "r2", "f1_macro", "rmse", "mae")


class CompareDialog(QDialog):
    def __init__(self, ws: Workspace, refs: list[str], parent: QWidget | None = None) -> None:
        """Raises the registry's InputError (too many versions, one unknown) before any
        window opens."""
        from studio.core.registry.compare import compare

        super().__init__(parent)
        self.ws = ws
        self.doc = compare(ws, refs)
        self.refs: list[str] = self.doc["refs"]  # in the order asked: the page sorts them
        self.different: set[tuple[str, str]] = {
            (section, field) for section, fields in self.doc["rows"].items()
            for field, values in fields.items()
            if len({value_text(field, v) for v in values}) > 1}
        self.setWindowTitle("Compare " + ", ".join(self.refs))
        self.table = QTableWidget()
        self.only_diff = QCheckBox("Only what differs")
        self.only_diff.toggled.connect(self._fill)
        self.summary = label("", "muted")
        side = QWidget()
        box = QVBoxLayout(side)
        top = QHBoxLayout()
        top.addWidget(self.summary, 1)
        top.addWidget(self.only_diff)
        box.addLayout(top)
        box.addWidget(self.table, 1)
        self.tabs = QTabWidget()
        self.tabs.addTab(side, "Side by side")
        self.tabs.addTab(self._series_tab(), "Across versions")
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        self._fill()
        if parent is not None:
            top_window = parent.window()
            self.resize(min(1000, top_window.width() - 40), min(640, top_window.height() - 40))

    # -- side by side -----------------------------------------------------------------------

    def _fill(self) -> None:
        only = self.only_diff.isChecked()
        n = len(self.refs)
        self.table.clear()
        self.table.setColumnCount(n + 1)
        self.table.setHorizontalHeaderLabels(["", *self.refs])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(False)
        rows: list[tuple[str, str | None, list[Any]]] = []
        for section, fields in self.doc["rows"].items():
            shown = [(f, v) for f, v in fields.items()
                     if not only or (section, f) in self.different]
            if shown:
                rows.append((section, None, []))
                rows += [(section, f, v) for f, v in shown]
        self.table.setRowCount(len(rows))
        bold = QFont(self.table.font())
        bold.setBold(True)
        for i, (section, field, values) in enumerate(rows):
            if field is None:
                item = QTableWidgetItem(SECTIONS.get(section, section))
                item.setFont(bold)
                item.setBackground(SECTION_BG)
                self.table.setItem(i, 0, item)
                self.table.setSpan(i, 0, 1, n + 1)
                continue
            differs = (section, field) in self.different
            head = QTableWidgetItem(("≠ " if differs else "") + field)
            head.setToolTip(tip(f"{field}: the versions differ" if differs else field))
            self.table.setItem(i, 0, head)
            for k, value in enumerate(values):
                item = QTableWidgetItem(value_text(field, value))
                item.setToolTip(tip(str(value)))
                if differs:
                    item.setBackground(DIFFERENT)
                    item.setFont(bold)
                self.table.setItem(i, k + 1, item)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        for k in range(1, n + 1):
            header.setSectionResizeMode(k, QHeaderView.ResizeMode.Stretch)
        total = sum(len(f) for f in self.doc["rows"].values())
        self.summary.setText(f"{len(self.refs)} versions · {len(self.different)} of {total} "
                             "fields differ (marked ≠)")

    def row_values(self, field: str) -> list[str] | None:
        """What the table shows for ``field`` (None when it is not shown)."""
        for i in range(self.table.rowCount()):
            head = self.table.item(i, 0)
            if head is not None and head.text().removeprefix("≠ ") == field \
                    and self.table.columnSpan(i, 0) == 1:
                return [self.table.item(i, k).text() for k in range(1, len(self.refs) + 1)]
        return None

    # -- across versions --------------------------------------------------------------------

    def _series_tab(self) -> QWidget:
        tab = QWidget()
        self.model_box = QComboBox()
        for ref in self.refs:
            name = ref.partition(":")[0]
            if self.model_box.findText(name) < 0:
                self.model_box.addItem(name)
        self.metric_box = QComboBox()
        metrics = list(self.doc["rows"].get("metrics", {}))
        self.metric_box.addItems(metrics)
        first = next((m for m in HEADLINES if m in metrics), metrics[0] if metrics else None)
        if first is not None:
            self.metric_box.setCurrentText(first)
        self.model_box.currentTextChanged.connect(self._chart)
        self.metric_box.currentTextChanged.connect(self._chart)
        pickers = QHBoxLayout()
        pickers.addWidget(label("Model"))
        pickers.addWidget(self.model_box)
        pickers.addWidget(label("Test metric"))
        pickers.addWidget(self.metric_box)
        pickers.addStretch(1)
        self.chart_hint = label("Every version of the model; circled: those compared; "
                                "labels: their aliases", "muted")
        self.chart_note = label("", "muted")
        self.chart_note.setWordWrap(True)
        self.chart_note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.chart_stack = QStackedWidget()
        self.chart_stack.addWidget(self.chart_note)
        self.plot: Any = None
        self.series: list[dict[str, Any]] = []
        box = QVBoxLayout(tab)
        box.addLayout(pickers)
        box.addWidget(self.chart_hint)
        box.addWidget(self.chart_stack, 1)
        self._chart()
        return tab

    def _chart(self) -> None:
        from studio.core.registry.compare import metric_series

        name, metric = self.model_box.currentText(), self.metric_box.currentText()
        self.series = []
        if not name or not metric:
            self._note("None of these versions has a test metric to chart (an imported model "
                       "was not tested here).")
            return
        try:
            self.series = metric_series(self.ws, name, metric)
        except StudioError as exc:
            self._note(str(exc))
            return
        self._draw(name, metric)

    def _note(self, text: str) -> None:
        self.chart_note.setText(text)
        self.chart_stack.setCurrentWidget(self.chart_note)

    def _draw(self, name: str, metric: str) -> None:
        import pyqtgraph as pg

        from studio.gui.pages.evaluation.charts import MUTED, color, new_plot, pen

        if self.plot is None:
            self.plot = new_plot("", "version", metric)
            self.chart_stack.addWidget(self.plot)
        plot = self.plot
        plot.clear()
        plot.setTitle(None)
        plot.setLabel("left", html.escape(metric), color=MUTED)
        points = [(int(p["ref"].partition(":")[2]), p["value"], p) for p in self.series
                  if p["value"] is not None]
        xs = [x for x, _, _ in points]
        ys = [y for _, y, _ in points]
        plot.plot(xs, ys, pen=pen(color(0)), symbol="o", symbolSize=8,
                  symbolBrush=color(0), symbolPen=None)
        picked = [(x, y) for x, y, p in points if p["ref"] in self.refs]
        if picked:  # the versions being compared stand out
            plot.plot([x for x, _ in picked], [y for _, y in picked], pen=None, symbol="o",
                      symbolSize=13, symbolBrush=None, symbolPen=pen(color(1), 2))
        for x, y, p in points:
            if p["aliases"]:
                # the first and last points' labels lean inward: centred, they would be cut
                lean = 0.0 if x == xs[0] and len(xs) > 1 else 1.0 if x == xs[-1] and len(
                    xs) > 1 else 0.5
                text = pg.TextItem(", ".join(p["aliases"]), color="#1967d2",
                                   anchor=(lean, 1.4))
                text.setPos(x, y)
                plot.addItem(text)
        plot.getAxis("bottom").setTicks([[(x, str(x)) for x in xs]])
        plot.enableAutoRange()
        self.chart_stack.setCurrentWidget(plot)
