"""Adaptive batching: concurrent requests for one model run as one ONNX Runtime call.

Requests queue per model; a worker takes the first and, without waiting, whatever else is
already queued (up to ``max_batch_size`` rows, or until ``max_batch_delay_s`` has passed
while more keep coming), joins their tensors along the batch axis, runs them once, and hands
each caller its own rows back. A lone request is never held back waiting for company: when
the queue is empty the batch runs at once (a fixed wait costs TorchServe and MLServer 4–8×
at concurrency 1). Batches form by themselves under load, from the requests that arrive
while the previous batch runs.

A batch that fails runs again one request at a time, so one caller's bad tensor is that
caller's error alone; so does a batch whose outputs do not keep one row per input row (an
output without a batch axis cannot be cut between callers). The queue is bounded: past
``max_queue`` waiting requests a caller hears :class:`BusyError` at once (HTTP 503) instead of
queueing without end.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import numpy as np

from studio.core.errors import BusyError, InputError
from studio.core.predict import usable_cores

log = logging.getLogger("studio.serving")
Tensors = Mapping[str, np.ndarray]
Run = Callable[[Tensors], dict[str, np.ndarray]]


@dataclass(frozen=True)
class BatchConfig:
    max_batch_size: int = 64  # rows in one call
    max_batch_delay_s: float = 0.002  # the longest a batch keeps gathering, once started
    concurrency: int = 1  # batches of one model in flight at once
    max_queue: int = 1024  # requests waiting for a batch; more are refused (503)
    imported: bool = False  # batch graphs imported from elsewhere too (the server's choice)
    # a call that takes less than this runs on the event loop: a hop to a thread costs more
    # than the call itself, and requests keep queueing in the socket buffers meanwhile
    inline_s: float = 0.0005
    # With one core to run on, nothing runs beside a call in a thread; there the hop only
    # adds switches (and cold caches) to every batch, so calls this short run inline too.
    inline_one_core_s: float = 0.05


Done = Callable[[dict[str, np.ndarray] | BaseException], None]


class _Request:
    __slots__ = ("done", "future", "rows", "tensors")

    def __init__(self, tensors: Tensors, rows: int,
                 future: asyncio.Future[dict[str, np.ndarray]] | None,
                 done: Done | None = None) -> None:
        self.tensors, self.rows, self.future, self.done = tensors, rows, future, done

    def gone(self) -> bool:
        """The caller stopped waiting (a callback's caller never does)."""
        return self.future is not None and self.future.done()

    def settle(self, result: dict[str, np.ndarray] | BaseException) -> None:
        """Give the caller its answer; once (a second one is dropped)."""
        done = self.done
        if done is not None:
            self.done = None
            try:
                done(result)
            except Exception:  # the caller's own bug: the batch's other callers go on
                log.exception("a batched request's callback failed")
            return
        future = self.future
        if future is None or future.done():
            return
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)

    def key(self) -> tuple[Any, ...]:
        """What requests must share to be joined: input names, types and row shapes."""
        if len(self.tensors) == 1:
            ((n, x),) = self.tensors.items()
            return n, x.dtype.str, x.shape[1:]
        return tuple((n, x.dtype.str, x.shape[1:]) for n, x in sorted(self.tensors.items()))


