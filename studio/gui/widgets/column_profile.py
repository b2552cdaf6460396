"""The column profile beside a table: every column's kind and health, one column's chart."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QFontMetrics
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
WORDS_SHOWN = 8  # a word's row needs about 14 pixels to be read


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
        self._words: Any = None  # a text column's second chart: its frequent words
        # what the charts show now: "histogram", "top values", "text", "sizes" or ""
        self.chart_kind = ""
        self.note = QLabel()  # an image dataset's pictures, told in a line
        self.note.setObjectName("muted")
        self.note.setWordWrap(True)
        self.note.hide()
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
        layout.addWidget(self.note)
        layout.addWidget(split)

    def set_profile(self, profile: list[dict[str, Any]], rows: int,
                    select: str | None = None) -> None:
        """Show the columns; the ``select`` one (else the first) gets the detail chart.

        An image dataset's manifest (path, digest, width, height) is bookkeeping, not data a
        person chose: only its label is listed, and the pictures' sizes are told in a line.
        """
        from studio.core.datasets.prepare import is_image_dataset  # pandas: not at start-up

        self.note.hide()
        if is_image_dataset([c["name"] for c in profile]):
            self.note.setText(_picture_sizes(profile))
            self.note.show()
            profile = [c for c in profile if c["name"] == "label"]
        self.profile, self.rows = profile, rows
        self.table.setRowCount(len(profile))
        for r, col in enumerate(profile):
            warnings = col.get("warnings", [])
            name = QTableWidgetItem(("⚠ " if warnings else "") + col["name"])
            name.setToolTip("\n".join([col["name"], *warnings]))  # a narrow list elides it
            if warnings:
                name.setForeground(WARN)
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
        chart = self._chart_widget()
        chart.clear()
        for side in ("left", "bottom"):
            chart.getAxis(side).setTicks(None)
        chart.getAxis("left").setWidth(None)  # sized to its numbers again
        self.chart_kind = ""
        if self._words is not None:
            self._words.hide()
        if "histogram" in col:
            _histogram(chart, col["histogram"], "histogram", "#8ab4f8", "#1a73e8")
            self.chart_kind = "histogram"
        elif "lengths" in col:
            lengths = col["lengths"]
            title = "words per value"
            if lengths["longest_in_last_bin"] < lengths["max"]:
                title += f" (last bar: {lengths['longest_in_last_bin']:,} or more)"
            _histogram(chart, lengths, title, "#8ab4f8", "#1a73e8")
            words = self._words_widget()
            words.clear()
            sample = col.get("words_sample", 0)
            title = "most frequent words" + (f" in {sample:,} sampled values"
                                             if sample < col.get("count", 0) else "")
            _bars(words, col.get("words", [])[:WORDS_SHOWN], title, "#fdd663", "#b06000")
            words.autoRange()
            words.show()
            self.chart_kind = "text"
        elif "sizes" in col:  # lists, bytes, structs: how big the values are
            sizes = col["sizes"]
            title = f"{sizes['unit']} per value"
            if sizes["longest_in_last_bin"] < sizes["max"]:
                title += f" (last bar: {sizes['longest_in_last_bin']:,} or more)"
            _histogram(chart, sizes, title, "#8ab4f8", "#1a73e8")
            self.chart_kind = "sizes"
        elif col.get("top"):
            title = "most frequent values"
            if col.get("unique", 0) > len(col["top"]):
                title += f" ({len(col['top'])} of {col['unique']:,})"
            _bars(chart, col["top"], title, "#81c995", "#188038")
            self.chart_kind = "top values"
        chart.autoRange()

    def _chart_widget(self) -> Any:
        if self._chart is None:
            self._chart = _new_chart(100)
            self.lower_layout.addWidget(self._chart, 2)
        return self._chart

    def _words_widget(self) -> Any:
        if self._words is None:
            self._words = _new_chart(WORDS_SHOWN * 14 + 40)
            self.lower_layout.addWidget(self._words, 3)
        return self._words


def _new_chart(height: int) -> Any:
    import pyqtgraph as pg  # imported on first use: not part of the start-up cost

    chart = pg.PlotWidget(background="w")
    chart.setMinimumHeight(height)
    chart.setMenuEnabled(False)
    chart.setMouseEnabled(x=False, y=False)  # a summary, not a plot to explore
    chart.hideButtons()
    return chart


def _histogram(chart: Any, hist: dict[str, Any], title: str, brush: str, pen: str) -> None:
    import numpy as np
    import pyqtgraph as pg

    edges = np.asarray(hist["edges"])
    counts = np.asarray(hist["counts"])
    chart.showGrid(x=False, y=True, alpha=0.15)
    chart.addItem(pg.BarGraphItem(x0=edges[:-1], x1=edges[1:], height=counts,
                                  brush=brush, pen=pen))
    chart.setTitle(title, color="#616e7c", size="9pt")


def _bars(chart: Any, pairs: list[list[Any]], title: str, brush: str, pen: str) -> None:
    """Horizontal bars, the most frequent on top, each named on the left: names of any
    length and number stay readable, where names under upright bars overlap."""
    import numpy as np
    import pyqtgraph as pg

    labels = [_short(str(p[0]), 18) for p in pairs]
    counts = np.asarray([p[1] for p in pairs], dtype=float)
    ys = np.arange(len(pairs))[::-1].astype(float)
    chart.showGrid(x=True, y=False, alpha=0.15)
    chart.addItem(pg.BarGraphItem(x0=0, y=ys, width=counts, height=0.7, brush=brush, pen=pen))
    axis = chart.getAxis("left")
    axis.setTicks([list(zip(ys, labels, strict=True))])
    # Sized now, not after the first paint: the names never show clipped for a frame.
    metrics = QFontMetrics(axis.style.get("tickFont") or chart.font())
    axis.setWidth(max((metrics.horizontalAdvance(t) for t in labels), default=0) + 12)
    chart.setTitle(title, color="#616e7c", size="9pt")


def _picture_sizes(profile: list[dict[str, Any]]) -> str:
    cols = {c["name"]: c for c in profile}
    w, h = cols["width"], cols["height"]
    n = cols["path"].get("count", 0)
    if "min" not in w or "min" not in h:
        return f"{n:,} pictures"
    if w["min"] == w["max"] and h["min"] == h["max"]:
        return f"{n:,} pictures, all {w['min']:.0f}×{h['min']:.0f} px"
    return (f"{n:,} pictures, {w['min']:.0f}–{w['max']:.0f} px wide × "
            f"{h['min']:.0f}–{h['max']:.0f} px high")


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
    if "lengths" in col:
        n = col["lengths"]
        parts.append(f"words per value: {n['min']:,} to {n['max']:,}, median {n['median']:,.0f}")
    if "sizes" in col:
        n = col["sizes"]
        parts.append(f"{n['unit']} per value: {n['min']:,} to {n['max']:,}, "
                     f"median {n['median']:,.0f}")
    for w in col.get("warnings", []):
        parts.append(f"<span style='color:#b06000'>⚠ {_escape(w)}</span>")
    return "<br>".join(parts)


def _escape(text: str) -> str:
    import html

    return html.escape(text)
