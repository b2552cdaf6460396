"""The tuning charts: each trial's score against one parameter (a scatter), and the best
score so far against the trial number."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QVBoxLayout, QWidget

from studio.gui.pages.evaluation.plain import label
from studio.gui.widgets.live_curve import PALETTE

DONE, PRUNED, BEST = "#1a73e8", "#9aa5b1", "#e8710a"


def _plot(title: str, x: str, y: str) -> pg.PlotWidget:
    plot = pg.PlotWidget(background="w")
    plot.setTitle(title, color="#202124", size="10pt")
    plot.setLabel("bottom", x)
    plot.setLabel("left", y)
    plot.getAxis("left").enableAutoSIPrefix(False)
    plot.getAxis("bottom").enableAutoSIPrefix(False)
    plot.showGrid(x=True, y=True, alpha=0.15)
    return plot


class TrialCharts(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.param = QComboBox()
        self.param.setToolTip("The parameter the scatter puts on its x axis")
        self.param.currentIndexChanged.connect(self._draw_scatter)
        self.scatter = _plot("Score by parameter", "", "validation score")
        self.scatter.addLegend(offset=(-10, -10), brush=pg.mkBrush(255, 255, 255, 210))
        self.best = _plot("Best so far", "trial", "validation score")
        self.best.addLegend(offset=(-10, -10), brush=pg.mkBrush(255, 255, 255, 210))
        self.trials: list[dict[str, Any]] = []
        left = QVBoxLayout()
        top = QHBoxLayout()
        top.addWidget(label("x axis"))
        top.addWidget(self.param, 1)
        left.addLayout(top)
        left.addWidget(self.scatter, 1)
        box = QHBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addLayout(left, 1)
        box.addWidget(self.best, 1)

    def set_trials(self, trials: list[dict[str, Any]], metric: str) -> None:
        """``trials``: number, state, value, params (by name), in trial order."""
        self.trials = trials
        names = sorted({k for t in trials for k in t["params"]})
        current = self.param.currentText()
        self.param.blockSignals(True)
        self.param.clear()
        self.param.addItems(names)
        if current in names:
            self.param.setCurrentText(current)
        elif "learning_rate" in names:
            self.param.setCurrentText("learning_rate")
        self.param.blockSignals(False)
        for plot in (self.scatter, self.best):
            plot.setLabel("left", f"validation {metric}" if metric else "validation score")
        self._draw_scatter()
        self._draw_best()

    def points(self) -> int:
        """Trials drawn on the scatter (for tests)."""
        return sum(len(i.data) for i in self.scatter.items()
                   if isinstance(i, pg.ScatterPlotItem) and i.name() != "best")

    def _draw_scatter(self) -> None:
        self.scatter.clear()  # its legend too
        name = self.param.currentText()
        self.scatter.setLabel("bottom", name)
        shown = [t for t in self.trials if t["value"] is not None and name in t["params"]]
        if not shown:
            return
        values = [t["params"][name] for t in shown]
        ticks = None
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            xs = np.array(values, dtype=float)
            if bool(np.all(xs > 0) and xs.max() / max(xs.min(), 1e-300) > 20):
                # rates and counts spread over decades: placed by their logarithm, labelled
                # with the values themselves
                xs = np.log10(xs)
                ticks = [[(float(d), f"{10.0 ** d:g}") for d in
                          range(int(np.floor(xs.min())), int(np.ceil(xs.max())) + 1)]]
        else:  # a family, a list of widths: one place per distinct value
            keys = sorted({str(v) for v in values})
            xs = np.array([keys.index(str(v)) for v in values], dtype=float)
            ticks = [list(enumerate(keys))]
        self.scatter.getAxis("bottom").setTicks(ticks)
        ys = np.array([t["value"] for t in shown], dtype=float)
        best = int(np.argmax(ys))
        kinds = sorted({t["family"] for t in shown})
        for family in kinds:
            mine = [i for i, t in enumerate(shown) if t["family"] == family]
            color = PALETTE[kinds.index(family) % len(PALETTE)]
            self.scatter.addItem(pg.ScatterPlotItem(
                xs[mine], ys[mine], size=9, brush=pg.mkBrush(color), pen=None,
                name=family))
        self.scatter.addItem(pg.ScatterPlotItem(
            xs[[best]], ys[[best]], size=15, brush=None, pen=pg.mkPen(BEST, width=2),
            name="best"))

    def _draw_best(self) -> None:
        self.best.clear()
        scored = [(t["number"], t["value"]) for t in self.trials if t["value"] is not None]
        pruned = [t["number"] for t in self.trials if t["state"] == "pruned"]
        if not scored:
            return
        xs = np.array([n for n, _ in scored], dtype=float)
        ys = np.array([v for _, v in scored], dtype=float)
        running = np.maximum.accumulate(ys)
        self.best.addItem(pg.ScatterPlotItem(xs, ys, size=7, brush=pg.mkBrush(DONE),
                                             pen=None))
        # a step: the best holds until a trial beats it
        step_x = np.repeat(xs, 2)[1:]
        step_y = np.repeat(running, 2)[:-1]
        self.best.plot(step_x, step_y, pen=pg.mkPen(BEST, width=2), name="best so far")
        if pruned:
            low = float(ys.min()) if math.isfinite(float(ys.min())) else 0.0
            self.best.addItem(pg.ScatterPlotItem(
                np.array(pruned, dtype=float), np.full(len(pruned), low), size=7,
                symbol="x", brush=pg.mkBrush(PRUNED), pen=pg.mkPen(PRUNED), name="pruned"))
