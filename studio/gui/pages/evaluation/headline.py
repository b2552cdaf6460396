"""The headline metrics as a row of cards: a name, a number, what it means in the tooltip."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QFrame, QHBoxLayout, QSizePolicy, QVBoxLayout, QWidget

from studio.gui.pages.evaluation.document import Evaluation, number
from studio.gui.pages.evaluation.plain import label

# (key, caption, meaning); a key the metrics lack is left out, except the first few
CLASSIFICATION = [
    ("accuracy", "Accuracy", "Share of rows whose class is predicted right."),
    ("balanced_accuracy", "Balanced accuracy",
     "Mean of the recall of each class: every class counts the same, however rare."),
    ("f1_macro", "Macro F1", "Mean F1 over the classes, each counting the same."),
    ("f1_weighted", "Weighted F1", "Mean F1 over the classes, weighted by their rows."),
    ("roc_auc", "ROC-AUC", "How well the probabilities rank the right class first "
     "(1 = always, 0.5 = chance); one-vs-rest macro mean for several classes."),
    ("log_loss", "Log loss", "Mean −log of the probability given to the right class: "
     "lower is better; confident mistakes cost most."),
]
# What a manifest made before evaluations were stored carries.
CLASSIFICATION_OLD = [
    ("accuracy", "Accuracy", "Share of rows whose class is predicted right."),
    ("precision", "Precision (macro)", "Mean over the classes of the share of their "
     "predictions that are right."),
    ("recall", "Recall (macro)", "Mean over the classes of the share of their rows found."),
    ("f1", "F1 (macro)", "Mean over the classes of the harmonic mean of precision and recall."),
]
REGRESSION = [
    ("mae", "MAE", "Mean absolute error, in the target's own units."),
    ("rmse", "RMSE", "Root mean squared error: like MAE, but large errors weigh more."),
    ("r2", "R²", "Share of the target's variance the model explains (1 = all, 0 = no better "
     "than always predicting the mean)."),
    ("mape", "MAPE", "Mean absolute error as a share of the actual value (rows whose actual "
     "value is 0 are left out)."),
]


class MetricCards(QWidget):
    def __init__(self, evaluation: Evaluation, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.values: dict[str, str] = {}  # caption → the text shown
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        metrics = evaluation.metrics
        if evaluation.task == "regression":
            spec = REGRESSION
        else:
            spec = CLASSIFICATION if evaluation.full else CLASSIFICATION_OLD
        for key, caption, meaning in spec:
            if key not in metrics and not evaluation.full:
                continue
            text = _value(key, metrics.get(key))
            layout.addWidget(_card(caption, text, meaning))
            self.values[caption] = text
        rows = metrics.get("n", evaluation.n)
        layout.addWidget(_card("Rows", number(rows), "Rows evaluated."))
        self.values["Rows"] = number(rows)


def _value(key: str, value: Any) -> str:
    if key == "mape" and isinstance(value, int | float):
        return f"{value:.1%}"
    return number(value)


def _card(caption: str, value: str, meaning: str) -> QFrame:
    frame = QFrame()
    frame.setObjectName("metricCard")
    frame.setStyleSheet("#metricCard { background: #f5f7fa; border: 1px solid #e4e7eb;"
                        " border-radius: 6px; }")
    frame.setToolTip(meaning)
    frame.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
    top = label(caption, "muted")
    big = label(value)
    big.setStyleSheet("font-size: 15pt; font-weight: 600; color: #1f2933;")
    box = QVBoxLayout(frame)
    box.setContentsMargins(10, 4, 10, 6)
    box.setSpacing(0)
    box.addWidget(top)
    box.addWidget(big)
    return frame
