"""What the server measures: Prometheus series at ``GET /metrics``, the last minute of
traffic for ``GET /admin/stats``, and the request log, all fed from one place per request.

:func:`instrument` wraps the whole app (so a 401, a 404 or a refused body counts too);
the route that runs a model says which version answered and how many rows through
``calls.served``, and whatever runs the model says each ONNX Runtime call's size through
:meth:`ServingMetrics.observe_batch`. A name the server does not serve is labelled
``unknown``, so a client cannot grow the number of series by inventing names.

The counts are plain integers under one lock, turned into Prometheus families when scraped
(a custom collector): prometheus_client's own Counter and Histogram take a lock per value,
which made the whole per-request cost 10–17 µs here against ~5 µs this way.
"""

from __future__ import annotations

import asyncio
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.utils import floatToGoString
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from studio.core.registry.refs import version_number
from studio.serving.calls import Call, current
from studio.serving.dataplane import ModelRepository, _alias_key
from studio.serving.window import SECONDS, RollingWindow, empty

UNKNOWN = "unknown"
MODEL_ENDPOINTS = ("infer", "predict")  # the requests a window, the stats and the log count
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                   0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096, 16384, 65536)
REQUEST_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128)
_PATHS_KEPT = 4096  # paths whose parse is remembered; a client inventing paths gets no more


class RequestSink(Protocol):
    def record(self, when: float, model: str, version: str, endpoint: str, status: int,
               latency_ms: float, rows: int) -> None: ...


class _Histogram:
    """Counts per bucket (not yet cumulative) and the sum of what was observed."""

    __slots__ = ("counts", "total")

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.counts = [0] * (len(buckets) + 1)  # the last one: above every bound (+Inf)
        self.total = 0.0

    def observe(self, buckets: tuple[float, ...], value: float) -> None:
        self.counts[bisect_left(buckets, value)] += 1  # bucket i holds value <= buckets[i]
        self.total += value

    def copy(self) -> _Histogram:
        h = _Histogram.__new__(_Histogram)
        h.counts, h.total = list(self.counts), self.total
        return h


