"""Scores ranked against a yes/no truth: ROC-AUC from ranks, the ROC and precision-recall
curves, average precision, and thinning a curve for drawing. numpy only."""

from __future__ import annotations

import numpy as np


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks; tied values share the mean of the ranks they span."""
    values = np.asarray(values)
    n = len(values)
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.r_[True, ordered[1:] != ordered[:-1]] if n else np.zeros(0, dtype=bool)
    first = np.flatnonzero(starts)
    last = np.r_[first[1:], n] - 1
    group = np.cumsum(starts) - 1
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = ((first + last) / 2.0 + 1.0)[group]
    return ranks


def roc_auc(positive: np.ndarray, scores: np.ndarray) -> float | None:
    """The chance that a random positive scores above a random negative (ties count half),
    by the Mann-Whitney rank sum; None without both positives and negatives."""
    positive = np.asarray(positive, dtype=bool)
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = average_ranks(np.asarray(scores, dtype=np.float64))
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _counts(positive: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True and false positives at each distinct score taken as the threshold, highest
    first: tied rows cross a threshold together."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="mergesort")
    ordered = np.asarray(scores, dtype=np.float64)[order]
    ends = np.r_[np.flatnonzero(ordered[1:] != ordered[:-1]), len(ordered) - 1]
    tps = np.cumsum(np.asarray(positive, dtype=np.int64)[order])[ends]
    return tps, (ends + 1) - tps


def roc_curve(positive: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate) from (0, 0) to (1, 1)."""
    tps, fps = _counts(positive, scores)
    return (np.r_[0.0, fps / max(1, fps[-1])], np.r_[0.0, tps / max(1, tps[-1])])


def pr_curve(positive: np.ndarray, scores: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, float | None]:
    """(recall, precision, average precision), recall rising from 0 where precision is 1.
    Average precision sums precision at each threshold weighted by the recall it adds (no
    interpolation between points); None without positives."""
    tps, fps = _counts(positive, scores)
    n_pos = tps[-1]
    precision = tps / (tps + fps)
    recall = tps / max(1, n_pos)
    ap = float(np.sum(np.diff(np.r_[0.0, recall]) * precision)) if n_pos else None
    return np.r_[0.0, recall], np.r_[1.0, precision], ap


def downsample(x: np.ndarray, y: np.ndarray, limit: int = 200
               ) -> tuple[np.ndarray, np.ndarray]:
    """At most ``limit`` points spread evenly along the curve's length (both axes scaled to
    their span), the first and last kept: steep parts keep as many points as flat ones,
    where taking every k-th point would flatten a sharp corner."""
    n = len(x)
    if n <= limit:
        return x, y
    span_x = float(np.ptp(x)) or 1.0
    span_y = float(np.ptp(y)) or 1.0
    length = np.r_[0.0, np.cumsum(np.hypot(np.diff(x) / span_x, np.diff(y) / span_y))]
    marks = np.linspace(0.0, length[-1], limit - 1)
    keep = np.unique(np.r_[np.searchsorted(length, marks).clip(0, n - 1), n - 1])
    return x[keep], y[keep]
