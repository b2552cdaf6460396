"""A model judged on labelled rows: the evaluation document (evaluation.json).

Training (the test split), ``studio evaluate`` (any labelled dataset), compression and
comparison all call :func:`evaluate_model` with a ``run``: preprocessed tensors by name in,
the model's output out (class probabilities ``[n, C]`` or values ``[n]``/``[n, 1]``). numpy
only; :func:`onnx_runner` makes a ``run`` of an ONNX graph.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from studio.core.datasets.recipe import (
    as_category,
    column_slices,
    is_missing,
    model_inputs,
    transform_inputs,
)
from studio.core.errors import InputError, StudioError
from studio.core.events import Emit, Progress
from studio.core.training.ranking import downsample, pr_curve, roc_auc, roc_curve

Run = Callable[[Mapping[str, np.ndarray]], np.ndarray]

ROWS_KEPT = 20_000
WORST = 20
CURVE_POINTS = 200
MAX_CURVES = 20
RESIDUAL_BINS = 30
LOG_LOSS_EPS = 1e-15
VALUE_CHARS = 80
CHUNK_VALUES = 16_000_000  # preprocessed values made at once: 64 MB of floats
CHUNK_ROWS = 8192
IMPORTANCE_ROWS = 5000
# Permutation importance costs rows × columns × repeats model rows: bounded so a wide
# table does not spend minutes here after a short time budget.
IMPORTANCE_EVALUATIONS = 3_000_000
IMPORTANCE_MIN_ROWS = 200  # fewer rows make a drop of one row's worth look like a signal
IMPORTANCE_SECONDS = 20.0


def _num(value: Any, digits: int | None = None) -> float | None:
    """A JSON float; None for NaN or infinity (the document holds no NaN)."""
    value = float(value)
    if not math.isfinite(value):
        return None
    return round(value, digits) if digits is not None else value


def _nums(values: np.ndarray, digits: int = 6) -> list[float | None]:
    return [_num(v, digits) for v in np.asarray(values, dtype=np.float64)]


def _short(values: np.ndarray) -> list[float | None]:
    """Values in the target's own units at float32 precision: 7 significant digits."""
    return [float(f"{v:.7g}") if math.isfinite(v) else None
            for v in np.asarray(values, dtype=np.float64).tolist()]


# -- metrics -------------------------------------------------------------------------------


def metrics(task: str, y_true: np.ndarray, scores: np.ndarray,
            labels: Sequence[str] | None = None) -> dict[str, Any]:
    """The document's scores: "metrics", and "per_class", "confusion" and "curves" for
    classification (``scores``: probabilities [n, C]; ``y_true``: class indices, -1 for a
    class the model does not know), or "residuals" for regression (``scores``: values).

    Rows of classes the model never saw are wrong wherever they are counted: in accuracy,
    as false positives of the class predicted, and together as one more class, never
    predicted, in the macro, weighted and balanced averages. ROC-AUC leaves them out."""
    if task == "classification":
        probs = np.asarray(scores, dtype=np.float64)
        probs = probs.reshape(len(probs), -1)
        names = list(labels) if labels is not None else [str(i) for i in range(probs.shape[1])]
        if probs.shape[1] != len(names):
            raise StudioError(f"the model gives {probs.shape[1]} class probabilities for "
                              f"{len(names)} labels")
        return _classification(np.asarray(y_true, dtype=np.int64), probs, names)
    if task != "regression":
        raise InputError(f"unknown task {task!r}: classification or regression")
    return _regression(np.asarray(y_true, dtype=np.float64),
                       np.asarray(scores, dtype=np.float64).reshape(-1))


