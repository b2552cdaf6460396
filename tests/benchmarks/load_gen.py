"""Load from its own process: wrk when it is on PATH, else a small asyncio client.

    python tests/benchmarks/load_gen.py URL BODY_FILE --connections 64 --seconds 3

Both print one JSON line: requests, seconds, requests_per_s, p50_us/p90_us/p99_us, errors
(connection errors, timeouts and non-2xx answers together). The fallback keeps raw
keep-alive HTTP/1.1 sockets, one request in flight per connection like wrk, and stops at a
request count or a time, whichever comes first; it costs more CPU per request than wrk, so
with it a fast server may be measured against the client's own limit (the output says which
generator ran).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from urllib.parse import urlsplit

WRK_SCRIPT = r"""
local f = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nBENCH {"requests":%d,"duration_us":%d,"errors":%d,"p50_us":%d,"p90_us":%d,' ..
    '"p99_us":%d,"mean_us":%.1f,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max))
end
"""


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(url: str, body_file: str, connections: int, seconds: float) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    try:
        done = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "5s",
             "-s", script.name, url],
            capture_output=True, text=True, timeout=seconds + 30,
            env={**os.environ, "BENCH_BODY_FILE": body_file})
    finally:
        os.unlink(script.name)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    doc = json.loads(line[len("BENCH "):])
    doc["seconds"] = doc.pop("duration_us") / 1e6
    return doc


class Connection(asyncio.Protocol):
    """One keep-alive connection sending the same request again as each answer ends."""

    def __init__(self, request: bytes, shared: dict) -> None:
        self.request, self.shared = request, shared
        self.buf = bytearray()
        self.sent_at = 0
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.send()

    def send(self) -> None:
        if self.shared["stop"]():
            self.transport.close()
            return
        self.sent_at = time.perf_counter_ns()
        self.transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buf[:end]).lower()
        at = head.find(b"content-length:")
        length = int(head[at + 15:].split(b"\r\n", 1)[0]) if at >= 0 else 0
        if len(self.buf) < end + 4 + length:
            return
        del self.buf[:end + 4 + length]
        self.shared["latencies"].append(time.perf_counter_ns() - self.sent_at)
        if not head.startswith(b"http/1.1 2"):
            self.shared["errors"] += 1
        self.send()

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            self.shared["errors"] += 1
        if not self.closed.done():
            self.closed.set_result(None)


async def fallback(url: str, body: bytes, connections: int, seconds: float,
                   max_requests: int) -> dict:
    parts = urlsplit(url)
    request = (f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
               ).encode() + body
    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    shared: dict = {"latencies": [], "errors": 0}
    shared["stop"] = lambda: (len(shared["latencies"]) >= max_requests
                              or time.perf_counter() - start >= seconds)
    protocols = []
    for _ in range(connections):
        _, proto = await loop.create_connection(lambda: Connection(request, shared),
                                                parts.hostname, parts.port)
        protocols.append(proto)
    await asyncio.wait_for(asyncio.gather(*(p.closed for p in protocols)), seconds + 10)
    elapsed = time.perf_counter() - start
    lat = sorted(shared["latencies"])
    if not lat:
        raise SystemExit("the fallback client got no answer")

    def pct(q: float) -> int:
        return lat[min(len(lat) - 1, int(q / 100 * len(lat)))] // 1000

    return {"requests": len(lat), "seconds": elapsed, "errors": shared["errors"],
            "p50_us": pct(50), "p90_us": pct(90), "p99_us": pct(99),
            "mean_us": round(sum(lat) / len(lat) / 1000, 1), "max_us": lat[-1] // 1000}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("body_file")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--max-requests", type=int, default=2_000_000)
    parser.add_argument("--no-wrk", action="store_true", help="use the asyncio client")
    args = parser.parse_args()
    if have_wrk() and not args.no_wrk:
        doc = run_wrk(args.url, args.body_file, args.connections, args.seconds)
        doc["generator"] = "wrk"
    else:
        try:
            import uvloop
            uvloop.install()
        except ImportError:
            pass
        with open(args.body_file, "rb") as f:
            body = f.read()
        doc = asyncio.run(fallback(args.url, body, args.connections, args.seconds,
                                   args.max_requests))
        doc["generator"] = "asyncio"
    doc["requests_per_s"] = round(doc["requests"] / doc["seconds"], 1)
    print(json.dumps(doc))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
