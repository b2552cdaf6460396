"""Monitoring in process: /metrics and /admin/stats move by exactly what was sent, errors
are counted by status, names not served are labelled "unknown", admin routes change what
is served, and the request log is written off the request path and kept bounded."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import copied_workspace, penguins_workspace
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from studio.core import request_log
from studio.core.workspace import Workspace
from studio.serving.app import create_app
from studio.serving.dataplane import ModelRepository
from studio.serving.metrics import endpoint_of
from studio.serving.window import RollingWindow

ROW = {"island": "Biscoe", "bill_length_mm": 50.0, "bill_depth_mm": 15.0,
       "flipper_length_mm": 220, "body_mass_g": 5500, "sex": "male", "year": 2008}
LOCAL = ("127.0.0.1", 50000)
KEY = "monitor-key"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return penguins_workspace(tmp_path_factory.mktemp("monitor") / "ws", ("linear", "linear"))


@pytest.fixture
def mws(template: Path, tmp_path: Path) -> Iterator[Workspace]:
    with copied_workspace(template, tmp_path / "ws") as ws:
        yield ws


@pytest.fixture
def client(mws: Workspace) -> Iterator[TestClient]:
    repo = ModelRepository(mws, ["penguins:1"], threads=1)
    with TestClient(create_app(repo), client=LOCAL) as c:
        yield c


def scrape(client: TestClient, **kwargs: object) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics by (name, sorted labels)."""
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples}


def requests_total(samples: dict, **labels: str) -> float:
    """studio_requests_total summed over the samples matching ``labels``."""
    return sum(v for (name, ls), v in samples.items() if name == "studio_requests_total"
               and all(dict(ls).get(k) == want for k, want in labels.items()))


def v2_row(client: TestClient) -> dict:
    spec = client.get("/v2/models/penguins").json()["inputs"][0]
    n = spec["shape"][1]
    return {"inputs": [{"name": spec["name"], "datatype": "FP32", "shape": [2, n],
                        "data": [0.1] * (2 * n)}]}


def test_counts_move_by_exactly_what_was_sent(client: TestClient) -> None:
    infer = v2_row(client)
    before = scrape(client)
    for _ in range(7):
        assert client.post("/v1/models/penguins:predict",
                           json={"instances": [ROW, ROW, ROW]}).status_code == 200
    for _ in range(4):
        assert client.post("/v2/models/penguins/versions/1/infer", json=infer).status_code == 200
    for _ in range(3):  # bad input: a 400, counted against the served version
        assert client.post("/v2/models/penguins/infer", json={"inputs": []}).status_code == 400
    assert client.post("/v2/models/penguins/versions/9/infer", json=infer).status_code == 404
    after = scrape(client)

    def moved(**labels: str) -> float:
        return requests_total(after, **labels) - requests_total(before, **labels)

    assert moved(endpoint="predict", model="penguins", version="1", code="200") == 7
    assert moved(endpoint="infer", model="penguins", version="1", code="200") == 4
    assert moved(endpoint="infer", model="penguins", version="1", code="400") == 3
    assert moved(endpoint="infer", model="penguins", version="unknown", code="404") == 1
    assert moved(endpoint="infer") + moved(endpoint="predict") == 15
    rows = ("studio_rows_total", (("model", "penguins"), ("version", "1")))
    assert after[rows] - before.get(rows, 0) == 7 * 3 + 4 * 2  # errors predict no rows
    duration = ("studio_request_duration_seconds_count",
                (("endpoint", "predict"), ("model", "penguins"), ("version", "1")))
    assert after[duration] - before.get(duration, 0) == 7
    # until the batcher is wired, every request that ran the model is a batch of one
    batches = ("studio_batch_requests_count", (("model", "penguins"), ("version", "1")))
    assert after[batches] - before.get(batches, 0) == 11
    one_row = ("studio_batch_rows_bucket", (("le", "1.0"), ("model", "penguins"),
                                           ("version", "1")))
    assert after[one_row] == 0  # 2 or 3 rows each time


def test_names_not_served_are_one_unknown_series(client: TestClient) -> None:
    for i in range(30):  # a client inventing names must not invent series
        assert client.post(f"/v1/models/made-up-{i}:predict",
                           json={"instances": [ROW]}).status_code == 404
        assert client.get(f"/v2/models/other-{i}/versions/{i}").status_code == 404
    samples = scrape(client)
    models = {dict(ls).get("model") for (name, ls) in samples if name.startswith("studio_")}
    assert models <= {"penguins", "unknown", "", None}
    assert requests_total(samples, endpoint="predict", model="unknown", version="unknown",
                          code="404") == 30
    assert requests_total(samples, endpoint="metadata", model="unknown", code="404") == 30
    assert not any("made-up" in str(k) for k in samples)


