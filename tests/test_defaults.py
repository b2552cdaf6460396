"""Right by default: the target a person would pick, a model name that keeps one meaning,
and a warning when a model is no better than always giving the same answer."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import run_studio

from studio.core.datasets.profile import profile_columns, suggest_target


def _suggest(frame: pd.DataFrame) -> str | None:
    found = suggest_target(profile_columns(frame))
    return None if found is None else found.name


def test_penguins_suggest_species(penguins_csv):
    frame = pd.read_csv(penguins_csv)
    found = suggest_target(profile_columns(frame))
    assert found is not None and found.name == "species"
    assert "named like a target" in found.reason


def _houses(n: int = 240, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    area = rng.uniform(30, 200, n)
    return pd.DataFrame({
        "city": rng.choice(["Lyon", "Nice", "Lille", "Brest"], n),
        "area_m2": area.round(1),
        "rooms": rng.integers(1, 7, n),
        "SalePrice": (area * 4_000 + rng.normal(0, 20_000, n)).round(),
        "district": rng.choice(["north", "south"], n),
    })


def test_a_price_is_suggested_over_a_category_and_nothing_is_guessed_blind():
    assert _suggest(_houses()) == "SalePrice"
    rng = np.random.default_rng(1)
    anonymous = pd.DataFrame({"a": rng.normal(size=100), "b": rng.normal(size=100),
                              "c": rng.normal(size=100)})
    assert _suggest(anonymous) is None
    labelled_last = pd.DataFrame({"x1": rng.normal(size=100), "kind": rng.choice(["p", "q"], 100)})
    found = suggest_target(profile_columns(labelled_last))
    assert found is not None and found.name == "kind" and "last column" in found.reason


@pytest.fixture(scope="module")
def houses_runs(tmp_path_factory):
    """Three CLI runs on one table: the suggested target, a chosen one, and no target again."""
    home = tmp_path_factory.mktemp("houses")
    csv = home / "houses.csv"
    _houses().to_csv(csv, index=False)
    assert run_studio(home, "data", "import", str(csv)).returncode == 0
    runs = [run_studio(home, "train", "houses", *extra, "--epochs", "3", timeout=240)
            for extra in ([], ["--target", "city"], ["--json"])]
    for run in runs:
        assert run.returncode == 0, run.stderr
    return home, runs


def test_cli_trains_the_suggested_target_and_remembers_a_choice(houses_runs):
    _home, (first, chosen, again) = houses_runs
    assert "target: SalePrice (suggested: named like a target" in first.stderr
    assert first.stdout.splitlines()[0] == "houses:1"
    # a person who chose the city once gets the city again
    assert "model: houses-city (houses:1 predicts 'SalePrice'" in chosen.stderr
    doc = json.loads(again.stdout)
    assert doc["task"] == "classification"  # the city, chosen last time
    assert doc["version"] == "houses-city:2"


def test_another_target_becomes_another_model_not_a_new_meaning_of_latest(houses_runs):
    houses_home, _runs = houses_runs
    runs = run_studio(houses_home, "models", "ls", "--json")
    refs = {v["ref"]: v for v in json.loads(runs.stdout)["versions"]}
    # houses:1 predicts the price; the city run did not become houses:2
    assert refs["houses:1"]["task"] == "regression"
    assert "houses:2" not in refs
    assert refs["houses-city:1"]["task"] == "classification"
    assert refs["houses-city:2"]["task"] == "classification"


def test_the_baseline_warning_is_a_sign_test_on_the_rows_they_disagree_on():
    import numpy as np

    from studio.core.training.metrics import baseline, baseline_warning

    def warning(y_test, y_pred):
        test = {"accuracy": float((y_pred == y_test).mean()), "n": len(y_test)}
        test["baseline"] = baseline("classification", np.array([0, 0, 1]), y_test, ["no", "yes"],
                                    y_pred)
        return baseline_warning("classification", "churn", test)

    y = np.array([0] * 27 + [1] * 3)  # 10% of a small test split is the other class
    assert "no better than always predicting 'no'" in warning(y, np.zeros(30, dtype=int))
    # perfect, but only 3 rows tell it from the baseline: said, honestly, as too few to tell
    assert "not clearly better" in warning(y, y.copy())
    assert "right on 3 test rows" in warning(y, y.copy())
    big = np.array([0] * 270 + [1] * 30)
    assert warning(big, big.copy()) is None  # 30 rows where only the model is right
    chance = np.array([0, 1] * 30)
    guess = np.random.default_rng(0).integers(0, 2, 60)
    assert warning(chance, guess) is not None
    assert baseline_warning("regression", "price", {"mae": 5.0, "baseline": {
        "mae": 4.0, "r2": 0.0, "predicts": "10"}}) is not None


def test_a_model_at_chance_is_flagged(tmp_path):
    rng = np.random.default_rng(3)
    n = 300
    noise = pd.DataFrame({"f1": rng.normal(size=n), "f2": rng.normal(size=n),
                          "label": rng.choice(["a", "b", "c"], n, p=[0.6, 0.2, 0.2])})
    csv = tmp_path / "noise.csv"
    noise.to_csv(csv, index=False)
    home = tmp_path / "ws"
    assert run_studio(home, "data", "import", str(csv)).returncode == 0
    out = run_studio(home, "train", "noise", "--epochs", "2", timeout=240)
    assert out.returncode == 0, out.stderr
    assert "studio: warning: test accuracy" in out.stderr
    assert "always predicting 'a'" in out.stderr
    shown = run_studio(home, "models", "show", "noise:1", "--json")
    manifest = json.loads(shown.stdout)
    assert manifest["metrics"]["test"]["baseline"]["predicts"] == "a"
    assert manifest["warnings"]


def test_no_obvious_target_asks_for_one(tmp_path):
    rng = np.random.default_rng(4)
    csv = tmp_path / "anon.csv"
    pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)}).to_csv(csv, index=False)
    home = tmp_path / "ws"
    assert run_studio(home, "data", "import", str(csv)).returncode == 0
    out = run_studio(home, "train", "anon", "--epochs", "2")
    assert out.returncode == 2
    assert "choose it with --target (columns: a, b)" in out.stderr
