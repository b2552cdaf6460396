"""The last minute of traffic as four small charts: throughput, latency percentiles, error
rate and batch size. Each second the server's window (60 one-second buckets) replaces what
is drawn, so a page opened late, or reopened, shows the whole minute at once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg  # this module is imported when the page is first shown
from PySide6.QtWidgets import QGridLayout, QWidget

from studio.gui.widgets.live_curve import PALETTE

# chart title, y label, [(series key in a second's summary, legend, scale)]
CHARTS: list[tuple[str, str, list[tuple[str, str, float]]]] = [
    ("Throughput", "requests/s", [("throughput", "", 1.0)]),
    ("Latency", "ms", [("p50_ms", "p50", 1.0), ("p95_ms", "p95", 1.0),
                       ("p99_ms", "p99", 1.0)]),
    ("Errors", "% of requests", [("error_rate", "", 100.0)]),
    ("Batch size", "per call", [("mean_batch_rows", "rows", 1.0),
                                ("mean_batch_requests", "requests", 1.0)]),
]


class MonitorCharts(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(6)
        self.plots: dict[str, pg.PlotWidget] = {}
        self.items: dict[str, pg.PlotDataItem] = {}
        self.updates = 0
        self._y: dict[str, np.ndarray] = {}
        for i, (title, unit, series) in enumerate(CHARTS):
            plot = pg.PlotWidget(background="w")
            # the legend is in the title, in each line's colour: a legend box would sit
            # on the newest seconds, at the right edge
            legend = " ".join(f"<span style='color:{PALETTE[j % len(PALETTE)]}'>━ {name}"
                              f"</span>" for j, (_k, name, _s) in enumerate(series) if name)
            plot.setTitle(f"{title}&nbsp;&nbsp;{legend}" if legend else title,
                          color="#202124", size="10pt")
            plot.setLabel("left", unit, **{"font-size": "8pt"})
            plot.setLabel("bottom", "seconds ago", **{"font-size": "8pt"})
            plot.getAxis("left").enableAutoSIPrefix(False)
            plot.showGrid(x=True, y=True, alpha=0.15)
            plot.setMenuEnabled(False)
            plot.setMouseEnabled(x=False, y=False)
            plot.setXRange(-60, 0, padding=0.02)
            plot.setMinimumSize(160, 120)
            for j, (key, _legend, _scale) in enumerate(series):
                color = PALETTE[j % len(PALETTE)]
                self.items[key] = plot.plot([], [], connect="finite",
                                            pen=pg.mkPen(color, width=2))
            self.plots[title] = plot
            grid.addWidget(plot, i // 2, i % 2)

    def show_window(self, series: Sequence[dict[str, Any]]) -> None:
        """Draw the server's last minute (oldest second first)."""
        if not series:
            return
        last = series[-1]["t"]
        x = np.array([s["t"] - last for s in series], dtype=float)
        for _title, _unit, keys in CHARTS:
            for key, _legend, scale in keys:
                y = np.array([np.nan if s.get(key) is None else s[key] * scale
                              for s in series], dtype=float)
                self._y[key] = y
                self.items[key].setData(x, y)
        for plot in self.plots.values():
            plot.enableAutoRange(axis="y")
            top = plot.getViewBox().childrenBounds()[1]
            if top is None or not np.isfinite(top[1]) or top[1] <= 0:
                plot.setYRange(0, 1)  # nothing yet: a flat axis from 0, not a jittery one
        self.updates += 1

    def clear(self) -> None:
        for item in self.items.values():
            item.setData([], [])
        self._y.clear()

    def values(self, key: str) -> list[float]:
        """What the line of ``key`` (e.g. ``p95_ms``) shows: a value per second that has one."""
        y = self._y.get(key)
        return [] if y is None else [float(v) for v in y[np.isfinite(y)]]
