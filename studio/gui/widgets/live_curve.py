"""A pyqtgraph plot of named series that grow; one ``setData`` per series per flush.

A run on a small table trains hundreds of epochs a second, and a long one ends with tens of
thousands of points, redrawn while the person watches. What that costs the GUI thread is
kept small (``tests/benchmarks/bench_gui_training.py``): the points live in numpy buffers
that double when full (appending is amortized O(1), a flush copies nothing); each point's
marker is drawn only while a series is short enough for markers to be seen; and there is no
grid (its translucent lines, blended at every repaint, were most of a frame's cost).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

PALETTE = ["#1a73e8", "#e8710a", "#188038", "#a142f4", "#d93025"]
MARKERS_UP_TO = 150  # points; beyond, the line alone


class _Series:
    def __init__(self) -> None:
        self.x = np.empty(64)
        self.y = np.empty(64)
        self.n = 0

    def append(self, x: float, y: float) -> None:
        if self.n == len(self.x):
            self.x = np.resize(self.x, 2 * self.n)
            self.y = np.resize(self.y, 2 * self.n)
        self.x[self.n], self.y[self.n] = x, y
        self.n += 1


class LiveCurve(pg.PlotWidget):
    def __init__(self, title: str, y_label: str, legend: bool = True,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent=parent, background="w")
        self.setTitle(title, color="#202124", size="11pt")
        self.setLabel("bottom", "epoch")
        self.setLabel("left", y_label)
        # Losses and accuracies are plain numbers: "690 (x0.001)" reads worse than 0.69.
        self.getAxis("left").enableAutoSIPrefix(False)
        if legend:
            self.addLegend(offset=(-10, 10))
        self.setClipToView(True)
        self.setDownsampling(auto=True, mode="peak")
        self._series: dict[str, _Series] = {}
        self._items: dict[str, pg.PlotDataItem] = {}
        self._dirty: set[str] = set()

    def add_series(self, name: str, label: str) -> None:
        color = PALETTE[len(self._items) % len(PALETTE)]
        self._items[name] = self.plot([], [], name=label, pen=pg.mkPen(color, width=2),
                                      symbol="o", symbolSize=4, symbolBrush=color,
                                      symbolPen=None)
        self._series[name] = _Series()

    def append(self, name: str, x: float, y: float) -> None:
        series = self._series.get(name)
        if series is not None:
            series.append(x, y)
            self._dirty.add(name)

    def flush(self) -> None:
        for name in self._dirty:
            s, item = self._series[name], self._items[name]
            if s.n > MARKERS_UP_TO and item.opts.get("symbol") is not None:
                item.setSymbol(None)
            # views of the buffers: an append writes past them, a growth makes new ones
            item.setData(s.x[:s.n], s.y[:s.n])
        self._dirty.clear()

    def clear_data(self) -> None:
        for name, item in self._items.items():
            self._series[name] = _Series()
            item.setSymbol("o")
            item.setData([], [])

    def points(self, name: str) -> int:
        series = self._series.get(name)
        return series.n if series is not None else 0
