"""The first protocol of every connection: plain V2 requests answered with nothing between
the socket and the lane.

uvicorn's protocol builds, for every request, an ASGI scope, a request-response cycle with
its event, a header list and a keep-alive timer; for a request the lane answers (lane.py)
none of it is used, and under load it costs as much as the request's own work. So a
connection starts here: each request is framed by its Content-Length, its head is parsed by
httptools (which refuses what HTTP does not allow), and the lane answers it. At the first
request the lane does not take, and at anything unusual (chunks, pipelining while an answer
is pending past what one read holds, an upgrade, a client that ends the connection, a
head that is too big or too slow), the connection is handed over, with the bytes not yet
answered, to the full protocol (protocol.py), which sees them as if they had just arrived
and keeps the connection from then on. A connection of plain V2 requests never leaves.

Its deadlines (headers, keep-alive, an unfinished body, an answer the client does not
read) are kept as times checked by one sweep per server a few times a second, not as a
timer per request.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, ClassVar

import httptools

from studio.serving.guard import key_of
from studio.serving.lane import NOT_HERE, Lane, json_type
from studio.serving.limits import ServeLimits
from studio.serving.protocol import STATUS_LINE, GuardedHttpTools, _Shared

SWEEP_S = 0.25


class Front(asyncio.Protocol):
    limits: ClassVar[ServeLimits] = ServeLimits()
    shared: ClassVar[_Shared] = _Shared()
    lane: ClassVar[Lane]
    general: ClassVar[type[GuardedHttpTools]]
    fronts: ClassVar[set[Front]] = set()
    sweeper: ClassVar[list[asyncio.TimerHandle]] = []
    prefixes: ClassVar[dict[int | None, Any]] = {}

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._made = (config, server_state, app_state, _loop)
        self.loop = _loop or asyncio.get_event_loop()
        self.server_state = server_state
        self.connections: set[Any] = server_state.connections
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.buf = b""  # bytes received and not yet answered, from a request's first byte
        self.head: tuple[tuple[str, str | None], str, int, int] | None = None  # parsed
        self.busy = False  # an answer is pending
        self.closing = False  # the server is shutting down: close after the answer
        self.paused = False  # reading paused: a client sending ahead of its answers
        self.write_paused = False
        self.deadline = 0.0  # when the current wait ends (0: none)
        self.expired = self._drop  # what happens then
        # filled by the parser's callbacks for the head being parsed
        self.url = self.host = self.x_key = self.auth = b""
        self.length, self.plain = -1, True

    # -- connection ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.transport = transport
        self.connections.add(self)
        self.fronts.add(self)
        self._start_sweeping()
        self._wait(self.limits.header_timeout_s, self._headers_too_slow)
        if len(self.connections) - len(self.shared.dropping) > self.limits.max_connections:
            self._make_room()

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget()
        self.shared.dropping.discard(self)  # type: ignore[arg-type]

    def _forget(self) -> None:
        self.connections.discard(self)
        self.fronts.discard(self)
        self.shared.waiting.pop(self, None)  # type: ignore[call-overload]

    def eof_received(self) -> bool | None:
        return None  # the transport closes, as uvicorn's protocol lets it

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown: close now, or after the pending answer."""
        if self.busy:
            self.closing = True
        else:
            self.transport.close()

    def _make_room(self) -> None:
        while (other := next(iter(self.shared.waiting), self)) is not self:
            if other._drop():
                return
        self._hand_over()  # the full protocol answers 503 for a connection over the cap
        # (it counts itself among the connections; the oldest idle ones are gone already)

    def _drop(self) -> bool:
        """Close without a word; False when it was closing already."""
        self.shared.waiting.pop(self, None)  # type: ignore[call-overload]
        if self.transport.is_closing():
            return False
        self.shared.dropping.add(self)  # type: ignore[arg-type]
        self.transport.close()
        return True

    # -- deadlines -----------------------------------------------------------------------

    def _wait(self, seconds: float, then: Any) -> None:
        """Wait for the client at most ``seconds`` (and be among those the connection cap
        may close: a request not yet whole, or an idle connection)."""
        self.deadline, self.expired = self.loop.time() + seconds, then
        waiting = self.shared.waiting
        waiting.pop(self, None)  # type: ignore[call-overload]
        waiting[self] = None  # type: ignore[index]

    def _start_sweeping(self) -> None:
        if not self.sweeper:
            self.sweeper.append(self.loop.call_later(SWEEP_S, self._sweep_all, self.loop))

    @classmethod
    def _sweep_all(cls, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for front in [f for f in cls.fronts if f.deadline and f.deadline < now]:
            front.deadline = 0.0
            front.expired()
        cls.sweeper[:] = [loop.call_later(SWEEP_S, cls._sweep_all, loop)] if cls.fronts else []

    def _headers_too_slow(self) -> None:
        general = self._hand_over()
        if general is not None:
            general._headers_too_slow()  # 408, or a silent close when nothing came

    # -- reading -------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.busy:
            self._next()
        elif len(self.buf) > self.limits.max_header_bytes and not self.paused:
            self.paused = True  # a client far ahead of its answers waits for them
            self.transport.pause_reading()

    def _next(self) -> None:
        """Start on the next request in the buffer, or wait for it."""
        buf = self.buf
        if not buf:
            self._wait(self.limits.keep_alive_s, self._drop)  # idle between requests
            return
        if self.head is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > self.limits.max_header_bytes:
                    self._hand_over()  # it refuses with 431
                elif self.expired == self._drop:  # idle until now: the head's own deadline
                    self._wait(self.limits.header_timeout_s, self._headers_too_slow)
                return
            if not self._parse_head(buf[:end + 4]):
                self._hand_over()
                return
        assert self.head is not None
        params, path, start, total = self.head
        if len(buf) < total:
            if self.expired != self._hand_over:  # the body reader paces slow bodies
                self._wait(self.limits.body_idle_timeout_s, self._hand_over)
            return
        body = buf[start:total]
        try:
            self.parser.feed_data(body)  # its state, ready for the next request
        except httptools.HttpParserError:
            self._hand_over()
            return
        self.deadline = 0.0
        self.shared.waiting.pop(self, None)  # type: ignore[call-overload]
        self.busy = True
        if not self.lane.answer(params, path, body, self._reply):
            self.busy = False
            self._hand_over()

    def _parse_head(self, head: bytes) -> bool:
        """Parse a request's head; True when the lane takes the request."""
        self.url, self.host, self.length, self.plain = b"", b"", -1, True
        self.x_key = self.auth = b""
        parser = self.parser
        try:
            parser.feed_data(head)
        except httptools.HttpParserError:
            return False
        if (not self.plain or parser.get_method() != b"POST"
                or parser.get_http_version() != "1.1" or not parser.should_keep_alive()
                or parser.should_upgrade()):
            return False
        url = httptools.parse_url(self.url)
        path = url.path
        if b"%" in path:
            return False
        path_text = path.decode("ascii")
        lane = self.lane
        params = lane.admit(path_text, url.query or b"", self.host, self.length,
                            b"" if lane.key is None else key_of(self.x_key, self.auth))
        if params is None:
            return False
        self.head = (params, path_text, len(head), len(head) + self.length)
        return True

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        """What ``Lane.take`` reads from a scope's headers, read as they are parsed."""
        name = name.lower()
        if name == b"content-length":
            self.length = int(value) if value.isdigit() else -1
        elif name == b"content-type":
            self.plain = self.plain and json_type(value)
        elif name == b"host":
            self.host = value
        elif name == b"x-api-key":
            self.x_key = value
        elif name == b"authorization":
            self.auth = value
        elif name in NOT_HERE:
            self.plain = False

    # -- answering -----------------------------------------------------------------------

    def _reply(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        if self.transport.is_closing():
            return
        parts = [self._prefix(status)]
        said = False  # the answer says it closes (an error whose body may follow unread)
        for name, value in headers:
            said = said or name == b"connection"
            parts += (name, b": ", value, b"\r\n")
        closing = self.closing or said
        if self.closing and not said:
            parts.append(b"connection: close\r\n")
        parts += (b"\r\n", body)
        self.transport.write(b"".join(parts))
        self.server_state.total_requests += 1
        assert self.head is not None
        self.buf = self.buf[self.head[3]:]
        self.head, self.busy = None, False
        if closing:
            self.transport.close()
            return
        if self.paused:
            self.paused = False
            self.transport.resume_reading()
        if self.write_paused:  # the client is not reading: wait for it before more
            self._wait(self.limits.write_timeout_s, self.transport.abort)
            return
        self._next()

    def _prefix(self, status: int) -> bytes:
        """The status line and the server's own headers (date, server), made once per
        status while the date stays the same (uvicorn renews the list every second)."""
        defaults = self.server_state.default_headers
        cache = self.prefixes
        if cache.get(None) is not defaults:
            cache.clear()
            cache[None] = defaults
        prefix = cache.get(status)
        if prefix is None:
            prefix = cache[status] = STATUS_LINE[status] + b"".join(
                b"%s: %s\r\n" % (name, value) for name, value in defaults)
        return prefix  # type: ignore[return-value]

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        if not self.busy and self.transport is not None and not self.transport.is_closing():
            self._next()

    # -- handing over ----------------------------------------------------------------------

    def _hand_over(self) -> GuardedHttpTools | None:
        """The connection to the full protocol, with every byte not yet answered; None when
        it is closing already."""
        if self.busy or self.transport.is_closing():
            return None
        self._forget()
        config, server_state, app_state, loop = self._made
        general = self.general(config=config, server_state=server_state,
                               app_state=app_state, _loop=loop)
        transport = self.transport
        transport.set_protocol(general)
        general.connection_made(transport)
        if self.paused:
            transport.resume_reading()
        if self.write_paused:
            general.pause_writing()
        data, self.buf = self.buf, b""
        if data:
            with contextlib.suppress(Exception):  # it answers a bad request itself
                general.data_received(data)
        return general


def front_class(general: type[GuardedHttpTools], lane: Lane) -> type[Front]:
    """The protocol class for ``uvicorn.Config(http=...)``: connections start here and are
    handed to ``general`` (``protocol.protocol_class``), sharing its limits and its table
    of connections."""
    return type("Front", (Front,), {"limits": general.limits, "shared": general.shared,
                                    "lane": lane, "general": general, "fronts": set(),
                                    "sweeper": [], "prefixes": {}})
