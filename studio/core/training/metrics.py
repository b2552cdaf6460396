"""Evaluation metrics in numpy, so evaluation needs no torch."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, n_classes: int
) -> dict[str, Any]:
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(confusion, (y_true, y_pred), 1)
    tp = np.diag(confusion).astype(np.float64)
    predicted = confusion.sum(axis=0)
    actual = confusion.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(actual > 0, tp / actual, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    present = actual > 0
    return {
        "accuracy": float(tp.sum() / max(1, len(y_true))),
        "precision": float(precision[present].mean()) if present.any() else 0.0,
        "recall": float(recall[present].mean()) if present.any() else 0.0,
        "f1": float(f1[present].mean()) if present.any() else 0.0,
        "confusion": confusion.tolist(),
        "n": len(y_true),
    }


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    err = y_pred.astype(np.float64) - y_true.astype(np.float64)
    ss_tot = float(((y_true - y_true.mean()) ** 2).sum())
    return {
        "mae": float(np.abs(err).mean()),
        "rmse": float(np.sqrt((err**2).mean())),
        "r2": float(1 - (err**2).sum() / ss_tot) if ss_tot > 0 else 0.0,
        "n": len(y_true),
    }


def baseline(task: str, y_train: np.ndarray, y_test: np.ndarray,
             labels: list[str] | None) -> dict[str, Any]:
    """What the test split scores with no model at all: always the training split's most
    frequent class, or always its mean."""
    if task == "classification":
        majority = int(np.bincount(y_train).argmax())
        return {"accuracy": float((y_test == majority).mean()) if len(y_test) else 0.0,
                "predicts": labels[majority] if labels else str(majority)}
    mean = float(y_train.mean())
    scores = regression_metrics(y_test, np.full(len(y_test), mean))
    return {"r2": scores["r2"], "mae": scores["mae"], "predicts": plain_number(mean)}


def plain_number(value: float) -> str:
    """851,512 rather than 8.515e+05: how a person writes a price or a count."""
    return f"{value:,.0f}" if 1_000 <= abs(value) < 1e15 else f"{value:.4g}"


def baseline_warning(task: str, target: str, test: dict[str, Any]) -> str | None:
    """A sentence when the model does no better on the test split than its baseline."""
    base = test.get("baseline")
    if not base:
        return None
    if task == "classification":
        n = max(1, int(test.get("n", 1)))
        p = base["accuracy"]
        # Two standard errors of a score like the baseline's on n rows: less than that above
        # it is what guessing also scores now and then, not a model that learned something.
        if test["accuracy"] > p + 2 * math.sqrt(p * (1 - p) / n):
            return None
        return (f"test accuracy {test['accuracy']:.3f} is no clear improvement on always "
                f"predicting {base['predicts']!r} ({p:.3f} on the same {n:,} rows): the "
                f"inputs may not predict {target!r}, or it needs more data")
    if task == "regression" and test["mae"] >= base["mae"]:
        return (f"test MAE {plain_number(test['mae'])} is no better than always predicting "
                f"the mean {base['predicts']} (MAE {plain_number(base['mae'])}): the inputs "
                "may not predict "
                f"{target!r}, or it needs more data")
    return None


HEADLINE = {"classification": "accuracy", "regression": "r2"}


def headline(task: str, metrics: dict[str, Any]) -> str:
    key = HEADLINE.get(task, "accuracy")
    value = metrics.get(key)
    return f"{key} {value:.3f}" if isinstance(value, float) else "-"
