"""Canary traffic and input drift on a served model: a share of requests goes to the
candidate and the two are compared; rows far from the training data are flagged by column."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from conftest import PENGUINS, copied_workspace, penguins_workspace, run_studio
from starlette.testclient import TestClient
from test_cli import start_server, stop_server

from studio.core.errors import InputError, NotFoundError
from studio.core.registry import labels
from studio.core.workspace import Workspace
from studio.serving.app import create_app
from studio.serving.dataplane import ModelRepository


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return penguins_workspace(tmp_path_factory.mktemp("canary") / "ws", ("linear", "linear"))


@pytest.fixture
def cws(template: Path, tmp_path: Path) -> Iterator[Workspace]:
    with copied_workspace(template, tmp_path / "ws") as ws:
        yield ws


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    frame = pd.read_csv(PENGUINS).drop(columns=["species"]).dropna()
    return frame.to_dict("records")


def test_a_canary_answers_its_share_and_is_compared_with_the_primary(
        cws: Workspace, rows: list[dict]) -> None:
    repo = ModelRepository(cws, ["penguins:1", "penguins"], threads=1)
    canary = repo.set_canary("penguins", "penguins:1", 30)
    answered: Counter[str] = Counter()
    with TestClient(create_app(repo)) as client:
        for i in range(300):
            r = client.post("/v1/models/penguins:predict", json={"instances": [rows[i % 50]]})
            assert r.status_code == 200, r.text
            answered[r.json()["model_version"]] += 1
            time.sleep(0.001)  # let the shadow comparison take its turn now and then
        pinned = {client.post("/v1/models/penguins/versions/2:predict",
                              json={"instances": [rows[0]]}).json()["model_version"]
                  for _ in range(30)}
    assert pinned == {"2"}  # NAME:N is never rerouted
    assert answered["1"] + answered["2"] == 300
    assert 50 <= answered["1"] <= 130  # ~30 % (binomial, 300 draws: ±4 sd)
    report = canary.report()
    assert report["routed"] == answered["1"]
    assert report["compared_rows"] > 0
    # two linear models trained alike on the same rows agree on most penguins
    assert 0.8 <= report["agreement"] <= 1.0


def test_a_canary_must_share_a_served_name_and_a_real_share(cws: Workspace) -> None:
    repo = ModelRepository(cws, ["penguins:2"], threads=1)
    with pytest.raises(InputError, match="not served here as NAME"):
        repo.set_canary("penguins:2", "penguins:1", 10)
    repo = ModelRepository(cws, ["penguins"], threads=1)
    with pytest.raises(InputError, match="at most 100 percent"):
        repo.set_canary("penguins", "penguins:1", 150)
    assert repo.served() == ["penguins:2"]  # the refused candidate was let go


def test_inputs_far_from_the_training_data_are_flagged_by_column(
        cws: Workspace, rows: list[dict]) -> None:
    repo = ModelRepository(cws, ["penguins:1"], threads=1)
    with TestClient(create_app(repo)) as client:
        for start in range(0, 300, 25):  # training-like rows
            batch = [rows[i % len(rows)] for i in range(start, start + 25)]
            assert client.post("/v1/models/penguins:predict",
                               json={"instances": batch}).status_code == 200
        report = repo.drift_report()["penguins:1"]
        assert report["ready"] and report["moved"] == []
        shifted = [{**r, "bill_length_mm": r["bill_length_mm"] + 25} for r in rows[:300]]
        for start in range(0, 300, 25):
            assert client.post("/v1/models/penguins:predict",
                               json={"instances": shifted[start:start + 25]}).status_code == 200
    report = repo.drift_report()["penguins:1"]
    assert report["moved"] == ["bill_length_mm"]
    psi = {c["column"]: c["psi"] for c in report["columns"]}
    assert psi["bill_length_mm"] > report["threshold"]


def test_studio_serve_follows_an_alias_move_and_runs_a_canary(
        cws: Workspace, rows: list[dict], tmp_path: Path) -> None:
    """The real process: `studio models alias` moves production from 1 to 2 while it serves
    penguins@production, with a canary of version 1 on a tenth of the traffic."""
    labels.set_alias(cws, "penguins", "production", "1")
    server = start_server(cws.root, tmp_path / "serve.log", "--canary", "penguins:1=10",
                          refs=("penguins@production",))
    try:
        url = f"{server.url}/v1/models/penguins@production:predict"
        seen: Counter[str] = Counter()
        with httpx.Client(trust_env=False, timeout=10) as client:
            for i in range(40):
                r = client.post(url, json={"instances": [rows[i]]})
                assert r.status_code == 200, r.text
                seen[r.json()["model_version"]] += 1
            assert set(seen) == {"1"}
            moved = run_studio(cws.root, "models", "alias", "penguins", "production", "2")
            assert moved.returncode == 0, moved.stderr
            deadline = time.monotonic() + 30  # a busy machine: loading takes seconds
            after: Counter[str] = Counter()
            while after["2"] < 60:
                r = client.post(url, json={"instances": [rows[0]]})
                assert r.status_code == 200, r.text  # no failed request through the switch
                if seen["2"] or r.json()["model_version"] == "2":
                    after[r.json()["model_version"]] += 1
                    seen["2"] = 1
                assert time.monotonic() < deadline, "the alias move was never followed"
        assert 0 < after["1"] < 25  # the canary's ~10 % (60+ draws), still version 1
    finally:
        assert stop_server(server.proc) == 0
    assert "switched penguins@production: penguins:1 → penguins:2" in server.stderr.read_text()


def test_a_version_whose_file_fails_its_hash_is_not_served(cws: Workspace) -> None:
    """Neither at start nor when an alias moves to it: the one served stays."""
    from studio.core.errors import IntegrityError
    from studio.core.registry import get_version

    labels.set_alias(cws, "penguins", "production", "1")
    repo = ModelRepository(cws, ["penguins@production"], threads=1)
    blob = cws.blobs.path(get_version(cws, "penguins:2").file_digest("model.onnx"))
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other content
    blob.chmod(0o644)
    blob.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="penguins:2 cannot be served"):
        ModelRepository(cws, ["penguins:2"], threads=1)
    labels.set_alias(cws, "penguins", "production", "2")
    said = repo.follow_aliases()
    assert len(said) == 1 and said[0].startswith("penguins@production: stays on penguins:1; ")
    assert "penguins:2 cannot be served" in said[0]
    assert repo.follow_aliases() == []  # said once
    assert repo.served() == ["penguins:1"]


def test_a_newer_candidate_takes_only_its_share(cws: Workspace) -> None:
    """The usual canary tries a *newer* version: loading it must not make it the version
    that plain NAME requests (the primary's) are answered by."""
    repo = ModelRepository(cws, ["penguins:1"], threads=1)
    repo.set_canary("penguins", "penguins:2", 10)
    assert repo.get("penguins").version.version == 1
    assert repo.served() == ["penguins:1", "penguins:2"]
    repo.add("penguins:2")  # pinned too now: NAME follows the newest pinned again
    assert repo.get("penguins").version.version == 2
    repo.clear_canary("penguins")
    repo.remove("penguins:2")
    assert repo.get("penguins").version.version == 1


def test_removing_the_newest_pinned_version_a_canary_holds_leaves_name_on_the_older(
        cws: Workspace) -> None:
    repo = ModelRepository(cws, ["penguins:1", "penguins:2"], threads=1)
    repo.set_canary("penguins", "penguins:2", 10)
    repo.remove("penguins:2")  # still loaded: the canary's candidate
    assert repo.served() == ["penguins:1", "penguins:2"]
    assert repo.get("penguins").version.version == 1


def test_removing_the_primary_ends_its_canary_instead_of_promoting_it(cws: Workspace) -> None:
    repo = ModelRepository(cws, ["penguins:1"], threads=1)
    repo.set_canary("penguins", "penguins:2", 10)
    repo.remove("penguins:1")
    assert repo.canaries == {}
    assert repo.served() == []  # the candidate went with it: nothing answers plain penguins
    with pytest.raises(NotFoundError):
        repo.get("penguins")


def test_an_unfollowed_alias_says_nothing_about_the_registry(cws: Workspace) -> None:
    labels.set_alias(cws, "penguins", "secret", "1")
    repo = ModelRepository(cws, ["penguins:2"], threads=1)
    with pytest.raises(NotFoundError) as caught:
        repo.get("penguins@secret")  # points at 1, which is not served
    assert str(caught.value) == "'penguins@secret' is not served here"
    with pytest.raises(NotFoundError) as caught:
        repo.get("other@x")
    assert "aliases" not in str(caught.value)
