"""The mlp family (RealMLP-style): it learns what a table holds, its ONNX graph is the model
it trained (preprocessing included), and it ends on time."""

from __future__ import annotations

import time

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest

from studio.core.datasets.prepare import prepare
from studio.core.datasets.recipe import encode_target
from studio.core.training.families import mlp
from studio.core.training.families.base import FitContext, TrainData, resolve_params

FAST = {"epochs": 60, "hidden": [64, 64]}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Networks this small gain nothing from a second thread, and on a busy machine the
    threads' waits for each other cost many times the work."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _data(frame: pd.DataFrame, target: str, seed: int = 0) -> TrainData:
    p = prepare(frame, "table", target, "auto", (0.7, 0.15, 0.15), seed)
    return TrainData(p.recipe, p.task, p.frame, encode_target(p.recipe, p.frame[target]),
                     p.parts)


def _train(data: TrainData, given: dict, deadline_s: float | None = None):
    ctx = FitContext(emit=lambda e: None, seed=0, threads=2,
                     deadline=None if deadline_s is None else time.monotonic() + deadline_s)
    return mlp.FAMILY.train(data, resolve_params(mlp.FAMILY, given), ctx)


def _onnx(fitted, data: TrainData, rows: np.ndarray) -> tuple[ort.InferenceSession, np.ndarray]:
    exported = fitted.export()
    session = ort.InferenceSession(exported.onnx, providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"input": data.matrix()[rows]})
    return session, out


