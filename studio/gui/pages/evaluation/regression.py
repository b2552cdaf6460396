"""A regression's errors: predicted against actual with the line of perfect answers, the
residuals against the prediction, and the residuals' histogram."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtWidgets import QHBoxLayout, QVBoxLayout, QWidget

from studio.gui.pages.evaluation.charts import new_plot, pen
from studio.gui.pages.evaluation.document import Evaluation

POINT = (26, 115, 232, 90)  # a translucent blue: where points pile up, it darkens


def _floats(values: list[Any]) -> np.ndarray:
    return np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)


class RegressionPlots(QWidget):
    def __init__(self, evaluation: Evaluation, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        import pyqtgraph as pg

        rows = evaluation.section("rows") or {}
        actual, predicted = _floats(rows.get("actual", [])), _floats(rows.get("predicted", []))
        index = np.asarray(rows.get("index", [-1] * len(actual)))
        keep = np.isfinite(actual) & np.isfinite(predicted)
        actual, predicted, index = actual[keep], predicted[keep], index[keep]
        self.points = int(keep.sum())
        target = evaluation.target or "target"
        self.scatter = new_plot(f"Predicted against actual ({self.points:,} rows)",
                                f"actual {target}", f"predicted {target}", explore=True)
        if self.points:
            low = float(min(actual.min(), predicted.min()))
            high = float(max(actual.max(), predicted.max()))
            self.scatter.plot([low, high], [low, high], pen=pen("#d93025", 1.5, dashed=True))
        self.scatter.addItem(self._points(actual, predicted, index, "actual", "predicted"))
        residual = predicted - actual
        self.residuals = new_plot("Residuals against prediction", f"predicted {target}",
                                  "predicted − actual", explore=True)
        self.residuals.addItem(pg.InfiniteLine(0, angle=0, pen=pen("#d93025", 1.5,
                                                                     dashed=True)))
        self.residuals.addItem(self._points(predicted, residual, index, "predicted",
                                            "residual"))
        self.histogram = new_plot("Residuals", "predicted − actual", "rows")
        hist = evaluation.section("residuals") or {}
        edges, counts = _floats(hist.get("bins", [])), _floats(hist.get("counts", []))
        if len(edges) == len(counts) + 1 and len(counts):
            self.histogram.addItem(pg.BarGraphItem(x0=edges[:-1], x1=edges[1:], height=counts,
                                                   brush="#8ab4f8", pen="#1a73e8"))
            self.histogram.addItem(pg.InfiniteLine(0, angle=90, pen=pen("#d93025", 1.5,
                                                                          dashed=True)))
        self.bars = len(counts)
        right = QVBoxLayout()
        right.addWidget(self.residuals, 1)
        right.addWidget(self.histogram, 1)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.scatter, 1)
        row.addLayout(right, 1)

    @staticmethod
    def _points(x: np.ndarray, y: np.ndarray, index: np.ndarray, x_name: str,
                y_name: str) -> Any:
        import pyqtgraph as pg

        def tip(x: float, y: float, data: Any) -> str:
            return f"row {data}\n{x_name} {x:.5g}\n{y_name} {y:.5g}"

        return pg.ScatterPlotItem(x=x, y=y, data=index, size=5, pen=None,
                                  brush=pg.mkBrush(*POINT), hoverable=True, tip=tip)
