"""Permutation feature importance: how much the score drops when one column's values are
shuffled, as horizontal bars (the largest on top) with the spread of the repeats as
whiskers; the full name and numbers of a bar in its tooltip."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QPointF
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QVBoxLayout, QWidget

from studio.gui.pages.evaluation.charts import new_plot
from studio.gui.pages.evaluation.plain import label, short, tip

SHOWN = 20
NAME_CHARS = 28
METRIC = {"accuracy": "accuracy", "r2": "R²"}


class Importance(QWidget):
    def __init__(self, importance: dict[str, Any] | None, parent: QWidget | None = None
                 ) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.features: list[dict[str, Any]] = []
        self.plot: Any = None
        if not importance or not importance.get("features"):
            layout.addWidget(label("No feature importance: the model reads a single picture, "
                                   "so there is no column to shuffle." if importance is None
                                   else "No feature importance was measured.", "muted"), 1)
            return
        features = sorted(importance["features"], key=lambda f: -(f.get("mean") or 0.0))
        self.features = features[:SHOWN]
        metric = METRIC.get(str(importance.get("metric")), str(importance.get("metric")))
        more = len(features) - len(self.features)
        note = (f"The drop in {metric} when one column's values are shuffled, mean of "
                f"{importance.get('repeats', '?')} shuffles of {importance.get('rows', 0):,} "
                "rows; the whiskers span ± one standard deviation. A bar near zero: the model "
                "does not rely on that column.")
        if more > 0:
            note += f" The top {SHOWN} of {len(features)} columns."
        self.plot = new_plot(f"Permutation importance (drop in {metric})", f"drop in {metric}",
                             "")
        self._draw()
        text = label(note, "muted")
        text.setWordWrap(True)
        layout.addWidget(self.plot, 1)
        layout.addWidget(text)

    @property
    def count(self) -> int:
        return len(self.features)

    def _draw(self) -> None:
        import pyqtgraph as pg

        means = np.asarray([f.get("mean") or 0.0 for f in self.features], dtype=float)
        stds = np.asarray([f.get("std") or 0.0 for f in self.features], dtype=float)
        ys = np.arange(len(means))[::-1].astype(float)
        self.plot.showGrid(x=True, y=False, alpha=0.15)
        self.plot.addItem(pg.BarGraphItem(x0=np.minimum(means, 0), x1=np.maximum(means, 0),
                                          y=ys, height=0.7, brush="#8ab4f8", pen="#1a73e8"))
        self.plot.addItem(pg.ErrorBarItem(x=means, y=ys, left=stds, right=stds, beam=0.25,
                                          pen=pg.mkPen("#1f2933", width=1.2)))
        self.plot.addItem(pg.InfiniteLine(0, angle=90, pen=pg.mkPen("#9aa5b1")))
        names = [short(str(f.get("feature")), NAME_CHARS) for f in self.features]
        axis = self.plot.getAxis("left")
        axis.setTicks([list(zip(ys, names, strict=True))])  # tick text is painted plain
        metrics = QFontMetrics(axis.style.get("tickFont") or self.plot.font())
        axis.setWidth(max((metrics.horizontalAdvance(t) for t in names), default=0) + 14)
        self.plot.setYRange(-0.6, len(names) - 0.4, padding=0)
        self.plot.scene().sigMouseMoved.connect(self._hover)

    def _hover(self, pos: QPointF) -> None:
        vb = self.plot.getViewBox()
        if not vb.sceneBoundingRect().contains(pos):
            return
        y = vb.mapSceneToView(pos).y()
        k = len(self.features) - 1 - round(y)
        if 0 <= k < len(self.features) and abs(y - round(y)) <= 0.4:
            f = self.features[k]
            vb.setToolTip(tip(f"{f.get('feature')}\ndrop {f.get('mean', 0):.4g} ± "
                              f"{f.get('std', 0):.2g}"))
        else:
            vb.setToolTip("")
