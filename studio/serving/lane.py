"""The fast lane: a V2 JSON inference request answered from the HTTP protocol itself.

Under load a V2 request's own work (decode, a share of one batched ONNX Runtime call,
encode) costs less than the ASGI machinery around it: a task per request, the receive and
send messages, the middleware layers, a Request and a Response object. So the protocol
(``front.py``, and ``protocol.py`` for connections handed over to uvicorn) hands the common
case to :class:`Lane` instead of the app: a POST to a V2 infer path with a small JSON body,
from a client that is no web page (no Origin), to a Host this server answers to, with the
right key, for a model without a canary. The lane runs the same repository, batcher,
recorder and error mapping as the app's route, and answers from the batch itself
(``Batcher.send``).

Anything else goes to the app, which has the whole story: CORS, the binary extension,
bodies read at their own pace within the byte budget, models that decode pictures or text
off the loop, canaries. So does any request the lane finds wrong before it has run a model:
the app decodes it again and gives its usual 4xx, so an error is worded in one place only.
"""

from __future__ import annotations

import asyncio
import hmac
import time
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson

from studio.serving.dataplane import ModelRepository, Runtime
from studio.serving.guard import HostCheck, key_of
from studio.serving.limits import ServeLimits
from studio.serving.metrics import Recorder

# (status, headers, body); the protocol adds the server's own headers and writes it
Reply = Callable[[int, list[tuple[bytes, bytes]], bytes], None]
ErrorFor = Callable[[BaseException, str, str], tuple[int, list[tuple[bytes, bytes]], bytes]]
JSON_HEADER = (b"content-type", b"application/json")
HOSTS_KEPT = 64
PATHS_KEPT = 256
KEY_KEPT = 256  # longer values (any client may send them) are checked, never kept
INLINE_BYTES = 64 * 1024  # bodies and answers up to this are handled on the event loop
# a header the lane leaves to the app: what it means is handled there only
NOT_HERE = frozenset((b"origin", b"transfer-encoding", b"content-encoding", b"expect",
                      b"inference-header-content-length"))


class Heads:
    """What the lane reads from a request's headers (names in lower case), as they come:
    ``take`` feeds it a scope's list, the front protocol feeds it from its parser."""

    __slots__ = ("auth", "host", "length", "plain", "x_key")

    def __init__(self) -> None:
        self.host = self.x_key = self.auth = b""
        self.length, self.plain = -1, True  # -1: missing, or not plain digits

    def see(self, name: bytes, value: bytes) -> None:
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

    def admitted(self, lane: Lane, path: str, query: bytes) -> tuple[str, str | None] | None:
        if not self.plain:
            return None
        return lane.admit(path, query, self.host, self.length,
                          b"" if lane.key is None else key_of(self.x_key, self.auth))


def json_type(value: bytes) -> bool:
    """Whether a Content-Type value says plain JSON (the only type the lane reads)."""
    known = _JSON_TYPES.get(value)
    if known is None:
        known = value.split(b";", 1)[0].strip().lower() == b"application/json"
        if len(_JSON_TYPES) < HOSTS_KEPT and len(value) <= KEY_KEPT:
            _JSON_TYPES[value] = known
    return known


_JSON_TYPES: dict[bytes, bool] = {}  # clients send one or two spellings


def infer_params(path: str) -> tuple[str, str | None] | None:
    """(name, version) when ``path`` is a V2 infer path, as the router would match it: no
    empty or slashed parts."""
    if not (path.startswith("/v2/models/") and path.endswith("/infer")):
        return None
    parts = path[11:-6].split("/")
    if len(parts) == 1 and parts[0]:
        return parts[0], None
    if len(parts) == 3 and parts[1] == "versions" and parts[0] and parts[2]:
        return parts[0], parts[2]
    return None


