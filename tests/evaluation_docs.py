"""evaluation.json documents made by hand for the GUI's tests (the format of
studio.core.training.evaluate), and versions registered with them."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from studio.core.registry import Version, register_version
from studio.core.workspace import Workspace


def _curve_points(scores: np.ndarray, positive: np.ndarray) -> tuple[list, list, list, list]:
    """ROC (fpr, tpr) and precision-recall points of one class, thresholds high to low."""
    order = np.argsort(-scores, kind="stable")
    hits = positive[order].astype(float)
    tp, fp = np.cumsum(hits), np.cumsum(1 - hits)
    p, n = max(hits.sum(), 1), max(len(hits) - hits.sum(), 1)
    fpr, tpr = np.r_[0, fp / n], np.r_[0, tp / p]
    precision, recall = np.r_[1, tp / (tp + fp)], np.r_[0, tp / p]
    return fpr.tolist(), tpr.tolist(), recall.tolist(), precision.tolist()


def classification_doc(dataset: str, labels: list[str], index: list[int], actual: np.ndarray,
                       proba: np.ndarray, values: list[dict[str, str]],
                       importance: list[tuple[str, float, float]] | None) -> dict[str, Any]:
    n, k = proba.shape
    predicted = proba.argmax(1)
    confusion = np.zeros((k, k), dtype=int)
    np.add.at(confusion, (actual, predicted), 1)
    tp = np.diag(confusion).astype(float)
    support = confusion.sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.nan_to_num(tp / confusion.sum(0))
        recall = np.nan_to_num(tp / support)
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
    roc, pr, aucs = [], [], []
    for c in range(k):
        fpr, tpr, rec, prec = _curve_points(proba[:, c], actual == c)
        auc = float(np.trapezoid(tpr, fpr))
        ap = float(np.sum(np.diff(rec) * np.asarray(prec[1:])))
        aucs.append(auc)
        roc.append({"label": labels[c], "fpr": fpr, "tpr": tpr, "auc": auc})
        pr.append({"label": labels[c], "recall": rec, "precision": prec,
                   "average_precision": ap})
    confidence = proba[np.arange(n), predicted]
    weights = support / support.sum()
    metrics = {
        "accuracy": float(tp.sum() / n), "balanced_accuracy": float(recall.mean()),
        "precision_macro": float(precision.mean()), "recall_macro": float(recall.mean()),
        "f1_macro": float(f1.mean()), "precision_weighted": float(precision @ weights),
        "recall_weighted": float(recall @ weights), "f1_weighted": float(f1 @ weights),
        "precision": float(precision.mean()), "recall": float(recall.mean()),
        "f1": float(f1.mean()), "roc_auc": float(np.mean(aucs)),
        "log_loss": float(-np.log(np.clip(proba[np.arange(n), actual], 1e-15, 1)).mean()),
        "n": n,
    }
    wrong = np.argsort(confidence * (predicted != actual) * -1, kind="stable")
    wrong = [int(i) for i in wrong if predicted[i] != actual[i]][:20]
    return {
        "task": "classification", "dataset": dataset, "split": "test", "n": n,
        "labels": labels, "metrics": metrics,
        "per_class": [{"label": labels[c], "precision": float(precision[c]),
                       "recall": float(recall[c]), "f1": float(f1[c]),
                       "support": int(support[c]), "roc_auc": aucs[c]} for c in range(k)],
        "confusion": confusion.tolist(),
        "curves": {"roc": roc, "pr": pr},
        "rows": {"index": index, "actual": actual.tolist(), "predicted": predicted.tolist(),
                 "confidence": confidence.tolist(), "truncated": False},
        "worst": [{"row": index[i], "actual": labels[actual[i]],
                   "predicted": labels[predicted[i]], "confidence": float(confidence[i]),
                   "error": None, "values": values[i]} for i in wrong],
        "importance": None if importance is None else {
            "metric": "accuracy", "repeats": 5, "rows": n,
            "features": [{"feature": f, "mean": m, "std": s} for f, m, s in importance]},
    }


def regression_doc(dataset: str, index: list[int], actual: np.ndarray, predicted: np.ndarray,
                   values: list[dict[str, str]],
                   importance: list[tuple[str, float, float]]) -> dict[str, Any]:
    err = predicted - actual
    nonzero = actual != 0
    counts, bins = np.histogram(err, bins=30)
    worst = np.argsort(-np.abs(err), kind="stable")[:20]
    return {
        "task": "regression", "dataset": dataset, "split": "test", "n": len(actual),
        "metrics": {"mae": float(np.abs(err).mean()), "rmse": float(np.sqrt((err ** 2).mean())),
                    "r2": float(1 - (err ** 2).sum() / ((actual - actual.mean()) ** 2).sum()),
                    "mape": float(np.mean(np.abs(err[nonzero]) / np.abs(actual[nonzero]))),
                    "n": len(actual)},
        "rows": {"index": index, "actual": actual.tolist(), "predicted": predicted.tolist(),
                 "truncated": False},
        "residuals": {"bins": bins.tolist(), "counts": counts.tolist()},
        "worst": [{"row": index[i], "actual": float(actual[i]), "predicted": float(predicted[i]),
                   "confidence": None, "error": float(err[i]), "values": values[i]}
                  for i in worst],
        "importance": {"metric": "r2", "repeats": 5, "rows": len(actual),
                       "features": [{"feature": f, "mean": m, "std": s}
                                    for f, m, s in importance]},
    }


def register(ws: Workspace, name: str, info: Any, task: str, target: str,
             labels: list[str] | None, doc: dict[str, Any] | None,
             modality: str = "tabular") -> Version:
    """A version of ``info`` (a DatasetInfo) with ``doc`` as its evaluation.json (None: a
    version made before evaluations were stored, whose manifest alone has test metrics)."""
    if doc is not None:
        test = {k: v for k, v in doc["metrics"].items()}
        if task == "classification":
            test["confusion"] = doc["confusion"]
    else:
        k = len(labels or [])
        confusion = [[10 + i if i == j else (i + 2 * j) % 3 for j in range(k)]
                     for i in range(k)]
        total = sum(map(sum, confusion))
        test = {"accuracy": sum(confusion[i][i] for i in range(k)) / total,
                "precision": 0.7, "recall": 0.72, "f1": 0.71, "n": total,
                "confusion": confusion}
    manifest = {
        "task": task, "target": target, "labels": labels,
        "recipe": {"modality": modality, "labels": labels},
        "metrics": {"test": test},
        "dataset": {"name": info.name, "digest": info.digest, "rows": info.rows},
        "training": {"device": "cpu"},
    }
    files = {"model.onnx": b"not a model: the view never runs it"}
    if doc is not None:
        files["evaluation.json"] = json.dumps(doc, allow_nan=False).encode()
    return register_version(ws, name, files, manifest, "# {ref}\n")