def _classification(y: np.ndarray, probs: np.ndarray, labels: list[str]) -> dict[str, Any]:
    n, c = len(y), len(labels)
    pred = probs.argmax(axis=1) if n else np.zeros(0, dtype=np.int64)
    known = y >= 0
    unseen = int(n - known.sum())
    confusion = np.zeros((c, c), dtype=np.int64)
    np.add.at(confusion, (y[known], pred[known]), 1)
    tp = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1)
    predicted = np.bincount(pred, minlength=c)  # unseen rows too: each is a false positive
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(precision + recall > 0,
                      2 * precision * recall / (precision + recall), 0.0)
    present = support > 0
    groups = int(present.sum()) + (unseen > 0)  # the unseen classes: one group scoring 0

    def macro(x: np.ndarray) -> float | None:
        return _num(x[present].sum() / groups) if groups else None

    def weighted(x: np.ndarray) -> float | None:
        return _num((x * support).sum() / n) if n else None

    aucs = [roc_auc(y[known] == j, probs[known, j]) if present[j] else None for j in range(c)]
    if c == 2:
        auc = aucs[1]
    else:
        defined = [a for a in aucs if a is not None]
        auc = float(np.mean(defined)) if present.sum() >= 2 and defined else None
    if n:
        truth = np.where(known, probs[np.arange(n), np.where(known, y, 0)], 0.0)
        log_loss = _num(-np.log(np.clip(truth, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)).mean())
    else:
        log_loss = None
    scores = {
        "accuracy": _num(tp.sum() / n) if n else None,
        "balanced_accuracy": macro(recall),
        "precision_macro": macro(precision), "recall_macro": macro(recall),
        "f1_macro": macro(f1),
        "precision_weighted": weighted(precision), "recall_weighted": weighted(recall),
        "f1_weighted": weighted(f1),
    }
    scores.update(precision=scores["precision_macro"], recall=scores["recall_macro"],
                  f1=scores["f1_macro"], roc_auc=_num(auc) if auc is not None else None,
                  log_loss=log_loss, n=n)
    per_class = [{"label": labels[j], "precision": _num(precision[j]),
                  "recall": _num(recall[j]), "f1": _num(f1[j]), "support": int(support[j]),
                  "roc_auc": aucs[j]} for j in range(c)]
    return {"metrics": scores, "per_class": per_class, "confusion": confusion.tolist(),
            "curves": _curves(y[known], probs[known], labels, support, auc)}


def _curves(y: np.ndarray, probs: np.ndarray, labels: list[str], support: np.ndarray,
            auc: float | None) -> dict[str, list[dict[str, Any]]]:
    if len(labels) == 2:
        chosen = [1] if auc is not None else []
    else:
        present = [j for j in range(len(labels)) if support[j] > 0]
        if len(present) < 2:
            present = []
        largest = sorted(present, key=lambda j: -support[j])[:MAX_CURVES]
        chosen = sorted(largest)
    roc, pr = [], []
    for j in chosen:
        positive = y == j
        fpr, tpr = downsample(*roc_curve(positive, probs[:, j]), CURVE_POINTS)
        recall, precision, ap = pr_curve(positive, probs[:, j])
        recall, precision = downsample(recall, precision, CURVE_POINTS)
        roc.append({"label": labels[j], "fpr": _nums(fpr), "tpr": _nums(tpr),
                    "auc": roc_auc(positive, probs[:, j])})
        pr.append({"label": labels[j], "recall": _nums(recall), "precision": _nums(precision),
                   "average_precision": ap})
    return {"roc": roc, "pr": pr}


