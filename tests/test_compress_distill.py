"""Distillation: a student of a fraction of a teacher's size, learnt from the teacher's
outputs through its ONNX graph (networks and boosted trees alike), that scores close to it."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import onnx
import pandas as pd
import pytest
import torch
from conftest import penguins_workspace
from safetensors.torch import load as load_safetensors
from synthetic import houses

from studio.core import registry
from studio.core.compress.distill import (
    Distilled,
    count,
    distill,
    student_config,
    teacher_outputs,
    teacher_parameters,
)
from studio.core.compress.measure import parameters
from studio.core.compress.network import build
from studio.core.compress.source import Source, load_source
from studio.core.datasets import catalog
from studio.core.errors import InputError
from studio.core.training.families.base import FitContext, TrainData
from studio.core.workspace import Workspace

QUIET = FitContext(lambda e: None, threads=1)


@pytest.fixture(scope="module")
def penguins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Source]]:
    """An mlp (penguins:1) and a boosted-trees (penguins:2) teacher with their data, and a
    "soft" one (penguins:3): ten small boosting steps leave its probabilities far from 0
    and 1, unlike the labels."""
    from studio.core.training.pipeline import run
    from studio.core.training.spec import TrainSpec

    torch.set_num_threads(1)
    root = penguins_workspace(tmp_path_factory.mktemp("distill"), ("mlp", "boosted-trees"))
    ws = Workspace.open(root)
    run(ws, TrainSpec(dataset="penguins", target="species", family="boosted-trees",
                      params={"rounds": 10}, threads=1), lambda e: None)
    yield {family: load_source(ws, registry.get_version(ws, f"penguins:{n}"), True)
           for n, family in ((1, "mlp"), (2, "boosted-trees"), (3, "soft"))}
    ws.db.close()


def accuracy(onnx_bytes: bytes, data: TrainData) -> float:
    probs = teacher_outputs(onnx_bytes, data, data.test)
    return float(np.mean(probs.argmax(1) == data.y[data.test]))


def test_an_mlp_teacher_becomes_a_student_a_quarter_its_size(
        penguins: dict[str, Source]) -> None:
    teacher = penguins["mlp"]
    data = teacher.data
    assert data is not None
    out = distill(teacher.onnx, data, fraction=0.25, temperature=2.0, alpha=0.7, epochs=40,
                  ctx=QUIET)
    student = out.exported.onnx
    assert parameters(student) <= 0.25 * parameters(teacher.onnx)
    assert out.details["student_parameters"] == parameters(student)
    assert out.details["teacher_parameters"] == parameters(teacher.onnx)
    assert len(out.details["hidden"]) == 2 and min(out.details["hidden"]) >= 16
    # scored on the held-out rows through the exported graph: within two of 52 rows
    assert accuracy(student, data) >= accuracy(teacher.onnx, data) - 0.04
    assert out.details["teacher_validation"] >= 0.9 and out.details["student_validation"] >= 0.9
    assert 1 <= out.details["best_epoch"] <= out.details["epochs_run"] <= 40
    # the graph keeps the one contract: the recipe's tensors in, probabilities out
    graph = onnx.load_from_string(student).graph
    assert [i.name for i in graph.input] == [i["name"] for i in data.inputs]
    assert [o.name for o in graph.output] == ["probabilities"] == [out.exported.output]
    assert_rebuilds(out, data)


def assert_rebuilds(out: Distilled, data: TrainData) -> None:
    """The config and the safetensors alone give the network back, predicting as the graph
    does."""
    model = build(out.config)
    model.load_state_dict(load_safetensors(out.exported.files["weights.safetensors"]))
    model.eval()
    from studio.core.training.data import ModelData

    rows = data.test[:16]
    xs = ModelData(data.recipe, data.frame, "cpu", lambda e: None).batch(rows)
    with torch.no_grad():
        mine = model(*xs).numpy()
    graph = teacher_outputs(out.exported.onnx, data, rows)
    assert np.allclose(mine.reshape(graph.shape), graph, atol=1e-4)


def test_a_boosted_tree_teacher_is_distilled_into_a_network(
        penguins: dict[str, Source]) -> None:
    teacher = penguins["boosted-trees"]
    data = teacher.data
    assert data is not None
    # its learnt numbers are the trees' thresholds and leaf values, not weight tensors
    size = teacher_parameters(teacher.onnx)
    assert size > 100
    out = distill(teacher.onnx, data, fraction=0.25, temperature=2.0, alpha=0.7, epochs=30,
                  ctx=QUIET)
    assert parameters(out.exported.onnx) <= 0.25 * size
    ops = {n.op_type for n in onnx.load_from_string(out.exported.onnx).graph.node}
    assert "Gemm" in ops and not any(op.startswith("TreeEnsemble") for op in ops)
    assert accuracy(out.exported.onnx, data) >= accuracy(teacher.onnx, data) - 0.04


def mean_gap(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


def test_alpha_weighs_the_teacher_against_the_labels(penguins: dict[str, Source]) -> None:
    """A student taught by the teacher alone ends nearer the teacher's probabilities than
    one taught by the labels alone: the loss hook really changes what is learnt."""
    teacher = penguins["soft"]
    data = teacher.data
    assert data is not None
    theirs = teacher_outputs(teacher.onnx, data, data.test)
    gaps = {}
    for alpha in (0.0, 1.0):
        out = distill(teacher.onnx, data, fraction=0.25, temperature=2.0, alpha=alpha,
                      epochs=30, ctx=QUIET)
        gaps[alpha] = mean_gap(teacher_outputs(out.exported.onnx, data, data.test), theirs)
    assert gaps[1.0] < 0.5 * gaps[0.0]


@pytest.fixture(scope="module")
def house_prices(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Source]]:
    """houses() with a price that follows the rooms and the area (plus noise, the gaps
    kept), learnt by a small word-embedding network on the columns and the review: "good"
    trained to the end, "rough" stopped after two epochs, far from the prices."""
    from studio.core.training.pipeline import run
    from studio.core.training.spec import TrainSpec

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("houses")
    frame = houses(400)
    noise = np.random.default_rng(0).normal(0, 20000, len(frame))
    price = 40000 * frame["rooms"] + 1500 * frame["area_m2"] + noise
    frame["price"] = np.where(frame["price"].isna(), np.nan, np.round(price, -1))
    frame.to_csv(root / "houses.csv", index=False)
    ws = Workspace.open(root / "ws")
    catalog.import_dataset(ws, root / "houses.csv")
    out = {}
    for name, epochs in (("good", 30), ("rough", 2)):
        result = run(ws, TrainSpec(dataset="houses", target="price", family="embedding",
                                   epochs=epochs, hidden=[32], learning_rate=0.01,
                                   threads=1), lambda e: None)
        out[name] = load_source(ws, registry.get_version(ws, result["version"]), True)
    yield out
    ws.db.close()


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a.astype(np.float64) - b) ** 2)))


def test_a_regression_student_learns_prices(house_prices: dict[str, Source]) -> None:
    teacher = house_prices["good"]
    data = teacher.data
    assert data is not None and data.modality == "text"
    out = distill(teacher.onnx, data, fraction=0.25, temperature=1.0, alpha=0.7, epochs=40,
                  ctx=QUIET)
    assert parameters(out.exported.onnx) <= 0.25 * parameters(teacher.onnx)
    assert out.exported.output == "prediction"
    assert out.details["text_dim"] >= 4 and out.details["hidden"] == [32]
    y = data.y[data.test].astype(np.float64)
    mine = teacher_outputs(out.exported.onnx, data, data.test)
    theirs = teacher_outputs(teacher.onnx, data, data.test)
    # prices, not the normalized target the loop trains on, and nearly the teacher's error
    assert rmse(mine, y) < 0.5 * y.std()
    assert rmse(mine, y) < 1.3 * rmse(theirs, y)
    assert_rebuilds(out, data)


def test_a_regression_student_follows_its_teacher_by_alpha(
        house_prices: dict[str, Source]) -> None:
    teacher = house_prices["rough"]
    data = teacher.data
    assert data is not None
    theirs = teacher_outputs(teacher.onnx, data, data.test)
    gaps = {}
    for alpha in (0.0, 1.0):
        out = distill(teacher.onnx, data, fraction=0.25, temperature=1.0, alpha=alpha,
                      epochs=40, ctx=QUIET)
        gaps[alpha] = rmse(teacher_outputs(out.exported.onnx, data, data.test), theirs)
    assert gaps[1.0] < 0.5 * gaps[0.0]


def table(n: int = 200, features: int = 10, classes: int = 3) -> TrainData:
    rng = np.random.default_rng(0)
    recipe = {"task": "classification", "labels": [f"c{i}" for i in range(classes)],
              "modality": "tabular", "dropped": [],
              "features": [{"name": f"x{i}", "kind": "numeric", "mean": 0.0, "scale": 1.0,
                            "fill": 0.0} for i in range(features)]}
    frame = pd.DataFrame(rng.normal(size=(n, features)), columns=[f"x{i}" for i in
                                                                   range(features)])
    idx = np.arange(n)
    return TrainData(recipe, "classification", frame, rng.integers(0, classes, n),
                     (idx[:140], idx[140:170], idx[170:]))


@pytest.mark.parametrize("teacher", [1_000_000, 40_000, 2_000, 300, 20])
def test_the_student_fits_its_budget_with_one_unit_at_least(teacher: int) -> None:
    data = table()
    config = student_config(data, teacher, 0.25)
    hidden = config["args"]["hidden"]
    assert config["builder"] == "studionet" and config["family"] == "mlp"
    assert hidden and min(hidden) >= 1 and max(hidden) <= 256
    smallest = count(student_config(data, 1, 1.0))  # one hidden unit
    assert count(config) <= max(0.25 * teacher, smallest)
    if teacher >= 40_000:  # room for two layers, and most of the budget used (or the
        # widest layers the student has)
        assert len(hidden) == 2
        assert count(config) > 0.2 * teacher or hidden == [256, 256]


def test_pictures_get_a_narrower_cnn_within_the_budget() -> None:
    recipe = {"modality": "image", "labels": ["a", "b"], "dropped": [],
              "features": [{"name": "picture", "kind": "image", "size": 32,
                            "mean": [0.5] * 3, "std": [0.25] * 3}]}
    data = TrainData(recipe, "classification", pd.DataFrame({"picture": [""] * 4}),
                     np.zeros(4, dtype=np.int64), (np.arange(2), np.arange(2, 3),
                                                   np.arange(3, 4)))
    wide, narrow = (student_config(data, n, 0.25) for n in (400_000, 40_000))
    assert wide["family"] == "cnn"
    assert wide["args"]["image"]["width"] > narrow["args"]["image"]["width"] >= 1
    assert count(narrow) <= 10_000 and count(wide) <= 100_000


def test_nonsense_settings_are_refused_in_a_sentence(penguins: dict[str, Source]) -> None:
    teacher = penguins["mlp"]
    assert teacher.data is not None
    with pytest.raises(InputError, match="fraction"):
        student_config(teacher.data, 1000, 0.0)
    with pytest.raises(InputError, match="temperature"):
        distill(teacher.onnx, teacher.data, 0.25, 0.0, 0.5, 1, QUIET)
    with pytest.raises(InputError, match="alpha"):
        distill(teacher.onnx, teacher.data, 0.25, 2.0, 1.5, 1, QUIET)


def test_a_teacher_of_another_question_is_refused(penguins: dict[str, Source]) -> None:
    """A graph whose outputs are not the recipe's classes says so."""
    import dataclasses

    teacher = penguins["mlp"]
    assert teacher.data is not None
    recipe = {**teacher.data.recipe, "labels": ["Adelie", "Gentoo"]}
    other = dataclasses.replace(teacher.data, recipe=recipe)
    with pytest.raises(InputError, match="gives 3 outputs a row, but its recipe has 2 "
                       "classes"):
        teacher_outputs(teacher.onnx, other, other.test)
