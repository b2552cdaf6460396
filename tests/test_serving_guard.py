"""What a web page or a misbehaving client can make the app do, in process: the Host,
Origin and content-type rules, CORS only where configured, 405s that name the method, slow
and dropped bodies, and the byte budget for large bodies."""

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from starlette.testclient import TestClient

from studio.core.workspace import Workspace
from studio.serving.app import create_app
from studio.serving.body import ByteBudget
from studio.serving.dataplane import ModelRepository
from studio.serving.guard import host_names
from studio.serving.limits import ServeLimits

ROW = {"island": "Biscoe", "bill_length_mm": 47.5, "bill_depth_mm": 14.8,
       "flipper_length_mm": 217.0, "body_mass_g": 5200.0, "sex": "male", "year": 2008}
PREDICT = "/v1/models/penguins:predict"
BASE = "http://127.0.0.1:8080"
KEY = "k3y-for-the-guard"


@pytest.fixture(scope="module")
def repo(trained_home: Path) -> Iterator[ModelRepository]:
    ws = Workspace.open(trained_home)
    yield ModelRepository(ws, ["penguins:1"], threads=1)
    ws.db.close()


def served(repo: ModelRepository, bound: str = "127.0.0.1", extra: tuple[str, ...] = (),
           **limits: object) -> TestClient:
    """A client of the app as ``studio serve --host bound`` makes it."""
    app = create_app(repo, limits.pop("api_key", None),  # type: ignore[arg-type]
                     ServeLimits(allowed_hosts=host_names(bound, extra), **limits))
    return TestClient(app, base_url=BASE)


@pytest.fixture(scope="module")
def client(repo: ModelRepository) -> Iterator[TestClient]:
    with served(repo, extra=("models.internal",)) as c:
        yield c


def assert_error(response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()["error"]


def no_cors(response) -> bool:
    return not any(h.lower().startswith("access-control-") for h in response.headers)


# -- Host: DNS rebinding -------------------------------------------------------------------

@pytest.mark.parametrize("host", ["127.0.0.1:8080", "127.0.0.1", "localhost:8080",
                                  "LOCALHOST.", "[::1]:8080", "models.internal:9000"])
def test_the_bound_names_are_answered(client: TestClient, host: str) -> None:
    assert client.get("/v2/health/ready", headers={"host": host}).status_code == 200


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:8080",
                                  "127.0.0.1.attacker.example", "127.0.0.1:80x", "[::1",
                                  "10.1.2.3:8080"])
def test_other_host_names_are_refused(client: TestClient, host: str) -> None:
    """A page whose name was made to point at 127.0.0.1 still sends its own name."""
    for response in (client.get("/v2/health/ready", headers={"host": host}),
                     client.post(PREDICT, json={"instances": [ROW]}, headers={"host": host})):
        assert "Host" in assert_error(response, 421)


def test_a_wildcard_bind_answers_its_addresses_but_not_foreign_names(
        repo: ModelRepository) -> None:
    with served(repo, bound="0.0.0.0") as c:
        assert c.get("/v2/health/ready", headers={"host": "192.168.7.9:8080"}).status_code \
            == 200
        assert_error(c.get("/v2/health/ready", headers={"host": "attacker.example"}), 421)
    with served(repo, extra=("*",)) as c:  # --allowed-host '*': a proxy in front checks it
        assert c.get("/v2/health/ready", headers={"host": "anything.example"}).status_code \
            == 200


# -- content types and origins: simple cross-site POSTs ----------------------------------------

@pytest.mark.parametrize("kind", ["application/json", "application/json; charset=utf-8",
                                  "Application/JSON", "application/vnd.studio+json"])
def test_json_content_types_are_read(client: TestClient, kind: str) -> None:
    response = client.post(PREDICT, content=orjson.dumps({"instances": [ROW]}),
                           headers={"content-type": kind})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("kind", ["text/plain", "application/x-www-form-urlencoded",
                                  "multipart/form-data; boundary=x", "application/xml"])
def test_the_content_types_a_form_can_send_are_refused(client: TestClient, kind: str) -> None:
    response = client.post(PREDICT, content=orjson.dumps({"instances": [ROW]}),
                           headers={"content-type": kind})
    assert "content type" in assert_error(response, 415)
    assert response.headers["connection"] == "close"  # its body was never read


def test_no_content_type_is_accepted_only_without_an_origin(client: TestClient) -> None:
    body = orjson.dumps({"instances": [ROW]})
    assert client.post(PREDICT, content=body).status_code == 200  # as tritonclient sends
    same_origin = client.post(PREDICT, content=body, headers={"origin": BASE})
    assert_error(same_origin, 415)


