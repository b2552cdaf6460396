"""The ASGI app: raw Starlette routes with orjson on the inference path, FastAPI for docs.

Infer routes skip pydantic on purpose: parsing with orjson in a plain route costs about a
third of the CPU per request of a FastAPI route with pydantic models.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import anyio.to_thread
import numpy as np
import orjson
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from studio import __version__
from studio.core.errors import BusyError, InputError, NotFoundError, StudioError
from studio.core.training.spec import default_threads
from studio.serving import binary, body
from studio.serving.batcher import BatchConfig, Batcher
from studio.serving.body import TooLarge  # noqa: F401 - routes raise it for a 413
from studio.serving.calls import served
from studio.serving.dataplane import ModelRepository, Runtime
from studio.serving.guard import Guard, api_key_given
from studio.serving.lane import INLINE_BYTES, Lane, infer_params
from studio.serving.limits import ServeLimits
from studio.serving.openapi import INFER_PATHS
from studio.serving.records import csv_body, is_csv

ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]  # 405 is ours, in JSON
log = logging.getLogger("studio.serving")
PUBLIC_PATHS = ("/v2/health/live", "/v2/health/ready")


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def read_body(request: Request) -> bytearray:
    """The body, within the server's limits (size, pace, byte budget); see body.py."""
    return await body.read_body(request.scope, request.receive)


def records_body(body: bytes | bytearray, content_type: str | None) -> Any:
    """The records route's body: CSV as is (read once the model's row limit is known), or
    JSON in one of the formats ``records.rows_of`` takes."""
    return csv_body(body, content_type) if is_csv(content_type) else parse_json(body)


def parse_json(body: bytes | bytearray) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"request body is not valid JSON: {exc}") from None


async def off_loop_if_big(size: int, work: Callable[[], Any],
                          heavy: anyio.CapacityLimiter | None = None,
                          parsing: anyio.CapacityLimiter | None = None) -> Any:
    """Small requests run inline: the thread hop would double their CPU cost (~0.3 ms).
    Big ones go to the thread pool so they never hold up the event loop (health checks,
    other clients); ONNX Runtime releases the GIL while it runs. ``heavy`` is given for a
    model that decodes pictures or tokenizes text (a few KiB can cost seconds there): such
    requests run a few at a time and wait for their turn without holding a worker thread.
    ``parsing`` is given where ``work`` parses a body: big bodies are parsed one at a time
    (see ``create_app``)."""
    if heavy is not None:
        return await anyio.to_thread.run_sync(work, limiter=heavy)
    if size <= INLINE_BYTES:
        return work()
    if parsing is not None:
        return await anyio.to_thread.run_sync(work, limiter=parsing)
    return await run_in_threadpool(work)


Handler = Callable[[Request], Awaitable[Response]]


def error_for(exc: BaseException, method: str, path: str) -> JSONResponse:
    """Domain errors become 4xx with a JSON body, never a traceback."""
    if isinstance(exc, NotFoundError):
        return error(404, str(exc))
    if isinstance(exc, BusyError):  # a full batching queue
        refused = error(503, str(exc))
        refused.headers["retry-after"] = "1"
        return refused
    if isinstance(exc, body.BodyRefused):
        refused = error(exc.status, str(exc))
        if exc.close:  # the rest of the body stays unread: end the connection
            refused.headers["connection"] = "close"
        if isinstance(exc, body.Busy):
            refused.headers["retry-after"] = "1"
        return refused
    if isinstance(exc, body.ClientDisconnect):
        log.info("client went away during %s %s", method, path)
        return error(400, "client disconnected")
    if isinstance(exc, InputError):
        return error(400, str(exc))
    if isinstance(exc, StudioError):
        return error(500, str(exc))
    # a bug must still answer in JSON, and be logged
    log.error("error while handling %s %s", method, path, exc_info=exc)
    return error(500, "internal error; see the server log")


def guarded(fn: Callable[[Request], Awaitable[Any]], method: str) -> Handler:
    """Run a handler for ``method`` only; its errors are answered by ``error_for``."""

    allowed = (method, "HEAD") if method == "GET" else (method,)  # HEAD: probes, curl -I

    async def endpoint(request: Request) -> Response:
        if request.method not in allowed:
            refused = error(405, f"method {request.method} not allowed here; use {method}")
            refused.headers["allow"] = ", ".join(allowed)
            return refused
        try:
            result = await fn(request)
            return result if isinstance(result, Response) else JSONResponse(result)
        except Exception as exc:
            try:
                return error_for(exc, request.method, request.url.path)
            finally:
                # the traceback holds the route's frames, and so the parsed request; the
                # exception may outlive this answer (an event loop handle keeps it)
                body.forget_frames(exc)

    return endpoint