class Batcher:
    """The batching queue of one model. Made inside the event loop that will use it."""

    def __init__(self, run: Run, config: BatchConfig | None = None,
                 limiter: anyio.CapacityLimiter | None = None) -> None:
        self.run, self.config, self.limiter = run, config or BatchConfig(), limiter
        # a deque, not an asyncio.Queue: a batch looks at the next request before taking
        # it, and one wake-up future costs less than the Queue's bookkeeping per request
        self.queue: collections.deque[_Request] = collections.deque()
        self._idle: list[asyncio.Future[None]] = []  # workers waiting for requests
        self.on_batch: Callable[[int, int], None] | None = None  # (requests, rows) per call
        self._workers: list[asyncio.Task[None]] = []
        self._closed = False
        # a call's usual duration and rows (moving averages): a call's cost is guessed
        # from them in proportion to its rows, so one bigger than usual is not run inline
        # on a guess made from small ones
        self._cost_s: float | None = None
        self._usual_rows = 1.0
        c = self.config
        self._inline_s = c.inline_one_core_s if usable_cores() == 1 else c.inline_s

    async def submit(self, tensors: Tensors) -> dict[str, np.ndarray]:
        """The model's outputs for ``tensors`` (each with the batch axis first)."""
        future = self._enqueue(tensors, None)
        assert future is not None
        return await future

    def send(self, tensors: Tensors, done: Done) -> None:
        """Queue ``tensors``; ``done`` gets the outputs (or the exception) from the batch
        itself, in the same turn of the event loop as the call, with no future between
        (the protocol's fast lane answers from it). Raises at once when the queue is full
        or closing."""
        self._enqueue(tensors, done)

    def _enqueue(self, tensors: Tensors, done: Done | None
                 ) -> asyncio.Future[dict[str, np.ndarray]] | None:
        rows = _rows(tensors)
        if self._closed:
            raise BusyError("this model is being unloaded; send the request again")
        if rows >= self.config.max_batch_size:  # already a batch: nothing to gain in line
            self._count(1, rows)
            task = asyncio.ensure_future(self._call(tensors))
            if done is None:
                return task
            alone = _Request(tensors, rows, None, done)
            task.add_done_callback(lambda t: alone.settle(
                BusyError("this model was unloaded; send the request again")
                if t.cancelled() else t.exception() or t.result()))
            return None
        if len(self.queue) >= self.config.max_queue:
            raise BusyError(f"{len(self.queue)} requests are already waiting for this "
                            "model; try again shortly")
        self._start()
        future = None if done is not None else asyncio.get_running_loop().create_future()
        self.queue.append(_Request(tensors, rows, future, done))
        while self._idle:  # one worker is enough for one request
            wake = self._idle.pop()
            if not wake.done():
                wake.set_result(None)
                break
        return future

    def depth_of(self) -> int:
        """Requests waiting for a batch (a method: the metrics keep it by identity)."""
        return len(self.queue)

    def stop(self) -> None:
        """End the workers of a queue nobody can send to any more (its model is gone)."""
        for task in self._workers:
            task.cancel()
        self._workers.clear()

    async def close(self) -> None:
        """Stop the workers; a caller still waiting hears :class:`BusyError`, never
        silence."""
        self._closed = True
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers.clear()
        waiting = list(self.queue)
        self.queue.clear()
        for r in waiting:
            r.settle(BusyError("this model was unloaded; send the request again"))

    def _start(self) -> None:
        if len(self._workers) == self.config.concurrency:
            for task in self._workers:  # every request asks: a plain loop, no list
                if task.done():
                    break
            else:
                return
        self._workers = [t for t in self._workers if not t.done()]
        while len(self._workers) < self.config.concurrency:
            self._workers.append(asyncio.get_running_loop().create_task(self._work()))

    async def _work(self) -> None:
        while True:
            batch = await self._gather()
            try:
                await self._answer(batch)
            except asyncio.CancelledError:
                for r in batch:  # closed mid-run: these callers must not wait forever
                    r.settle(BusyError("this model was unloaded; send the request again"))
                raise

    async def _gather(self) -> list[_Request]:
        queue = self.queue
        while not queue:
            wake = asyncio.get_running_loop().create_future()
            self._idle.append(wake)
            await wake
        first = queue.popleft()
        batch, rows, key = [first], first.rows, first.key()
        loop = asyncio.get_running_loop()
        until = loop.time() + self.config.max_batch_delay_s
        most = self.config.max_batch_size
        yielded = False
        while rows < most:
            if not queue:
                if yielded or len(batch) == 1 or loop.time() >= until:
                    break  # nobody else is coming now: run what there is
                # under load, one turn of the loop lets requests being parsed join
                try:
                    await asyncio.sleep(0)
                except asyncio.CancelledError:  # closing: those taken go back to be told
                    queue.extendleft(reversed(batch))
                    raise
                yielded = True
                continue
            yielded = False
            nxt = queue[0]
            if rows + nxt.rows > most or nxt.key() != key:
                break  # the next batch starts with it, ahead of later arrivals
            batch.append(queue.popleft())
            rows += nxt.rows
        return batch

    async def _answer(self, batch: list[_Request]) -> None:
        live = [r for r in batch if not r.gone()]  # a caller that gave up is skipped
        if not live:
            return
        if len(live) == 1:
            self._count(1, live[0].rows)
            await self._settle(live[0])
            return
        joined = {name: np.concatenate([r.tensors[name] for r in live])
                  for name in live[0].tensors}
        rows = sum(r.rows for r in live)
        self._count(len(live), rows)
        try:
            out = await self._call(joined)
            if any(v.ndim == 0 or v.shape[0] != rows for v in out.values()):
                raise InputError("an output without one row per input row")
        except Exception:
            # one request's bad values fail the whole call, and an output that is not one
            # row per row cannot be cut: each runs alone, so each caller gets its own answer
            for r in live:
                self._count(1, r.rows)
                await self._settle(r)
            return
        start = 0
        for r in live:
            r.settle({k: v[start:start + r.rows] for k, v in out.items()})
            start += r.rows

    async def _settle(self, r: _Request) -> None:
        try:
            out = await self._call(r.tensors)
        except Exception as exc:
            r.settle(exc)
            return
        r.settle(out)

    def _count(self, requests: int, rows: int) -> None:
        if self.on_batch is not None:
            self.on_batch(requests, rows)

    async def _call(self, tensors: Tensors) -> dict[str, np.ndarray]:
        if (self.limiter is None and self._cost_s is not None and self._cost_s * max(
                1.0, _rows(tensors) / self._usual_rows) < self._inline_s):
            return self._timed(tensors)
        return await anyio.to_thread.run_sync(self._timed, tensors, limiter=self.limiter)

    def _timed(self, tensors: Tensors) -> dict[str, np.ndarray]:
        start = time.perf_counter()
        out = self.run(tensors)
        took = time.perf_counter() - start
        rows = _rows(tensors)
        if self._cost_s is None:
            self._cost_s, self._usual_rows = took, float(max(rows, 1))
        else:
            self._cost_s = 0.8 * self._cost_s + 0.2 * took
            self._usual_rows = 0.8 * self._usual_rows + 0.2 * max(rows, 1)
        return out


def _rows(tensors: Tensors) -> int:
    if len(tensors) == 1:
        (x,) = tensors.values()
        return int(x.shape[0]) if x.ndim else 1
    sizes = {int(x.shape[0]) if x.ndim else 1 for x in tensors.values()}
    if len(sizes) != 1:
        raise InputError(f"inputs disagree on the batch size: {sorted(sizes)}")
    return sizes.pop()
