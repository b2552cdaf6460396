"""``studio serve`` under a misbehaving crowd, over real sockets: thousands of half-sent
requests, oversized headers, more connections than allowed, and a burst of large bodies
that are all refused. Each server runs with short, test-sized limits (STUDIO_SERVE_*)."""

import contextlib
import json
import os
import resource
import selectors
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import httpx
import pytest
from conftest import run_studio
from test_cli import Server, start_server, stop_server

HEADER_TIMEOUT_S = 4.0
WRITE_TIMEOUT_S = 1.0
HALF_OPEN = 2000
ROW = {"island": "Biscoe", "bill_length_mm": 47.5, "bill_depth_mm": 14.8,
       "flipper_length_mm": 217.0, "body_mass_g": 5200.0, "sex": "male", "year": 2008}


@contextlib.contextmanager
def serving(home: Path, log: Path, *options: str, **limits: object) -> Iterator[Server]:
    env = {f"STUDIO_SERVE_{k.upper()}": str(v) for k, v in limits.items()}
    with mock.patch.dict(os.environ, env):
        srv = start_server(home, log, *options)
    try:
        yield srv
    finally:
        stop_server(srv.proc)


@pytest.fixture(scope="module")
def server(trained_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("transport") / "stderr.log"
    with serving(trained_home, log, header_timeout_s=HEADER_TIMEOUT_S,
                 body_idle_timeout_s=HEADER_TIMEOUT_S, body_grace_s=HEADER_TIMEOUT_S,
                 write_timeout_s=WRITE_TIMEOUT_S) as srv:
        yield srv


def address(srv: Server) -> tuple[str, int]:
    host, port = srv.url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def enough_files(n: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        if hard != resource.RLIM_INFINITY and hard < n:
            pytest.skip(f"needs {n} open files, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, hard))


def health_latency(url: str) -> float:
    """Seconds for a fresh connection's readiness check; it must answer 200."""
    began = time.monotonic()
    response = httpx.get(f"{url}/v2/health/ready", timeout=5, trust_env=False)
    assert response.status_code == 200, response.text
    return time.monotonic() - began


def open_many(srv: Server, payloads: list[bytes]) -> list[socket.socket]:
    socks = []
    try:
        for payload in payloads:
            s = socket.create_connection(address(srv), timeout=5)
            if payload:
                s.sendall(payload)
            socks.append(s)
    except BaseException:
        for s in socks:
            s.close()
        raise
    return socks


def readable(socks: list[socket.socket], wait_s: float) -> set[socket.socket]:
    """The sockets with something to read (an answer, or the server's close)."""
    with selectors.DefaultSelector() as sel:
        for s in socks:
            sel.register(s, selectors.EVENT_READ)
        return {key.fileobj for key, _ in sel.select(wait_s)}  # type: ignore[misc]


def wait_all_readable(socks: list[socket.socket], deadline: float) -> set[socket.socket]:
    done: set[socket.socket] = set()
    while len(done) < len(socks) and time.monotonic() < deadline:
        done |= readable([s for s in socks if s not in done], 0.2)
    return done


def first_bytes(s: socket.socket) -> bytes:
    s.settimeout(1)
    try:
        return s.recv(200)
    except (ConnectionResetError, TimeoutError):
        return b"<reset>"


def test_half_sent_requests_do_not_take_the_server_offline(server: Server) -> None:
    """The attack that took the old server offline: sockets with partial headers and
    partial bodies, held open. Readiness checks keep answering while they are held, and
    the server closes every one of them after its deadline."""
    enough_files(HALF_OPEN + 200)
    partial_headers = b"GET /v2/health/ready HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
    partial_body = (b"POST /v1/models/penguins:predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
                    b'{"instances": [')
    latencies: list[float] = []
    began = time.monotonic()
    held_until = began + HEADER_TIMEOUT_S * 0.8  # every socket below is opened after `began`

    def check_health() -> None:  # while the sockets are opened, and while they are held
        while time.monotonic() < held_until:
            try:
                latencies.append(health_latency(server.url))
            except (AssertionError, httpx.HTTPError):
                latencies.append(float("inf"))
            time.sleep(0.1)

    checker = threading.Thread(target=check_health)
    checker.start()
    try:
        socks = open_many(server, [partial_headers, partial_body] * (HALF_OPEN // 2))
    finally:
        checker.join()
    try:
        assert time.monotonic() < held_until + 0.5, "opening the sockets took too long"
        assert not readable(socks, 0), "the server closed half-open sockets too early"
        assert len(latencies) >= 5 and max(latencies) < 1.0, latencies

        done = wait_all_readable(socks, began + HEADER_TIMEOUT_S * 2 + 5)
        assert len(done) == len(socks), f"{len(socks) - len(done)} still held open"
        answers = Counter(first_bytes(s)[:12] for s in socks)
        # partial headers: 408 then close; partial bodies: the route's 408 then close
        assert set(answers) <= {b"HTTP/1.1 408", b"", b"<reset>"}, answers
        assert answers[b"HTTP/1.1 408"] >= HALF_OPEN // 2, answers
    finally:
        for s in socks:
            s.close()
    assert health_latency(server.url) < 1.0


def test_oversized_headers_and_idle_sockets(server: Server) -> None:
    with socket.create_connection(address(server), timeout=5) as s:
        s.sendall(b"GET /v2/health/ready HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: "
                  + b"a" * (1 << 20) + b"\r\n\r\n")
        answer = s.recv(400)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431") and b"connection: close" in head
    assert "headers" in json.loads(body)["error"]

    idle = socket.create_connection(address(server), timeout=HEADER_TIMEOUT_S * 3)
    began = time.monotonic()
    assert idle.recv(10) == b""  # closed by the server, without a word
    assert HEADER_TIMEOUT_S * 0.8 < time.monotonic() - began < HEADER_TIMEOUT_S * 2
    idle.close()

    # a well-behaved client keeps its connection for several requests
    with httpx.Client(base_url=server.url, trust_env=False) as client:
        for _ in range(3):
            assert client.post("/v1/models/penguins:predict",
                               json={"instances": [ROW]}).status_code == 200
        assert client.get("/v2/health/ready").status_code == 200


def test_a_dropped_client_leaves_no_traceback_in_the_log(server: Server) -> None:
    size = server.stderr.stat().st_size
    for _ in range(20):
        with socket.create_connection(address(server), timeout=5) as s:
            s.sendall(b"POST /v1/models/penguins:predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
                      + b'{"instances": [' + b" " * 70_000)
    assert health_latency(server.url) < 1.0
    time.sleep(0.2)
    with server.stderr.open("rb") as f:
        f.seek(size)
        grown = f.read()
    assert b"Traceback" not in grown and len(grown) < 20 * 120, grown[:2000]


def test_a_client_that_does_not_read_its_answers_is_cut_off(server: Server) -> None:
    """Pipelined requests whose answers are never read: the server stops waiting for the
    client after the write deadline instead of holding the answers forever."""
    one = len(httpx.get(f"{server.url}/openapi.json", trust_env=False).content)
    count = 2000
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    with s:
        s.connect(address(server))
        s.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * count)
        time.sleep(WRITE_TIMEOUT_S + 1.5)
        s.settimeout(5)
        received, ended = 0, False
        while not ended:
            try:
                chunk = s.recv(1 << 20)
            except ConnectionResetError:
                chunk = b""
            received += len(chunk)
            ended = not chunk
    assert received < count * one / 2, f"{received} of {count * one} bytes: never cut off"
    assert health_latency(server.url) < 1.0


def test_over_the_connection_cap_the_longest_idle_are_closed_first(
        trained_home: Path, tmp_path: Path) -> None:
    cap, crowd = 100, 300
    enough_files(crowd + 200)
    with serving(trained_home, tmp_path / "stderr.log", max_connections=cap,
                 header_timeout_s=60) as srv:
        socks = open_many(srv, [b""] * crowd)
        try:
            assert health_latency(srv.url) < 1.0  # a new client gets in over the cap
            time.sleep(0.3)
            closed = readable(socks, 0)
            # the oldest were let go (their timers would take 60 s), the newest kept
            assert len(closed) >= crowd - cap, len(closed)
            assert not closed & set(socks[-cap // 2:])
            assert all(first_bytes(s) in (b"", b"<reset>") for s in closed)
        finally:
            for s in socks:
                s.close()


def test_serve_options_reach_the_server(trained_home: Path, tmp_path: Path) -> None:
    origin = "https://app.example"
    with serving(trained_home, tmp_path / "stderr.log", "--max-body-mb", "0.5",
                 "--allowed-host", "models.internal", "--cors-origin", origin) as srv, \
            httpx.Client(base_url=srv.url, trust_env=False) as client:
        assert client.get("/v2/health/ready",
                          headers={"host": "models.internal:80"}).status_code == 200
        assert client.get("/v2/health/ready", headers={"host": "evil.example"}).status_code \
            == 421
        big = client.post("/v1/models/penguins:predict", json={"instances": [ROW] * 5000})
        assert big.status_code == 413 and "0.5 MiB" in big.json()["error"]
        preflight = client.options("/v1/models/penguins:predict", headers={
            "origin": origin, "access-control-request-method": "POST"})
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == origin


@pytest.mark.parametrize("option,words", [
    (["--cors-origin", "app.example"], "CORS origin"),
    (["--cors-origin", "https://app.example/path"], "CORS origin"),
    (["--max-body-mb", "0"], "--max-body-mb"),
    (["--max-body-mb", "nan"], "--max-body-mb"),
])
def test_bad_serve_options_are_refused_before_serving(trained_home: Path, option: list[str],
                                                      words: str) -> None:
    result = run_studio(trained_home, "serve", "penguins:1", "--port", "0", *option,
                        timeout=30)
    assert result.returncode != 0
    assert result.stderr.startswith("studio: error: ") and words in result.stderr
    assert "Traceback" not in result.stderr


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_memory_goes_back_after_a_burst_of_large_refused_bodies(server: Server) -> None:
    """16 bodies of 30 MiB at once, each over the model's row limit: before, the server
    parsed them all at once (4.3 GB) and kept the memory."""
    with httpx.Client(base_url=server.url, timeout=60, trust_env=False) as client:
        for _ in range(20):
            assert client.post("/v1/models/penguins:predict",
                               json={"instances": [ROW] * 50}).status_code == 200
    time.sleep(0.3)
    before = rss_mib(server.proc.pid)
    one = json.dumps(ROW).encode()
    rows = (30 << 20) // (len(one) + 2)
    body = b'{"instances": [' + b", ".join([one] * rows) + b"]}"
    answers: list[tuple[int, str]] = []

    def post() -> None:
        with httpx.Client(base_url=server.url, timeout=60, trust_env=False) as client:
            r = client.post("/v1/models/penguins:predict", content=body,
                            headers={"content-type": "application/json"})
            answers.append((r.status_code, r.json()["error"]))

    threads = [threading.Thread(target=post) for _ in range(16)]
    peak = before
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        peak = max(peak, rss_mib(server.proc.pid))
        time.sleep(0.05)
    time.sleep(1.0)  # the allocator is trimmed off the event loop
    after = rss_mib(server.proc.pid)
    statuses = Counter(status for status, _ in answers)
    assert len(answers) == 16 and set(statuses) <= {400, 503}, statuses
    assert statuses[400] >= 4  # the budget lets a few in at a time, the rest retry later
    assert after <= 1.5 * before, f"RSS {before:.0f} MiB before, {after:.0f} after " \
                                  f"(peak {peak:.0f})"
    with httpx.Client(base_url=server.url, trust_env=False) as client:
        assert client.post("/v1/models/penguins:predict",
                           json={"instances": [ROW]}).status_code == 200
