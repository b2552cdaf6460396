"""The first protocol of every connection: plain V2 requests answered with nothing between
the socket and the lane.

uvicorn's protocol builds, for every request, an ASGI scope, a request-response cycle with
its event, a header list and a keep-alive timer; for a request the lane answers (lane.py)
none of it is used, and under load it costs as much as the request's own work. So a
connection starts here: each request is framed by its Content-Length, its head is parsed by
httptools (which refuses what HTTP does not allow), and the lane answers it. At the first
request the lane does not take, and at anything unusual (a head that is too big or too
slow, a body too slow, chunks, HTTP/1.0, ``Connection: close``, an upgrade), the connection
is handed over, with the bytes not yet answered, to the full protocol (protocol.py), which
sees them as if they had just arrived and keeps the connection from then on. Pipelined
requests are answered in order, one at a time. A connection of plain V2 requests never
leaves.

Its deadlines (headers, keep-alive, an unfinished body, an answer the client does not
read) are kept as times checked by one sweep per server a few times a second, not as a
timer per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import Any, ClassVar

import httptools

from studio.serving.lane import Heads, Lane
from studio.serving.limits import ServeLimits
from studio.serving.protocol import STATUS_LINE, GuardedHttpTools, _Shared

SWEEP_S = 0.25
EMPTY_LINES = re.compile(rb"(?:\r\n)*")
log = logging.getLogger("studio.serving")
# what a connection waits for when it waits for its client
IDLE, HEAD, BODY = "idle", "head", "body"


class Front(asyncio.Protocol):
    limits: ClassVar[ServeLimits] = ServeLimits()
    shared: ClassVar[_Shared] = _Shared()
    lane: ClassVar[Lane]
    general: ClassVar[type[GuardedHttpTools]]
    fronts: ClassVar[set[Front]] = set()
    sweeper: ClassVar[list[tuple[asyncio.AbstractEventLoop, asyncio.TimerHandle]]] = []
    prefixes: ClassVar[dict[int | None, Any]] = {}

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._made = (config, server_state, app_state, _loop)
        self.loop = _loop or asyncio.get_event_loop()
        self.server_state = server_state
        self.connections: set[Any] = server_state.connections
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        # bytes received and not yet answered start at buf[start] (an offset, so that a
        # burst of pipelined requests is not copied once per answer)
        self.buf, self.start = b"", 0
        self.scanned = 0  # buf is searched for a head's end up to here
        self.head: tuple[tuple[str, str | None], str, int, int] | None = None  # parsed
        self.busy = False  # an answer is pending
        self.closing = False  # the server is shutting down: close after the answer
        self.paused = False  # reading paused: a client sending ahead of its answers
        self.write_paused = False
        self.waiting_for: str | None = None  # IDLE, HEAD or BODY; None: not the client
        self.deadline = 0.0  # when that wait ends (0: none)
        self.write_deadline = 0.0  # when a client that does not read is cut off (0: none)
        # filled by the parser's callbacks for the head being parsed
        self.url, self.heads, self.head_done = b"", Heads(), False

    # -- connection ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.transport = transport
        self.connections.add(self)
        self.fronts.add(self)
        self._start_sweeping()
        self._wait(HEAD, self.limits.header_timeout_s)
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
        """uvicorn's graceful shutdown: a request under way is finished (the answer pending
        here, a body still coming by the full protocol), anything else closed."""
        if self.busy:
            self.closing = True
        elif self.head is not None:
            general = self._hand_over()
            if general is not None:
                general.shutdown()
        else:
            self._close()

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
        self._close()
        return True

    def _close(self) -> None:
        """Close once what is written is sent; a client that does not read it has the
        write deadline to do so (close() alone would wait for it for ever)."""
        if self.transport.get_write_buffer_size() and not self.write_deadline:
            self.write_deadline = self.loop.time() + self.limits.write_timeout_s
        self.transport.close()

    # -- deadlines -----------------------------------------------------------------------

    def _wait(self, what: str, seconds: float) -> None:
        """Wait for the client (``what`` it owes) at most ``seconds``, from now. An idle
        connection and one still sending a head are those the connection cap may close,
        as in the full protocol."""
        self.waiting_for, self.deadline = what, self.loop.time() + seconds
        waiting = self.shared.waiting
        waiting.pop(self, None)  # type: ignore[call-overload]
        if what != BODY:
            waiting[self] = None  # type: ignore[index]

    def _not_waiting(self) -> None:
        self.waiting_for, self.deadline = None, 0.0
        self.shared.waiting.pop(self, None)  # type: ignore[call-overload]

    def _expired(self, now: float) -> None:
        if self.write_deadline and self.write_deadline < now:
            self.transport.abort()  # close() would wait for the client to read
            return
        if not self.deadline or self.deadline >= now:
            return
        what = self.waiting_for
        self._not_waiting()
        if what == IDLE:
            self._drop()
        elif what == HEAD:
            general = self._hand_over()
            if general is not None:
                general._headers_too_slow()  # 408, or a silent close when nothing came
        elif what == BODY:
            self._hand_over()  # its body reader paces slow bodies, and says 408

    def _start_sweeping(self) -> None:
        sweeper = self.sweeper
        if sweeper and sweeper[0][0] is self.loop and not sweeper[0][1].cancelled():
            return
        sweeper[:] = [(self.loop, self.loop.call_later(SWEEP_S, self._sweep_all, self.loop))]

    @classmethod
    def _sweep_all(cls, loop: asyncio.AbstractEventLoop) -> None:
        try:
            now = loop.time()
            for front in [f for f in cls.fronts if f.deadline or f.write_deadline]:
                try:
                    front._expired(now)
                except Exception:  # one connection's trouble must not end the sweeps
                    log.exception("closing a connection that ran out of time")
                    front._forget()
                    front.transport.abort()
        finally:
            cls.sweeper[:] = [(loop, loop.call_later(SWEEP_S, cls._sweep_all, loop))] \
                if cls.fronts else []

    # -- reading -------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.start:  # one copy per read, of what is not yet answered
            self.scanned = max(0, self.scanned - self.start)
            self.buf, self.start = self.buf[self.start:] + data, 0
        else:
            self.buf += data
        if not self.busy and not self.write_paused:
            self._next()
        elif len(self.buf) > self.limits.max_header_bytes and not self.paused:
            # a client far ahead of its answers waits for them: read again only once what
            # is here is answered (_next, when it needs more), so one connection's flood
            # holds one read's worth of memory at most
            self.paused = True
            self.transport.pause_reading()

    def _resume(self) -> None:
        if self.paused:
            self.paused = False
            self.transport.resume_reading()

    def _next(self) -> None:
        """Start on the next request in the buffer, or wait for it."""
        buf, start = self.buf, self.start
        if self.head is None:
            start = EMPTY_LINES.match(buf, start).end()  # before a request: ignored
            self.start = start
            if start == len(buf):
                if self.waiting_for is None:  # (empty lines never renew a deadline)
                    self._wait(IDLE, self.limits.keep_alive_s)
                self._resume()
                return
            # a head trickling in is searched from where the last search ended
            end = buf.find(b"\r\n\r\n", max(start, self.scanned - 3))
            self.scanned = len(buf) if end < 0 else 0
            if end < 0 or end + 4 - start > self.limits.max_header_bytes:
                if end >= 0 or len(buf) - start > self.limits.max_header_bytes:
                    self._hand_over()  # it refuses with 431
                    return
                if self.waiting_for != HEAD:  # the head's deadline, from its first byte
                    self._wait(HEAD, self.limits.header_timeout_s)
                self._resume()
                return
            if not self._parse_head(buf[start:end + 4]):
                self._hand_over()
                return
        assert self.head is not None
        params, path, body_at, total = self.head
        if len(buf) - start < total:
            if self.waiting_for != BODY:
                self._wait(BODY, self.limits.body_idle_timeout_s)
            self._resume()
            return
        body = buf[start + body_at:start + total]
        try:
            self.parser.feed_data(body)  # its state, ready for the next request
        except httptools.HttpParserError:
            self._hand_over()
            return
        self._not_waiting()
        self.busy = True
        if not self.lane.answer(params, path, body, self._reply):
            self.busy = False
            self._hand_over()

    def _parse_head(self, head: bytes) -> bool:
        """Parse a request's head; True when the lane takes the request."""
        self.url, self.heads, self.head_done = b"", Heads(), False
        parser = self.parser
        try:
            parser.feed_data(head)
            if (not self.head_done or parser.get_method() != b"POST"
                    or parser.get_http_version() != "1.1" or not parser.should_keep_alive()
                    or parser.should_upgrade()):
                return False
            url = httptools.parse_url(self.url)
        except httptools.HttpParserError:  # the full protocol answers 400
            return False
        path = url.path
        if b"%" in path:
            return False
        path_text = path.decode("ascii")
        params = self.heads.admitted(self.lane, path_text, url.query or b"")
        if params is None:
            return False
        self.head = (params, path_text, len(head), len(head) + self.heads.length)
        return True

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.heads.see(name.lower(), value)

    def on_headers_complete(self) -> None:
        self.head_done = True

    # -- answering -----------------------------------------------------------------------

    def _reply(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        assert self.head is not None
        self.start += self.head[3]
        self.head, self.busy = None, False
        if self.transport.is_closing():
            return
        parts = [self._prefix(status)]
        closes = self.closing  # or the answer says so (an error whose body may follow)
        said = False
        for name, value in headers:
            if name == b"connection":
                said = True
                closes = closes or b"close" in (t.strip().lower() for t in value.split(b","))
            parts += (name, b": ", value, b"\r\n")
        if closes and not said:
            parts.append(b"connection: close\r\n")
        parts += (b"\r\n", body)
        self.transport.write(b"".join(parts))
        self.server_state.total_requests += 1
        if closes:
            self._close()
            return
        if not self.write_paused:
            self._next()
        elif len(self.buf) == self.start:  # as good as idle until resume_writing goes on
            self._wait(IDLE, self.limits.keep_alive_s)
        # (with requests already here, only the write deadline bounds the wait: they are
        # answered once the client reads, as the full protocol would)

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
        if not self.write_paused:  # the deadline runs from the first pause, not the last
            self.write_paused = True
            self.write_deadline = self.loop.time() + self.limits.write_timeout_s

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.transport is None or self.transport.is_closing():
            return  # closing: the write deadline still bounds the flush
        self.write_deadline = 0.0
        if not self.busy:
            self._not_waiting()  # what _next finds decides the next wait
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
        self._resume()  # the full protocol starts out reading
        transport.set_protocol(general)
        general.connection_made(transport)
        if self.write_paused:
            general.pause_writing()  # its own write deadline, from now
        data, self.buf, self.start = self.buf[self.start:], b"", 0
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