def test_a_post_from_a_foreign_origin_is_refused(client: TestClient) -> None:
    response = client.post(PREDICT, json={"instances": [ROW]},
                           headers={"origin": "https://attacker.example"})
    assert "origin" in assert_error(response, 403)
    assert no_cors(response)
    # the server's own pages (/docs) post from its own origin
    own = client.post(PREDICT, json={"instances": [ROW]}, headers={"origin": BASE})
    assert own.status_code == 200 and no_cors(own)
    # a cross-site GET is answered, but without CORS headers the page cannot read it
    read = client.get("/v2", headers={"origin": "https://attacker.example"})
    assert read.status_code == 200 and no_cors(read)


def test_cors_headers_only_for_configured_origins(repo: ModelRepository) -> None:
    app_origin = "https://app.example"
    with served(repo, cors_origins=(app_origin,), api_key=KEY) as c:
        preflight = c.options(PREDICT, headers={
            "origin": app_origin, "access-control-request-method": "POST",
            "access-control-request-headers": "Content-Type, Authorization, X-Evil"})
        assert preflight.status_code == 204  # before the API key: browsers send none here
        assert preflight.headers["access-control-allow-origin"] == app_origin
        allowed = preflight.headers["access-control-allow-headers"]
        assert "content-type" in allowed and "authorization" in allowed
        assert "x-evil" not in allowed

        answer = c.post(PREDICT, json={"instances": [ROW]},
                        headers={"origin": app_origin, "authorization": f"Bearer {KEY}"})
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == app_origin
        assert "Origin" in answer.headers["vary"]
        unauthorized = c.post(PREDICT, json={"instances": [ROW]}, headers={"origin": app_origin})
        assert_error(unauthorized, 401)  # and the page can read why
        assert unauthorized.headers["access-control-allow-origin"] == app_origin

        other = c.options(PREDICT, headers={"origin": "https://attacker.example",
                                            "access-control-request-method": "POST"})
        assert_error(other, 403)
        assert no_cors(other)
        assert c.get("/v2/health/ready").status_code == 200  # health stays public


# -- methods ------------------------------------------------------------------------------

def test_405_names_the_allowed_method(client: TestClient) -> None:
    response = client.delete("/v2/models/penguins/infer")
    assert_error(response, 405)
    assert response.headers["allow"] == "POST"
    response = client.post("/v2/health/ready", json={})
    assert_error(response, 405)
    assert response.headers["allow"] == "GET, HEAD"
    docs = client.post("/docs", json={})
    assert_error(docs, 405)
    assert "GET" in docs.headers["allow"]


def test_max_body_limit_is_configurable(repo: ModelRepository) -> None:
    body = orjson.dumps({"instances": [ROW] * 40})
    with served(repo, max_body_bytes=len(body) - 1) as c:
        response = c.post(PREDICT, content=body, headers={"content-type": "application/json"})
        assert "body" in assert_error(response, 413)
        assert response.headers["connection"] == "close"
    with served(repo, max_body_bytes=len(body)) as c:
        assert c.post(PREDICT, content=body,
                      headers={"content-type": "application/json"}).status_code == 200


# -- bodies that come slowly, or not at all ------------------------------------------------

def request_scope(path: str, length: int) -> dict:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": b"", "root_path": "", "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 8080),
            "headers": [(b"host", b"127.0.0.1:8080"), (b"content-type", b"application/json"),
                        (b"content-length", str(length).encode())]}


async def call(app, path: str, length: int, pieces) -> tuple[dict, dict]:
    """Drive the ASGI app with a body from the async iterator ``pieces``; returns the
    response start message and the parsed body."""
    sent: list[dict] = []

    async def receive() -> dict:
        try:
            chunk = await anext(pieces)
        except StopAsyncIteration:
            return {"type": "http.disconnect"}
        return chunk

    async def send(message: dict) -> None:
        sent.append(message)

    await app(request_scope(path, length), receive, send)
    start = sent[0]
    return start, orjson.loads(b"".join(m.get("body", b"") for m in sent[1:]))


def header(start: dict, name: bytes) -> bytes | None:
    return dict(start["headers"]).get(name)


def test_a_stalled_body_gets_408_and_the_connection_is_closed(repo: ModelRepository) -> None:
    app = create_app(repo, limits=ServeLimits(body_idle_timeout_s=0.3, body_grace_s=0.3))

    async def stalls():
        yield {"type": "http.request", "body": b'{"instances": [', "more_body": True}
        await asyncio.sleep(3600)

    async def main() -> float:
        loop = asyncio.get_running_loop()
        began = loop.time()
        start, body = await call(app, PREDICT, 1000, stalls())
        assert start["status"] == 408 and "slowly" in body["error"]
        assert header(start, b"connection") == b"close"
        return loop.time() - began

    assert asyncio.run(main()) < 2


