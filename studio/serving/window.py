"""The last minute of traffic in one-second buckets: throughput, latency percentiles, error
rate and batch sizes, per served model and version and for the whole server.

Prometheus counters only grow; a live chart needs rates and percentiles over a recent window,
which is what this keeps. Latencies are counted in logarithmic bins (8 % wide), so a second
costs a few dozen integers however many requests it saw, and a percentile is read to within
about 4 %.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

SECONDS = 60
_RING = SECONDS + 1  # the second being filled, plus the last SECONDS complete ones
_BASE_S = 1e-5  # the first bin's lower edge: 10 µs
_GROWTH = 1.08
_LOG_GROWTH = math.log(_GROWTH)
_BINS = 210  # 10 µs × 1.08^210 ≈ 100 s: every latency a request can have
Key = tuple[str, str]  # (model, version)


@dataclass
class _Second:
    second: int = -1
    requests: int = 0
    errors: int = 0
    rows: int = 0
    batches: int = 0
    batch_rows: int = 0
    batch_requests: int = 0
    latency: dict[int, int] = field(default_factory=dict)  # bin → requests

    def reset(self, second: int) -> None:
        self.second = second
        self.requests = self.errors = self.rows = 0
        self.batches = self.batch_rows = self.batch_requests = 0
        self.latency = {}

    def add(self, other: _Second) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.rows += other.rows
        self.batches += other.batches
        self.batch_rows += other.batch_rows
        self.batch_requests += other.batch_requests
        for b, n in other.latency.items():
            self.latency[b] = self.latency.get(b, 0) + n


class RollingWindow:
    """Requests and batches of the last :data:`SECONDS` seconds. Not locked: its owner
    records and reads under its own lock."""

    def __init__(self) -> None:
        self._rings: dict[Key, list[_Second]] = {}

    def _slot(self, key: Key, second: int) -> _Second:
        ring = self._rings.get(key)
        if ring is None:
            ring = self._rings[key] = [_Second() for _ in range(_RING)]
        slot = ring[second % _RING]
        if slot.second != second:
            slot.reset(second)
        return slot

    def request(self, key: Key, second: int, error: bool, latency_s: float, rows: int) -> None:
        b = _bin(latency_s)
        slot = self._slot(key, second)
        slot.requests += 1
        slot.errors += error
        slot.rows += rows
        slot.latency[b] = slot.latency.get(b, 0) + 1

    def batch(self, key: Key, second: int, requests: int, rows: int) -> None:
        slot = self._slot(key, second)
        slot.batches += 1
        slot.batch_requests += requests
        slot.batch_rows += rows

    def snapshot(self, now_s: float) -> tuple[list[dict[str, Any]], dict[Key, dict[str, Any]]]:
        """Per second (the last :data:`SECONDS` complete ones, oldest first, every model
        together), and a summary of the whole window per key."""
        last = int(now_s) - 1  # the second being filled is not over: it would read low
        seconds = range(last - SECONDS + 1, last + 1)
        totals = {s: _Second(second=s) for s in seconds}
        per_key: dict[Key, dict[str, Any]] = {}
        for key, ring in self._rings.items():
            kept = [slot for slot in ring if slot.second in totals]
            whole = _Second()
            for slot in kept:
                totals[slot.second].add(slot)
                whole.add(slot)
            per_key[key] = summary(whole, SECONDS)
        series = [{"t": s, **summary(totals[s], 1)} for s in seconds]
        return series, per_key


def summary(s: _Second, seconds: int) -> dict[str, Any]:
    """What a chart shows of some seconds of traffic; None where nothing was measured."""
    p50, p95, p99 = percentiles(s.latency, (0.50, 0.95, 0.99))
    return {
        "requests": s.requests, "errors": s.errors, "rows": s.rows,
        "throughput": s.requests / seconds,  # requests per second
        "error_rate": s.errors / s.requests if s.requests else None,
        "p50_ms": p50, "p95_ms": p95, "p99_ms": p99,
        "batches": s.batches,
        "mean_batch_rows": s.batch_rows / s.batches if s.batches else None,
        "mean_batch_requests": s.batch_requests / s.batches if s.batches else None,
    }


def empty() -> dict[str, Any]:
    """The summary of a window without traffic."""
    return summary(_Second(), SECONDS)


def percentiles(bins: dict[int, int], qs: tuple[float, ...]) -> list[float | None]:
    """Each quantile's latency in milliseconds (the middle of its bin, geometrically)."""
    total = sum(bins.values())
    if not total:
        return [None] * len(qs)
    out: list[float | None] = []
    ordered = sorted(bins.items())
    for q in qs:
        rank, seen = q * total, 0
        for b, n in ordered:
            seen += n
            if seen >= rank:
                out.append(round(_BASE_S * _GROWTH ** (b + 0.5) * 1000, 4))
                break
    return out


def _bin(latency_s: float) -> int:
    if latency_s <= _BASE_S:
        return 0
    return min(_BINS - 1, int(math.log(latency_s / _BASE_S) / _LOG_GROWTH))