def _classes(n: int = 700, seed: int = 0) -> pd.DataFrame:
    """The class depends on a number through a ring and on a city, with a raw-scale outlier
    column beside them."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.normal(size=n)
    city = rng.choice(["Lyon", "Nice", "Lille", "Brest"], n)
    inside = (a ** 2 + b ** 2 < 1.2) ^ np.isin(city, ["Nice", "Brest"])
    income = np.exp(rng.normal(10, 2, n))  # heavy-tailed: robust scaling and the clip matter
    return pd.DataFrame({"a": a, "b": b, "city": city, "income": income,
                         "label": np.where(inside, "in", "out")})


def _values(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.uniform(-2, 2, n), rng.uniform(-2, 2, n)
    y = 10 + 3 * np.sin(2 * x1) + x2 ** 2 + rng.normal(0, 0.1, n)
    return pd.DataFrame({"x1": x1, "x2": x2, "noise": rng.normal(size=n), "y": y})


@pytest.fixture(scope="module")
def classes():
    data = _data(_classes(), "label")
    return data, _train(data, FAST)


@pytest.fixture(scope="module")
def values():
    data = _data(_values(), "y")
    return data, _train(data, FAST)


def test_classification_with_a_category_beats_the_majority(classes):
    data, fitted = classes
    te = data.test
    majority = np.bincount(data.y[data.train]).argmax()
    baseline = float((data.y[te] == majority).mean())
    accuracy = float((fitted.predict(te).argmax(1) == data.y[te]).mean())
    assert accuracy >= 0.85 > baseline + 0.2, (accuracy, baseline)


def test_classification_onnx_is_the_fitted_model(classes):
    data, fitted = classes
    rows = np.concatenate(data.parts)
    session, out = _onnx(fitted, data, rows)
    [given] = session.get_inputs()
    spec = data.inputs[0]
    assert [i.name for i in session.get_inputs()] == [s["name"] for s in data.inputs]
    assert given.type == "tensor(float)" and given.shape[1:] == spec["shape"][1:]
    assert isinstance(given.shape[0], str)  # the batch axis is free
    assert [o.name for o in session.get_outputs()] == ["probabilities"]
    assert out.shape == (len(rows), data.n_classes)
    np.testing.assert_allclose(out, fitted.predict(rows), atol=1e-4)
    np.testing.assert_allclose(out.sum(1), 1.0, atol=1e-5)


def test_regression_beats_the_mean_and_onnx_matches(values):
    data, fitted = values
    te = data.test
    y = data.y[te].astype(np.float64)
    predicted = fitted.predict(te)
    r2 = 1 - ((y - predicted) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    assert r2 > 0.9, r2  # the mean scores 0
    rows = np.concatenate(data.parts)
    session, out = _onnx(fitted, data, rows)
    assert [o.name for o in session.get_outputs()] == ["prediction"]
    assert out.shape == (len(rows), 1)
    np.testing.assert_allclose(out[:, 0], fitted.predict(rows), atol=1e-4)


def test_regression_stays_within_the_training_targets(values):
    data, fitted = values
    far = np.full((4, data.matrix().shape[1]), 1e6, dtype=np.float32)
    far[1] *= -1
    session = ort.InferenceSession(fitted.export().onnx, providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"input": far})
    y_tr = data.y[data.train]
    assert np.isfinite(out).all()
    assert (out >= y_tr.min() - 1e-3).all() and (out <= y_tr.max() + 1e-3).all()


def test_plain_inputs_train_and_export_too():
    """With the periodic embeddings and the clip switched off the graph is still whole."""
    data = _data(_classes(300, seed=1), "label")
    fitted = _train(data, {**FAST, "epochs": 10, "periodic_embeddings": False,
                           "smooth_clip": False, "activation": "relu"})
    rows = data.test
    _, out = _onnx(fitted, data, rows)
    np.testing.assert_allclose(out, fitted.predict(rows), atol=1e-4)


def test_the_deadline_ends_training_with_its_best_epoch():
    # the first optimizer of a process imports torch._dynamo, seconds on a busy machine
    import torch._dynamo  # noqa: F401

    data = _data(_values(1500, seed=2), "y")
    started = time.monotonic()
    fitted = _train(data, {"epochs": 10_000, "hidden": [64, 64]}, deadline_s=2.0)
    took = time.monotonic() - started
    assert fitted.details["stopped"] == "time"
    assert 1 <= fitted.details["best_epoch"] <= fitted.details["epochs_run"] < 10_000
    assert took < 2.0 + 4.0, took  # model set-up, one validation and the last step at most


def test_defaults_and_knobs():
    params = resolve_params(mlp.FAMILY, {})
    assert params["schedule"] == "coslog4" and params["label_smoothing"] == 0.1
    assert params["periodic_embeddings"] is True and params["smooth_clip"] is True
    assert all(p.help.endswith(".") for p in mlp.FAMILY.params)
    assert mlp.FAMILY.unfit_reason("regression", "tabular") is None
    assert mlp.FAMILY.unfit_reason("classification", "image")


def test_numeric_columns_skip_one_hot_blocks():
    recipe = {"features": [
        {"name": "a", "kind": "numeric"},
        {"name": "c", "kind": "categorical", "categories": ["x", "y", "z"]},
        {"name": "t", "kind": "text"},
        {"name": "o", "kind": "ordinal", "categories": ["lo", "hi"]},
    ]}
    assert mlp.numeric_columns(recipe) == [0, 4]


def test_robust_scale_keeps_constant_columns_constant():
    from studio.core.training.realmlp import robust_scale

    x = np.array([[1.0, 0.0, 5.0], [2.0, 0.0, 5.0], [3.0, 1.0, 5.0], [4.0, 0.0, 5.0],
                  [5.0, 0.0, 5.0]])
    center, factor = robust_scale(x)
    np.testing.assert_allclose(center, [3.0, 0.0, 5.0])
    # quartiles 2 and 4; a one-hot column's quartiles meet: half its range instead
    np.testing.assert_allclose(factor, [0.5, 2.0, 0.0])


def test_coslog4_cycles_start_and_end_at_zero():
    from studio.core.training.loop import _schedule

    for t in (0.0, 1 / 15, 3 / 15, 7 / 15, 1.0):
        assert abs(_schedule("coslog4", t)) < 1e-9
    assert _schedule("coslog4", (2 ** 0.5 - 1) / 15) == pytest.approx(1.0)
    assert _schedule("flat_cos", 0.3) == 1.0 and _schedule("flat_cos", 1.0) < 1e-9
