"""The app's outer layer: what a web page must not be able to do to a local server, and the
per-request share of the body budget.

A page on any site can make the browser send requests to 127.0.0.1: through DNS rebinding
(its own name now points at us; the Host header still carries that name) or as a "simple"
cross-site POST (form or text/plain content types, no preflight). So: the Host must be a
name this server answers to, a POST must carry one of the content types the API reads, a
POST from a foreign Origin is refused, and CORS headers are sent only for the origins the
person configured.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from studio.serving.body import SCOPE_KEY, ByteBudget, Intake
from studio.serving.limits import ServeLimits

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
WILDCARDS = ("", "0.0.0.0", "::")
JSON_TYPES = ("application/json",)
OTHER_TYPES = ("application/octet-stream", "text/csv")
# what a browser may send cross-origin once an origin is configured (the preflight's answer)
CORS_METHODS = b"GET, POST, OPTIONS"
CORS_HEADERS = ("authorization", "content-type", "x-api-key", "inference-header-content-length")
CORS_EXPOSE = b"inference-header-content-length"


def host_names(bound: str, extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The Host names a server bound to ``bound`` answers to: loopback names, the bound
    address and ``extra``; a wildcard bind also answers to this machine's own names (any
    IP literal is accepted there too, see ``Guard``)."""
    names = [*LOOPBACK_NAMES, bound]
    if bound in WILDCARDS:
        names += ["0.0.0.0", socket.gethostname(), socket.getfqdn()]
    names += list(extra)
    return tuple(dict.fromkeys(_normal_name(n) for n in names if n))


def _normal_name(name: str) -> str:
    name = name.strip().lower().rstrip(".")
    return name[1:-1] if name.startswith("[") and name.endswith("]") else name


def _split_host(value: str) -> str | None:
    """The name of a Host header value without its port; None when it is malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[1:end], value[end + 1:]
    else:
        name, colon, port = value.partition(":")
        rest = colon + port
    if rest and not (rest.startswith(":") and rest[1:].isdigit()):
        return None
    return name.rstrip(".") or None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def normal_origin(origin: str) -> str:
    """``scheme://host[:port]`` lower-cased, without a trailing slash, as browsers send it."""
    return origin.strip().rstrip("/").lower()


def check_origin(origin: str) -> str:
    """A ``--cors-origin`` value, checked; raises ValueError with a readable sentence."""
    value = normal_origin(origin)
    if value == "*":
        return value
    scheme, sep, rest = value.partition("://")
    if not sep or scheme not in ("http", "https") or not rest or "/" in rest:
        raise ValueError(f"a CORS origin looks like https://example.com[:PORT] or *, "
                         f"got {origin!r}")
    return value


class HostCheck:
    """Whether a Host header names this server (``allowed_hosts`` None: any Host)."""

    def __init__(self, allowed_hosts: Iterable[str] | None) -> None:
        self.hosts = None if allowed_hosts is None else frozenset(
            _normal_name(h) for h in allowed_hosts)
        self.any_host = self.hosts is None or "*" in self.hosts
        self.any_ip = self.hosts is not None and bool(self.hosts & {"0.0.0.0", "::"})

    def __call__(self, host: str) -> bool:
        if self.any_host:
            return True
        name = _split_host(host)
        if name is None:
            return False
        # An IP literal is never DNS rebinding: the page itself was loaded from that
        # address. A wildcard bind answers on every address of the machine, so it takes them.
        return name in self.hosts or (self.any_ip and _is_ip(name))  # type: ignore[operator]