def test_a_trickling_body_is_cut_at_the_minimum_rate(repo: ModelRepository) -> None:
    """One byte every 50 ms never trips the 5 s idle timeout; the average rate does."""
    app = create_app(repo, limits=ServeLimits(body_idle_timeout_s=5, body_grace_s=0.3,
                                              body_min_rate=1000))

    async def trickles():
        while True:
            await asyncio.sleep(0.05)
            yield {"type": "http.request", "body": b" ", "more_body": True}

    async def main() -> float:
        loop = asyncio.get_running_loop()
        began = loop.time()
        start, _ = await call(app, PREDICT, 10_000, trickles())
        assert start["status"] == 408
        return loop.time() - began

    assert asyncio.run(main()) < 2


def test_a_client_that_goes_away_costs_one_short_log_line(
        repo: ModelRepository, caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(repo)

    async def drops():
        yield {"type": "http.request", "body": b'{"instances": [', "more_body": True}

    caplog.set_level(logging.DEBUG)
    for _ in range(3):
        asyncio.run(call(app, PREDICT, 1000, drops()))
    records = [r for r in caplog.records if r.name.startswith(("studio", "uvicorn"))]
    assert len(records) == 3
    for record in records:
        assert record.levelno <= logging.INFO and record.exc_info is None
        assert len(record.getMessage()) < 120


# -- the byte budget ------------------------------------------------------------------------

def test_the_byte_budget_is_first_come_first_served() -> None:
    async def main() -> None:
        budget = ByteBudget(100)
        assert await budget.acquire(60, 0.1)
        assert not await budget.acquire(60, 0.05)  # cannot be had shortly
        assert budget.used == 60
        big = asyncio.create_task(budget.acquire(80, 1))
        await asyncio.sleep(0)
        small = asyncio.create_task(budget.acquire(10, 1))  # fits, but queues behind `big`
        await asyncio.sleep(0.05)
        assert not big.done() and not small.done()
        budget.release(60)
        assert await big and await small
        assert budget.used == 90
        budget.release(80)
        budget.release(10)
        assert budget.used == 0

    asyncio.run(main())


def test_large_bodies_wait_for_the_budget_then_get_503(repo: ModelRepository) -> None:
    """With the budget held by one large body, the next one is told to come back (503),
    small ones go on, and once the first is done the next large body is read."""
    limit = 64 * 1024
    app = create_app(repo, limits=ServeLimits(max_body_bytes=limit, body_budget_bytes=limit,
                                              small_body_bytes=1024, budget_wait_s=0.2))
    release = asyncio.Event

    async def held(gate):
        yield {"type": "http.request", "body": b'{"instances": [', "more_body": True}
        await gate.wait()
        yield {"type": "http.request", "body": b"]}", "more_body": False}

    async def whole(body: bytes):
        yield {"type": "http.request", "body": body, "more_body": False}

    async def main() -> None:
        gate = release()
        first = asyncio.create_task(call(app, PREDICT, limit - 10, held(gate)))
        await asyncio.sleep(0.05)
        big = b" " * (limit // 2 - 20) + orjson.dumps({"instances": [ROW]})
        start, body = await call(app, PREDICT, len(big), whole(big))
        assert start["status"] == 503 and "retry" in body["error"]
        assert header(start, b"connection") == b"close"
        assert header(start, b"retry-after") == b"1"
        small = orjson.dumps({"instances": [ROW]})
        start, body = await call(app, PREDICT, len(small), whole(small))
        assert start["status"] == 200, body
        gate.set()
        start, _ = await first  # its body was short of its length: a 400, and it is done
        assert start["status"] == 400
        start, body = await call(app, PREDICT, len(big), whole(big))
        assert start["status"] == 200, body

    asyncio.run(main())


def test_big_bodies_are_parsed_one_at_a_time(repo: ModelRepository,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Parsing a body makes objects many times its size: concurrent big bodies wait for
    their turn instead of all growing at once (small ones are not held back)."""
    width = repo.get("penguins").inputs[0]["shape"][1]
    decode = ModelRepository.decode
    running, most = [0], [0]
    lock = threading.Lock()

    def slow_decode(self: ModelRepository, *args: object, **kwargs: object) -> object:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            time.sleep(0.1)
            return decode(self, *args, **kwargs)  # type: ignore[arg-type]
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(ModelRepository, "decode", slow_decode)
    rows = 2000  # ~100 KiB of JSON: past the 64 KiB that is parsed on the event loop
    big = orjson.dumps({"inputs": [{"name": "input", "shape": [rows, width],
                                    "datatype": "FP32", "data": [0.5] * (rows * width)}]})
    assert len(big) > 64 * 1024
    app = create_app(repo, log_requests=False)

    async def main() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            answers = await asyncio.gather(*(
                c.post("/v2/models/penguins/infer", content=big,
                       headers={"content-type": "application/json"}) for _ in range(4)))
        return [a.status_code for a in answers]

    assert asyncio.run(main()) == [200] * 4
    assert most[0] == 1
