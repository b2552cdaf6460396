"""uvicorn's httptools protocol with the limits it lacks (uvicorn 0.54): a deadline and a
byte cap on request headers, a cap on open connections that closes the longest idle one
first, a write deadline, and no reading of a body nobody asked for.

uvicorn has no header or body read timeout and httptools accepts any header size, so a
client that opens connections and sends a few bytes on each holds them forever; its
``limit_concurrency`` counts those idle sockets too and would then refuse everyone, health
checks included. Bodies are paced by the route that reads them (``body.py``).

This subclasses a private class: tests/test_serving_transport.py pins the behaviour.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, ClassVar

import orjson
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from studio.serving.lane import Lane
from studio.serving.limits import ServeLimits


class _Shared:
    """State of one server's connections, beside uvicorn's own set of them."""

    def __init__(self) -> None:
        # connections not in a request (idle, or still sending headers), oldest first
        self.waiting: OrderedDict[GuardedHttpTools, None] = OrderedDict()
        self.dropping: set[GuardedHttpTools] = set()  # closed by us, not yet lost


class GuardedHttpTools(HttpToolsProtocol):
    limits: ClassVar[ServeLimits] = ServeLimits()
    shared: ClassVar[_Shared] = _Shared()
    lane: ClassVar[Lane | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # a request the lane took whose body is still coming, with its (name, version)
        self._in_lane: tuple[RequestResponseCycle, tuple[str, str | None]] | None = None
        self._feeding = False  # within data_received: a body may still come in this read
        self._begun = 0  # requests begun on this connection
        self._header_timer: asyncio.TimerHandle | None = None
        self._write_timer: asyncio.TimerHandle | None = None
        self._reading_headers = False
        self._header_bytes = 0

    # -- connections ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_headers()
        self._arm_header_timer()
        if len(self.connections) - len(self.shared.dropping) > self.limits.max_connections:
            self._make_room()

    def _make_room(self) -> None:
        """Close the connection that has waited longest without a request in flight; a new
        client (a health check) sends its request at once, a held-open socket never does."""
        while (other := next(iter(self.shared.waiting), self)) is not self:  # self is newest
            if other._drop():  # else it was closing already, and is off the list now
                return
        self._refuse(503, "the server has too many connections open; retry in a moment")

    def _drop(self) -> bool:
        """Close without a word; False when it was closing already."""
        self.shared.waiting.pop(self, None)
        if self.transport.is_closing():
            return False
        self.shared.dropping.add(self)
        if self.transport.get_write_buffer_size() and self._write_timer is None:
            # close() waits for what is unsent: a client that does not read would keep
            # the socket (uncounted, as dropping) for ever
            self._write_timer = self.loop.call_later(self.limits.write_timeout_s,
                                                     self._reader_too_slow)
        self.transport.close()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.shared.waiting.pop(self, None)
        self.shared.dropping.discard(self)
        self._cancel_timers()
        super().connection_lost(exc)

    def _cancel_timers(self) -> None:
        for timer in (self._header_timer, self._write_timer):
            if timer is not None:
                timer.cancel()
        self._header_timer = self._write_timer = None

    # -- headers -------------------------------------------------------------------------

    def _await_headers(self) -> None:
        self._reading_headers, self._header_bytes = True, 0
        self.shared.waiting.pop(self, None)
        self.shared.waiting[self] = None

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.limits.header_timeout_s,
                                                      self._headers_too_slow)

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self._header_bytes:
            self._refuse(408, "the request headers came too slowly")
        else:
            self._drop()

    def data_received(self, data: bytes) -> None:
        self._feeding = True
        try:
            self._receive(data)
        finally:
            self._feeding = False
        if self._in_lane is not None and self._in_lane[0].more_body:
            # Its body did not come with its headers: a slow or huge client, which the
            # app's body reader paces and bounds. It reads what is here already.
            cycle = self._in_lane[0]
            self._in_lane = None
            super()._start_asgi_task(cycle, self.app)

    def _receive(self, data: bytes) -> None:
        if not self._reading_headers:
            super().data_received(data)
            return
        room = self.limits.max_header_bytes - self._header_bytes
        if len(data) <= room:
            self._header_bytes += len(data)
            super().data_received(data)
            return
        # Feed up to the cap: if the headers end in it, the rest is body or the next request.
        began = self._begun
        self._header_bytes += room
        if room:
            super().data_received(data[:room])
        if self.transport.is_closing():
            return
        if self._reading_headers and self._begun == began:  # (else a pipelined request
            # began in these bytes: its headers have had less than the cap so far)
            self._refuse(431, f"request headers over {self.limits.max_header_bytes // 1024} "
                         "KiB")
            return
        self._receive(data[room:])

    def on_message_begin(self) -> None:
        self._begun += 1
        super().on_message_begin()
        if not self._reading_headers:  # a pipelined request: its own deadline
            self._reading_headers, self._header_bytes = True, 0
        self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        self.shared.waiting.pop(self, None)
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)
        unread = not pipelined and self.cycle is not None and self.cycle.more_body
        super().on_response_complete()
        if self.transport.is_closing():
            return
        if unread:
            # answered before its body was read (an error, a 404): reading the rest would
            # let a client keep the connection by trickling bytes nobody wants
            self.transport.close()
        elif not pipelined:
            self._await_headers()  # uvicorn's keep-alive timer ends the idle time

    # -- the fast lane (lane.py) ---------------------------------------------------------------

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        lane = self.lane
        params = None
        if lane is not None and app is self.app and not self.flow.write_paused \
                and (self._feeding or not cycle.more_body):
            # (a pipelined request started after the answer before it: only when its body
            # is all here; while the client does not read, the app waits for it to drain)
            params = lane.take(cycle.scope)
        if params is None:
            super()._start_asgi_task(cycle, app)
        elif cycle.more_body:
            self._in_lane = (cycle, params)  # answered when its body is in, in this read
        else:
            self._lane_answer(cycle, params)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        taken = self._in_lane
        if taken is not None and taken[0] is self.cycle:
            self._in_lane = None
            self._lane_answer(*taken)

    def _lane_answer(self, cycle: RequestResponseCycle, params: tuple[str, str | None]) -> None:
        assert self.lane is not None
        path = cycle.scope["path"]
        if not self.lane.answer(params, path, bytes(cycle.body), self._replier(cycle)):
            super()._start_asgi_task(cycle, self.app)

    def _replier(self, cycle: RequestResponseCycle) -> Callable[[int, list, bytes], None]:
        def reply(status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
            """What the cycle's ``send`` does for a whole answer in one write."""
            if cycle.disconnected or cycle.response_complete:
                return
            cycle.response_started = cycle.response_complete = True
            parts = [STATUS_LINE[status]]
            closing = False
            for name, value in (*cycle.default_headers, *headers):
                if name == b"connection" and b"close" in (
                        t.strip().lower() for t in value.split(b",")):
                    cycle.keep_alive, closing = False, True
                parts += (name, b": ", value, b"\r\n")
            if not cycle.keep_alive and not closing:
                parts.append(b"connection: close\r\n")
            parts += (b"\r\n", body)
            self.transport.write(b"".join(parts))
            cycle.message_event.set()
            if not cycle.keep_alive:
                self.transport.close()
            cycle.on_response()

        return reply

    # -- writing -------------------------------------------------------------------------

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_timer is None:
            self._write_timer = self.loop.call_later(self.limits.write_timeout_s,
                                                     self._reader_too_slow)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def _reader_too_slow(self) -> None:
        self._write_timer = None
        self.transport.abort()  # close() would wait for the client to read what is queued

    # -- answers from here, before any app sees the request -----------------------------------

    def _refuse(self, status: int, message: str) -> None:
        self.shared.waiting.pop(self, None)
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:
            body = orjson.dumps({"error": message})
            self.transport.write(b"".join([
                STATUS_LINE[status], b"content-type: application/json\r\n",
                b"content-length: ", str(len(body)).encode(), b"\r\n",
                b"connection: close\r\n\r\n", body]))
        self.shared.dropping.add(self)
        self.transport.close()


def protocol_class(limits: ServeLimits, lane: Lane | None = None) -> type[GuardedHttpTools]:
    """The protocol class for ``uvicorn.Config(http=...)``, bound to ``limits``, to a
    connection table of its own (one per server) and to the app's fast lane."""
    return type("GuardedHttpTools", (GuardedHttpTools,),
                {"limits": limits, "shared": _Shared(), "lane": lane})
