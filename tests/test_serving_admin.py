"""A real `studio serve` process changed while it answers: versions added and removed
through the admin routes with traffic flowing, the registry told (so `studio models rm`
refuses what is served), and the request log still there after a restart."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx
import pytest
from conftest import penguins_workspace, run_studio
from test_cli import start_server, stop_server

from studio.core.registry import servers
from studio.core.workspace import Workspace

ROW = {"island": "Biscoe", "bill_length_mm": 50.0, "bill_depth_mm": 15.0,
       "flipper_length_mm": 220, "body_mass_g": 5500, "sex": "male", "year": 2008}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return penguins_workspace(tmp_path_factory.mktemp("admin") / "ws", ("linear", "linear"))


def served_in_registry(home: Path) -> dict[str, list[str]]:
    ws = Workspace.open(home)
    try:
        return servers.serving(ws)
    finally:
        ws.db.close()


@pytest.mark.timeout(120)
def test_versions_come_and_go_while_traffic_is_answered(home: Path, tmp_path: Path) -> None:
    srv = start_server(home, tmp_path / "stderr.log")
    seen: list[tuple[int, str]] = []
    stop = threading.Event()

    def traffic(path: str) -> None:
        with httpx.Client(base_url=srv.url, trust_env=False, timeout=10) as c:
            while not stop.is_set():
                r = c.post(path, json={"instances": [ROW]})
                seen.append((r.status_code, r.json().get("model_version", r.text)))

    senders = [threading.Thread(target=traffic, args=(p,)) for p in
               ("/v1/models/penguins:predict", "/v1/models/penguins/versions/1:predict")]
    try:
        for t in senders:
            t.start()
        with httpx.Client(base_url=srv.url, trust_env=False, timeout=30) as admin:
            added = admin.post("/admin/models", json={"ref": "penguins:2"})
            assert added.status_code == 200, added.text
            assert added.json()["served"] == ["penguins:1", "penguins:2"]
            assert served_in_registry(home)["penguins:2"] == [srv.url]
            refused = run_studio(home, "models", "rm", "penguins:2")
            assert refused.returncode == 2 and "being served" in refused.stderr
            while "2" not in {v for _, v in seen}:
                stop.wait(0.01)
            removed = admin.delete("/admin/models/penguins:2")
            assert removed.status_code == 200, removed.text
            assert removed.json()["served"] == ["penguins:1"]
            assert "penguins:2" not in served_in_registry(home)
            count = len(seen)
            while len(seen) < count + 20:
                stop.wait(0.01)
            stats = admin.get("/admin/stats").json()
    finally:
        stop.set()
        for t in senders:
            t.join()
        stop_server(srv.proc)
    assert {status for status, _ in seen} == {200}, [s for s in seen if s[0] != 200][:3]
    versions = [v for _, v in seen]
    assert versions[-1] == "1" and "2" in versions
    by_ref = {f"{m['model']}:{m['version']}": m for m in stats["models"]}
    assert by_ref["penguins:2"]["served"] is False and by_ref["penguins:2"]["requests"] > 0
    assert by_ref["penguins:1"]["errors"] == 0


@pytest.mark.timeout(120)
def test_the_request_log_survives_a_restart(home: Path, tmp_path: Path) -> None:
    srv = start_server(home, tmp_path / "first.log")
    try:
        with httpx.Client(base_url=srv.url, trust_env=False, timeout=10) as c:
            for n in range(1, 6):
                assert c.post("/v1/models/penguins:predict",
                              json={"instances": [ROW] * n}).status_code == 200
            assert c.post("/v1/models/absent:predict",
                          json={"instances": [ROW]}).status_code == 404
    finally:
        assert stop_server(srv.proc) == 0  # a clean stop writes what was pending
    logged = json.loads(run_studio(home, "requests", "--limit", "6", "--json").stdout)
    assert [(r["model"], r["status"], r["rows"]) for r in logged["requests"]] == [
        *(("penguins", 200, n) for n in range(1, 6)), ("unknown", 404, 0)]

    srv = start_server(home, tmp_path / "second.log")
    try:
        with httpx.Client(base_url=srv.url, trust_env=False, timeout=10) as c:
            assert c.post("/v1/models/penguins:predict",
                          json={"instances": [ROW] * 7}).status_code == 200
    finally:
        stop_server(srv.proc)
    text = run_studio(home, "requests", "--limit", "3")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["TIME", "MODEL", "ENDPOINT", "STATUS", "LATENCY", "ROWS"]
    assert [line.split()[-1] for line in lines[1:]] == ["5", "0", "7"]  # newest last
    assert "unknown:unknown" in lines[2]