class ServingMetrics:
    """One app's counts and its own Prometheus registry (two apps never mix)."""

    def __init__(self, repo: ModelRepository, clock: Callable[[], float] = time.time) -> None:
        self.repo, self.clock = repo, clock
        self.started = time.monotonic()
        self._lock = threading.Lock()  # a batch may be observed from a worker thread
        self._requests: dict[tuple[str, str, str, int], int] = {}  # endpoint, model, v, code
        self._latency: dict[tuple[str, str, str], _Histogram] = {}  # endpoint, model, version
        self._rows: dict[tuple[str, str], int] = {}
        self._batch_rows: dict[tuple[str, str], _Histogram] = {}
        self._batch_requests: dict[tuple[str, str], _Histogram] = {}
        self._queues: dict[tuple[str, str], Callable[[], int]] = {}
        self.window = RollingWindow()
        self.extras: dict[str, Callable[[], Any]] = {}
        self.registry = CollectorRegistry()
        self.registry.register(_Collector(self))
        ProcessCollector(registry=self.registry)  # CPU seconds, memory, open files

    # -- recording ------------------------------------------------------------------------

    def observe_batch(self, model: str, version: str | int, requests: int, rows: int) -> None:
        """One ONNX Runtime call of ``requests`` requests joined into ``rows`` rows."""
        key = (model, str(version))
        second = int(self.clock())
        with self._lock:
            h = self._batch_rows.get(key)
            if h is None:
                h = self._batch_rows[key] = _Histogram(ROW_BUCKETS)
                self._batch_requests[key] = _Histogram(REQUEST_BUCKETS)
            h.observe(ROW_BUCKETS, rows)
            self._batch_requests[key].observe(REQUEST_BUCKETS, requests)
            self.window.batch(key, second, requests, rows)

    def watch_queue(self, model: str, version: str | int, depth: Callable[[], int]) -> None:
        """Report ``depth()`` (requests waiting for a batch) as the queue depth of a
        version, read when scraped; the batcher registers itself here."""
        self._queues[(model, str(version))] = depth

    def unwatch_queue(self, model: str, version: str | int,
                      depth: Callable[[], int] | None = None) -> None:
        """Stop reporting a version's queue (only ``depth``'s, when given: a version loaded
        again meanwhile has a queue of its own)."""
        key = (model, str(version))
        if depth is None or self._queues.get(key) is depth:
            self._queues.pop(key, None)

    def provide(self, key: str, snapshot: Callable[[], Any]) -> None:
        """Add ``key`` to ``/admin/stats``, computed by ``snapshot()`` on each read (drift,
        canary)."""
        self.extras[key] = snapshot

    def finish(self, call: Call, endpoint: str, name: str | None, version: str | None,
               latency_s: float, now: float) -> tuple[str, str]:
        """Count one answered request; its (model, version) labels."""
        if call.model is not None:
            model, ver = call.model, call.version
        elif name is None:
            model, ver = "", ""  # a server route (health, metrics, admin, docs)
        else:
            model, ver = self.labels(name, version)
        with self._lock:
            self._count(endpoint, model, ver, call.status, call.rows, latency_s, int(now))
        return model, ver

    def count_many(self, answered: list[tuple[str, str, str, int, int, float]],
                   now: float) -> None:
        """Count answers whose labels are known: (endpoint, model, version, status, rows,
        latency), under one lock (the lane's, gathered over a turn of the event loop)."""
        second = int(now)
        with self._lock:
            for endpoint, model, ver, code, rows, latency_s in answered:
                self._count(endpoint, model, ver, code, rows, latency_s, second)

    def _count(self, endpoint: str, model: str, ver: str, code: int, rows: int,
               latency_s: float, second: int) -> None:
        """One answer, under the lock."""
        ok = code < 400
        rows = rows if ok else 0
        counted, by_code = self._requests, (endpoint, model, ver, code)
        counted[by_code] = counted.get(by_code, 0) + 1
        key = (endpoint, model, ver)
        h = self._latency.get(key)
        if h is None:
            h = self._latency[key] = _Histogram(LATENCY_BUCKETS)
        h.counts[bisect_left(LATENCY_BUCKETS, latency_s)] += 1
        h.total += latency_s
        if rows:
            self._rows[key[1:]] = self._rows.get(key[1:], 0) + rows
        if endpoint in MODEL_ENDPOINTS:
            self.window.request(key[1:], second, not ok, latency_s, rows)

    def labels(self, name: str, version: str | None) -> tuple[str, str]:
        """(model, version) labels of a request for ``name`` that no route claimed (it
        failed before or while running the model): a served name keeps its name, anything
        else is ``unknown``."""
        repo = self.repo
        if "@" in name:
            base = name.split("@")[0]
            if base not in repo.models:
                return UNKNOWN, UNKNOWN
            if version:
                return self.labels(base, version)
            followed = repo.followed.get(_alias_key(name))
            return base, str(followed) if followed is not None else UNKNOWN
        versions = repo.models.get(name)
        if versions is None:
            return UNKNOWN, UNKNOWN
        if not version:
            latest = repo.latest.get(name)
            return name, str(latest) if latest is not None else UNKNOWN
        if version_number(version) in versions:
            return name, str(int(version))
        return name, UNKNOWN

    # -- reading --------------------------------------------------------------------------

    def exposition(self) -> tuple[bytes, str]:
        """The Prometheus text format, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def counts(self) -> dict[str, Any]:
        """A consistent copy of every count."""
        with self._lock:
            return {
                "requests": dict(self._requests),
                "latency": {k: h.copy() for k, h in self._latency.items()},
                "rows": dict(self._rows),
                "batch_rows": {k: h.copy() for k, h in self._batch_rows.items()},
                "batch_requests": {k: h.copy() for k, h in self._batch_requests.items()},
            }

    def asked(self) -> list[dict[str, str]]:
        """What the server was asked to serve (NAME:N, or NAME@ALIAS followed) and the
        version each serves now: what a restart serves again."""
        repo = self.repo
        while True:  # never waits for `changing`, which a model load holds for seconds
            try:
                pinned, followed = sorted(repo.pinned), sorted(repo.followed.items())
                break
            except RuntimeError:  # changed while copied: copy again
                continue
        return ([{"ref": f"{n}:{v}", "serves": f"{n}:{v}"} for n, v in pinned]
                + [{"ref": key, "serves": f"{key.split('@')[0]}:{v}"} for key, v in followed])

    def queue_depths(self) -> dict[tuple[str, str], int]:
        return {key: int(depth()) for key, depth in sorted(self._queues.items())}

    def snapshot(self) -> dict[str, Any]:
        """The JSON the GUI's live charts read: cumulative counts per model version (the
        same counts Prometheus reads), the last minute per second and per version."""
        served = self.repo.served()
        counts = self.counts()
        with self._lock:
            series, window = self.window.snapshot(self.clock())
        totals: dict[tuple[str, str], dict[str, Any]] = {}

        def entry(model: str, version: str) -> dict[str, Any]:
            if (model, version) not in totals:
                totals[(model, version)] = {
                    "model": model, "version": version, "requests": 0, "errors": 0,
                    "rows": 0, "served": f"{model}:{version}" in served}
            return totals[(model, version)]

        for ref in served:
            entry(*ref.rsplit(":", 1))
        for (endpoint, model, version, code), n in counts["requests"].items():
            if endpoint in MODEL_ENDPOINTS:
                e = entry(model, version)
                e["requests"] += n
                e["errors"] += n if code >= 400 else 0
        for key, n in counts["rows"].items():
            entry(*key)["rows"] += n
        for key, summary in window.items():
            entry(*key)["window"] = summary
        for e in totals.values():
            e.setdefault("window", empty())
        requests = sum(s["requests"] for s in series)
        errors = sum(s["errors"] for s in series)
        doc: dict[str, Any] = {
            "uptime_s": round(time.monotonic() - self.started, 3),
            "served": served,
            "refs": self.asked(),
            "models": [totals[k] for k in sorted(totals)],
            "window": {"seconds": SECONDS, "series": series,
                       "requests": requests, "errors": errors,
                       "throughput": requests / SECONDS,
                       "error_rate": errors / requests if requests else None},
            "queue": {f"{m}:{v}": depth for (m, v), depth in self.queue_depths().items()},
        }
        for key, snapshot in self.extras.items():
            doc[key] = snapshot()
        return doc


class _Collector:
    """The counts as Prometheus families, built when scraped."""

    def __init__(self, metrics: ServingMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        c = self.metrics.counts()
        requests = CounterMetricFamily("studio_requests", "Requests answered, by status code",
                                       labels=["endpoint", "model", "version", "code"])
        for (endpoint, model, version, code), n in sorted(c["requests"].items()):
            requests.add_metric([endpoint, model, version, str(code)], n)
        yield requests
        yield _histogram("studio_request_duration_seconds",
                         "Time from a request's arrival to its answer's last byte",
                         ["endpoint", "model", "version"], LATENCY_BUCKETS, c["latency"])
        rows = CounterMetricFamily("studio_rows", "Rows predicted in answered requests",
                                   labels=["model", "version"])
        for key, n in sorted(c["rows"].items()):
            rows.add_metric(list(key), n)
        yield rows
        yield _histogram("studio_batch_rows", "Rows per ONNX Runtime call",
                         ["model", "version"], ROW_BUCKETS, c["batch_rows"])
        yield _histogram("studio_batch_requests", "Requests joined in one ONNX Runtime call",
                         ["model", "version"], REQUEST_BUCKETS, c["batch_requests"])
        depth = GaugeMetricFamily("studio_queue_depth", "Requests waiting for a batch",
                                  labels=["model", "version"])
        for key, n in self.metrics.queue_depths().items():
            depth.add_metric(list(key), n)
        yield depth


def _histogram(name: str, help_: str, labels: list[str], buckets: tuple[float, ...],
               hists: dict[Any, _Histogram]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, help_, labels=labels)
    bounds = [floatToGoString(b) for b in buckets] + ["+Inf"]
    for key, h in sorted(hists.items()):
        cumulative, running = [], 0
        for bound, n in zip(bounds, h.counts, strict=True):
            running += n
            cumulative.append((bound, running))
        family.add_metric(list(key), cumulative, sum_value=h.total)
    return family


# -- the ASGI wrapper -----------------------------------------------------------------------


def endpoint_of(path: str) -> tuple[str, str | None, str | None]:
    """(endpoint, model name, version) of a request path, by string tests only."""
    if path.startswith("/v2/models/"):
        name, _, tail = path[11:].partition("/")
        version = None
        if tail.startswith("versions/"):
            version, _, tail = tail[9:].partition("/")
        kind = {"infer": "infer", "ready": "ready", "": "metadata"}.get(tail, "other")
        return kind, name, version
    if path.startswith("/v1/models/"):
        rest = path[11:]
        if not rest.endswith(":predict"):
            return "other", None, None
        name, _, tail = rest[:-8].partition("/")
        return "predict", name, tail[9:] if tail.startswith("versions/") else None
    if path.startswith("/v2/health/"):
        return "health", None, None
    if path == "/metrics":
        return "metrics", None, None
    if path.startswith("/admin/"):
        return "admin", None, None
    return "other", None, None


class Recorder:
    """Counts one answered request and logs it when it asked a model: the one place both
    the ASGI wrapper (``instrument``) and the protocol's fast lane (``lane.py``) finish."""

    def __init__(self, metrics: ServingMetrics, log: RequestSink | None = None) -> None:
        self.metrics, self.log = metrics, log
        self._parsed: dict[str, tuple[str, str | None, str | None]] = {}
        self._later: list[tuple[str, str, str, int, int, float]] = []

    def __call__(self, path: str, call: Call, latency_s: float) -> None:
        now = time.time()
        endpoint, name, version = self._where(path)
        model, ver = self.metrics.finish(call, endpoint, name, version, latency_s, now)
        if self.log is not None and endpoint in MODEL_ENDPOINTS:
            self.log.record(now, model, ver, endpoint, call.status, latency_s * 1000,
                            call.rows if call.status < 400 else 0)

    def _where(self, path: str) -> tuple[str, str | None, str | None]:
        where = self._parsed.get(path)
        if where is None:
            where = endpoint_of(path)
            if len(self._parsed) < _PATHS_KEPT:
                self._parsed[path] = where
        return where

    def later(self, path: str, status: int, model: str | None, version: str, rows: int,
              latency_s: float) -> None:
        """``__call__`` for an answer whose version is known (``model`` None: none ran),
        counted with the others of this turn of the event loop: the answers of one batch
        go out in one turn, and are counted under one lock."""
        endpoint, name, asked = self._where(path)
        if model is None:
            model, version = self.metrics.labels(name, asked) if name else ("", "")
        if not self._later:
            asyncio.get_running_loop().call_soon(self._count_later)
        self._later.append((endpoint, model, version, status, rows, latency_s))

    def _count_later(self) -> None:
        answered, self._later = self._later, []
        now = time.time()
        self.metrics.count_many(answered, now)
        if self.log is not None:
            record = self.log.record
            for endpoint, model, ver, code, rows, latency_s in answered:
                if endpoint in MODEL_ENDPOINTS:
                    record(now, model, ver, endpoint, code, latency_s * 1000,
                           rows if code < 400 else 0)


def instrument(app: ASGIApp, record: Recorder) -> ASGIApp:
    """``app`` with every HTTP request counted and timed, and inference requests logged."""

    async def instrumented(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        call = Call(record.metrics)
        token = current.set(call)

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                call.status = message["status"]
            await send(message)

        try:
            await app(scope, receive, send_status)
        finally:
            current.reset(token)
            record(scope["path"], call, time.perf_counter() - started)

    return instrumented
