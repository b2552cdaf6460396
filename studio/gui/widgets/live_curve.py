"""A pyqtgraph plot of named series that grow; one ``setData`` per series per flush."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

PALETTE = ["#1a73e8", "#e8710a", "#188038", "#a142f4", "#d93025"]


class LiveCurve(pg.PlotWidget):
    def __init__(self, title: str, y_label: str, legend: bool = True,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent=parent, background="w")
        self.setTitle(title, color="#202124", size="11pt")
        self.setLabel("bottom", "epoch")
        self.setLabel("left", y_label)
        # Losses and accuracies are plain numbers: "690 (x0.001)" reads worse than 0.69.
        self.getAxis("left").enableAutoSIPrefix(False)
        self.showGrid(x=True, y=True, alpha=0.15)
        if legend:
            self.addLegend(offset=(-10, 10))
        self.setClipToView(True)
        self.setDownsampling(auto=True, mode="peak")
        self._x: dict[str, list[float]] = {}
        self._y: dict[str, list[float]] = {}
        self._items: dict[str, pg.PlotDataItem] = {}
        self._dirty: set[str] = set()

    def add_series(self, name: str, label: str) -> None:
        color = PALETTE[len(self._items) % len(PALETTE)]
        self._items[name] = self.plot([], [], name=label, pen=pg.mkPen(color, width=2),
                                      symbol="o", symbolSize=4, symbolBrush=color,
                                      symbolPen=None)
        self._x[name], self._y[name] = [], []

    def append(self, name: str, x: float, y: float) -> None:
        if name in self._items:
            self._x[name].append(x)
            self._y[name].append(y)
            self._dirty.add(name)

    def flush(self) -> None:
        for name in self._dirty:
            self._items[name].setData(np.asarray(self._x[name]), np.asarray(self._y[name]))
        self._dirty.clear()

    def clear_data(self) -> None:
        for name in self._items:
            self._x[name].clear()
            self._y[name].clear()
            self._items[name].setData([], [])

    def points(self, name: str) -> int:
        return len(self._x.get(name, []))