def test_every_route_counts_with_its_status(mws: Workspace) -> None:
    repo = ModelRepository(mws, ["penguins:1"], threads=1)
    with TestClient(create_app(repo, api_key=KEY), client=LOCAL) as keyed:
        auth = {"Authorization": f"Bearer {KEY}"}
        assert keyed.get("/metrics").status_code == 401  # like every route
        assert keyed.get("/admin/stats").status_code == 401
        assert keyed.post("/v1/models/penguins:predict",
                          json={"instances": [ROW]}).status_code == 401
        assert keyed.get("/v2/health/ready").status_code == 200
        assert keyed.get("/no/such/route", headers=auth).status_code == 404
        samples = scrape(keyed, headers=auth)
    assert requests_total(samples, endpoint="predict", model="penguins", code="401") == 1
    assert requests_total(samples, endpoint="metrics", code="401") == 1
    assert requests_total(samples, endpoint="admin", code="401") == 1
    assert requests_total(samples, endpoint="health", code="200") == 1
    assert requests_total(samples, endpoint="other", code="404") == 1


def test_stats_snapshot_counts_and_the_last_minute(client: TestClient) -> None:
    for _ in range(5):
        client.post("/v1/models/penguins:predict", json={"instances": [ROW, ROW]})
    client.post("/v1/models/penguins:predict", json={"instances": []})  # 400
    client.post("/v1/models/nobody:predict", json={"instances": [ROW]})  # 404
    stats = client.get("/admin/stats").json()
    assert stats["served"] == ["penguins:1"] and stats["uptime_s"] > 0
    by_ref = {f"{m['model']}:{m['version']}": m for m in stats["models"]}
    assert by_ref["penguins:1"]["served"] is True
    assert (by_ref["penguins:1"]["requests"], by_ref["penguins:1"]["errors"],
            by_ref["penguins:1"]["rows"]) == (6, 1, 10)
    assert (by_ref["unknown:unknown"]["requests"], by_ref["unknown:unknown"]["served"]) \
        == (1, False)
    # the window holds complete seconds only: the traffic shows once its second is over
    time.sleep(1.05 - time.time() % 1)
    stats = client.get("/admin/stats").json()
    window = next(m["window"] for m in stats["models"] if m["model"] == "penguins")
    assert window["requests"] == 6 and window["errors"] == 1
    assert window["error_rate"] == pytest.approx(1 / 6)
    assert 0 < window["p50_ms"] <= window["p95_ms"] <= window["p99_ms"]
    assert window["mean_batch_rows"] == 2 and window["mean_batch_requests"] == 1
    assert stats["window"]["requests"] == 7 and stats["window"]["errors"] == 2
    series = stats["window"]["series"]
    assert len(series) == 60 and series[-1]["t"] - series[0]["t"] == 59
    assert sum(s["requests"] for s in series) == 7
    assert sum(s["errors"] for s in series) == 2
    busy = [s for s in series if s["requests"]]
    assert all(s["p99_ms"] is not None and s["throughput"] == s["requests"] for s in busy)


def test_rolling_window_percentiles_and_expiry() -> None:
    w = RollingWindow()
    for i in range(100):  # 1 ms … 100 ms
        w.request(("m", "1"), 1000, error=i >= 90, latency_s=(i + 1) / 1000, rows=1)
    w.batch(("m", "1"), 1000, requests=4, rows=10)
    w.batch(("m", "1"), 1000, requests=2, rows=2)
    series, per_key = w.snapshot(now_s=1001.5)
    last = series[-1]
    assert last["t"] == 1000 and last["requests"] == 100 and last["errors"] == 10
    for q, got in ((50, last["p50_ms"]), (95, last["p95_ms"]), (99, last["p99_ms"])):
        assert got == pytest.approx(q, rel=0.05)  # bins are 8 % wide
    assert last["mean_batch_rows"] == 6 and last["mean_batch_requests"] == 3
    assert per_key[("m", "1")]["error_rate"] == 0.1
    series, per_key = w.snapshot(now_s=1061.5)  # a minute later it has left the window
    assert sum(s["requests"] for s in series) == 0 and per_key[("m", "1")]["requests"] == 0


def test_paths_map_to_endpoints_and_names() -> None:
    assert endpoint_of("/v2/models/a/infer") == ("infer", "a", None)
    assert endpoint_of("/v2/models/a/versions/3/infer") == ("infer", "a", "3")
    assert endpoint_of("/v1/models/a@prod:predict") == ("predict", "a@prod", None)
    assert endpoint_of("/v1/models/a/versions/2:predict") == ("predict", "a", "2")
    assert endpoint_of("/v2/models/a/ready") == ("ready", "a", None)
    assert endpoint_of("/v2/models/a") == ("metadata", "a", None)
    assert endpoint_of("/v1/models") == ("other", None, None)
    assert endpoint_of("/admin/stats") == ("admin", None, None)


