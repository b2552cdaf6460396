"""The request being answered, as the route that runs a model sees it: which version
answered and how many rows, for the metrics and the request log (``metrics.instrument``
sets it up; it is carried into worker threads with the context)."""

from __future__ import annotations

import contextvars
from typing import Protocol


class BatchObserver(Protocol):
    def observe_batch(self, model: str, version: str | int, requests: int,
                      rows: int) -> None: ...


class Call:
    """One request as it goes."""

    __slots__ = ("metrics", "model", "rows", "status", "version")

    def __init__(self, metrics: BatchObserver) -> None:
        self.metrics = metrics
        self.model: str | None = None
        self.version = ""
        self.rows = 0
        self.status = 500  # an app that raises before answering


current: contextvars.ContextVar[Call | None] = contextvars.ContextVar(
    "studio_call", default=None)


def served(model: str, version: str | int, rows: int, batch: bool = False) -> None:
    """Called where a route ran a model: which version answered, and with how many rows.
    ``batch``: the request ran alone, as its own ONNX Runtime call (the records route); V2
    requests go through the batcher, which reports its batches itself. A no-op outside a
    request (a script calling the repository directly)."""
    call = current.get()
    if call is None:
        return
    call.model, call.version, call.rows = model, str(version), rows
    if batch:
        call.metrics.observe_batch(model, version, 1, rows)
