"""The results as points: the headline metric against the size or latency ratio, the source
at 1.0, each result labelled with its method, the Pareto front (higher metric, smaller
ratio) as a step line. Clicking a point selects its row. Imported on first use (pyqtgraph)."""

from __future__ import annotations

import html
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, QTimer, Signal
from PySide6.QtWidgets import QButtonGroup, QHBoxLayout, QPushButton, QVBoxLayout, QWidget

from studio.gui.pages.compress import pareto
from studio.gui.pages.compress.text import metric_title, results
from studio.gui.pages.evaluation.charts import MUTED, new_plot, pen
from studio.gui.pages.evaluation.plain import label, tip

AXES = {"size": ("size_ratio", "model size ÷ source's", "size"),
        "latency": ("latency_ratio", "latency ÷ source's", "latency")}
SOURCE_INK, RESULT_INK, COLLAPSED_INK, FRONT_INK = "#1f2933", "#1a73e8", "#d93025", "#137333"
COLLAPSE = 0.05  # five points of the headline metric
GAP = 6  # pixels between a point and its label
DOT = 5  # half a point's size, in pixels: what a label must not cover


class ResultScatter(QWidget):
    point_clicked = Signal(int)  # the row's index in the results table

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[dict[str, Any]] = []
        self.selected: int | None = None
        self.points: list[tuple[int, float, float]] = []  # (row index, x, y) drawn
        self.labels: list[tuple[pg.TextItem, float, float]] = []
        self.axis = "size"
        self.buttons = QButtonGroup(self)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        self.title = label("Metric against", "sectionTitle")
        row.addWidget(self.title)
        row.addStretch(1)
        for key, text in (("size", "Size"), ("latency", "Latency")):
            button = QPushButton(text)
            button.setCheckable(True)
            button.setChecked(key == self.axis)
            button.setObjectName(f"axis-{key}")
            button.clicked.connect(lambda _on, k=key: self.set_axis(k))
            self.buttons.addButton(button)
            row.addWidget(button)
        self.note = label("", "muted")
        self.note.setWordWrap(True)
        self.plot = new_plot("", AXES["size"][1], "metric")
        self.plot.setMinimumSize(160, 120)
        self.view = self.plot.getPlotItem().getViewBox()
        self.view.sigResized.connect(self._place_labels)
        self.view.sigRangeChanged.connect(self._place_labels)
        self.scatter: Any = None
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addLayout(row)
        box.addWidget(self.note)
        box.addWidget(self.plot, 1)
        self.draw([], None)

    def set_axis(self, key: str) -> None:
        self.axis = key
        for button in self.buttons.buttons():
            button.setChecked(button.objectName() == f"axis-{key}")
        self.draw(self.rows, self.selected)

    def draw(self, rows: list[dict[str, Any]], selected: int | None) -> None:
        """Plot ``rows`` (rows[0] the source); ``selected`` is ringed."""
        self.rows, self.selected = rows, selected
        field, x_title, cost = AXES[self.axis]
        metric = rows[0].get("metric") if rows else None
        self.title.setText(f"{metric_title(metric) if metric else 'Metric'} against {cost}")
        self.title.setToolTip("Green: the Pareto front, the results no other beats on both "
                              "the metric and the " + cost)
        self.plot.clear()
        self.labels = []
        self.plot.setLabel("bottom", html.escape(x_title), color=MUTED)
        self.plot.setLabel("left", html.escape(metric_title(metric)), color=MUTED)
        self.points = []
        for i, row in enumerate(rows):
            x = 1.0 if i == 0 else row.get(field)
            y = row.get("value") if i == 0 or row.get("status") == "done" else None
            if isinstance(x, int | float) and isinstance(y, int | float):
                self.points.append((i, float(x), float(y)))
        unplotted = sum(1 for r in rows[1:] if r.get("status") == "done") - (
            len(self.points) - (1 if self.points and self.points[0][0] == 0 else 0))
        self._say(rows, unplotted)
        if not self.points:
            return
        xs = [x for _, x, _ in self.points]
        ys = [y for _, _, y in self.points]
        source_y = next((y for i, _, y in self.points if i == 0), None)
        self._frame(xs, ys, source_y)
        if source_y is not None:
            self.plot.addItem(pg.InfiniteLine(source_y, angle=0, pen=pen(SOURCE_INK, 1, 90,
                                                                         dashed=True)))
            self.plot.addItem(pg.InfiniteLine(
                source_y - COLLAPSE, angle=0, pen=pen(COLLAPSED_INK, 1, 110, dashed=True),
                label="5 points lost: collapse", labelOpts={
                    "position": 0.02, "color": COLLAPSED_INK, "anchors": [(0, 1), (0, 1)]}))
        front_x, front_y = pareto.steps([(x, y) for _, x, y in self.points])
        if len(front_x) > 1:
            self.plot.plot(front_x, front_y, pen=pen(FRONT_INK, 2, 160))
        # ringed too, so a front of one point (a result that beats all) still shows
        on_front = {self.points[k][0] for k in pareto.front([(x, y) for _, x, y in
                                                            self.points])}
        spots = []
        for i, x, y in self.points:
            row = rows[i]
            ink = SOURCE_INK if i == 0 else COLLAPSED_INK if row.get("collapsed") else \
                RESULT_INK
            spots.append({"pos": (x, y), "data": i, "size": 13 if i == 0 else 11,
                          "brush": pg.mkBrush(ink), "symbol": "s" if i == 0 else "o",
                          "pen": pg.mkPen(FRONT_INK, width=2.5) if i in on_front
                          else pg.mkPen("#ffffff", width=1)})
        self.scatter = pg.ScatterPlotItem(spots, hoverable=True, tip=self._tip)
        self.scatter.sigClicked.connect(self._on_click)
        self.plot.addItem(self.scatter)
        if selected is not None:
            ring = [(x, y) for i, x, y in self.points if i == selected]
            if ring:
                self.plot.plot([ring[0][0]], [ring[0][1]], pen=None, symbol="o",
                               symbolSize=20, symbolBrush=None,
                               symbolPen=pen(RESULT_INK, 2))
        for members, x, y in self._groups():
            names = ["source" if i == 0 else str(rows[i].get("method")) for i in members]
            # one name a method, counted: six fp16 results read "fp16 ×6", not six times
            text = ", ".join(n if names.count(n) == 1 else f"{n} ×{names.count(n)}"
                             for n in dict.fromkeys(names))
            item = pg.TextItem(text, color=SOURCE_INK if 0 in members else MUTED,
                               anchor=(0.5, 1))
            item.setPos(x, y)
            self.plot.addItem(item)
            self.labels.append((item, x, y))
        self._place_labels()

    def _groups(self) -> list[tuple[list[int], float, float]]:
        """Points drawn on one another (within 1.5% of the view each way) share a label."""
        (x0, x1), (y0, y1) = self.view.viewRange()
        near_x, near_y = 0.015 * (x1 - x0), 0.015 * (y1 - y0)
        groups: list[tuple[list[int], float, float]] = []
        for i, x, y in self.points:
            for members, gx, gy in groups:
                if abs(x - gx) <= near_x and abs(y - gy) <= near_y:
                    members.append(i)
                    break
            else:
                groups.append(([i], x, y))
        return groups

    def _say(self, rows: list[dict[str, Any]], unplotted: int) -> None:
        """A line above the chart for what it cannot show."""
        text = ""
        if not rows:
            text = "Choose a version: its results are drawn here."
        elif unplotted > 0:
            text = (f"{results(unplotted)} measured but not evaluated (no data to score "
                    "them on): in the table only.")
        elif len(rows) == 1:
            text = "Each result appears here beside the source as it is made."
        self.note.setText(text)
        self.note.setVisible(bool(text))

    def _frame(self, xs: list[float], ys: list[float], source_y: float | None) -> None:
        """Room around the points for their labels; the collapse line in view."""
        low, high = min(*xs, 1.0), max(*xs, 1.0)
        if self.axis == "size":  # a share of the size reads against nothing at all
            self.plot.setXRange(0.0, high + 0.15 * max(high, 1.0), padding=0)
        else:
            span = max(high - low, 0.3)
            middle = (low + high) / 2
            low, high = min(low, middle - span / 2), max(high, middle + span / 2)
            self.plot.setXRange(max(0.0, low - 0.15 * span), high + 0.15 * span, padding=0)
        y_low, y_high = min(ys), max(ys)
        if source_y is not None:
            y_low = min(y_low, source_y - COLLAPSE)
        span = max(y_high - y_low, 0.02)
        self.plot.setYRange(y_low - 0.1 * span, y_high + 0.25 * span, padding=0)

    def _tip(self, x: float, y: float, data: Any) -> str:
        row = self.rows[int(data)] if 0 <= int(data) < len(self.rows) else {}
        name = "source" if int(data) == 0 else str(row.get("method"))
        return tip(f"{row.get('version') or '?'} ({name})\n{y:.3f} at {x:.2f}×")

    def _on_click(self, _item: Any, points: Any, _event: Any) -> None:
        if len(points):
            index = int(points[0].data())
            # after the click is handled: selecting a row redraws, removing the clicked item
            QTimer.singleShot(0, lambda: self.point_clicked.emit(index))

    def point_position(self, index: int) -> QPointF | None:
        """Where row ``index``'s point is, in the plot widget's coordinates (for tests and
        for placing labels)."""
        for i, x, y in self.points:
            if i == index:
                scene = self.view.mapViewToScene(QPointF(x, y))
                return self.plot.mapFromScene(scene).toPointF()
        return None

    def _place_labels(self, *_args: Any) -> None:
        """Each label beside its point where it covers no other label or point and stays
        inside the plot: right, above, below, left, then further up or down."""
        if not self.labels or self.view.width() <= 0:
            return
        bounds = self.view.sceneBoundingRect()
        dots = [self.view.mapViewToScene(QPointF(x, y)) for _, x, y in self.points]
        marks = [QRectF(p.x() - DOT, p.y() - DOT, 2 * DOT, 2 * DOT) for p in dots]
        placed: list[QRectF] = []
        for item, x, y in sorted(self.labels, key=lambda t: (t[1], -t[2])):
            p = self.view.mapViewToScene(QPointF(x, y))
            own = QRectF(p.x() - DOT, p.y() - DOT, 2 * DOT, 2 * DOT)
            size = item.boundingRect()
            w, h = size.width(), size.height()
            # (dx, dy, may slide sideways): a label above or below may move off an edge
            options = [(GAP, -h / 2, False), (-w / 2, -h - GAP, True),
                       (-w / 2, GAP, True), (-w - GAP, -h / 2, False),
                       (GAP, -h - GAP, False), (-w - GAP, -h - GAP, False),
                       (GAP, GAP, False), (-w - GAP, GAP, False),
                       (-w / 2, -2 * h - GAP, True), (-w / 2, h + GAP, True)]
            best = None
            for dx, dy, slide in options:
                box = QRectF(p.x() + dx, p.y() + dy, w, h)
                if slide and box.left() < bounds.left():
                    box.moveLeft(bounds.left())
                if slide and box.right() > bounds.right():
                    box.moveRight(bounds.right())
                if not bounds.contains(box):
                    continue
                if any(box.intersects(o) for o in placed) or any(
                        box.intersects(m) for m in marks if m != own):
                    best = best or box  # crowded: the first that fits, if none is clear
                    continue
                best = box
                break
            if best is None:
                best = QRectF(p.x() - w / 2, p.y() - h - GAP, w, h)
            placed.append(best)
            item.setAnchor(((p.x() - best.left()) / w, (p.y() - best.top()) / h))
            item.setPos(x, y)