def create_app(repo: ModelRepository, api_key: str | None = None,
               limits: ServeLimits | None = None, *, url: str | None = None,
               log_requests: bool = True, batch_config: BatchConfig | None = None) -> ServingApp:
    """The server's app; the CLI and the GUI's server process both start this one.
    ``limits`` (sizes, times, allowed Hosts, CORS origins) default to ``ServeLimits()``;
    ``url``: where it is announced in the registry, re-announced when the admin routes
    change what is served; ``log_requests``: keep the request log in the workspace."""
    from studio.serving import admin
    from studio.serving.metrics import Recorder, ServingMetrics, instrument
    from studio.serving.reqlog import RequestLog

    metrics = ServingMetrics(repo)
    metrics.provide("drift", repo.drift_report)
    metrics.provide("canary", lambda: {k: c.report() for k, c in repo.canaries.items()})
    request_log = RequestLog(repo.ws.root) if log_requests else None
    app = FastAPI(title="Model Studio inference server", version=__version__,
                  docs_url="/docs", redoc_url=None)

    async def live(_: Request) -> Any:
        return {"live": True}

    async def ready(_: Request) -> Any:
        return {"ready": True}

    async def server_meta(_: Request) -> Any:
        return repo.server_metadata()

    async def model_meta(request: Request) -> Any:
        p = request.path_params
        return repo.model_metadata(p["name"], p.get("version"))

    async def model_ready(request: Request) -> Any:
        p = request.path_params
        repo.get(p["name"], p.get("version"))
        return {"name": p["name"], "ready": True}

    limiters: list[anyio.CapacityLimiter] = []  # made in the app's own event loop

    def heavy(model: Runtime) -> anyio.CapacityLimiter | None:
        if not model.heavy:
            return None
        if not limiters:
            limiters.append(anyio.CapacityLimiter(default_threads(leave_one_free=False)))
        return limiters[0]

    parsers: list[anyio.CapacityLimiter] = []

    def parsing() -> anyio.CapacityLimiter:
        """One big body parsed at a time. The byte budget counts a body's bytes, but parsing
        makes Python objects of 8-70 times that size (floats, objects), and sixteen 8 MiB
        bodies parsed at once took GBs; JSON parsing holds the GIL, so parsing them in turn
        costs no throughput."""
        if not parsers:
            parsers.append(anyio.CapacityLimiter(1))
        return parsers[0]

    def inference(call: Callable[[str, str | None, Any], Any],
                  parse: Callable[[bytes, str | None], Any] = lambda b, _: parse_json(b)
                  ) -> Callable[[Request], Awaitable[Any]]:
        """A route that reads a model's request body and answers it with ``call``."""

        async def handler(request: Request) -> Any:
            name, version = request.path_params["name"], request.path_params.get("version")
            body, kind = await read_body(request), request.headers.get("content-type")
            return await off_loop_if_big(len(body),
                                         lambda: call(name, version, parse(body, kind)),
                                         heavy(repo.get(name, version)), parsing())

        return handler

    predict = inference(repo.predict_records, records_body)

    # one batching queue per loaded model, made in this event loop; it holds its model only
    # weakly, so a version the repository lets go (an alias moved) is freed, and its
    # queue's worker ends with it
    batchers: weakref.WeakKeyDictionary[Runtime, Batcher] = weakref.WeakKeyDictionary()
    config = batch_config or BatchConfig()

    def batcher_of(model: Runtime, limiter: anyio.CapacityLimiter | None) -> Batcher:
        b = batchers.get(model)
        if b is None:
            ref = weakref.ref(model)
            b = batchers[model] = Batcher(lambda t: ref().run(t),  # type: ignore[union-attr]
                                          config, limiter)
            name, version = model.version.name, model.version.version
            b.on_batch = lambda requests, rows: metrics.observe_batch(name, version, requests,
                                                                      rows)
            depth = b.depth_of
            metrics.watch_queue(name, version, depth)
            loop = asyncio.get_running_loop()
            weakref.finalize(model, _retire, loop, b, metrics, name, version, depth)
        return b

    def batched(model: Runtime, limiter: anyio.CapacityLimiter | None = None
                ) -> Batcher | None:
        """The queue a V2 request's tensors meet the model through: concurrent requests
        for one model are answered by one call (see batcher.py). None: each runs alone. A
        graph imported from elsewhere is not batched unless asked (``--batch-imported``):
        its first axis need not be rows that do not see each other."""
        if config.max_batch_size <= 1 or (model.recipe is None and not config.imported):
            return None
        return batcher_of(model, limiter)

    async def run(model: Runtime, tensors: dict[str, np.ndarray], size: int,
                  limiter: anyio.CapacityLimiter | None) -> Any:
        queue = batched(model, limiter)
        if queue is None:
            return await off_loop_if_big(size, lambda: model.run(tensors), limiter)
        return await queue.submit(tensors)

    async def infer(request: Request) -> Any:
        """Open Inference Protocol V2: decode (JSON, or the binary extension), run, encode."""
        name = request.path_params["name"]
        model, canary = repo.route(name, request.path_params.get("version"))
        body = await read_body(request)
        header_length, limiter = request.headers.get(binary.HEADER), heavy(model)
        call = await off_loop_if_big(len(body), lambda: repo.decode(model, body, header_length),
                                     limiter, parsing())
        outputs = await run(model, call.tensors, len(body), limiter)
        served(model.version.name, model.version.version,
               next(iter(call.tensors.values())).shape[0] if call.tensors else 0)
        if canary is not None:
            repo.compare_canary(canary, name, call.tensors, outputs)
        size = sum(x.nbytes for x in outputs.values())
        answer = await off_loop_if_big(size, lambda: repo.encode(call, outputs))
        return binary.response(answer) if isinstance(answer, binary.Encoded) else answer

    async def models(_: Request) -> Any:
        return {"models": [{"name": n, "versions": sorted(v), "latest": repo.latest[n]}
                           for n, v in sorted(repo.models.items())]}

    routes: list[tuple[str, Callable[[Request], Awaitable[Any]], str]] = [
        # the inference routes first: the router tries each pattern in turn
        ("/v2/models/{name}/infer", infer, "POST"),
        ("/v1/models/{name}:predict", predict, "POST"),
        ("/v2/health/live", live, "GET"),
        ("/v2/health/ready", ready, "GET"),
        ("/v2", server_meta, "GET"),
        ("/v2/models/{name}", model_meta, "GET"),
        ("/v2/models/{name}/versions/{version}", model_meta, "GET"),
        ("/v2/models/{name}/ready", model_ready, "GET"),
        ("/v2/models/{name}/versions/{version}/ready", model_ready, "GET"),
        ("/v2/models/{name}/versions/{version}/infer", infer, "POST"),
        ("/v1/models", models, "GET"),
        ("/v1/models/{name}/versions/{version}:predict", predict, "POST"),
    ]
    # The inference routes sit in a bare router in front of FastAPI, which only sees what
    # they do not match (docs, openapi, unknown paths): its middleware stack costs ~100 µs.
    router = Router(
        routes=[Route(path, guarded(fn, method), methods=ANY_METHOD)
                for path, fn, method in routes] + admin.routes(
                    repo, metrics, api_key, url,
                    any_host="*" in ((limits or ServeLimits()).allowed_hosts or ())),
        default=app, lifespan=_lifespan(request_log),
    )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            schema.setdefault("paths", {}).update(INFER_PATHS)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(404)
    async def not_found(_: Request, __: Exception) -> Response:
        return error(404, "no such route; see /docs")

    @app.exception_handler(405)
    async def bad_method(request: Request, exc: Exception) -> Response:
        refused = error(405, f"method {request.method} not allowed here")
        refused.headers.update(getattr(exc, "headers", None) or {})  # Allow
        return refused

    limits = limits or ServeLimits()
    fast = InferPath(router, guarded(infer, "POST"))
    inner = ApiKeyMiddleware(fast, api_key) if api_key else fast
    record = Recorder(metrics, request_log)
    lane = Lane(repo, record, limits, api_key, batched, _error_parts)
    return ServingApp(instrument(Guard(inner, limits), record), lane)


