"""Canary: a share of one model's traffic answered by a candidate version, compared live.

Requests addressed to the canaried ref (``NAME`` or ``NAME@ALIAS``; never a pinned
``NAME:N``) go to the candidate with the given probability. For a sample of those, the
primary version runs the same tensors off the request path, and the two answers are
compared: how often a classifier picks the same class, how far a regression's values are
apart. Latency of each side is in the per-version metrics.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from studio.core.errors import InputError

COMPARE_AT_MOST = 1  # shadow runs of the primary in flight at once, per canary


@dataclass
class Canary:
    key: str  # the ref clients address
    name: str
    number: int  # the candidate version
    percent: float
    task: str | None = None
    routed: int = 0
    compared: int = 0
    agreed: int = 0
    abs_diff: float = 0.0
    _busy: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(
        COMPARE_AT_MOST), repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.percent <= 100:
            raise InputError(f"a canary's share must be above 0 and at most 100 percent, "
                             f"not {self.percent:g}")

    def pick(self) -> bool:
        """Whether this request goes to the candidate."""
        if random.random() * 100 >= self.percent:
            return False
        self.routed += 1
        return True

    def begin(self) -> bool:
        """Claim the one comparison slot; False when a comparison is already running (the
        sample stays cheap)."""
        return self._busy.acquire(blocking=False)

    def compare(self, primary: Callable[[], np.ndarray], candidate: np.ndarray) -> None:
        """Count how far the primary's answer to the same rows is from the candidate's (after
        :meth:`begin`: releases its slot)."""
        try:
            try:
                a = np.asarray(primary(), dtype=np.float64)
            except Exception:  # the primary refusing the rows is not the candidate's doing
                return
            b = np.asarray(candidate, dtype=np.float64)
            if a.shape != b.shape or not a.size:
                return
            with self._lock:
                self.compared += len(a)
                if self.task == "classification" and a.ndim == 2:
                    self.agreed += int((a.argmax(1) == b.argmax(1)).sum())
                else:
                    self.abs_diff += float(np.abs(a - b).reshape(len(a), -1).mean(1).sum())
        finally:
            self._busy.release()

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {"serves": self.key, "candidate": f"{self.name}:{self.number}",
                               "percent": self.percent, "routed": self.routed,
                               "compared_rows": self.compared}
        if self.compared:
            if self.task == "classification":
                out["agreement"] = round(self.agreed / self.compared, 4)
            else:
                out["mean_abs_difference"] = round(self.abs_diff / self.compared, 6)
        return out
