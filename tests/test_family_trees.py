"""The boosted-trees family: trains on table columns, stops when it should, and exports an
ONNX graph that serving runs like any other family's."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest

from studio.core.datasets.prepare import prepare
from studio.core.datasets.recipe import encode_target
from studio.core.errors import InputError
from studio.core.events import Log, Metric, Progress
from studio.core.training.families import get
from studio.core.training.families.base import FitContext, TrainData, resolve_params
from studio.core.training.families.boosted_trees import FAMILY

REPO_ROOT = Path(__file__).resolve().parents[1]
TARGETS = ("yes_no", "kind", "value")


def table(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Two numbers and a category; a two-class, a three-class and a numeric target."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.normal(size=n)
    city = rng.choice(["north", "south", "east"], n)
    frame = pd.DataFrame({"a": a, "b": b, "city": city})
    frame["yes_no"] = np.where(a + b + (city == "north") > 0.3, "yes", "no")
    frame["kind"] = np.where(city == "east", "c", np.where(a + rng.normal(0, 0.3, n) > 0, "a",
                                                          "b"))
    frame["value"] = 3 * a - 2 * b ** 2 + 5 * (city == "south") + rng.normal(0, 0.1, n)
    return frame


def train_data(frame: pd.DataFrame, target: str, seed: int = 0) -> TrainData:
    frame = frame.drop(columns=[c for c in TARGETS if c != target and c in frame])
    p = prepare(frame, "t", target, "auto", [0.7, 0.15, 0.15], seed)
    return TrainData(p.recipe, p.task, p.frame, encode_target(p.recipe, p.frame[target]),
                     p.parts)


def fit(data: TrainData, events: list | None = None, **given):
    ctx = FitContext(emit=(events.append if events is not None else lambda e: None),
                     seed=given.pop("seed", 0), threads=2,
                     should_stop=given.pop("should_stop", lambda: False),
                     deadline=given.pop("deadline", None))
    return FAMILY.train(data, resolve_params(FAMILY, given), ctx)


@pytest.fixture(scope="module")
def trained() -> dict:
    frame = table()
    out = {}
    for target in TARGETS:
        data = train_data(frame, target)
        events: list = []
        out[target] = (data, fit(data, events), events)
    return out


@pytest.mark.parametrize("target", TARGETS)
def test_export_keeps_the_contract_and_matches_predict(trained, target) -> None:
    data, fitted, _ = trained[target]
    exported = fitted.export()
    session = ort.InferenceSession(exported.onnx, providers=["CPUExecutionProvider"])
    n_features = data.inputs[0]["shape"][1]
    assert [(i.name, i.type, i.shape) for i in session.get_inputs()] == [
        ("input", "tensor(float)", ["batch", n_features])]
    classes = data.n_classes
    name, width = ("probabilities", classes) if classes else ("prediction", 1)
    assert exported.output == name
    assert [(o.name, o.type, o.shape) for o in session.get_outputs()] == [
        (name, "tensor(float)", ["batch", width])]
    onnx.checker.check_model(onnx.load_from_string(exported.onnx), full_check=True)

    rows = data.test
    x = data.matrix()[rows]
    (out,) = session.run(None, {"input": x})
    expected = fitted.predict(rows)
    if classes:
        assert expected.shape == out.shape == (len(rows), classes)
        np.testing.assert_allclose(out, expected, atol=1e-5)
        np.testing.assert_allclose(out.sum(1), 1.0, atol=1e-5)
        assert (out.argmax(1) == data.y[rows]).mean() > 0.8
    else:
        assert expected.shape == (len(rows),) and out.shape == (len(rows), 1)
        np.testing.assert_allclose(out[:, 0], expected, atol=1e-5 * np.abs(expected).max())
        y = data.y[rows]
        assert 1 - ((expected - y) ** 2).sum() / ((y - y.mean()) ** 2).sum() > 0.9
    # the batch axis is dynamic: one row gives that row's answer
    (one,) = session.run(None, {"input": x[:1]})
    np.testing.assert_allclose(one[0], out[0], atol=1e-6)


@pytest.mark.parametrize("target", TARGETS)
def test_booster_text_is_the_model_kept(trained, target) -> None:
    import lightgbm as lgb

    data, fitted, _ = trained[target]
    text = fitted.export().files["booster.txt"].decode("utf-8")
    reloaded = lgb.Booster(model_str=text)
    best = fitted.details["best_round"]
    assert reloaded.current_iteration() == best < fitted.details["rounds_run"]
    raw = reloaded.predict(data.matrix()[data.validation])
    ours = fitted.predict(data.validation)
    np.testing.assert_allclose(ours[:, 1] if data.n_classes == 2 else ours, raw, atol=1e-12)


@pytest.mark.parametrize("target,score", [("yes_no", "val_accuracy"), ("value", "val_r2")])
def test_rounds_report_metrics_progress_and_why_they_ended(trained, target, score) -> None:
    _, fitted, events = trained[target]
    details = fitted.details
    assert details["stopped"] == "early stopping"
    assert details["rounds_run"] == details["best_round"] + 50
    metrics = [e for e in events if isinstance(e, Metric)]
    assert {m.name for m in metrics} == {"train_loss", "val_loss", score}
    rounds = [m.epoch for m in metrics if m.name == "val_loss"]
    assert rounds == sorted(rounds) and rounds[0] == 1 and rounds[-1] == details["rounds_run"]
    assert len(rounds) < details["rounds_run"]  # throttled, not one per round
    losses = [m.value for m in metrics if m.name == "train_loss"]
    assert losses[-1] < losses[0]
    progress = [e for e in events if isinstance(e, Progress)]
    assert progress[-1].current == details["rounds_run"]
    assert progress[-1].total == 1000 and "round" in progress[-1].message
    logs = [e.message for e in events if isinstance(e, Log)]
    assert any(f"stopped at round {details['rounds_run']}" in m
               and f"keeping round {details['best_round']}" in m for m in logs)


def test_early_stopping_ends_training_on_noise() -> None:
    frame = table(300)
    frame["yes_no"] = np.random.default_rng(1).choice(["yes", "no"], len(frame))
    fitted = fit(train_data(frame, "yes_no"), patience=20)
    assert fitted.details["stopped"] == "early stopping"
    assert fitted.details["rounds_run"] < 100
    assert fitted.details["rounds_run"] == fitted.details["best_round"] + 20


def test_a_past_deadline_ends_after_the_first_round_with_a_model() -> None:
    data = train_data(table(200), "kind")
    fitted = fit(data, deadline=time.monotonic() - 1)
    assert fitted.details["stopped"] == "time"
    assert fitted.details["rounds_run"] == fitted.details["best_round"] == 1
    assert fitted.predict(data.test).shape == (len(data.test), 3)
    assert fitted.export().output == "probabilities"


def test_stop_is_honoured_and_keeps_the_best_round() -> None:
    asked = iter(range(1000))
    events: list = []
    data = train_data(table(200), "value")
    fitted = fit(data, events, should_stop=lambda: next(asked) >= 7)
    assert fitted.details["stopped"] == "user"
    assert fitted.details["rounds_run"] == 8
    assert 1 <= fitted.details["best_round"] <= 8
    # the last round run is reported even between throttled events
    assert [e.epoch for e in events if isinstance(e, Metric)][-1] == 8
    # a short ensemble exports too (the converter's float-drift split needs > 100 trees)
    (out,) = ort.InferenceSession(fitted.export().onnx).run(
        None, {"input": data.matrix()[data.test]})
    np.testing.assert_allclose(out[:, 0], fitted.predict(data.test), rtol=1e-5)


def test_same_seed_same_model() -> None:
    data = train_data(table(300), "kind")
    first, second = fit(data, seed=3), fit(data, seed=3)
    assert first.booster.model_to_string() == second.booster.model_to_string()


def iris_like(seed: int = 0) -> pd.DataFrame:
    """150 flowers of three kinds, two of them overlapping a little, as in the iris set."""
    rng = np.random.default_rng(seed)
    centres = {"setosa": [5.0, 3.4, 1.5, 0.2], "versicolor": [5.9, 2.8, 4.3, 1.3],
               "virginica": [6.6, 3.0, 5.6, 2.0]}
    spread = [0.4, 0.3, 0.4, 0.2]
    rows = [dict(zip(["sl", "sw", "pl", "pw"], rng.normal(c, spread), strict=True),
                 species=name) for name, c in centres.items() for _ in range(50)]
    return pd.DataFrame(rows)


def test_a_small_table_still_trains_well() -> None:
    accuracies = []
    for seed in range(3):
        events: list = []
        data = train_data(iris_like(seed), "species", seed)
        fitted = fit(data, events, seed=seed)
        rows = np.concatenate([data.validation, data.test])
        accuracies.append((fitted.predict(rows).argmax(1) == data.y[rows]).mean())
        # 105 training rows: 20 a leaf would allow only 5 leaves a tree
        assert fitted.details["min_child_samples_used"] < 20
        assert any("a leaf needs at least" in e.message for e in events if isinstance(e, Log))
    assert np.mean(accuracies) >= 0.9


def test_class_weights_favour_the_rare_class() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=600), "b": rng.normal(size=600)})
    frame["rare"] = np.where(frame["a"] + rng.normal(0, 1.0, 600) > 1.6, "yes", "no")
    data = train_data(frame, "rare")
    yes = data.recipe["labels"].index("yes")
    plain = fit(data).predict(data.test)[:, yes].mean()
    weighted = fit(data, class_weights=True).predict(data.test)[:, yes].mean()
    assert weighted > plain + 0.05


def test_fits_tables_only_and_checks_its_params() -> None:
    assert get("boosted-trees") is FAMILY
    assert FAMILY.unfit_reason("classification", "tabular") is None
    assert FAMILY.unfit_reason("regression", "tabular") is None
    for modality in ("text", "image"):
        assert "table columns" in FAMILY.unfit_reason("classification", modality)
    assert all(p.help.endswith(".") for p in FAMILY.params)
    with pytest.raises(InputError, match="leaves"):
        resolve_params(FAMILY, {"leaves": 1})
    with pytest.raises(InputError, match="has no parameter"):
        resolve_params(FAMILY, {"epochs": 3})


def test_listing_families_loads_neither_lightgbm_nor_torch() -> None:
    code = ("import json, sys\n"
            "from studio.core.training.families import all_families\n"
            "[f.params for f in all_families()]\n"
            "print(json.dumps(sorted({k.split('.')[0] for k in sys.modules})))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=60, check=True)
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert not loaded & {"lightgbm", "onnxmltools", "torch", "sklearn"}