class ServingApp:
    """The ASGI app, and the lane its server's protocol answers plain V2 requests from
    (lane.py); an in-process client (TestClient) only ever sees the app."""

    def __init__(self, app: ASGIApp, lane: Lane) -> None:
        self.app, self.lane = app, lane

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def _error_parts(exc: BaseException, method: str, path: str
                 ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    answer = error_for(exc, method, path)
    return answer.status_code, answer.raw_headers, bytes(answer.body)


def _retire(loop: asyncio.AbstractEventLoop, batcher: Batcher, metrics: Any, name: str,
            version: int, depth: Callable[[], int]) -> None:
    """A let-go model's queue: its worker ends (on the loop), its gauge goes."""
    metrics.unwatch_queue(name, version, depth)
    with contextlib.suppress(RuntimeError):  # the loop has ended already
        loop.call_soon_threadsafe(batcher.stop)


def _lifespan(request_log: Any) -> Callable[[Any], Any]:
    """The request log's writer runs while the server does, and writes its last rows
    when it stops."""

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        if request_log is not None:
            request_log.start()
        try:
            yield
        finally:
            if request_log is not None:
                await anyio.to_thread.run_sync(request_log.close)

    return lifespan


class InferPath:
    """``/v2/models/{name}[/versions/{v}]/infer`` taken straight from the path, before the
    router: every V2 request skips the router's pattern matching and Starlette's per-route
    wrapper (the same endpoint answers, with the same checks)."""

    def __init__(self, app: ASGIApp, endpoint: Handler) -> None:
        self.app, self.endpoint = app, endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        params = infer_params(scope["path"]) if scope["type"] == "http" else None
        if params is None:
            await self.app(scope, receive, send)
            return
        name, version = params
        scope["path_params"] = {"name": name} if version is None else {"name": name,
                                                                        "version": version}
        response = await self.endpoint(Request(scope, receive))
        await response(scope, receive, send)


class ApiKeyMiddleware:
    """Asks for ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``, health checks excepted."""

    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app, self.key = app, key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        if not hmac.compare_digest(api_key_given(scope["headers"]), self.key):
            await error(401, "missing or wrong API key (send Authorization: Bearer KEY)")(
                scope, receive, send)
            return
        await self.app(scope, receive, send)
