"""Adaptive batching through a real `studio serve`: under concurrency every caller gets the
answer to its own row, never another's, and a lone request is not held back."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from conftest import PENGUINS
from test_cli import start_server, stop_server

from studio.core import registry
from studio.core.datasets.recipe import transform
from studio.core.predict import Predictor
from studio.core.workspace import Workspace

CONCURRENCY = 64
REQUESTS = 640


def own_rows(home: Path) -> tuple[np.ndarray, np.ndarray]:
    ws = Workspace.open(home)
    try:
        predictor = Predictor(ws, registry.get_version(ws, "penguins:1"), threads=1)
        frame = pd.read_csv(PENGUINS).drop(columns=["species"])
        x = transform(predictor.recipe, frame)
        return x, predictor.infer({"input": x})
    finally:
        ws.db.close()


async def send_all(url: str, x: np.ndarray) -> list[tuple[int, list[float]]]:
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(limits=limits, timeout=30, trust_env=False) as client:
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(i: int) -> tuple[int, list[float]]:
            row = x[i % len(x)]
            body = {"id": str(i), "inputs": [{"name": "input", "datatype": "FP32",
                                              "shape": [1, len(row)],
                                              "data": row.tolist()}]}
            async with gate:
                r = await client.post(url, json=body)
            doc = r.json()
            assert r.status_code == 200, doc
            assert doc["id"] == str(i)
            return i, doc["outputs"][0]["data"]

        return await asyncio.gather(*(one(i) for i in range(REQUESTS)))


def test_every_caller_gets_its_own_answer_under_concurrency(trained_home: Path,
                                                           tmp_path: Path) -> None:
    x, want = own_rows(trained_home)
    server = start_server(trained_home, tmp_path / "serve.log")
    try:
        url = f"{server.url}/v2/models/penguins/infer"
        answers = asyncio.run(send_all(url, x))
        metrics = httpx.get(f"{server.url}/metrics", trust_env=False).text
        lone = []
        with httpx.Client(trust_env=False) as client:
            body = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, x.shape[1]],
                                "data": x[0].tolist()}]}
            for _ in range(20):
                start = time.perf_counter()
                assert client.post(url, json=body).status_code == 200
                lone.append(time.perf_counter() - start)
    finally:
        assert stop_server(server.proc) == 0
    for i, got in answers:
        assert np.allclose(got, want[i % len(x)], atol=1e-5), f"request {i} got another answer"
    assert float(np.median(lone)) < 0.05  # no fixed wait for company (the delay is ms-scale)
    calls = families(metrics)
    # every request answered, in fewer ONNX Runtime calls than requests: batches formed
    assert calls["studio_batch_requests_sum"] == REQUESTS
    assert calls["studio_batch_requests_count"] < REQUESTS


def families(text: str) -> dict[str, float]:
    """The penguins:1 samples of a Prometheus text page, by name (labels dropped)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or 'model="penguins"' not in line:
            continue
        name = line.partition("{")[0]
        out[name] = out.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return out
