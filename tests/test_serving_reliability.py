"""10,000 requests at concurrency 64 through a real `studio serve`, a fifth of them malformed
in every way a client gets wrong: each good one gets its own right answer, each bad one a 4xx
with {"error": …}, nothing fails, the process never restarts, and its memory stays flat."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest
from test_cli import start_server, stop_server
from test_serving_batching import own_rows
from test_serving_transport import rss_mib

CONCURRENCY = 64
REQUESTS = 10_000
PATH = "/v2/models/penguins/infer"


def good(row: np.ndarray, i: int) -> tuple[bytes, dict[str, str]]:
    body = {"id": str(i), "inputs": [{"name": "input", "datatype": "FP32",
                                      "shape": [1, len(row)], "data": row.tolist()}]}
    return json.dumps(body).encode(), {"content-type": "application/json"}


def malformed(width: int) -> list[tuple[str, bytes, dict[str, str], int]]:
    """(what, body, headers, expected status) of each way a request can be wrong."""
    tensor = {"name": "input", "datatype": "FP32", "shape": [1, width], "data": [0.5] * width}
    js = {"content-type": "application/json"}

    lying = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, width],
                                    "parameters": {"binary_data_size": 4 * width}}]}).encode()

    def v2(**change: object) -> bytes:
        return json.dumps({"inputs": [{**tensor, **change}]}).encode()

    return [
        ("wrong shape", v2(shape=[1, width + 3]), js, 400),
        ("wrong datatype", v2(datatype="FP33"), js, 400),
        ("text for numbers", v2(datatype="BYTES", data=["a"] * width), js, 400),
        ("huge dimensions", v2(shape=[10**9, 10**9]), js, 400),
        ("65 dimensions", v2(shape=[1] * 65), js, 400),
        ("name as a list", v2(name=["input"]), js, 400),
        ("INT8 out of range", v2(datatype="INT8", data=[1000] * width), js, 400),
        ("deep JSON", b"[" * 100_000, js, 400),
        ("truncated JSON", v2()[:-7], js, 400),
        ("not JSON", b"\xff\xfe garbage", js, 400),
        ("wrong content type", v2(), {"content-type": "text/plain"}, 415),
        ("binary header longer than the body", v2(),
         {**js, "inference-header-content-length": "99999"}, 400),
        ("binary size that lies", lying + b"\0" * 8,  # says 4 × width bytes follow: 8 do
         {"inference-header-content-length": str(len(lying))}, 400),
        ("raw binary request", b"\0" * 4 * width, {"inference-header-content-length": "0"},
         400),
        ("unknown model", v2(), {**js, "x-path": "/v2/models/nope/infer"}, 404),
    ]


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str,
                   body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    head = f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {len(body)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    writer.write(head.encode() + body)
    status_line = await reader.readline()
    status = int(status_line.split()[1])
    got: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        k, _, v = line.decode("latin-1").partition(":")
        got[k.strip().lower()] = v.strip()
    return status, got, await reader.readexactly(int(got.get("content-length", 0)))


async def flood(host: str, port: int, x: np.ndarray, bad: list) -> dict[str, list]:
    seen: dict[str, list] = {"good": [], "bad": [], "reconnects": []}
    jobs: asyncio.Queue[int] = asyncio.Queue()
    for i in range(REQUESTS):
        jobs.put_nowait(i)

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while not jobs.empty():
                i = jobs.get_nowait()
                if i % 5 == 4:
                    what, body, headers, want = bad[(i // 5) % len(bad)]
                    headers = dict(headers)
                    path = headers.pop("x-path", PATH)
                else:
                    what, want, path = "good", 200, PATH
                    body, headers = good(x[i % len(x)], i)
                status, got, raw = await exchange(reader, writer, path, body, headers)
                doc = json.loads(raw)
                if what == "good":
                    seen["good"].append((i, status, doc))
                else:
                    seen["bad"].append((what, status, want, doc))
                if got.get("connection") == "close":  # the server ends it after a refusal
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    seen["reconnects"].append(what)
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return seen


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_ten_thousand_requests_with_malformed_ones_mixed_in(trained_home: Path,
                                                           tmp_path: Path) -> None:
    x, want = own_rows(trained_home)
    server = start_server(trained_home, tmp_path / "serve.log")
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    bad = malformed(x.shape[1])
    try:
        warm = asyncio.run(flood(host, int(port), x, bad))  # first: the process grows to size
        before = rss_mib(server.proc.pid)
        seen = asyncio.run(flood(host, int(port), x, bad))
        after = rss_mib(server.proc.pid)
        assert server.proc.poll() is None  # the same process answered everything
    finally:
        assert stop_server(server.proc) == 0
    assert len(warm["good"]) + len(warm["bad"]) == REQUESTS
    assert len(seen["good"]) == REQUESTS * 4 // 5 and len(seen["bad"]) == REQUESTS // 5
    for i, status, doc in seen["good"]:
        assert status == 200, doc
        assert doc["id"] == str(i)
        assert np.allclose(doc["outputs"][0]["data"], want[i % len(x)], atol=1e-5)
    for what, status, expected, doc in seen["bad"]:
        assert status == expected, (what, status, doc)
        assert isinstance(doc.get("error"), str) and doc["error"], what
        assert "Traceback" not in doc["error"] and "/studio/" not in doc["error"], what
    assert {w for w, *_ in seen["bad"]} == {w for w, *_ in bad}  # every kind was tried
    assert after - before < 40, f"RSS grew from {before:.0f} to {after:.0f} MiB"
    log = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in log
