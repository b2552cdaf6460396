"""Input drift: how far the rows a server sees have moved from the rows the model trained on.

Training keeps a *reference* in the manifest: for each table column, its training rows'
distribution over ten bins (deciles of the preprocessed values, so the same edges apply to
what a server feeds the model) or over its categories (plus one bin for unknown or missing).
A server counts the rows it runs into the same bins and compares them with the population
stability index, PSI = Σ (a − e) · ln(a / e). Below 0.1 a column is stable; over 0.25 it has
moved enough that the model's scores on it should not be trusted without a look.

The counts are made off the request path: :meth:`DriftMonitor.observe` only keeps a
reference to the rows (an append), and :meth:`DriftMonitor.report` bins what has come since.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np

BINS = 10
PSI_MOVED = 0.25
MIN_ROWS = 200  # fewer rows than this say nothing reliable about a distribution
WINDOW_BUCKETS = 8  # the report looks at the newest WINDOW_BUCKETS × BUCKET_ROWS rows
BUCKET_ROWS = 1000
# values kept for binning until the next report; past this, new rows are skipped (it
# bounds the memory held and the work a report does, whatever a row's width)
MAX_PENDING_VALUES = 1_000_000
_FLOOR = 1e-4  # an empty bin counts as this share, so ln() stays finite


def reference(recipe: Mapping[str, Any], matrix: np.ndarray) -> dict[str, Any] | None:
    """The training rows' distribution per table column of ``matrix`` (the ``input``
    tensor the recipe makes); None for a recipe without table columns."""
    features, j = [], 0
    for f in recipe["features"]:
        kind = f["kind"]
        if kind not in ("numeric", "categorical", "ordinal"):
            continue
        width = len(f["categories"]) if kind == "categorical" else 1
        entry: dict[str, Any] = {"name": f["name"], "kind": kind, "column": j, "width": width}
        if kind == "numeric":
            col = matrix[:, j].astype(np.float64)
            edges = np.unique(np.quantile(col, np.linspace(0, 1, BINS + 1)[1:-1]))
            entry["edges"] = [float(e) for e in edges]
        else:
            entry["categories"] = len(f["categories"])
        entry["expected"] = _shares(_bin(entry, matrix))
        features.append(entry)
        j += width
    return {"rows": len(matrix), "features": features} if features else None


def _bin(entry: Mapping[str, Any], matrix: np.ndarray) -> np.ndarray:
    """Each row's bin for one column: counts over ``len(expected)`` bins."""
    j = entry["column"]
    if entry["kind"] == "numeric":
        idx = np.searchsorted(np.asarray(entry["edges"]), matrix[:, j], side="right")
        return np.bincount(idx, minlength=len(entry["edges"]) + 1)
    k = entry["categories"]
    if entry["kind"] == "ordinal":
        codes = matrix[:, j].astype(np.int64)
    else:
        block = matrix[:, j:j + entry["width"]]
        codes = np.where(block.max(axis=1) > 0, block.argmax(axis=1), -1)
    codes = np.where((codes < 0) | (codes >= k), k, codes)  # unknown or missing: the last bin
    return np.bincount(codes, minlength=k + 1)


def _shares(counts: np.ndarray) -> list[float]:
    total = max(int(counts.sum()), 1)
    return [round(float(c) / total, 6) for c in counts]


def psi(expected: np.ndarray, counts: np.ndarray) -> float:
    """Population stability index of ``counts`` against the ``expected`` shares."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), _FLOOR)
    a = np.maximum(counts / max(counts.sum(), 1), _FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


class DriftMonitor:
    """Running counts of the rows one served version runs, against its reference."""

    def __init__(self, ref: Mapping[str, Any], input_name: str = "input") -> None:
        self.ref, self.input_name = ref, input_name
        self._pending: collections.deque[np.ndarray] = collections.deque()
        self._pending_values = 0
        self._buckets: collections.deque[list[np.ndarray]] = collections.deque(
            maxlen=WINDOW_BUCKETS)
        self._bucket_rows = BUCKET_ROWS  # the first row opens a fresh bucket
        self.rows = 0
        self.skipped = 0
        self._lock = threading.Lock()

    def observe(self, tensors: Mapping[str, np.ndarray]) -> None:
        """Keep the rows of one model call for binning later (cheap: on the request path)."""
        x = tensors.get(self.input_name)
        if x is None or x.ndim != 2:
            return
        with self._lock:  # batches of several models' threads, and a report, at once
            if self._pending_values + x.size > MAX_PENDING_VALUES:
                self.skipped += len(x)
                return
            self._pending.append(x)
            self._pending_values += x.size

    def report(self) -> dict[str, Any]:
        """Each column's PSI over the newest rows, and whether it has moved."""
        with self._lock:
            self._drain()
            n = len(self.ref["features"])
            window = [sum((b[1][i] for b in self._buckets),
                          start=np.zeros(len(self.ref["features"][i]["expected"]), np.int64))
                      for i in range(n)]
            rows = int(sum(b[0] for b in self._buckets))
        ready = rows >= MIN_ROWS
        columns = []
        for i, entry in enumerate(self.ref["features"]):
            value = psi(np.asarray(entry["expected"]), window[i]) if ready else None
            columns.append({"column": entry["name"], "psi": None if value is None
                            else round(value, 4),
                            "moved": bool(value is not None and value > PSI_MOVED)})
        return {"rows_seen": self.rows, "window_rows": rows, "ready": ready,
                "threshold": PSI_MOVED, "columns": columns,
                "moved": [c["column"] for c in columns if c["moved"]]}

    def _drain(self) -> None:
        if not self._pending:
            return
        # one array, binned a bucket at a time: a server answering one row per call keeps
        # thousands of one-row arrays, and binning each alone costs ~40 µs a row
        pending = list(self._pending)
        self._pending.clear()
        self._pending_values = 0
        try:
            rows = np.concatenate(pending) if len(pending) > 1 else pending[0]
        except ValueError:  # widths that differ cannot be joined: each on its own
            for x in pending:
                self._bin_rows(x)
            return
        self._bin_rows(rows)

    def _bin_rows(self, x: np.ndarray) -> None:
        start = 0
        while start < len(x):
            if self._bucket_rows >= BUCKET_ROWS:
                self._buckets.append([0, [np.zeros(len(e["expected"]), np.int64)
                                          for e in self.ref["features"]]])
                self._bucket_rows = 0
            part = x[start:start + BUCKET_ROWS - self._bucket_rows]
            start += len(part)
            bucket = self._buckets[-1]
            bucket[0] += len(part)
            for i, entry in enumerate(self.ref["features"]):
                bucket[1][i] += _bin(entry, part)
            self._bucket_rows += len(part)
            self.rows += len(part)
