"""Adaptive batching: concurrent requests for one model run as one ONNX Runtime call.

Requests queue per model; a worker takes the first and, without waiting, whatever else is
already queued (up to ``max_batch_size`` rows, or until ``max_batch_delay_s`` has passed
while more keep coming), joins their tensors along the batch axis, runs them once, and hands
each caller its own rows back. A lone request is never held back waiting for company: when
the queue is empty the batch runs at once (a fixed wait costs TorchServe and MLServer 4–8×
at concurrency 1). Batches form by themselves under load, from the requests that arrive
while the previous batch runs.

A batch that fails runs again one request at a time, so one caller's bad tensor is that
caller's error alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
import numpy as np

Tensors = Mapping[str, np.ndarray]
Run = Callable[[Tensors], dict[str, np.ndarray]]


@dataclass(frozen=True)
class BatchConfig:
    max_batch_size: int = 64  # rows in one call
    max_batch_delay_s: float = 0.002  # the longest a batch keeps gathering, once started
    concurrency: int = 1  # batches of one model in flight at once


@dataclass
class _Request:
    tensors: Tensors
    rows: int
    future: asyncio.Future[dict[str, np.ndarray]] = field(repr=False)

    def key(self) -> tuple[Any, ...]:
        """What requests must share to be joined: input names, types and row shapes."""
        return tuple((n, x.dtype.str, x.shape[1:]) for n, x in sorted(self.tensors.items()))


@dataclass
class BatchStats:
    batches: int = 0
    rows: int = 0
    sizes: list[int] = field(default_factory=list)  # requests per batch, the latest few


class Batcher:
    """The batching queue of one model. Made inside the event loop that will use it."""

    def __init__(self, run: Run, config: BatchConfig | None = None,
                 limiter: anyio.CapacityLimiter | None = None) -> None:
        self.run, self.config, self.limiter = run, config or BatchConfig(), limiter
        self.queue: asyncio.Queue[_Request] = asyncio.Queue()
        self.stats = BatchStats()
        self._workers: list[asyncio.Task[None]] = []

    async def submit(self, tensors: Tensors) -> dict[str, np.ndarray]:
        """The model's outputs for ``tensors`` (each with the batch axis first)."""
        rows = _rows(tensors)
        if rows >= self.config.max_batch_size:  # already a batch: nothing to gain in line
            return await self._call(tensors)
        self._start()
        future: asyncio.Future[dict[str, np.ndarray]] = \
            asyncio.get_running_loop().create_future()
        self.queue.put_nowait(_Request(tensors, rows, future))
        return await future

    @property
    def depth(self) -> int:
        """Requests waiting for a batch."""
        return self.queue.qsize()

    async def close(self) -> None:
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers.clear()

    def _start(self) -> None:
        self._workers = [t for t in self._workers if not t.done()]
        while len(self._workers) < self.config.concurrency:
            self._workers.append(asyncio.get_running_loop().create_task(self._work()))

    async def _work(self) -> None:
        while True:
            batch = await self._gather()
            await self._answer(batch)

    async def _gather(self) -> list[_Request]:
        first = await self.queue.get()
        batch, rows, key = [first], first.rows, first.key()
        loop = asyncio.get_running_loop()
        until = loop.time() + self.config.max_batch_delay_s
        yielded = False
        while rows < self.config.max_batch_size and loop.time() < until:
            try:
                nxt = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                if yielded:  # nobody else is coming right now: run what there is
                    break
                # one turn of the loop lets requests already being parsed join
                await asyncio.sleep(0)
                yielded = True
                continue
            yielded = False
            if nxt.key() != key or rows + nxt.rows > self.config.max_batch_size:
                self.queue.put_nowait(nxt)  # the next batch starts with it
                break
            batch.append(nxt)
            rows += nxt.rows
        return batch

    async def _answer(self, batch: list[_Request]) -> None:
        live = [r for r in batch if not r.future.done()]  # a caller that gave up is skipped
        if not live:
            return
        self.stats.batches += 1
        self.stats.rows += sum(r.rows for r in live)
        self.stats.sizes = [*self.stats.sizes[-99:], len(live)]
        if len(live) == 1:
            await self._settle(live[0])
            return
        joined = {name: np.concatenate([r.tensors[name] for r in live])
                  for name in live[0].tensors}
        try:
            out = await self._call(joined)
        except Exception:
            # one request's bad values fail the whole call: each runs alone, so only its
            # own caller hears of it
            for r in live:
                await self._settle(r)
            return
        start = 0
        for r in live:
            if not r.future.done():
                r.future.set_result({k: v[start:start + r.rows] for k, v in out.items()})
            start += r.rows

    async def _settle(self, r: _Request) -> None:
        try:
            out = await self._call(r.tensors)
        except Exception as exc:
            if not r.future.done():
                r.future.set_exception(exc)
            return
        if not r.future.done():
            r.future.set_result(out)

    async def _call(self, tensors: Tensors) -> dict[str, np.ndarray]:
        return await anyio.to_thread.run_sync(self.run, tensors, limiter=self.limiter)


def _rows(tensors: Tensors) -> int:
    sizes = {int(x.shape[0]) for x in tensors.values()}
    if len(sizes) != 1:
        from studio.core.errors import InputError

        raise InputError(f"inputs disagree on the batch size: {sorted(sizes)}")
    return sizes.pop()
