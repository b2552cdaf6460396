"""The processes the load benchmark measures, each started on its own by bench_serving_load.

    python tests/benchmarks/load_servers.py floor BODY_FILE
    python tests/benchmarks/load_servers.py bare BODY_FILE
    python tests/benchmarks/load_servers.py naive MODEL.onnx
    python tests/benchmarks/load_servers.py studio HOME REF [REF ...]
    python tests/benchmarks/load_servers.py ort MODEL.onnx --batch 32 --seconds 3

floor: a trivial Starlette endpoint answering a constant body; the HTTP floor. bare: the
same answer from a bare ASGI callable (what Starlette costs). naive: what a
first FastAPI server for a model looks like (pydantic models, one session.run per request,
the session with ONNX Runtime's defaults). Both run on uvicorn as ours does: uvloop +
httptools, one process, on 127.0.0.1 port 0, and print {"url": ...}. studio: `studio serve`
itself. With STUDIO_BENCH_PROFILE=FILE set, SIGUSR1 starts and stops cProfile in any of the
three and writes the stats to FILE, a hook that exists only here. ort: in-process ONNX
Runtime with the server's own session options, rows per second at a fixed batch.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import sys
import time
from typing import Any

import numpy as np
from pydantic import BaseModel


class Tensor(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[float]


class InferRequest(BaseModel):  # at module level: FastAPI resolves the string annotations here
    id: str | None = None
    inputs: list[Tensor]


class InferResponse(BaseModel):
    model_name: str
    outputs: list[Tensor]


def listen() -> tuple[socket.socket, str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.set_inheritable(True)
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


def run_uvicorn(app: Any) -> None:
    import uvicorn

    sock, url = listen()
    config = uvicorn.Config(app, loop="uvloop", http="httptools", log_level="warning",
                            access_log=False)
    profile_on_signal()
    print(json.dumps({"url": url}), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run(sockets=[sock])


def floor_app(body: bytes) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def endpoint(request: Request) -> Response:
        await request.body()  # a POST's body is read, as any real endpoint must
        return Response(body, media_type="application/json")

    return Starlette(routes=[Route("/v2/models/{name}/infer", endpoint, methods=["POST"])])


def bare_app(body: bytes) -> Any:
    """The floor's answer from a bare ASGI callable: what Starlette itself costs."""
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]

    async def app(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def naive_app(model_path: str) -> Any:
    import onnxruntime as ort
    from fastapi import FastAPI

    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    output_names = [o.name for o in session.get_outputs()]

    app = FastAPI()

    @app.post("/v2/models/{name}/infer", response_model=InferResponse)
    async def infer(name: str, request: InferRequest) -> InferResponse:
        feed = {t.name: np.asarray(t.data, dtype=np.float32).reshape(t.shape)
                for t in request.inputs}
        values = session.run(output_names, feed)
        return InferResponse(model_name=name, outputs=[
            Tensor(name=n, shape=list(v.shape), datatype="FP32", data=v.ravel().tolist())
            for n, v in zip(output_names, values, strict=True)])

    return app


def profile_on_signal() -> None:
    """With STUDIO_BENCH_PROFILE=FILE set, SIGUSR1 starts cProfile on the main thread (the
    event loop's) and a second SIGUSR1 stops it and writes the stats, so start-up and
    warm-up stay out. It counts the thread's CPU time: waiting, and time the OS gave to other
    processes, are not a request's cost."""
    target = os.environ.get("STUDIO_BENCH_PROFILE")
    if not target:
        return
    import cProfile

    profile = cProfile.Profile(time.thread_time)
    running = False

    def toggle(*_: Any) -> None:
        nonlocal running
        if running:
            profile.disable()
            profile.dump_stats(f"{target}.part")
            os.replace(f"{target}.part", target)  # whole or absent for the reader
        else:
            profile.enable()
        running = not running

    signal.signal(signal.SIGUSR1, toggle)


def run_studio(home: str, refs: list[str]) -> None:
    from studio.cli import main as studio_main

    profile_on_signal()
    # the MLP is an imported graph whose first axis is independent rows: batch it too
    raise SystemExit(studio_main(["--home", home, "serve", *refs, "--port", "0", "--json",
                                  "--batch-imported"]))


def run_ort(model_path: str, batch: int, seconds: float) -> None:
    """Rows per second of the bare session, the same options `studio serve` gives its own."""
    import onnxruntime as ort

    from studio.core.predict import session_options

    session = ort.InferenceSession(model_path, session_options(0),
                                   providers=["CPUExecutionProvider"])
    spec = session.get_inputs()[0]
    x = np.random.default_rng(0).standard_normal((batch, spec.shape[1])).astype(np.float32)
    for _ in range(20):
        session.run(None, {spec.name: x})
    runs, start, cpu = 0, time.perf_counter(), time.process_time()
    while (elapsed := time.perf_counter() - start) < seconds:
        session.run(None, {spec.name: x})
        runs += 1
    cpu = time.process_time() - cpu  # every thread of this process, ORT's pool included
    print(json.dumps({"rows_per_s": round(runs * batch / elapsed, 1),
                      "cpu_us_per_row": round(cpu / (runs * batch) * 1e6, 2),
                      "batch_ms": round(elapsed / runs * 1e3, 3)}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="role", required=True)
    sub.add_parser("floor").add_argument("body_file")
    sub.add_parser("bare").add_argument("body_file")
    sub.add_parser("naive").add_argument("model")
    p = sub.add_parser("studio")
    p.add_argument("home")
    p.add_argument("refs", nargs="+")
    p = sub.add_parser("ort")
    p.add_argument("model")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    if args.role == "floor":
        with open(args.body_file, "rb") as f:
            run_uvicorn(floor_app(f.read()))
    elif args.role == "bare":
        with open(args.body_file, "rb") as f:
            run_uvicorn(bare_app(f.read()))
    elif args.role == "naive":
        run_uvicorn(naive_app(args.model))
    elif args.role == "studio":
        run_studio(args.home, args.refs)
    else:
        run_ort(args.model, args.batch, args.seconds)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