class Lane:
    """What the protocol calls: ``take`` once a request's headers are in, ``answer`` once
    its body is."""

    def __init__(self, repo: ModelRepository, record: Recorder, limits: ServeLimits,
                 api_key: str | None, batcher_of: Callable[[Runtime], Any],
                 error_for: ErrorFor) -> None:
        self.repo, self.record, self.error_for = repo, record, error_for
        self.batcher_of = batcher_of  # the model's batcher, or None: it runs alone
        self.host_ok = HostCheck(limits.allowed_hosts)
        self.hosts: dict[bytes, bool] = {}  # Host header → host_ok: clients send a few names
        self.paths: dict[str, tuple[str, str | None] | None] = {}  # path → infer_params
        self._queue: tuple[Any, Any] | None = None  # (weakref to a model, its batcher)
        self.key = api_key.encode() if api_key else None
        # the app reads and runs a body this small on the event loop too
        self.max_body = min(limits.small_body_bytes, limits.max_body_bytes, INLINE_BYTES)

    def take(self, scope: dict[str, Any]) -> tuple[str, str | None] | None:
        """The request's (name, version) when the lane answers it, from its method, path
        and headers alone; None leaves it to the app."""
        if scope["method"] != "POST":
            return None
        heads = Heads()
        for name, value in scope["headers"]:
            heads.see(name, value)
        return heads.admitted(self, scope["path"], scope["query_string"])

    def admit(self, path: str, query: bytes, host: bytes, length: int, key: bytes
              ) -> tuple[str, str | None] | None:
        """``take`` once the headers are read (by the protocol that parsed them):
        ``length`` -1 when it is missing or not plain digits, ``key`` the one given."""
        params = self.paths.get(path, False)
        if params is False:
            params = infer_params(path)
            if len(self.paths) < PATHS_KEPT and len(path) <= KEY_KEPT:
                self.paths[path] = params
        if params is None or query or not 0 < length <= self.max_body:
            return None
        known = self.hosts.get(host)
        if known is None:
            known = self.host_ok(host.decode("latin-1"))
            if len(self.hosts) < HOSTS_KEPT and len(host) <= KEY_KEPT:
                self.hosts[host] = known
        if not known:
            return None
        if self.key is not None and not hmac.compare_digest(key, self.key):
            return None  # the app's 401
        return params

    def answer(self, params: tuple[str, str | None], path: str, body: bytes,
               reply: Reply) -> bool:
        """Start answering; False leaves the request to the app, and is only ever said
        before anything happened that the app would do again (a canary's pick, a count).
        ``reply`` is called once, never from within this call (the protocol is still
        parsing then)."""
        started = time.perf_counter()
        name, version = params
        repo = self.repo
        if version is None and name in repo.canaries:
            return False  # the canary's pick and comparison are the app's
        try:
            model = repo.get(name, version)
            if model.heavy:
                return False  # pictures and text are decoded in threads
            call = repo.decode(model, body)
        except Exception:
            return False  # the app says what is wrong, in its words
        for _, binary_out in call.outputs:
            if binary_out:
                return False  # binary outputs asked for: the app's binary answer
        done = _Finish(self, call, model, path, started, reply)
        last = self._queue  # the model asked for last: usually the same one, under load
        if last is not None and last[0]() is model:
            batcher = last[1]
        else:
            batcher = self.batcher_of(model)
            self._queue = (weakref.ref(model), batcher)
        if batcher is not None:
            try:
                batcher.send(call.tensors, done.settle)  # answered by the batch itself
            except Exception as exc:  # a full queue
                asyncio.get_running_loop().call_soon(done.settle, exc)
            return True
        try:
            outputs = model.run(call.tensors)
        except Exception as exc:  # a model that failed on these values
            outputs = exc
        asyncio.get_running_loop().call_soon(done.settle, outputs)
        return True


class _Finish:
    """The rest of one request, once its outputs are known (from the batch that ran it,
    always on a later turn of the event loop than the one that parsed it)."""

    __slots__ = ("call", "lane", "model", "path", "reply", "started")

    def __init__(self, lane: Lane, call: Any, model: Runtime, path: str, started: float,
                 reply: Reply) -> None:
        self.lane, self.call, self.model = lane, call, model
        self.path, self.started, self.reply = path, started, reply

    def settle(self, outputs: dict[str, np.ndarray] | BaseException) -> None:
        if isinstance(outputs, BaseException):
            self._send(*self.lane.error_for(outputs, "POST", self.path), ran=False)
            return
        size = sum(x.nbytes for x in outputs.values())
        if size <= INLINE_BYTES:
            self._encoded(outputs, self._encode(outputs))
            return
        # a large answer is encoded in a thread, as the app does, off the event loop
        loop = asyncio.get_running_loop()
        work = loop.run_in_executor(None, self._encode, outputs)
        work.add_done_callback(lambda f: self._encoded(
            outputs, f.exception() or f.result()))  # type: ignore[arg-type]

    def _encode(self, outputs: dict[str, np.ndarray]) -> bytes | BaseException:
        try:
            return orjson.dumps(self.lane.repo.encode(self.call, outputs),
                                option=orjson.OPT_SERIALIZE_NUMPY)
        except Exception as exc:  # an output JSON cannot carry (NaN)
            return exc

    def _encoded(self, outputs: dict[str, np.ndarray], body: bytes | BaseException) -> None:
        if isinstance(body, BaseException):
            self._send(*self.lane.error_for(body, "POST", self.path), ran=True)
            return
        self._send(200, [(b"content-length", b"%d" % len(body)), JSON_HEADER], body, ran=True)

    def _send(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes,
              ran: bool) -> None:
        """Write the answer, then count it as the app's ``instrument`` would: with the
        version that ran, when one did."""
        self.reply(status, headers, body)
        latency = time.perf_counter() - self.started
        if not ran:
            self.lane.record.later(self.path, status, None, "", 0, latency)
            return
        version, tensors = self.model.version, self.call.tensors
        rows = next(iter(tensors.values())).shape[0] if tensors else 0
        self.lane.record.later(self.path, status, version.name, str(version.version), rows,
                               latency)
