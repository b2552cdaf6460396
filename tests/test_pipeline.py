"""One-click training end to end: every family that fits, the leaderboard, a losing
candidate registered later, and the inputs a family or the data cannot take."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import PENGUINS, run_studio
from starlette.testclient import TestClient

from studio.core import registry
from studio.core.workspace import Workspace


@pytest.fixture(scope="module")
def auto_home(tmp_path_factory: pytest.TempPathFactory, studio_home_env: Path) -> Path:
    home = tmp_path_factory.mktemp("auto") / "home"
    assert run_studio(home, "data", "import", str(PENGUINS)).returncode == 0
    return home


@pytest.fixture(scope="module")
def auto_run(auto_home: Path) -> dict:
    done = run_studio(auto_home, "train", "penguins", "--target", "species",
                      "--time-budget", "20", "--json", timeout=240)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_one_click_trains_every_fitting_family_and_keeps_the_best(auto_home: Path,
                                                                  auto_run: dict) -> None:
    board = auto_run["leaderboard"]
    families = {r["family"] for r in board}
    assert families == {"linear", "boosted-trees", "mlp"}
    assert not families & {"cnn", "embedding"}  # they do not fit a table
    winner = [r for r in board if r["chosen"]]
    assert len(winner) == 1 and winner[0]["family"] == auto_run["family"]
    assert winner[0]["validation"] == max(r["validation"] for r in board)
    for r in board:
        assert 0 <= r["validation"] <= 1 and r["fit_s"] > 0 and r["size_bytes"] > 0
    ws = Workspace.open(auto_home)
    version = registry.get_version(ws, auto_run["version"])
    assert version.manifest.raw["family"] == auto_run["family"]
    assert len(version.manifest.raw["leaderboard"]) == len(board)
    assert "Families tried" in registry.read_file(ws, version, "card.md").decode()


def test_a_losing_candidate_can_still_be_registered(auto_home: Path, auto_run: dict) -> None:
    listed = run_studio(auto_home, "models", "candidates", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)["leaderboard"]
    assert rows[0]["family"] == auto_run["family"]  # best first
    loser = next(r["family"] for r in rows if not r["chosen"])
    added = run_studio(auto_home, "models", "add-candidate", loser, "--json")
    assert added.returncode == 0, added.stderr
    ref = json.loads(added.stdout)["version"]
    ws = Workspace.open(auto_home)
    version = registry.get_version(ws, ref)
    assert version.manifest.raw["family"] == loser
    assert version.manifest.raw["lineage"]["job"] == json.loads(listed.stdout)["job"]
    predicted = run_studio(auto_home, "predict", ref, "--input", str(PENGUINS), "--json")
    assert predicted.returncode == 0, predicted.stderr
    again = run_studio(auto_home, "models", "add-candidate", loser)
    assert again.returncode == 2 and "already" in again.stderr


@pytest.mark.parametrize("args, said", [
    (["--family", "cnn"], "needs pictures"),
    (["--family", "forest"], "no model family 'forest'"),
    (["--param", "leaves_x=3"], "no family has a parameter 'leaves_x'"),
    (["--param", "mlp.hidden=wide"], "whole numbers"),
    (["--param", "linear.C=-1"], "from 0"),
    (["--param", "epochs"], "KEY=VALUE"),
    (["--time-budget", "-5"], "time budget"),
])
def test_bad_training_choices_exit_2_with_one_line(auto_home: Path, args: list[str],
                                                   said: str) -> None:
    done = run_studio(auto_home, "train", "penguins", "--target", "species", *args)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and said in lines[0], done.stderr


def test_params_lists_every_family_with_defaults(auto_home: Path) -> None:
    done = run_studio(auto_home, "train", "--params")
    assert done.returncode == 0
    for family in ("linear", "boosted-trees", "mlp", "embedding", "cnn"):
        assert f"\n{family}  (" in "\n" + done.stdout
    assert "patience" in done.stdout and "learning_rate" in done.stdout


WILD = ["price {usd}", 'say "hi"', "*bold*|pipe", "列名", "<b>x</b>", "{ref}"]


def test_any_column_name_goes_through_training_card_and_records(tmp_path: Path,
                                                                studio_home_env: Path) -> None:
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame({
        WILD[1]: rng.normal(size=n), WILD[2]: rng.choice(["a", "b", "c"], n),
        WILD[3]: rng.normal(size=n), WILD[4]: rng.uniform(size=n), WILD[5]: rng.normal(size=n),
    })
    frame.loc[::7, WILD[1]] = np.nan
    frame.loc[::11, WILD[3]] = np.inf  # non-finite values are missing values to the recipe
    frame[WILD[0]] = 3 * frame[WILD[1]].fillna(0) + (frame[WILD[2]] == "b") * 2 + \
        rng.normal(scale=0.1, size=n)
    csv = tmp_path / "wild.csv"
    frame.to_csv(csv, index=False)
    home = tmp_path / "home"
    assert run_studio(home, "data", "import", str(csv)).returncode == 0
    done = run_studio(home, "train", "wild", "--target", WILD[0], "--time-budget", "8",
                      "--family", "linear", "--json", timeout=240)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["metrics"]["r2"] > 0.9
    ws = Workspace.open(home)
    version = registry.get_version(ws, result["version"])
    card = registry.read_file(ws, version, "card.md").decode()
    assert "price \\{usd\\}" in card and "列名" in card and "\\<b\\>x\\</b\\>" in card
    assert "\\{ref\\}" in card  # a column named {ref} is not the placeholder

    from studio.serving.app import create_app
    from studio.serving.dataplane import ModelRepository

    repo = ModelRepository(ws, [result["version"]], threads=1)
    rows = frame.drop(columns=[WILD[0]]).head(3).replace({np.nan: None, np.inf: None})
    with TestClient(create_app(repo)) as client:
        response = client.post(f"/v1/models/{version.name}:predict",
                               json={"instances": rows.to_dict(orient="records")})
    assert response.status_code == 200, response.text
    assert len(response.json()["predictions"]) == 3


def test_too_few_rows_for_the_classes_is_refused(tmp_path: Path, studio_home_env: Path) -> None:
    csv = tmp_path / "ids.csv"
    pd.DataFrame({"x": range(12), "id": [f"u{i % 8}" for i in range(12)]}).to_csv(csv,
                                                                                  index=False)
    home = tmp_path / "home"
    assert run_studio(home, "data", "import", str(csv)).returncode == 0
    done = run_studio(home, "train", "ids", "--target", "id", "--task", "classification")
    assert done.returncode == 2
    assert "rows for 8 classes" in done.stderr


# -- the run's own failures, in process ------------------------------------------------------


def quick_run(ws: Workspace, **kw) -> tuple[str, dict]:
    from studio.core.datasets import catalog
    from studio.core.training.pipeline import run
    from studio.core.training.spec import TrainSpec
    from studio.jobs import records

    if not catalog.list_datasets(ws):
        catalog.import_dataset(ws, PENGUINS)
    spec = TrainSpec(dataset="penguins", target="species", threads=1, time_budget_s=6,
                     **{"family": "auto", **kw})
    job_id = records.create_job(ws, "train", spec.to_dict())
    return job_id, run(ws, spec, lambda _e: None, job_id=job_id)


def test_a_losing_family_that_fails_to_export_leaves_the_others(
        ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    from studio.core.training import boosting

    def broken(self):
        raise RuntimeError("converter crashed")

    monkeypatch.setattr(boosting.BoosterFitted, "export", broken)
    job_id, result = quick_run(ws, params={"boosted-trees.rounds": 5})
    families = {r["family"] for r in result["leaderboard"]}
    assert "boosted-trees" not in families and result["family"] in families
    from studio.core.training import candidates

    _, rows = candidates.board(ws, job_id)
    assert {r["family"] for r in rows} == families


def test_a_failed_registration_leaves_no_leaderboard(
        ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    from studio.core.training import pipeline

    def refuse(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr(pipeline.registry, "register_version", refuse)
    with pytest.raises(OSError):
        quick_run(ws)
    assert ws.db.conn.execute("SELECT COUNT(*) FROM candidates").fetchone()[0] == 0


def test_a_candidate_is_registered_once_however_often_it_is_asked(ws: Workspace) -> None:
    import threading

    from studio.core.errors import InputError
    from studio.core.training import candidates

    job_id, result = quick_run(ws)
    loser = next(r["family"] for r in result["leaderboard"] if not r["chosen"])
    outcomes: list[object] = []

    def register() -> None:
        mine = Workspace.open(ws.root)
        try:
            outcomes.append(candidates.register(mine, job_id, loser).ref)
        except InputError as exc:
            outcomes.append(exc)
        finally:
            mine.db.close()

    threads = [threading.Thread(target=register) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    refs = [o for o in outcomes if isinstance(o, str)]
    assert len(refs) == 1, outcomes
    assert len(registry.list_versions(ws)) == 2
