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


def baseline(task: str, y_train: np.ndarray, y_test: np.ndarray, labels: list[str] | None,
             y_pred: np.ndarray | None = None) -> dict[str, Any]:
    """What the test split scores with no model at all: always the training split's most
    frequent class, or always its mean. With the model's predictions, a classification
    baseline also counts the test rows where only the model is right and only it is wrong."""
    if task == "classification":
        majority = int(np.bincount(y_train).argmax())
        right = y_test == majority
        out: dict[str, Any] = {"accuracy": float(right.mean()) if len(y_test) else 0.0,
                               "predicts": labels[majority] if labels else str(majority)}
        if y_pred is not None:
            model_right = y_pred == y_test
            out["model_only"] = int((model_right & ~right).sum())
            out["baseline_only"] = int((right & ~model_right).sum())
        return out
    mean = float(y_train.mean())
    scores = regression_metrics(y_test, np.full(len(y_test), mean))
    return {"r2": scores["r2"], "mae": scores["mae"], "predicts": plain_number(mean)}


def plain_number(value: float) -> str:
    """851,512 rather than 8.515e+05: how a person writes a price or a count."""
    return f"{value:,.0f}" if 1_000 <= abs(value) < 1e15 else f"{value:.4g}"


def baseline_warning(task: str, target: str, test: dict[str, Any]) -> str | None:
    """A sentence when the model does not clearly beat its baseline on the test split."""
    base = test.get("baseline")
    if not base:
        return None
    if task == "regression":
        if test["mae"] < base["mae"]:
            return None
        return (f"test MAE {plain_number(test['mae'])} is no better than always predicting "
                f"the mean {base['predicts']} (MAE {plain_number(base['mae'])}): the inputs "
                f"may not predict {target!r}, or it needs more data")
    accuracy, always = test["accuracy"], f"always predicting {base['predicts']!r}"
    wins, losses = base.get("model_only"), base.get("baseline_only")
    if accuracy <= base["accuracy"] or (wins is not None and wins <= losses):
        return (f"test accuracy {accuracy:.3f} is no better than {always} "
                f"({base['accuracy']:.3f}): the inputs may not predict {target!r}, or it "
                "needs more data")
    # A sign test on the rows where the two disagree (the same rows score both): a lead
    # within two standard deviations of a coin's is what guessing also gets.
    if wins is not None and wins - losses <= 2 * math.sqrt(wins + losses):
        return (f"test accuracy {accuracy:.3f} is not clearly better than {always} "
                f"({base['accuracy']:.3f}): the model is right on {wins} test rows where "
                f"that is wrong and wrong on {losses} where it is right, which chance "
                f"alone can give; the test split may be too small to tell, or the inputs "
                f"may not predict {target!r}")
    return None


HEADLINE = {"classification": "accuracy", "regression": "r2"}


def headline(task: str, metrics: dict[str, Any]) -> str:
    key = HEADLINE.get(task, "accuracy")
    value = metrics.get(key)
    return f"{key} {value:.3f}" if isinstance(value, float) else "-"
