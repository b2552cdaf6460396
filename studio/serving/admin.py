"""Routes that watch and change a running server: ``GET /metrics`` (Prometheus),
``GET /admin/stats`` (the GUI's live charts), ``POST /admin/models`` and
``DELETE /admin/models/{ref}`` (what is served, without a restart), ``PUT /admin/canary``
and ``DELETE /admin/canary/{ref}`` (a share of a model's traffic to a candidate version).

The admin routes ask for the API key like every route; without one they answer loopback
clients only (a server without a key listens on loopback anyway, unless a proxy is in front).
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from studio.core.errors import InputError
from studio.core.registry import resolve, servers
from studio.core.workspace import Workspace
from studio.serving.app import ANY_METHOD, error, guarded, parse_json, read_body
from studio.serving.dataplane import ModelRepository
from studio.serving.metrics import ServingMetrics

MAX_REF = 200
Handler = Callable[[Request], Awaitable[Response]]


def routes(repo: ModelRepository, metrics: ServingMetrics, api_key: str | None,
           url: str | None = None, any_host: bool = False) -> list[Route]:
    """The routes, for ``create_app``. ``url``: where the server is announced in the
    registry (None: not announced, as in tests); ``any_host``: any Host name is accepted
    (behind a proxy), so a peer on loopback may be anyone: the admin routes want a key."""
    changing = repo.changing  # one change of what is served at a time, alias moves too
    # changes wait for their turn in a thread of their own, not in the pool inference uses
    # (made in the server's event loop, on first use)
    limiters: list[anyio.CapacityLimiter] = []

    async def in_turn(work: Callable[[], Any]) -> Any:
        if not limiters:
            limiters.append(anyio.CapacityLimiter(1))
        return await anyio.to_thread.run_sync(work, limiter=limiters[0])

    def local_only(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            if request.headers.get("origin") is not None:  # a web page: never, even with CORS
                return error(403, "admin routes do not answer web pages")
            if api_key is None and (any_host or not _loopback(
                    request.client.host if request.client else "")):
                return error(403, "admin routes answer this machine only; start the server "
                             "with --api-key to manage it from elsewhere")
            return await handler(request)

        return endpoint

    async def change(work: Callable[[Workspace], Any], loading: str | None = None) -> Any:
        """Change what is served, in turn, and tell the registry; ``loading``: a ref that
        is claimed before it loads, so `studio models rm` cannot remove it meanwhile."""

        def run() -> Any:
            with changing, _own(repo.ws) as ws:
                if loading is not None:
                    name, number = resolve(ws, loading)
                    announce(ws, sorted({*repo.served(), f"{name}:{number}"}))
                try:
                    return work(ws)
                finally:
                    announce(ws, repo.served())

        return await in_turn(run)

    async def stats(_: Request) -> Any:
        return metrics.snapshot()

    async def add(request: Request) -> Any:
        body = parse_json(await read_body(request))
        ref = body.get("ref") if isinstance(body, dict) else None
        if not isinstance(ref, str) or not ref or len(ref) > MAX_REF:
            raise InputError('body must be {"ref": "NAME" | "NAME:N" | "NAME@ALIAS"}')

        added = await change(lambda ws: repo.add(ref, ws), loading=ref)
        return {"added": added, "served": repo.served()}

    async def remove(request: Request) -> Any:
        ref = request.path_params["ref"]

        await change(lambda _: repo.remove(ref))
        return {"removed": ref, "served": repo.served()}

    async def canary(request: Request) -> Any:
        body = parse_json(await read_body(request))
        if not isinstance(body, dict):
            body = {}
        ref, candidate, percent = body.get("serves"), body.get("candidate"), body.get("percent")
        if (not isinstance(ref, str) or not isinstance(candidate, str)
                or len(ref) > MAX_REF or len(candidate) > MAX_REF
                or not isinstance(percent, int | float) or isinstance(percent, bool)):
            raise InputError('body must be {"serves": "NAME" | "NAME@ALIAS", "candidate": '
                             '"NAME:N", "percent": 10}')

        started = await change(
            lambda ws: repo.set_canary(ref, candidate, float(percent), ws).report(),
            loading=candidate)
        return {"canary": started, "served": repo.served()}

    async def end_canary(request: Request) -> Any:
        ref = request.path_params["ref"]

        await change(lambda _: repo.clear_canary(ref))
        return {"ended": ref, "served": repo.served()}

    def announce(ws: Workspace, refs: list[str]) -> None:
        if url is not None:
            servers.announce(ws, url, refs)

    async def prometheus(request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            refused = error(405, f"method {request.method} not allowed here; use GET")
            refused.headers["allow"] = "GET, HEAD"
            return refused
        body, media_type = metrics.exposition()
        return Response(body, media_type=media_type)

    json_routes: list[tuple[str, Callable[[Request], Awaitable[Any]], str]] = [
        ("/admin/stats", stats, "GET"),
        ("/admin/models", add, "POST"),
        ("/admin/models/{ref}", remove, "DELETE"),
        ("/admin/canary", canary, "PUT"),
        ("/admin/canary/{ref}", end_canary, "DELETE"),
    ]
    return [Route("/metrics", prometheus, methods=ANY_METHOD)] + [
        Route(path, local_only(guarded(fn, method)), methods=ANY_METHOD)
        for path, fn, method in json_routes]


@contextlib.contextmanager
def _own(shared: Workspace) -> Iterator[Workspace]:
    """The workspace on a connection of its own, for a worker thread."""
    ws = Workspace.open(shared.root)
    try:
        yield ws
    finally:
        ws.db.close()


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
