"""Canary traffic and input drift on a served model: a share of requests goes to the
candidate and the two are compared; rows far from the training data are flagged by column."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from conftest import PENGUINS, copied_workspace, penguins_workspace
from starlette.testclient import TestClient

from studio.core.errors import InputError
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