def _regression(y: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    n = len(y)
    err = pred - y
    if n:
        ss_tot = float(((y - y.mean()) ** 2).sum())
        nonzero = y != 0
        mape = (_num(np.mean(np.abs(err[nonzero]) / np.abs(y[nonzero])))
                if nonzero.any() else None)
        scores = {"mae": _num(np.abs(err).mean()), "rmse": _num(np.sqrt((err ** 2).mean())),
                  "r2": _num(1 - (err ** 2).sum() / ss_tot) if ss_tot > 0 else None,
                  "mape": mape, "n": n}
    else:
        scores = {"mae": None, "rmse": None, "r2": None, "mape": None, "n": 0}
    counts, edges = np.histogram(err[np.isfinite(err)], bins=RESIDUAL_BINS)
    return {"metrics": scores,
            "residuals": {"bins": _short(edges), "counts": counts.astype(int).tolist()}}


# -- permutation importance ----------------------------------------------------------------


def _score(task: str, y: np.ndarray, out: np.ndarray) -> float:
    """Accuracy, or R² (0 when the targets do not vary: nothing to explain)."""
    out = np.asarray(out)
    if task == "classification":
        return float((out.reshape(len(y), -1).argmax(axis=1) == y).mean())
    pred = out.reshape(-1).astype(np.float64)
    y = y.astype(np.float64)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    return float(1 - ((pred - y) ** 2).sum() / ss_tot) if ss_tot > 0 else 0.0


def importance_plan(rows: int, columns: int, repeats: int = 3,
                    max_rows: int = IMPORTANCE_ROWS,
                    budget: int = IMPORTANCE_EVALUATIONS) -> tuple[int, int]:
    """(rows, repeats) keeping rows × columns × repeats within ``budget``: a wide table
    gets one shuffle per column first, then fewer rows (never under
    ``IMPORTANCE_MIN_ROWS``; the time limit bounds what is left)."""
    rows = min(rows, max_rows)
    columns = max(1, columns)
    if rows * columns * repeats > budget:
        repeats = 1
    if rows * columns * repeats > budget:
        rows = min(rows, max(IMPORTANCE_MIN_ROWS, budget // (columns * repeats)))
    return rows, repeats


def permutation_importance(
    run: Run, tensors: Mapping[str, np.ndarray],
    slices: Mapping[str, tuple[str, int, int | None]], y_true: np.ndarray, task: str,
    repeats: int = 3, seed: int = 0, max_rows: int = IMPORTANCE_ROWS,
    emit: Emit | None = None, *, budget: int = IMPORTANCE_EVALUATIONS,
    time_limit: float | None = IMPORTANCE_SECONDS,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """How much the score (accuracy or R²) drops when one raw column's values are shuffled
    across rows, ``repeats`` shuffles each, on at most ``max_rows`` rows (seeded).
    ``slices`` maps each raw column to the part of the tensors it fills
    (:func:`studio.core.datasets.recipe.column_slices`).

    Rows and repeats shrink so that rows × columns × repeats stays within ``budget``
    (:func:`importance_plan`), and, when the unshuffled run shows that every column would
    not be scored within ``time_limit`` seconds, to what fits. Past ``time_limit`` seconds,
    or once ``should_stop()`` is true (asked between columns; an exception it raises
    propagates), the columns scored so far are kept: "partial" is true and "columns" says
    how many of "of" were scored."""
    started = time.perf_counter()
    y = np.asarray(y_true)
    n = len(y)
    rows_wanted, repeats = importance_plan(n, len(slices), repeats, max_rows, budget)
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, rows_wanted, replace=False)) if n > rows_wanted \
        else np.arange(n)
    sample = {k: np.asarray(v)[rows] for k, v in tensors.items()}
    y = y[rows]
    base = _score(task, y, run(sample))
    if time_limit is not None and len(slices):
        # A heavy model (periodic embeddings on 400 columns: 0.16 s per 600 rows) would
        # score only the first columns in time: fewer rows and shuffles let it score all.
        per_row = (time.perf_counter() - started) / max(1, len(rows))
        fits = int(0.9 * time_limit / (per_row * len(slices))) if per_row > 0 else len(rows)
        if len(rows) * repeats > fits:
            repeats = 1
            keep = min(len(rows), max(IMPORTANCE_MIN_ROWS, fits))
            if keep < len(rows):
                pick = np.sort(rng.choice(len(rows), keep, replace=False))
                rows, y = rows[pick], y[pick]
                sample = {k: v[pick] for k, v in sample.items()}
                base = _score(task, y, run(sample))
    total, done = len(slices) * repeats, 0
    features = []
    for name, (tensor, start, stop) in slices.items():
        if (should_stop is not None and should_stop()) or (
                time_limit is not None and time.perf_counter() - started > time_limit):
            break
        original = sample[tensor]
        drops = []
        for _ in range(repeats):
            if emit is not None:
                emit(Progress("evaluate", done, total, f"importance of {name!r}"))
            shuffled = original.copy()
            shuffled[:, start:stop] = original[rng.permutation(len(rows)), start:stop]
            drops.append(base - _score(task, y, run({**sample, tensor: shuffled})))
            done += 1
        # a model that outputs NaN scores NaN: null here, as everywhere in the document
        features.append({"feature": name, "mean": _num(np.mean(drops)),
                         "std": _num(np.std(drops))})
    if emit is not None:
        emit(Progress("evaluate", total, total, "importance done"))
    # stable: ties keep the recipe's order
    features.sort(key=lambda f: -f["mean"] if f["mean"] is not None else math.inf)
    return {"metric": "accuracy" if task == "classification" else "r2", "repeats": repeats,
            "rows": len(rows), "features": features, "partial": len(features) < len(slices),
            "columns": len(features), "of": len(slices)}


# -- the document --------------------------------------------------------------------------


def _row_values(recipe: Mapping[str, Any]) -> int:
    """Preprocessed values one row makes, across the model's tensors."""
    return max(1, sum(math.prod(s["shape"][1:]) for s in model_inputs(recipe)))


def predict_rows(run: Run, recipe: Mapping[str, Any], frame: pd.DataFrame,
                 allow_paths: bool = False, emit: Emit | None = None,
                 row_ids: np.ndarray | None = None) -> np.ndarray:
    """The model's output on raw rows, preprocessed a bounded chunk at a time. A bad value
    is reported with its row number in ``row_ids`` (the dataset's own numbering)."""
    n = len(frame)
    step = max(1, min(CHUNK_ROWS, CHUNK_VALUES // _row_values(recipe)))
    parts = []
    for start in range(0, n, step):
        if emit is not None:
            emit(Progress("evaluate", start, n, f"predicting {start:,}/{n:,} rows"))
        try:
            tensors = transform_inputs(recipe, frame.iloc[start:start + step], allow_paths)
        except InputError as exc:
            raise InputError(_renumber(str(exc), start, row_ids)) from None
        parts.append(np.asarray(run(tensors)))
    if emit is not None:
        emit(Progress("evaluate", n, n, f"predicted {n:,} rows"))
    return np.concatenate(parts) if parts else np.zeros((0, 1), dtype=np.float32)


def _renumber(message: str, start: int, row_ids: np.ndarray | None) -> str:
    """The recipe numbers rows within the chunk it was given; a person needs the row of
    the dataset."""
    def fix(m: re.Match[str]) -> str:
        i = start + int(m.group(1))
        return f"row {int(row_ids[i]) if row_ids is not None and i < len(row_ids) else i}"

    return re.sub(r"\brow (\d+)\b", fix, message, count=1)


def _text(value: Any) -> str:
    if is_missing(value):
        return ""
    # a measurement's 17 digits are noise to a reader; 10 keep ids and prices exact
    text = f"{value:.10g}" if isinstance(value, float) and not value.is_integer() \
        else as_category(value)
    return text if len(text) <= VALUE_CHARS else text[:VALUE_CHARS - 1] + "…"


def evaluate_model(
    run: Run, recipe: Mapping[str, Any], frame: pd.DataFrame, y_true: np.ndarray, *,
    row_ids: Sequence[int] | np.ndarray, dataset: str, split: str,
    labels: Sequence[str] | None, task: str, allow_paths: bool = False,
    importance: bool = True, seed: int = 0, emit: Emit | None = None,
    shown: pd.DataFrame | None = None, actual_text: Sequence[str | None] | None = None,
    scores: np.ndarray | None = None,
    should_stop: Callable[[], bool] | None = None,
    importance_seconds: float | None = IMPORTANCE_SECONDS,
) -> dict[str, Any]:
    """The evaluation document of ``run`` on the raw rows ``frame`` whose answers are
    ``y_true`` (class indices into ``labels``, -1 for a class the model never saw; or
    values). ``row_ids``: each row's number in the dataset's stored frame. ``shown``: the
    values the worst errors show, when they differ from ``frame``'s (an image dataset
    shows its stored path, not the picture's file); ``actual_text``: each row's target as
    text, naming the classes the model never saw; ``scores``: the model's outputs on
    these rows when the caller has them already (see :func:`predict_rows`). ``should_stop``
    and ``importance_seconds`` may leave the importance partial
    (:func:`permutation_importance`)."""
    n = len(frame)
    y = np.asarray(y_true, dtype=np.int64 if task == "classification" else np.float64)
    ids = np.asarray(row_ids, dtype=np.int64)
    if len(y) != n or len(ids) != n:
        raise ValueError(f"{n} rows, {len(y)} answers and {len(ids)} row numbers")
    if n == 0:
        raise InputError(f"no labelled rows of {dataset!r} to evaluate")
    out = predict_rows(run, recipe, frame, allow_paths, emit, ids) if scores is None \
        else np.asarray(scores)
    if len(out) != n:
        raise ValueError(f"{len(out)} outputs for {n} rows")
    names = list(labels) if labels is not None else None
    doc: dict[str, Any] = {"task": task, "dataset": dataset, "split": split, "n": n}
    if task == "classification":
        doc["labels"] = names
    doc.update(metrics(task, y, out, names))
    rng = np.random.default_rng(seed)
    keep = np.arange(n) if n <= ROWS_KEPT else np.sort(rng.permutation(n)[:ROWS_KEPT])
    if task == "classification":
        probs = out.reshape(n, -1)
        pred = probs.argmax(axis=1)
        confidence = probs[np.arange(n), pred]
        doc["rows"] = {"index": ids[keep].tolist(), "actual": y[keep].tolist(),
                       "predicted": pred[keep].tolist(),
                       "confidence": _nums(confidence[keep]), "truncated": n > ROWS_KEPT}
    else:
        pred = out.reshape(-1).astype(np.float64)
        doc["rows"] = {"index": ids[keep].tolist(), "actual": _short(y[keep]),
                       "predicted": _short(pred[keep]), "truncated": n > ROWS_KEPT}
    doc["worst"] = _worst(task, recipe, shown if shown is not None else frame, y, out, ids,
                          names, actual_text)
    if task == "classification" and (y < 0).any():
        doc["unseen"] = _unseen(y, actual_text)
    doc["importance"] = None
    slices = column_slices(recipe)
    if importance and not (len(slices) == 1 and next(iter(slices.values()))[0] == "image"):
        # the sample's tensors are held at once, and copied once per shuffle
        limit = max(1, min(IMPORTANCE_ROWS, CHUNK_VALUES // _row_values(recipe)))
        limit, repeats = importance_plan(n, len(slices), max_rows=limit)
        sample = np.sort(rng.choice(n, limit, replace=False)) if n > limit else np.arange(n)
        tensors = transform_inputs(recipe, frame.iloc[sample], allow_paths)
        doc["importance"] = permutation_importance(
            run, tensors, slices, y[sample], task, repeats=repeats, seed=seed,
            max_rows=len(sample), emit=emit, time_limit=importance_seconds,
            should_stop=should_stop)
    return doc


def _worst(task: str, recipe: Mapping[str, Any], shown: pd.DataFrame, y: np.ndarray,
           out: np.ndarray, ids: np.ndarray, labels: list[str] | None,
           actual_text: Sequence[str | None] | None) -> list[dict[str, Any]]:
    """The most confidently wrong classifications, or the largest regression errors."""
    n = len(y)
    columns = [f["name"] for f in recipe["features"] if f["name"] in shown.columns]
    if task == "classification":
        assert labels is not None
        probs = out.reshape(n, -1)
        pred = probs.argmax(axis=1)
        confidence = probs[np.arange(n), pred]
        wrong = np.flatnonzero(pred != y)
        rows = wrong[np.argsort(-confidence[wrong], kind="mergesort")][:WORST]
    else:
        pred = out.reshape(-1).astype(np.float64)
        error = pred - y
        badness = np.where(np.isfinite(error), np.abs(error), np.inf)
        rows = np.argsort(-badness, kind="mergesort")[:WORST]
    items = []
    for i in rows.tolist():
        values = {c: _text(shown[c].iloc[i]) for c in columns}
        if task == "classification":
            actual = labels[y[i]] if y[i] >= 0 else (
                str(actual_text[i]) if actual_text is not None else "(a class the model "
                "does not know)")
            items.append({"row": int(ids[i]), "actual": actual, "predicted": labels[pred[i]],
                          "confidence": _num(confidence[i], 6), "error": None,
                          "values": values})
        else:
            items.append({"row": int(ids[i]), "actual": _short(y[i:i + 1])[0],
                          "predicted": _short(pred[i:i + 1])[0], "confidence": None,
                          "error": _short(error[i:i + 1])[0], "values": values})
    return items


def _unseen(y: np.ndarray, actual_text: Sequence[str | None] | None) -> dict[str, Any]:
    """Rows whose class the model never saw: scored as wrong, counted here by class."""
    rows = np.flatnonzero(y < 0)
    out: dict[str, Any] = {"rows": len(rows)}
    if actual_text is not None:
        counts = Counter(str(actual_text[i]) for i in rows.tolist())
        out["classes"] = dict(counts.most_common())
    return out


def onnx_runner(onnx_bytes: bytes, threads: int = 0) -> Run:
    """An ONNX graph as a ``run``: its inputs fed from the tensors of the same names, a
    bounded batch at a time. (A :class:`studio.core.predict.Predictor`'s ``infer`` is
    one too, checking the tensors against a version's manifest.)"""
    import onnxruntime as ort

    from studio.core.predict import session_options

    session = ort.InferenceSession(onnx_bytes, session_options(threads),
                                   providers=["CPUExecutionProvider"])
    types = {i.name: np.int64 if "int64" in i.type else np.float32
             for i in session.get_inputs()}

    def run(tensors: Mapping[str, np.ndarray]) -> np.ndarray:
        missing = [name for name in types if name not in tensors]
        if missing:
            raise InputError(f"missing input tensor {missing[0]!r}")
        feed = {name: np.ascontiguousarray(tensors[name], dtype=t) for name, t in types.items()}
        rows = len(next(iter(feed.values())))
        parts = [session.run(None, {k: v[i:i + CHUNK_ROWS] for k, v in feed.items()})[0]
                 for i in range(0, rows, CHUNK_ROWS)]
        return np.concatenate(parts) if parts else session.run(None, feed)[0]

    return run
