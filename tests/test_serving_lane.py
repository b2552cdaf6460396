"""The fast lane (serving/lane.py) against a real ``studio serve``: every plain V2 request it
takes gets the answer the app gives, byte for byte, errors included; whatever it leaves to
the app (pipelined, slow, keyed, binary) still gets the app's answer; nothing is lost from
the metrics or the request log; and under concurrency nobody gets another's rows. The
quick decode (serving/quick.py) makes the tensors the general decode makes, or steps aside.
"""

import asyncio
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from test_cli import Server, start_server, stop_server

from studio.core.errors import InputError
from studio.core.workspace import Workspace
from studio.serving import quick
from studio.serving.app import create_app
from studio.serving.dataplane import MAX_BATCH, MAX_ELEMENTS, ModelRepository
from studio.serving.front import front_class
from studio.serving.limits import ServeLimits
from studio.serving.protocol import protocol_class

KEY = "lane-test-key"


@pytest.fixture(scope="module")
def server(trained_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(trained_home, tmp_path_factory.mktemp("lane") / "stderr.log")
    try:
        yield srv
    finally:
        stop_server(srv.proc)


@pytest.fixture(scope="module")
def repo(trained_home: Path) -> Iterator[ModelRepository]:
    ws = Workspace.open(trained_home)
    try:
        yield ModelRepository(ws, ["penguins:1"], threads=1)
    finally:
        ws.db.close()


@pytest.fixture(scope="module")
def app(repo: ModelRepository) -> Iterator[TestClient]:
    with TestClient(create_app(repo, log_requests=False)) as client:
        yield client


@pytest.fixture(scope="module")
def width(app: TestClient) -> int:
    return app.get("/v2/models/penguins").json()["inputs"][0]["shape"][1]


def body(width: int, rows: int = 1, value: float = 0.25, **extra: object) -> dict:
    data = [value + i * 0.01 for i in range(rows * width)]
    return {"inputs": [{"name": "input", "shape": [rows, width], "datatype": "FP32",
                        "data": data}], **extra}


def cases(width: int) -> dict[str, bytes]:
    one = body(width)
    tensor = one["inputs"][0]
    return {k: v if isinstance(v, bytes) else json.dumps(v).encode() for k, v in {
        "one row": one,
        "three rows": body(width, rows=3),
        "with an id": body(width, id="req-7"),
        "integers": {"inputs": [{**tensor, "data": list(range(width))}]},
        "id not a string": body(width, id=7),
        "not JSON": b"{nope",
        "not an object": b"[1, 2]",
        "no inputs": b"{}",
        "unknown input": {"inputs": [{**tensor, "name": "nope"}]},
        "wrong datatype": {"inputs": [{**tensor, "datatype": "INT8"}]},
        "too few values": {"inputs": [{**tensor, "data": tensor["data"][:-1]}]},
        "booleans": {"inputs": [{**tensor, "data": [True] * width}]},
        "text": {"inputs": [{**tensor, "data": ["1.5"] * width}]},
        "past FP32": {"inputs": [{**tensor, "data": [1e39] * width}]},
        "nested data": {"inputs": [{**tensor, "data": [tensor["data"]]}]},
        "ragged data": {"inputs": [{**tensor, "data": [0.1, [0.2], *tensor["data"][2:]]}]},
        "shape of a list": {"inputs": [{**tensor, "shape": [[1], width]}]},
        "shape of booleans": {"inputs": [{**tensor, "shape": [True, width]}]},
        "no batch axis": {"inputs": [{**tensor, "shape": [width]}]},
        "an outputs list": {**one, "outputs": [{"name": "probabilities"}]},
        "an unknown output": {**one, "outputs": [{"name": "nope"}]},
        "binary outputs": {**one, "parameters": {"binary_data_output": True}},
    }.items()}


def post_raw(srv: Server, path: str, payload: bytes, headers: dict | None = None
             ) -> httpx.Response:
    return httpx.post(srv.url + path, content=payload, trust_env=False, timeout=10,
                      headers={"content-type": "application/json", **(headers or {})})


def test_the_lane_answers_exactly_as_the_app_does(server: Server, app: TestClient,
                                                  width: int) -> None:
    for what, payload in cases(width).items():
        for path in ("/v2/models/penguins/infer", "/v2/models/penguins/versions/1/infer"):
            ours = post_raw(server, path, payload)
            theirs = app.post(path, content=payload,
                              headers={"content-type": "application/json"})
            assert (ours.status_code, ours.content) == (theirs.status_code, theirs.content), \
                f"{what} on {path}"
            assert ours.headers["content-type"] == theirs.headers["content-type"], what
            assert int(ours.headers["content-length"]) == len(ours.content), what


def test_pipelined_requests_are_answered_in_order(server: Server, width: int) -> None:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)

    def request(payload: bytes) -> bytes:
        return (b"POST /v2/models/penguins/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                % (len(payload), payload))

    firsts = [json.dumps(body(width, value=v, id=f"n{i}")).encode()
              for i, v in enumerate((0.1, 0.2, 0.3))]
    stream = (request(firsts[0]) + b"GET /v2/health/ready HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
              + request(firsts[1]) + request(b"{nope") + request(firsts[2]))
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(stream)
        got = read_responses(s, 5)
    assert [status for status, _ in got] == [200, 200, 200, 400, 200]
    assert [json.loads(b)["id"] for (_, b) in (got[0], got[2], got[4])] == ["n0", "n1", "n2"]
    assert json.loads(got[1][1]) == {"ready": True}


def read_responses(s: socket.socket, n: int) -> list[tuple[int, bytes]]:
    """``n`` HTTP/1.1 responses with a Content-Length each, as (status, body)."""
    buf, out = b"", []
    while len(out) < n:
        head_end = buf.find(b"\r\n\r\n")
        if head_end >= 0:
            head = buf[:head_end].decode("latin-1").split("\r\n")
            length = next(int(line.split(":", 1)[1]) for line in head[1:]
                          if line.lower().startswith("content-length:"))
            if len(buf) >= head_end + 4 + length:
                out.append((int(head[0].split()[1]),
                            buf[head_end + 4:head_end + 4 + length]))
                buf = buf[head_end + 4 + length:]
                continue
        chunk = s.recv(65536)
        assert chunk, f"connection closed after {len(out)} of {n} answers"
        buf += chunk
    return out


def test_a_body_sent_after_a_pause_is_still_answered(server: Server, width: int) -> None:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    payload = json.dumps(body(width, id="late")).encode()
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"POST /v2/models/penguins/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                  % len(payload) + payload[:10])
        time.sleep(0.3)
        s.sendall(payload[10:])
        (status, answer), = read_responses(s, 1)
        assert status == 200 and json.loads(answer)["id"] == "late"
        s.sendall(b"POST /v2/models/penguins/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload))
        assert read_responses(s, 1)[0][0] == 200  # the same connection goes on


def test_concurrent_clients_each_get_their_own_rows(server: Server, app: TestClient,
                                                    width: int) -> None:
    values = [round(0.05 * i, 2) for i in range(48)]

    def probabilities(answer: dict) -> np.ndarray:
        return np.asarray(answer["outputs"][0]["data"])

    expected = {v: probabilities(app.post("/v2/models/penguins/infer",
                                          json=body(width, value=v)).json()) for v in values}
    # far enough apart that anyone's rows in another's answer would show
    assert min(np.abs(expected[a] - expected[b]).max()
               for a in values for b in values if a < b) > 1e-4
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    socks = [socket.create_connection((host, int(port)), timeout=20) for _ in values]
    try:
        for _ in range(5):  # every request is sent before any answer is read: they meet
            for s, v in zip(socks, values, strict=True):
                payload = json.dumps(body(width, value=v)).encode()
                s.sendall(b"POST /v2/models/penguins/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                          % (len(payload), payload))
            for s, v in zip(socks, values, strict=True):
                (status, answer), = read_responses(s, 1)
                assert status == 200, answer
                np.testing.assert_allclose(probabilities(json.loads(answer)), expected[v],
                                           atol=1e-6, err_msg=f"the answer to {v}")
    finally:
        for s in socks:
            s.close()


def test_requests_the_lane_batches_each_get_their_own_rows(trained_home: Path, app: TestClient,
                                                           width: int) -> None:
    # in process, so that all of them are queued before the batch runs (over sockets a
    # test client is too slow to make batches form on a quick model)
    values = [round(0.05 * i, 2) for i in range(48)]
    expected = {v: app.post("/v2/models/penguins/infer", json=body(width, value=v)).json()
                for v in values}
    ws = Workspace.open(trained_home)
    served = create_app(ModelRepository(ws, ["penguins:1"], threads=1), log_requests=False)
    replies: dict[float, tuple[int, bytes]] = {}

    async def send_all() -> None:
        for v in values:
            payload = json.dumps(body(width, value=v)).encode()
            assert served.lane.answer(("penguins", None), "/v2/models/penguins/infer",
                                      payload, lambda s, _, b, v=v: replies.__setitem__(v, (s, b)))
        for _ in range(500):
            if len(replies) == len(values):
                return
            await asyncio.sleep(0.01)

    try:
        asyncio.run(send_all())
    finally:
        ws.db.close()
    assert sorted(replies) == values
    for v, (status, answer) in replies.items():
        assert status == 200
        np.testing.assert_allclose(json.loads(answer)["outputs"][0]["data"],
                                   expected[v]["outputs"][0]["data"], atol=1e-6)
    metrics = served.lane.record.metrics
    entry = next(m for m in metrics.snapshot()["models"] if m["model"] == "penguins")
    assert (entry["requests"], entry["errors"], entry["rows"]) == (len(values), 0, len(values))
    text, _ = metrics.exposition()
    calls = {s.name: s.value for f in text_string_to_metric_families(text.decode())
             for s in f.samples if s.name.startswith("studio_batch_requests")}
    assert calls["studio_batch_requests_sum"] == len(values)
    assert calls["studio_batch_requests_count"] < len(values)  # batched, not one by one


def test_lane_requests_are_counted_and_logged(server: Server, trained_home: Path,
                                              width: int) -> None:
    def counted() -> dict[int, float]:
        text = httpx.get(server.url + "/metrics", trust_env=False).text
        out: dict[int, float] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == "studio_requests_total" and s.labels.get("endpoint") == "infer":
                    code = int(s.labels["code"])
                    out[code] = out.get(code, 0) + s.value
        return out

    before = counted()
    for _ in range(7):
        assert post_raw(server, "/v2/models/penguins/infer",
                        json.dumps(body(width, rows=2)).encode()).status_code == 200
    assert post_raw(server, "/v2/models/penguins/infer", b"{nope").status_code == 400
    after = counted()
    assert after.get(200, 0) - before.get(200, 0) == 7
    assert after.get(400, 0) - before.get(400, 0) == 1
    rows = httpx.get(server.url + "/admin/stats", trust_env=False).json()
    penguins = next(m for m in rows["models"] if m["model"] == "penguins")
    assert penguins["rows"] >= 14
    deadline = time.monotonic() + 10  # the request log is written by a thread, every second
    from studio.core import request_log

    while True:
        ws = Workspace.open(trained_home)
        try:
            logged = request_log.recent(ws, limit=500)
        finally:
            ws.db.close()
        if sum(1 for r in logged if r.status == 400) >= 1 and \
                sum(1 for r in logged if r.rows == 2) >= 7:
            break
        assert time.monotonic() < deadline, logged[:5]
        time.sleep(0.2)


def test_keys_and_hosts_are_checked_on_the_lane(trained_home: Path, tmp_path: Path,
                                                width: int) -> None:
    srv = start_server(trained_home, tmp_path / "stderr.log", "--api-key", KEY)
    try:
        payload = json.dumps(body(width)).encode()
        path = "/v2/models/penguins/infer"
        assert post_raw(srv, path, payload).status_code == 401
        assert post_raw(srv, path, payload, {"x-api-key": "nope"}).status_code == 401
        assert post_raw(srv, path, payload, {"authorization": f"Bearer {KEY}"}
                        ).status_code == 200
        assert post_raw(srv, path, payload, {"x-api-key": KEY, "host": "evil.example"}
                        ).status_code == 421
        assert post_raw(srv, path, payload, {"x-api-key": KEY,
                                             "origin": "https://evil.example"}
                        ).status_code == 403
    finally:
        stop_server(srv.proc)


# -- the quick decode ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model(repo: ModelRepository) -> object:
    return repo.get("penguins")


def general(repo_model: object, request: dict) -> dict[str, np.ndarray]:
    """The general decode, with the quick one out of the way."""
    repo = object.__new__(ModelRepository)
    saved = quick.tensors
    quick.tensors = lambda *_: None  # type: ignore[assignment]
    try:
        return ModelRepository.decode_request(repo, repo_model, request, None).tensors
    finally:
        quick.tensors = saved


def test_quick_decode_makes_the_tensors_the_general_one_makes(model: object, width: int
                                                             ) -> None:
    for request in (body(width), body(width, rows=5, value=-3.5), body(width, id="x"),
                    {"inputs": [{"name": "input", "shape": [2, width], "datatype": "FP32",
                                 "data": list(range(2 * width))}]}):
        fast = quick.tensors(model, request, MAX_BATCH, MAX_ELEMENTS)
        assert fast is not None
        slow = general(model, request)
        assert fast.keys() == slow.keys()
        for name in fast:
            assert fast[name].dtype == slow[name].dtype
            np.testing.assert_array_equal(fast[name], slow[name])


def test_quick_decode_steps_aside_for_what_it_does_not_check(model: object, width: int
                                                            ) -> None:
    for what, payload in cases(width).items():
        try:
            request = json.loads(payload)
        except ValueError:
            continue
        if what in ("one row", "three rows", "with an id", "integers"):
            continue
        assert quick.tensors(model, request, MAX_BATCH, MAX_ELEMENTS) is None, what
        if what in ("an outputs list", "binary outputs", "no batch axis", "nested data"):
            continue  # accepted by the general decode
        with pytest.raises(InputError):
            general(model, request)
            pytest.fail(f"the general decode took {what!r}")
    # past the row limit, and past the value limit, it leaves the refusal to the general one
    assert quick.tensors(model, body(width, rows=3), 2, MAX_ELEMENTS) is None
    assert quick.tensors(model, body(width, rows=3), MAX_BATCH, 3 * width - 1) is None


def test_the_lane_takes_plain_requests_only(trained_home: Path) -> None:
    ws = Workspace.open(trained_home)
    try:
        repo = ModelRepository(ws, ["penguins:1"], threads=1)
        lane = create_app(repo, KEY, ServeLimits(allowed_hosts=("127.0.0.1",)),
                          log_requests=False).lane
    finally:
        ws.db.close()
    plain = [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json"),
             (b"content-length", b"120"), (b"x-api-key", KEY.encode())]

    def scope(method: str = "POST", path: str = "/v2/models/penguins/infer",
              query: bytes = b"", headers: list | None = None) -> dict:
        return {"method": method, "path": path, "query_string": query,
                "headers": plain if headers is None else headers}

    assert lane.take(scope()) == ("penguins", None)
    assert lane.take(scope(path="/v2/models/penguins/versions/1/infer")) == ("penguins", "1")
    refused = {
        "GET": scope("GET"), "a query": scope(query=b"x=1"),
        "another route": scope(path="/v1/models/penguins:predict"),
        "an empty version": scope(path="/v2/models/penguins/versions//infer"),
        "no key": scope(headers=plain[:3]),
        "a wrong key": scope(headers=[*plain[:3], (b"x-api-key", b"nope")]),
        "another host": scope(headers=[(b"host", b"evil.example"), *plain[1:]]),
        "an origin": scope(headers=[*plain, (b"origin", b"https://a.example")]),
        "chunks": scope(headers=[*plain, (b"transfer-encoding", b"chunked")]),
        "gzip": scope(headers=[*plain, (b"content-encoding", b"gzip")]),
        "100-continue": scope(headers=[*plain, (b"expect", b"100-continue")]),
        "binary": scope(headers=[*plain, (b"inference-header-content-length", b"10")]),
        "CSV": scope(headers=[plain[0], (b"content-type", b"text/csv"), *plain[2:]]),
        "no length": scope(headers=[plain[0], plain[1], plain[3]]),
        "a big body": scope(headers=[plain[0], plain[1], (b"content-length", b"70000"),
                                     plain[3]]),
        "a signed length": scope(headers=[plain[0], plain[1], (b"content-length", b"+9"),
                                          plain[3]]),
    }
    for what, s in refused.items():
        assert lane.take(s) is None, what


# -- what the lane must not break: over real sockets, with test-sized limits ----------------


@pytest.fixture(scope="module")
def unbatched(trained_home: Path, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[Server]:
    """No batching (the lane answers without a queue), a small body limit, short timers."""
    env = {"STUDIO_SERVE_MAX_BODY_BYTES": "2000", "STUDIO_SERVE_BODY_IDLE_TIMEOUT_S": "1",
           "STUDIO_SERVE_BODY_GRACE_S": "1", "STUDIO_SERVE_HEADER_TIMEOUT_S": "1",
           "STUDIO_SERVE_KEEP_ALIVE_S": "1", "STUDIO_SERVE_WRITE_TIMEOUT_S": "1",
           "STUDIO_SERVE_MAX_HEADER_BYTES": "4096"}
    with mock.patch.dict(os.environ, env):
        srv = start_server(trained_home, tmp_path_factory.mktemp("unbatched") / "err.log",
                           "--max-batch-size", "1")
    try:
        yield srv
    finally:
        stop_server(srv.proc)


def infer_request(payload: bytes, extra: bytes = b"", version: bytes = b"1.1") -> bytes:
    return (b"POST /v2/models/penguins/infer HTTP/%s\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s"
            % (version, len(payload), extra, payload))


def connect(srv: Server) -> socket.socket:
    host, port = srv.url.removeprefix("http://").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=10)


def test_hundreds_of_pipelined_requests_without_a_queue(unbatched: Server, width: int) -> None:
    payloads = [json.dumps(body(width, id=f"p{i}")).encode() for i in range(300)]
    with connect(unbatched) as s:
        s.sendall(b"GET /v2/health/ready HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                  + b"".join(infer_request(p) for p in payloads))
        got = read_responses(s, 301)
    assert got[0] == (200, b'{"ready":true}')
    assert [json.loads(b)["id"] for _, b in got[1:]] == [f"p{i}" for i in range(300)]


def test_a_pipelined_request_whose_body_never_comes_is_timed_out(unbatched: Server,
                                                                 width: int) -> None:
    payload = json.dumps(body(width)).encode()
    with connect(unbatched) as s:
        s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                  + infer_request(payload)[:-len(payload)])
        started = time.monotonic()
        status, _ = read_responses(s, 1)[0]
        assert status == 200
        s.settimeout(8)
        rest = b""
        while chunk := s.recv(65536):
            rest += chunk
        assert time.monotonic() - started < 8
    assert rest.startswith(b"HTTP/1.1 408"), rest[:80]


def test_closing_clients_and_the_body_limit_on_the_lane(unbatched: Server, width: int) -> None:
    payload = json.dumps(body(width, id="last")).encode()
    for request in (infer_request(payload, b"Connection: close\r\n"),
                    infer_request(payload, version=b"1.0")):
        with connect(unbatched) as s:
            s.sendall(request)
            answer = b""
            while chunk := s.recv(65536):  # the server closes after its answer
                answer += chunk
        head, _, rest = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and b"connection: close" in head.lower()
        assert json.loads(rest)["id"] == "last"
    big = json.dumps(body(width, rows=40)).encode()
    assert 2000 < len(big) < 64 * 1024
    assert post_raw(unbatched, "/v2/models/penguins/infer", big).status_code == 413


def test_one_connection_moves_from_the_lane_to_the_full_protocol(unbatched: Server,
                                                                 width: int) -> None:
    payload = [json.dumps(body(width, id=f"k{i}")).encode() for i in range(3)]
    with connect(unbatched) as s:
        answers = []
        for request in (infer_request(payload[0]),  # the lane
                        b"GET /v2/health/ready HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",  # hand over
                        infer_request(payload[1]), infer_request(b"{nope"),
                        infer_request(payload[2])):
            s.sendall(request)  # one at a time: each answered before the next is sent
            answers += read_responses(s, 1)
    assert [status for status, _ in answers] == [200, 200, 200, 400, 200]
    assert [json.loads(answers[i][1])["id"] for i in (0, 2, 4)] == ["k0", "k1", "k2"]


def test_an_idle_lane_connection_is_closed_after_the_keep_alive(unbatched: Server,
                                                                width: int) -> None:
    with connect(unbatched) as s:
        s.sendall(infer_request(json.dumps(body(width)).encode()))
        assert read_responses(s, 1)[0][0] == 200
        started = time.monotonic()
        s.settimeout(10)
        assert s.recv(1) == b""  # closed by the server, not by this test's timeout
        assert 0.5 < time.monotonic() - started < 5


def read_until_closed(s: socket.socket, limit_s: float = 8) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and how long that took."""
    started, got = time.monotonic(), b""
    s.settimeout(limit_s)
    try:
        while chunk := s.recv(65536):
            got += chunk
    except ConnectionResetError:
        pass
    return got, time.monotonic() - started


def test_the_start_of_a_next_request_has_its_own_deadline(unbatched: Server,
                                                          width: int) -> None:
    payload = json.dumps(body(width)).encode()
    with connect(unbatched) as s:  # a lane request, then one byte of the next, then silence
        s.sendall(infer_request(payload) + b"P")
        got, took = read_until_closed(s)
    assert got.startswith(b"HTTP/1.1 200") and b"HTTP/1.1 408" in got
    assert took < 5


def test_empty_lines_between_requests_are_ignored(unbatched: Server, width: int) -> None:
    payload = json.dumps(body(width, id="after")).encode()
    with connect(unbatched) as s:
        s.sendall(infer_request(payload) + b"\r\n\r\n" + infer_request(payload) + b"\r\n")
        got = read_responses(s, 2)
    assert [status for status, _ in got] == [200, 200]
    assert "Traceback" not in unbatched.stderr.read_text()


def test_a_head_over_the_cap_is_refused_even_in_one_read(unbatched: Server,
                                                          width: int) -> None:
    payload = json.dumps(body(width)).encode()
    with connect(unbatched) as s:
        s.sendall(infer_request(payload, b"X-Padding: " + b"x" * 8000 + b"\r\n"))
        got, _ = read_until_closed(s)
    assert got.startswith(b"HTTP/1.1 431")


class FakeTransport:
    """What the front asks of its transport, recorded."""

    def __init__(self) -> None:
        self.aborted = self.closed = False
        self.reading = True
        self.written = b""
        self.resumed_with: list[int] = []  # unanswered bytes whenever reading resumed
        self.front: object = None

    def is_closing(self) -> bool:
        return self.aborted or self.closed

    def abort(self) -> None:
        self.aborted = True

    def close(self) -> None:
        self.closed = True

    def write(self, data: bytes) -> None:
        self.written += data

    def get_write_buffer_size(self) -> int:
        return self.unsent

    unsent = 0

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True
        f = self.front
        self.resumed_with.append(len(f.buf) - f.start)  # type: ignore[attr-defined]


def fake_front(repo: ModelRepository, **limits: object) -> tuple[object, FakeTransport]:
    """A front protocol on a fake transport (call inside a running event loop)."""
    app = create_app(repo, log_requests=False)
    cls = front_class(protocol_class(ServeLimits(**limits), app.lane), app.lane)
    state = SimpleNamespace(connections=set(), default_headers=[], total_requests=0)
    front = cls(config=None, server_state=state, app_state={})
    transport = FakeTransport()
    transport.front = front
    front.connection_made(transport)  # type: ignore[arg-type]
    return front, transport


def test_a_lane_client_that_does_not_read_is_cut_off(repo: ModelRepository) -> None:
    """The front's write deadline, without sockets: the kernel's buffers decide when a
    real client's unread answers make the transport push back, not the test."""

    async def main() -> FakeTransport:
        front, transport = fake_front(repo, write_timeout_s=1.0)
        front.pause_writing()  # the client stopped reading our answers
        now = asyncio.get_running_loop().time()
        front._expired(now + 0.5)
        assert not transport.aborted  # not yet
        front.pause_writing()  # paused again: the deadline runs from the first pause
        front._expired(now + 1.1)
        return transport

    assert asyncio.run(main()).aborted


def test_a_pipelining_flood_is_read_only_as_it_is_answered(repo: ModelRepository,
                                                           width: int) -> None:
    one = infer_request(json.dumps(body(width)).encode())

    async def main() -> FakeTransport:
        front, transport = fake_front(repo, max_header_bytes=1024)
        for _ in range(20):  # 20 reads of 10 requests while answers are pending
            front.data_received(one * 10)
        assert not transport.reading
        for _ in range(500):
            if transport.written.count(b"HTTP/1.1 200") == 200:
                break
            await asyncio.sleep(0.01)
        return transport

    transport = asyncio.run(main())
    assert transport.written.count(b"HTTP/1.1 200") == 200
    assert transport.reading
    # reading came back only once what was here was answered
    assert transport.resumed_with and max(transport.resumed_with) < len(one)


def test_reading_resumes_for_a_body_once_the_client_reads_again(repo: ModelRepository,
                                                                width: int) -> None:
    payload = json.dumps(body(width, rows=8)).encode()
    request = infer_request(payload)

    async def main() -> FakeTransport:
        front, transport = fake_front(repo, max_header_bytes=512)
        front.pause_writing()  # the client is not reading
        front.data_received(request[:-10])  # all but the body's end: over 512 bytes
        assert not transport.reading
        front.resume_writing()  # it reads again: the body's end must be read too
        assert transport.reading
        front.data_received(request[-10:])
        for _ in range(200):
            if b"HTTP/1.1 200" in transport.written:
                break
            await asyncio.sleep(0.01)
        return transport

    assert asyncio.run(main()).written.startswith(b"HTTP/1.1 200")


def test_empty_lines_do_not_renew_a_deadline(repo: ModelRepository) -> None:
    async def main() -> None:
        front, _ = fake_front(repo)
        first = front.deadline
        for piece in (b"\r", b"\n", b"\r", b"\n", b"\r"):
            await asyncio.sleep(0.01)
            front.data_received(piece)
            assert front.deadline == first, piece

    asyncio.run(main())


def test_a_dropped_connection_with_unsent_answers_is_bounded(repo: ModelRepository) -> None:
    async def main() -> FakeTransport:
        front, transport = fake_front(repo, write_timeout_s=1.0)
        transport.unsent = 4000  # answers the client has not read, under the high-water mark
        now = asyncio.get_running_loop().time()
        assert front._drop()  # idle too long, or the oldest idle at the cap: closed...
        assert transport.closed and not transport.aborted
        front.resume_writing()  # (a closing transport keeps its write deadline)
        front._expired(now + 1.1)  # ...and cut off once the write deadline passes
        return transport

    assert asyncio.run(main()).aborted


def test_a_trickled_head_and_pipelined_heads_are_all_found(repo: ModelRepository,
                                                           width: int) -> None:
    one = infer_request(json.dumps(body(width)).encode())

    async def main() -> FakeTransport:
        front, transport = fake_front(repo)
        for i in range(len(one)):  # a byte at a time, then two whole ones in one read
            front.data_received(one[i:i + 1])
        await asyncio.sleep(0.05)
        front.data_received(one + b"\r\n" + one)
        for _ in range(200):
            if transport.written.count(b"HTTP/1.1 200") == 3:
                break
            await asyncio.sleep(0.01)
        return transport

    assert asyncio.run(main()).written.count(b"HTTP/1.1 200") == 3
