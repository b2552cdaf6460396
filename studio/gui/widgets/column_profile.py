"""The column profile beside a table: every column's kind and health, one column's chart."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

WARN = QColor("#b06000")
HEADERS = ["Column", "Kind", "Missing", "Unique"]


class ColumnProfile(QWidget):
    # A person picked a column here. Not sent when the program selects one (a new profile, a
    # new target): the table beside must not jump away from its first columns by itself.
    column_selected = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.profile: list[dict[str, Any]] = []
        self.rows = 0
        self._quiet = False  # selecting by program: no column_selected
        self.table = QTableWidget(0, len(HEADERS))
        self.table.setHorizontalHeaderLabels(HEADERS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for i in range(1, len(HEADERS)):
            header.setSectionResizeMode(i, QHeaderView.ResizeMode.ResizeToContents)
        self.table.itemSelectionChanged.connect(self._on_select)
        self.detail = QLabel()
        self.detail.setObjectName("profileDetail")
        self.detail.setWordWrap(True)
        self.detail.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.detail.setTextFormat(Qt.TextFormat.RichText)
        self._chart: Any = None
        self.chart_kind = ""  # what the chart shows now: "histogram", "top values" or ""
        self.lower = QWidget()
        self.lower_layout = QVBoxLayout(self.lower)
        self.lower_layout.setContentsMargins(0, 0, 0, 0)
        self.lower_layout.addWidget(self.detail)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(self.lower)
        split.setSizes([300, 360])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        title = QLabel("Columns")
        title.setObjectName("sectionTitle")
        layout.addWidget(title)
        layout.addWidget(split)

    def set_profile(self, profile: list[dict[str, Any]], rows: int,
                    select: str | None = None) -> None:
        """Show the columns; the ``select`` one (else the first) gets the detail chart."""
        self.profile, self.rows = profile, rows
        self.table.setRowCount(len(profile))
        for r, col in enumerate(profile):
            warnings = col.get("warnings", [])
            name = QTableWidgetItem(("⚠ " if warnings else "") + col["name"])
            if warnings:
                name.setForeground(WARN)
                name.setToolTip("\n".join(warnings))
            cells = [name, QTableWidgetItem(col["kind"]),
                     QTableWidgetItem(f"{col['missing']:,}"),
                     QTableWidgetItem(f"{col['unique']:,}")]
            right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
            for c, item in enumerate(cells):
                if c >= 2:
                    item.setTextAlignment(right)
                self.table.setItem(r, c, item)
        names = [c["name"] for c in profile]
        if profile:
            self._select_row(names.index(select) if select in names else 0)

    def select(self, name: str) -> None:
        """Show ``name``'s detail (a program's choice: no column_selected)."""
        for r, col in enumerate(self.profile):
            if col["name"] == name:
                self._select_row(r)

    def _select_row(self, row: int) -> None:
        self._quiet = True
        try:
            self.table.selectRow(row)
        finally:
            self._quiet = False

    def _on_select(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return
        col = self.profile[rows[0].row()]
        self.detail.setText(_describe(col, self.rows))
        self._plot(col)
        if not self._quiet:
            self.column_selected.emit(col["name"])

    def _plot(self, col: dict[str, Any]) -> None:
        import numpy as np
        import pyqtgraph as pg  # imported on first use: not part of the start-up cost

        if self._chart is None:
            self._chart = pg.PlotWidget(background="w")
            self._chart.setMinimumHeight(160)
            self._chart.showGrid(y=True, alpha=0.15)
            self.lower_layout.addWidget(self._chart, 1)
        chart = self._chart
        chart.clear()
        self.chart_kind = ""
        axis = chart.getAxis("bottom")
        if "histogram" in col:
            edges = np.asarray(col["histogram"]["edges"])
            counts = np.asarray(col["histogram"]["counts"])
            chart.addItem(pg.BarGraphItem(x0=edges[:-1], x1=edges[1:], height=counts,
                                          brush="#8ab4f8", pen="#1a73e8"))
            axis.setTicks(None)
            chart.setTitle("histogram", color="#616e7c", size="9pt")
            self.chart_kind = "histogram"
        elif col.get("top"):
            labels = [t[0] for t in col["top"]]
            counts = [t[1] for t in col["top"]]
            chart.addItem(pg.BarGraphItem(x=np.arange(len(counts)), height=counts, width=0.7,
                                          brush="#81c995", pen="#188038"))
            axis.setTicks([[(i, _short(lbl)) for i, lbl in enumerate(labels)]])
            chart.setTitle("most frequent values", color="#616e7c", size="9pt")
            self.chart_kind = "top values"
        chart.autoRange()


def _short(text: str, n: int = 10) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _describe(col: dict[str, Any], rows: int) -> str:
    parts = [f"<b>{_escape(col['name'])}</b> — {col['kind']} ({col['dtype']})"]
    share = col["missing"] / rows if rows else 0
    parts.append(f"missing {col['missing']:,} ({share:.1%}) · unique {col['unique']:,}")
    if "mean" in col:
        parts.append(f"min {col['min']:.4g} · max {col['max']:.4g} · mean {col['mean']:.4g} · "
                     f"std {col['std']:.4g}")
    elif "min" in col:
        parts.append(f"from {_escape(str(col['min']))} to {_escape(str(col['max']))}")
    for w in col.get("warnings", []):
        parts.append(f"<span style='color:#b06000'>⚠ {_escape(w)}</span>")
    return "<br>".join(parts)


def _escape(text: str) -> str:
    import html

    return html.escape(text)
