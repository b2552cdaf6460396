"""Small pyqtgraph helpers the evaluation charts share. pyqtgraph's titles and axis labels
are HTML: every text put there goes through ``html.escape``."""

from __future__ import annotations

import html
from typing import Any

import pyqtgraph as pg  # this package is imported on first use: not at start-up
from PySide6.QtGui import QColor

# Tableau's 20 colours, the strong ten first: 20 classes stay apart.
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896",
           "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5"]
INK, MUTED = "#1f2933", "#616e7c"


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


class NumberAxis(pg.AxisItem):
    """Ticks as a person writes them: 900,000 and 1,000,000 rather than 900000 and 1e+06."""

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        if values and spacing * scale >= 1 and max(abs(v * scale) for v in values) >= 1e4:
            return [f"{v * scale:,.0f}" for v in values]
        return super().tickStrings(values, scale, spacing)


def new_plot(title: str, x_label: str, y_label: str, explore: bool = False) -> Any:
    """A white plot with a grid; ``explore``: the mouse may pan and zoom it."""
    plot = pg.PlotWidget(background="w", axisItems={
        "left": NumberAxis("left"), "bottom": NumberAxis("bottom")})
    plot.setTitle(html.escape(title), color=INK, size="10pt")
    plot.setLabel("bottom", html.escape(x_label), color=MUTED)
    plot.setLabel("left", html.escape(y_label), color=MUTED)
    for side in ("left", "bottom"):
        plot.getAxis(side).enableAutoSIPrefix(False)  # 0.69, not 690 (×0.001)
    plot.showGrid(x=True, y=True, alpha=0.15)
    plot.setMenuEnabled(False)
    plot.setMouseEnabled(x=explore, y=explore)
    plot.hideButtons()
    plot.setMinimumSize(200, 160)
    return plot


def pen(hex_color: str, width: float = 2.0, alpha: int = 255, dashed: bool = False) -> Any:
    from PySide6.QtCore import Qt

    c = QColor(hex_color)
    c.setAlpha(alpha)
    return pg.mkPen(c, width=width, style=Qt.PenStyle.DashLine if dashed else
                    Qt.PenStyle.SolidLine)