def api_key_given(headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The key a request carries: ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``."""
    given, auth = b"", b""
    for name, value in headers:
        if name == b"x-api-key":
            given = value
        elif name == b"authorization":
            auth = value
    return key_of(given, auth)


def key_of(x_api_key: bytes, authorization: bytes) -> bytes:
    """The key from those two headers' values: the bearer token wins."""
    if authorization.lower().startswith(b"bearer "):
        return authorization[7:].strip()
    return x_api_key


class Guard:
    """ASGI middleware in front of the whole app (the API key check included)."""

    def __init__(self, app: ASGIApp, limits: ServeLimits) -> None:
        self.app, self.limits = app, limits
        self.budget = ByteBudget(limits.body_budget_bytes)
        self._host_ok = HostCheck(limits.allowed_hosts)
        self.origins = frozenset(normal_origin(o) for o in limits.cors_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        host = headers.get(b"host", b"").decode("latin-1")
        if not self._host_ok(host):
            await _refuse(scope, send, 421, "this server does not answer to that Host name; "
                          "start it with --allowed-host NAME to allow one")
            return
        origin = normal_origin(headers[b"origin"].decode("latin-1")) \
            if b"origin" in headers else None
        allowed = origin is not None and (origin in self.origins or "*" in self.origins)
        method = scope["method"]
        if method == "OPTIONS" and origin is not None \
                and b"access-control-request-method" in headers:
            await self._preflight(scope, send, origin, allowed, headers)
            return
        if method == "POST":
            if origin is not None and not allowed and not _same_origin(origin, host, scope):
                await _refuse(scope, send, 403, "requests from this web page's origin are "
                              "not allowed; start the server with --cors-origin to allow it")
                return
            problem = _content_type_problem(headers.get(b"content-type"), origin)
            if problem:
                await _refuse(scope, send, 415, problem)
                return
        if allowed and not scope["path"].startswith("/admin/"):  # never CORS for admin
            send = _with_cors(send, origin or "")
        intake = scope[SCOPE_KEY] = Intake(self.limits, self.budget)
        try:
            await self.app(scope, receive, send)
        finally:
            intake.release()

    async def _preflight(self, scope: Scope, send: Send, origin: str, allowed: bool,
                         headers: dict[bytes, bytes]) -> None:
        if not allowed:
            await _refuse(scope, send, 403, "cross-origin requests from this origin are not "
                          "allowed; start the server with --cors-origin to allow it")
            return
        asked = headers.get(b"access-control-request-headers", b"").decode("latin-1")
        wanted = [h.strip().lower() for h in asked.split(",") if h.strip()]
        given = ", ".join(h for h in wanted if h in CORS_HEADERS) or "content-type"
        await send({"type": "http.response.start", "status": 204, "headers": [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-allow-methods", CORS_METHODS),
            (b"access-control-allow-headers", given.encode("latin-1")),
            (b"access-control-max-age", b"600"),
            (b"vary", b"Origin"),
        ]})
        await send({"type": "http.response.body", "body": b""})


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return {name: value for name, value in scope["headers"]}


def _same_origin(origin: str, host: str, scope: Scope) -> bool:
    """The server's own pages (/docs) post with an Origin naming the server itself."""
    return origin == f"{scope.get('scheme', 'http')}://{host.strip().lower()}"


def _content_type_problem(value: bytes | None, origin: str | None) -> str | None:
    if value is None:
        # tritonclient sends none; a browser always sends an Origin with a POST
        return None if origin is None else "a request from a web page needs a Content-Type"
    kind = value.decode("latin-1").split(";", 1)[0].strip().lower()
    if kind in JSON_TYPES or kind in OTHER_TYPES or (kind.startswith("application/")
                                                    and kind.endswith("+json")):
        return None
    return (f"content type {kind[:60]!r} is not read here; send application/json, "
            "application/octet-stream or text/csv")


def _with_cors(send: Send, origin: str) -> Send:
    extra = [(b"access-control-allow-origin", origin.encode("latin-1")),
             (b"access-control-expose-headers", CORS_EXPOSE),
             (b"vary", b"Origin")]

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return sending


async def _refuse(scope: Scope, send: Send, status: int, message: str) -> None:
    """A JSON error; the connection is closed when a body may follow unread."""
    body = orjson.dumps({"error": message})
    headers: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json"),
                                          (b"content-length", str(len(body)).encode())]
    if _may_have_body(scope):
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _may_have_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
            return True
    return False
