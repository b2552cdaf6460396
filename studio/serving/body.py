"""Reading a request body without letting a client hold the server: a size limit checked
before reading, a deadline on every piece and a minimum average rate, and a process-wide
byte budget for the bodies being read and parsed at once.

The guard middleware puts one ``Intake`` per request in the ASGI scope and releases it when
the response is sent, so the budget covers the parsed request too, not only its bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import platform
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import ClientDisconnect

from studio.core.errors import InputError
from studio.serving.limits import MiB, ServeLimits

log = logging.getLogger("studio.serving")
SCOPE_KEY = "studio.intake"
STEP_BYTES = MiB  # a body of unknown length takes its budget in steps of this
TRIM_AFTER_BYTES = MiB  # give memory back once a body this big is done

__all__ = ["BodyRefused", "Busy", "ByteBudget", "ClientDisconnect", "Intake", "SlowBody",
           "TooLarge", "forget_frames", "intake_of", "read_body"]


class BodyRefused(InputError):
    """A body the server will not read; answered with ``status`` and, when ``close``,
    ``Connection: close`` (the rest of the body is never read, so the connection ends)."""

    status = 400
    close = True


class TooLarge(BodyRefused):
    status = 413


class SlowBody(BodyRefused):
    status = 408


class Busy(BodyRefused):
    """The byte budget could not be had in time: the client should retry (HTTP 503)."""

    status = 503


class ByteBudget:
    """A counting semaphore in bytes, first come first served, made for one event loop."""

    def __init__(self, total: int) -> None:
        self.total, self.used = total, 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()
        self._big_since_trim = False
        self._trimming = self._trim_again = False

    async def acquire(self, n: int, wait_s: float) -> bool:
        n = min(n, self.total)
        if not self._waiters and self.used + n <= self.total:
            self.used += n
            self._note(n)
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (n, future)
        self._waiters.append(entry)
        try:
            async with asyncio.timeout(wait_s):
                await future
        except TimeoutError:
            if future.done() and not future.cancelled():  # granted as time ran out: keep it
                return True
            with contextlib.suppress(ValueError):
                self._waiters.remove(entry)
            self._wake()  # one that was queued behind this one may fit now
            return False
        except BaseException:
            if future.done() and not future.cancelled():
                self.release(n)
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(entry)
                self._wake()
            raise
        return True

    def release(self, n: int) -> None:
        self.used -= n
        self._wake()
        if self.used == 0 and self._big_since_trim:
            self._big_since_trim = False
            self._trim_soon()

    def _note(self, n: int) -> None:
        if n >= TRIM_AFTER_BYTES:
            self._big_since_trim = True

    def _wake(self) -> None:
        while self._waiters:
            n, future = self._waiters[0]
            if future.done():
                self._waiters.popleft()
                continue
            if self.used + n > self.total:
                return
            self._waiters.popleft()
            self.used += n
            self._note(n)
            future.set_result(None)

    def _trim_soon(self) -> None:
        """Parsing a big body leaves the memory it freed with the allocator (thread
        arenas, a raised mmap threshold); hand it back to the system, off the event loop.
        One trim at a time; a request for another while it runs is served when it ends."""
        if self._trimming:
            self._trim_again = True
            return
        self._trimming, self._trim_again = True, False

        def done(_: Any) -> None:
            self._trimming = False
            if self._trim_again:
                self._trim_soon()

        loop = asyncio.get_running_loop()
        loop.run_in_executor(None, _trim).add_done_callback(done)


def _load_malloc_trim() -> Callable[[int], int] | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


_malloc_trim = _load_malloc_trim()


def _trim() -> None:
    if _malloc_trim is not None:
        _malloc_trim(0)


def forget_frames(exc: BaseException | None) -> None:
    """Drop the tracebacks of ``exc`` and the exceptions it chains to, and with them the
    frames' locals (a parsed request of hundreds of MiB), once the error is answered."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc.__traceback__ = None
        exc = exc.__cause__ or exc.__context__


class Intake:
    """One request's share of the budget, given back when the request is done."""

    def __init__(self, limits: ServeLimits, budget: ByteBudget | None) -> None:
        self.limits, self.budget, self.held = limits, budget, 0

    async def reserve(self, n: int) -> None:
        if self.budget is None or n <= 0:
            return
        if not await self.budget.acquire(n, self.limits.budget_wait_s):
            raise Busy("the server is reading too many large requests right now; "
                       "retry in a moment")
        self.held += n

    def release(self) -> None:
        if self.budget is not None and self.held:
            held, self.held = self.held, 0
            self.budget.release(held)


def intake_of(scope: dict[str, Any]) -> Intake:
    """The request's intake; a bare app (no guard in front) reads with default limits."""
    intake = scope.get(SCOPE_KEY)
    if intake is None:
        intake = scope[SCOPE_KEY] = Intake(ServeLimits(), None)
    return intake


Receive = Callable[[], Awaitable[dict[str, Any]]]


async def read_body(scope: dict[str, Any], receive: Receive) -> bytearray:
    """The whole body in one bytearray (no join copy), or a ``BodyRefused``."""
    intake = intake_of(scope)
    limits = intake.limits
    cap = limits.max_body_bytes
    too_large = TooLarge(f"request body over {cap / MiB:g} MiB")
    length = _content_length(scope)
    if length is not None and length > cap:
        raise too_large
    small = limits.small_body_bytes
    if length is not None and length > small:
        await intake.reserve(length)
    buf = bytearray(length or 0)
    size = 0
    pacer = _Pacer(limits)
    while True:
        message = await pacer.receive(receive, size)
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        end = size + len(chunk)
        if length is not None:
            if end > length:
                raise BodyRefused("request body is longer than its Content-Length")
            buf[size:end] = chunk
        else:
            if end > cap:
                raise too_large
            if end > max(intake.held, small):  # unknown length: take the budget in steps
                await intake.reserve(max(STEP_BYTES, end - intake.held))
            buf += chunk
        size = end
        if not message.get("more_body", False):
            break
    if length is not None and size != length:
        raise BodyRefused("request body is shorter than its Content-Length")
    return buf


def _content_length(scope: dict[str, Any]) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            if not value.isdigit() or len(value) > 18:
                raise BodyRefused("Content-Length is not a number")
            return int(value)
    return None


class _Pacer:
    """Deadlines for the next piece: at most ``body_idle_timeout_s`` away, and never later
    than the moment the average rate would fall under ``body_min_rate``."""

    def __init__(self, limits: ServeLimits) -> None:
        self.limits = limits
        self.start = asyncio.get_running_loop().time()

    async def receive(self, receive: Receive, received: int) -> dict[str, Any]:
        limits = self.limits
        loop = asyncio.get_running_loop()
        rate_deadline = self.start + max(limits.body_grace_s, received / limits.body_min_rate)
        wait = min(limits.body_idle_timeout_s, rate_deadline - loop.time())
        try:
            if wait <= 0:
                raise TimeoutError
            async with asyncio.timeout(wait):
                return await receive()
        except TimeoutError:
            raise SlowBody("the request body came too slowly; the connection is closed") \
                from None
