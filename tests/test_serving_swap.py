"""Moving an alias while a server serves it: the new version is loaded and warmed first,
then switched to in one step, and continuous traffic through the switch sees no error."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import copied_workspace, penguins_workspace
from starlette.testclient import TestClient

from studio.core.registry import labels
from studio.core.workspace import Workspace
from studio.serving.app import create_app
from studio.serving.dataplane import ModelRepository

ROW = {"island": "Biscoe", "bill_length_mm": 50.0, "bill_depth_mm": 15.0,
       "flipper_length_mm": 220, "body_mass_g": 5500, "sex": "male", "year": 2008}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return penguins_workspace(tmp_path_factory.mktemp("swap") / "ws", ("linear", "linear"))


@pytest.fixture
def sws(template: Path, tmp_path: Path) -> Iterator[Workspace]:
    with copied_workspace(template, tmp_path / "ws") as ws:
        yield ws


def test_traffic_through_an_alias_switch_sees_no_error(sws: Workspace) -> None:
    labels.set_alias(sws, "penguins", "production", "1")
    repo = ModelRepository(sws, ["penguins@production"], threads=1)
    seen: list[tuple[int, str]] = []
    by_sender: list[list[str]] = [[] for _ in range(4)]
    stop = threading.Event()

    with TestClient(create_app(repo)) as client:
        def traffic(mine: list[str]) -> None:
            while not stop.is_set():
                r = client.post("/v1/models/penguins@production:predict",
                                json={"instances": [ROW]})
                version = r.json().get("model_version", r.text)
                mine.append(version)
                seen.append((r.status_code, version))

        senders = [threading.Thread(target=traffic, args=(mine,)) for mine in by_sender]
        for t in senders:
            t.start()
        try:
            while len(seen) < 50:
                stop.wait(0.01)
            labels.set_alias(sws, "penguins", "production", "2")
            assert repo.follow_aliases() == ["penguins@production: penguins:1 → penguins:2"]
            before = len(seen)
            while len(seen) < before + 50:
                stop.wait(0.01)
        finally:
            stop.set()
            for t in senders:
                t.join()
    assert {status for status, _ in seen} == {200}  # not one failed or dropped request
    versions = [v for _, v in seen]
    assert versions[0] == "1" and versions[-1] == "2"
    # once switched, never back: a client that got version 2 never gets 1 again (across
    # clients the order answers are appended in is the threads', not the server's)
    for mine in by_sender:
        if "2" in mine:
            assert "1" not in mine[mine.index("2"):]


def test_an_alias_that_is_removed_keeps_being_served(sws: Workspace) -> None:
    labels.set_alias(sws, "penguins", "production", "2")
    repo = ModelRepository(sws, ["penguins@production"], threads=1)
    labels.remove_alias(sws, "penguins", "production")
    assert repo.follow_aliases() == []
    with TestClient(create_app(repo)) as client:
        r = client.post("/v1/models/penguins@production:predict", json={"instances": [ROW]})
    assert r.status_code == 200 and r.json()["model_version"] == "2"


def test_a_version_let_go_is_freed_with_its_batching_queue(sws: Workspace) -> None:
    import gc
    import weakref

    labels.set_alias(sws, "penguins", "production", "1")
    repo = ModelRepository(sws, ["penguins@production"], threads=1)
    old = weakref.ref(repo.get("penguins@production"))
    width = repo.get("penguins@production").inputs[0]["shape"][1]
    body = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, width],
                        "data": [0.0] * width}]}
    with TestClient(create_app(repo, log_requests=False)) as client:
        assert client.post("/v2/models/penguins@production/infer", json=body).json()[
            "model_version"] == "1"  # its queue and worker exist now
        labels.set_alias(sws, "penguins", "production", "2")
        repo.follow_aliases()
        assert client.post("/v2/models/penguins@production/infer", json=body).json()[
            "model_version"] == "2"
        gc.collect()
        assert old() is None  # nothing holds version 1: not its queue, not its worker
        metrics = client.get("/metrics").text
    assert 'studio_queue_depth{model="penguins",version="1"}' not in metrics
    assert 'studio_queue_depth{model="penguins",version="2"}' in metrics
