"""CPU per inference request: the raw orjson route vs the same work behind FastAPI + pydantic.

    python tests/benchmarks/bench_serving.py [--requests 3000]

Both apps run in this process on the same ModelRepository (a penguins model trained first
in a temporary workspace); each request is driven straight through ASGI, so the figures are
the app's own CPU cost per request, with no sockets in between. The design target: the raw
route costs about a third of the pydantic one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI
from pydantic import BaseModel

from studio.core.workspace import Workspace
from studio.serving.app import create_app
from studio.serving.dataplane import ModelRepository

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "samples" / "penguins.csv"


class Tensor(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[float]


class InferRequest(BaseModel):
    id: str | None = None
    inputs: list[Tensor]


class InferResponse(BaseModel):
    model_name: str
    model_version: str
    outputs: list[Tensor]


def pydantic_app(repo: ModelRepository) -> FastAPI:
    app = FastAPI()

    @app.post("/v2/models/{name}/infer", response_model=InferResponse)
    async def infer(name: str, request: InferRequest) -> Any:  # inline, like ours
        return repo.infer(name, None, request.model_dump(exclude_none=True))

    return app


async def call(app: Any, path: str, body: bytes) -> int:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "server": ("127.0.0.1", 8080),
             "client": ("127.0.0.1", 5000),
             "headers": [(b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode())]}
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def measure(app: Any, body: bytes, n: int) -> float:
    for _ in range(200):
        assert await call(app, "/v2/models/penguins/infer", body) == 200
    start = time.process_time()
    for _ in range(n):
        await call(app, "/v2/models/penguins/infer", body)
    return (time.process_time() - start) / n * 1e6


def measure_core(repo: ModelRepository, body: bytes, n: int) -> float:
    """The work both apps share: JSON parse, tensor decode, the ONNX Runtime run."""
    for _ in range(200):
        repo.infer("penguins", None, orjson.loads(body))
    start = time.process_time()
    for _ in range(n):
        repo.infer("penguins", None, orjson.loads(body))
    return (time.process_time() - start) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        run = [sys.executable, "-m", "studio", "--home", home]
        subprocess.run([*run, "data", "import", str(SAMPLE)], check=True, capture_output=True)
        subprocess.run([*run, "train", "penguins", "--target", "species", "--epochs", "5"],
                       check=True, capture_output=True)
        repo = ModelRepository(Workspace.open(home), ["penguins:1"], threads=1)
        n_features = repo.get("penguins").inputs[0]["shape"][1]
        for rows in (1, 32):
            body = orjson.dumps({"inputs": [{"name": "input", "shape": [rows, n_features],
                                             "datatype": "FP32",
                                             "data": [0.1] * (rows * n_features)}]})
            raw = asyncio.run(measure(create_app(repo), body, args.requests))
            slow = asyncio.run(measure(pydantic_app(repo), body, args.requests))
            core = measure_core(repo, body, args.requests)
            print(json.dumps({
                "rows_per_request": rows, "model_and_decode_us": round(core, 1),
                "raw_route_us": round(raw, 1), "fastapi_pydantic_us": round(slow, 1),
                "http_overhead_raw_us": round(raw - core, 1),
                "http_overhead_pydantic_us": round(slow - core, 1),
                "ratio_pydantic_to_raw": round(slow / raw, 2),
                "overhead_ratio": round((slow - core) / (raw - core), 2)}))


if __name__ == "__main__":
    main()
