"""The fast lane: a V2 JSON inference request answered from the HTTP protocol itself.

Under load a V2 request's own work (decode, a share of one batched ONNX Runtime call,
encode) costs less than the ASGI machinery around it: a task per request, the receive and
send messages, the middleware layers, a Request and a Response object. So the protocol
(``protocol.py``) hands the common case to :class:`Lane` instead of the app: a POST to a V2
infer path with a small JSON body that came in with its headers, from a client that is no
web page (no Origin), to a Host this server answers to, with the right key. The lane runs
the same repository, batcher, recorder and error mapping as the app's route, and answers
from the batcher's future's callback.

Anything else goes to the app, which has the whole story: CORS, the binary extension,
bodies read at their own pace within the byte budget, models that decode pictures or text
off the loop. So does any request the lane finds wrong before it has run a model: the app
decodes it again and gives its usual 4xx, so an error is worded in one place only.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson

from studio.serving.calls import Call as Answered
from studio.serving.dataplane import ModelRepository, Runtime
from studio.serving.guard import HostCheck, api_key_given
from studio.serving.limits import ServeLimits
from studio.serving.metrics import Recorder

# (status, headers, body); the protocol adds the server's own headers and writes it
Reply = Callable[[int, list[tuple[bytes, bytes]], bytes], None]
ErrorFor = Callable[[BaseException, str, str], tuple[int, list[tuple[bytes, bytes]], bytes]]
JSON_HEADER = (b"content-type", b"application/json")
HOSTS_KEPT = 64
# a header the lane leaves to the app: what it means is handled there only
NOT_HERE = frozenset((b"origin", b"transfer-encoding", b"content-encoding", b"expect",
                      b"inference-header-content-length"))


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
        self.hosts: dict[bytes, bool] = {}  # Host header → host_ok, for the few clients send
        self.key = api_key.encode() if api_key else None
        self.max_body = limits.small_body_bytes

    def take(self, scope: dict[str, Any]) -> tuple[str, str | None] | None:
        """The request's (name, version) when the lane answers it, from its method, path
        and headers alone; None leaves it to the app."""
        if scope["method"] != "POST":
            return None
        params = infer_params(scope["path"])
        if params is None or scope["query_string"]:
            return None
        host, length = b"", -1
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit():
                    return None
                length = int(value)
            elif name == b"content-type":
                if not value.startswith(b"application/json"):
                    return None
            elif name == b"host":
                host = value
            elif name in NOT_HERE:
                return None
        if not 0 < length <= self.max_body:
            return None
        known = self.hosts.get(host)
        if known is None:
            known = self.host_ok(host.decode("latin-1"))
            if len(self.hosts) < HOSTS_KEPT:
                self.hosts[host] = known
        if not known:
            return None
        if self.key is not None and not hmac.compare_digest(
                api_key_given(scope["headers"]), self.key):
            return None  # the app's 401
        return params

    def answer(self, params: tuple[str, str | None], path: str, body: bytes,
               reply: Reply) -> bool:
        """Start answering; False (nothing done yet) leaves the request to the app."""
        started = time.perf_counter()
        name, version = params
        try:
            model, canary = self.repo.route(name, version)
            if model.heavy:
                return False
            call = self.repo.decode(model, body)
        except Exception:
            return False  # the app says what is wrong, in its words
        if any(binary_out for _, binary_out in call.outputs):
            return False  # binary outputs asked for: the app's binary answer
        batcher = self.batcher_of(model)
        done = _Finish(self, call, model, canary, name, path, started, reply)
        try:
            if batcher is None:
                done.outputs(model.run(call.tensors))
            else:
                batcher.enqueue(call.tensors).add_done_callback(done)
        except Exception as exc:  # a full queue; a model that failed on these values
            done.failed(exc)
        return True


class _Finish:
    """The rest of one request, once its outputs are known (a future's callback)."""

    __slots__ = ("call", "canary", "lane", "model", "name", "path", "reply", "started")

    def __init__(self, lane: Lane, call: Any, model: Runtime, canary: Any, name: str,
                 path: str, started: float, reply: Reply) -> None:
        self.lane, self.call, self.model, self.canary = lane, call, model, canary
        self.name, self.path, self.started, self.reply = name, path, started, reply

    def __call__(self, future: asyncio.Future[dict[str, np.ndarray]]) -> None:
        if future.cancelled():
            self.failed(asyncio.CancelledError())
            return
        exc = future.exception()
        if exc is not None:
            self.failed(exc)
            return
        self.outputs(future.result())

    def outputs(self, outputs: dict[str, np.ndarray]) -> None:
        lane, call = self.lane, self.call
        try:
            if self.canary is not None:
                lane.repo.compare_canary(self.canary, self.name, call.tensors, outputs)
            body = orjson.dumps(lane.repo.encode(call, outputs),
                                option=orjson.OPT_SERIALIZE_NUMPY)
        except Exception as exc:  # an output JSON cannot carry (NaN)
            self.failed(exc, ran=True)
            return
        self._send(200, [JSON_HEADER, (b"content-length", b"%d" % len(body))], body, True)

    def failed(self, exc: BaseException, ran: bool = False) -> None:
        status, headers, body = self.lane.error_for(exc, "POST", self.path)
        self._send(status, headers, body, ran)

    def _send(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes,
              ran: bool) -> None:
        """Write the answer, then count it as the app's ``instrument`` would: with the
        version that ran, when one did."""
        self.reply(status, headers, body)
        answered = Answered(self.lane.record.metrics)
        answered.status = status
        if ran:
            version, tensors = self.model.version, self.call.tensors
            answered.model, answered.version = version.name, str(version.version)
            answered.rows = next(iter(tensors.values())).shape[0] if tensors else 0
        self.lane.record(self.path, answered, time.perf_counter() - self.started)