def test_admin_adds_and_removes_without_a_restart(mws: Workspace) -> None:
    repo = ModelRepository(mws, ["penguins:1"], threads=1)
    with TestClient(create_app(repo), client=LOCAL) as c:
        added = c.post("/admin/models", json={"ref": "penguins:2"})
        assert added.status_code == 200, added.text
        assert added.json() == {"added": "penguins:2", "served": ["penguins:1", "penguins:2"]}
        answer = c.post("/v1/models/penguins:predict", json={"instances": [ROW]}).json()
        assert answer["model_version"] == "2"  # the newest served answers the bare name
        assert c.delete("/admin/models/penguins:2").json()["served"] == ["penguins:1"]
        answer = c.post("/v1/models/penguins:predict", json={"instances": [ROW]}).json()
        assert answer["model_version"] == "1"
        assert c.post("/v1/models/penguins/versions/2:predict",
                      json={"instances": [ROW]}).status_code == 404
        # NAME@ALIAS is followed once added; removing the last version serves nothing
        from studio.core.registry import labels

        labels.set_alias(mws, "penguins", "production", "2")
        assert c.post("/admin/models", json={"ref": "penguins@production"}).json()[
            "served"] == ["penguins:1", "penguins:2"]
        assert repo.followed == {"penguins@production": 2}
        assert c.get("/admin/stats").json()["refs"] == [
            {"ref": "penguins:1", "serves": "penguins:1"},
            {"ref": "penguins@production", "serves": "penguins:2"}]
        assert c.delete("/admin/models/penguins").json()["served"] == []
        assert c.post("/v1/models/penguins:predict",
                      json={"instances": [ROW]}).status_code == 404
        assert c.get("/v2/health/ready").status_code == 200


@pytest.mark.parametrize(("method", "path", "body", "status"), [
    ("POST", "/admin/models", {"ref": "nobody:1"}, 404),
    ("POST", "/admin/models", {"ref": "penguins:77"}, 404),
    ("POST", "/admin/models", {"ref": "bad name!"}, 400),
    ("POST", "/admin/models", {"name": "penguins"}, 400),
    ("POST", "/admin/models", ["penguins"], 400),
    ("DELETE", "/admin/models/penguins:2", None, 404),
    ("DELETE", "/admin/models/other", None, 404),
    ("GET", "/admin/models", None, 405),
])
def test_admin_refusals_are_json_and_change_nothing(client: TestClient, method: str,
                                                   path: str, body: object,
                                                   status: int) -> None:
    r = client.request(method, path, json=body)
    assert r.status_code == status, r.text
    assert isinstance(r.json()["error"], str) and "Traceback" not in r.text
    assert client.get("/admin/stats").json()["served"] == ["penguins:1"]
    assert client.post("/v1/models/penguins:predict",
                       json={"instances": [ROW]}).status_code == 200


def test_admin_answers_loopback_only_unless_a_key_is_set(mws: Workspace) -> None:
    repo = ModelRepository(mws, ["penguins:1"], threads=1)
    with TestClient(create_app(repo), client=("192.0.2.7", 50000)) as remote:
        refused = remote.post("/admin/models", json={"ref": "penguins:2"})
        assert refused.status_code == 403 and "--api-key" in refused.json()["error"]
        assert remote.get("/admin/stats").status_code == 403
        assert remote.get("/metrics").status_code == 200  # not an admin route
    assert repo.served() == ["penguins:1"]
    with TestClient(create_app(repo, api_key=KEY), client=("192.0.2.7", 50000)) as remote:
        ok = remote.post("/admin/models", json={"ref": "penguins:2"},
                         headers={"X-API-Key": KEY})
        assert ok.status_code == 200 and repo.served() == ["penguins:1", "penguins:2"]


def test_request_log_is_written_in_the_background_and_kept_bounded(mws: Workspace) -> None:
    repo = ModelRepository(mws, ["penguins:1"], threads=1)
    with TestClient(create_app(repo), client=LOCAL) as c:
        for n in (1, 2, 3):
            c.post("/v1/models/penguins:predict", json={"instances": [ROW] * n})
        c.post("/v1/models/nobody:predict", json={"instances": [ROW]})
        c.get("/admin/stats")  # not a model request: not logged
    # the app stopped: its writer wrote what was pending, read here on a new connection
    again = Workspace.open(mws.root)
    try:
        rows = request_log.recent(again, 10)
    finally:
        again.db.close()
    assert [(r.model, r.version, r.status, r.rows) for r in rows] == [
        ("unknown", "unknown", 404, 0), ("penguins", "1", 200, 3), ("penguins", "1", 200, 2),
        ("penguins", "1", 200, 1)]
    assert all(r.endpoint == "predict" and r.latency_ms > 0 for r in rows)
    assert rows[0].time >= rows[-1].time
    request_log.append(mws, [(1.0, "m", "1", "infer", 200, 0.5, 1)] * 30, keep=12)
    assert len(request_log.recent(mws, 100)) == 12
    assert request_log.recent(mws, 100, model="penguins") == []  # the oldest went first
