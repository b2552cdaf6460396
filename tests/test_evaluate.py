"""Evaluation: metrics against hand-computed values, permutation importance, the evaluation
document, and `studio evaluate` end to end."""

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import PENGUINS, run_studio

from studio.core import registry
from studio.core.datasets.recipe import column_slices, fit_recipe, transform_inputs
from studio.core.events import Progress
from studio.core.training.evaluate import (
    evaluate_model,
    metrics,
    onnx_runner,
    permutation_importance,
)
from studio.core.training.ranking import downsample, roc_auc, roc_curve
from studio.core.workspace import Workspace


def binary(p1: list[float]) -> np.ndarray:
    p = np.asarray(p1, dtype=np.float64)
    return np.c_[1 - p, p]


# -- metrics -------------------------------------------------------------------------------


def test_binary_metrics_by_hand() -> None:
    # scores of "b" (labels[1]): 0.1 a, 0.4 a, 0.35 b, 0.8 b → predicted a, a, a, b
    m = metrics("classification", np.array([0, 0, 1, 1]), binary([0.1, 0.4, 0.35, 0.8]),
                ["a", "b"])
    s = m["metrics"]
    assert s["accuracy"] == pytest.approx(0.75)
    # a: predicted 3 times, right twice; recall 2/2. b: predicted once, right; recall 1/2
    assert [c["precision"] for c in m["per_class"]] == pytest.approx([2 / 3, 1.0])
    assert [c["recall"] for c in m["per_class"]] == pytest.approx([1.0, 0.5])
    assert [c["f1"] for c in m["per_class"]] == pytest.approx([0.8, 2 / 3])
    assert s["precision_macro"] == s["precision"] == pytest.approx(5 / 6)
    assert s["f1_macro"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert s["f1_weighted"] == pytest.approx((0.8 + 2 / 3) / 2)  # equal supports
    assert s["balanced_accuracy"] == pytest.approx(0.75)
    # pairs (b, a): 0.35>0.1 yes, 0.35>0.4 no, 0.8 beats both → 3 of 4
    assert s["roc_auc"] == pytest.approx(0.75)
    assert s["log_loss"] == pytest.approx(
        -(math.log(0.9) + math.log(0.6) + math.log(0.35) + math.log(0.8)) / 4)
    assert m["confusion"] == [[2, 0], [1, 1]]
    [pr] = m["curves"]["pr"]
    # thresholds 0.8 (P 1, R .5), 0.4 (P .5, R .5), 0.35 (P 2/3, R 1), 0.1 (P .5, R 1)
    assert pr["label"] == "b" and pr["average_precision"] == pytest.approx(0.5 + 0.5 * 2 / 3)
    [roc] = m["curves"]["roc"]
    assert roc["fpr"] == [0.0, 0.0, 0.5, 0.5, 1.0] and roc["tpr"] == [0.0, 0.5, 0.5, 1.0, 1.0]
    assert roc["auc"] == pytest.approx(0.75)


def test_perfect_and_all_wrong() -> None:
    y = np.array([0, 1, 1, 0, 1])
    perfect = metrics("classification", y, binary([0.2, 0.9, 0.7, 0.1, 0.6]), ["n", "y"])
    s = perfect["metrics"]
    assert s["accuracy"] == s["f1_macro"] == s["balanced_accuracy"] == s["roc_auc"] == 1.0
    assert perfect["curves"]["pr"][0]["average_precision"] == pytest.approx(1.0)
    assert perfect["confusion"] == [[2, 0], [0, 3]]
    wrong = metrics("classification", y, binary([0.8, 0.1, 0.3, 0.9, 0.4]), ["n", "y"])
    s = wrong["metrics"]
    assert s["accuracy"] == s["f1_macro"] == s["precision_weighted"] == s["roc_auc"] == 0.0
    assert wrong["confusion"] == [[0, 2], [3, 0]]


def test_roc_auc_counts_ties_as_half() -> None:
    # positives 0.5 and 0.8, negatives 0.5 and 0.2: 0.5 ties 0.5 (½) and beats 0.2 (1),
    # 0.8 beats both (2) → 3.5 of 4
    assert roc_auc(np.array([0, 1, 0, 1]), np.array([0.5, 0.5, 0.2, 0.8])) == 0.875
    assert roc_auc(np.array([0, 1, 0, 1]), np.full(4, 0.3)) == 0.5
    assert roc_auc(np.array([1, 1]), np.array([0.1, 0.2])) is None
    # the curve through tied scores moves diagonally, and its area is the same number
    fpr, tpr = roc_curve(np.array([0, 1, 0, 1]), np.array([0.5, 0.5, 0.2, 0.8]))
    assert np.trapezoid(tpr, fpr) == pytest.approx(0.875)


def test_three_classes_by_hand() -> None:
    y = np.array([0, 1, 2, 2, 1, 0])
    p = np.array([[.7, .2, .1], [.2, .5, .3], [.1, .2, .7],
                  [.3, .4, .3], [.3, .3, .4], [.6, .3, .1]])
    m = metrics("classification", y, p, ["a", "b", "c"])
    assert m["confusion"] == [[2, 0, 0], [0, 1, 1], [0, 1, 1]]
    s = m["metrics"]
    assert s["accuracy"] == pytest.approx(4 / 6)
    assert s["f1_macro"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    # one-vs-rest: a 1 (its .7 .6 above all others); b: .5 beats 4 negatives, .3 beats
    # .2 .2, ties .3 → 6.5/8; c: .7 beats 4, .3 beats .1 .1, ties .3 → 6.5/8
    assert [c["roc_auc"] for c in m["per_class"]] == pytest.approx([1.0, 0.8125, 0.8125])
    assert s["roc_auc"] == pytest.approx((1 + 0.8125 + 0.8125) / 3)
    assert s["log_loss"] == pytest.approx(-np.mean(np.log([.7, .5, .7, .3, .3, .6])))
    assert [c["label"] for c in m["curves"]["roc"]] == ["a", "b", "c"]


def test_a_class_absent_from_the_rows() -> None:
    # "c" never occurs but is predicted once (wrongly): its precision is 0, and the macro
    # averages are over the classes present
    y = np.array([0, 0, 1, 1])
    p = np.array([[.8, .1, .1], [.2, .2, .6], [.1, .8, .1], [.3, .6, .1]])
    m = metrics("classification", y, p, ["a", "b", "c"])
    c = m["per_class"][2]
    assert (c["support"], c["precision"], c["recall"], c["roc_auc"]) == (0, 0.0, 0.0, None)
    s = m["metrics"]
    assert s["recall_macro"] == s["balanced_accuracy"] == pytest.approx((0.5 + 1.0) / 2)
    assert s["precision_macro"] == pytest.approx((1.0 + 1.0) / 2)
    # over a and b only: a's .8 .2 against .1 .3 → 3 of 4; b's .8 .6 above .1 .2 → 1
    assert [c["roc_auc"] for c in m["per_class"][:2]] == pytest.approx([0.75, 1.0])
    assert s["roc_auc"] == pytest.approx((0.75 + 1.0) / 2)
    assert [r["label"] for r in m["curves"]["roc"]] == ["a", "b"]
    only_one = metrics("classification", np.array([1, 1]), p[:2], ["a", "b", "c"])
    assert only_one["metrics"]["roc_auc"] is None and only_one["curves"]["roc"] == []


def test_rows_of_an_unseen_class_count_as_wrong() -> None:
    y = np.array([0, 1, -1, -1])
    m = metrics("classification", y, binary([0.1, 0.9, 0.9, 0.2]), ["a", "b"])
    s = m["metrics"]
    assert s["accuracy"] == 0.5
    assert m["confusion"] == [[1, 0], [0, 1]]  # the unseen rows have no row of their own
    assert m["per_class"][1]["precision"] == 0.5  # an unseen row predicted "b" is wrong
    assert s["balanced_accuracy"] == pytest.approx(2 / 3)  # a 1, b 1, the unseen 0
    assert s["recall_weighted"] == pytest.approx(0.5)
    assert s["roc_auc"] == 1.0  # over the rows of known classes


def test_log_loss_clips_probabilities() -> None:
    sure_wrong = metrics("classification", np.array([0]), np.array([[0.0, 1.0]]), ["a", "b"])
    assert sure_wrong["metrics"]["log_loss"] == pytest.approx(-math.log(1e-15))
    sure_right = metrics("classification", np.array([1]), np.array([[0.0, 1.0]]), ["a", "b"])
    assert 0 < sure_right["metrics"]["log_loss"] < 1e-14


def test_regression_metrics_and_mape_with_zeros() -> None:
    m = metrics("regression", np.array([0.0, 2.0, 4.0]), np.array([1.0, 1.0, 5.0]))
    s = m["metrics"]
    assert s["mae"] == pytest.approx(1.0)
    assert s["rmse"] == pytest.approx(1.0)
    assert s["r2"] == pytest.approx(1 - 3 / 8)
    assert s["mape"] == pytest.approx((1 / 2 + 1 / 4) / 2)  # the actual 0 is left out
    assert m["metrics"]["n"] == 3
    assert sum(m["residuals"]["counts"]) == 3 and len(m["residuals"]["counts"]) == 30
    assert len(m["residuals"]["bins"]) == 31
    zeros = metrics("regression", np.zeros(3), np.array([1.0, -1.0, 0.0]))["metrics"]
    assert zeros["mape"] is None and zeros["r2"] is None  # undefined: null, never NaN


def test_curves_are_thinned_keeping_their_ends_and_area() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 5000)
    score = np.clip(y * 0.3 + rng.random(5000), 0, 1)
    m = metrics("classification", y, binary(score), ["n", "y"])
    [roc], [pr] = m["curves"]["roc"], m["curves"]["pr"]
    assert 100 < len(roc["fpr"]) <= 200 and len(pr["recall"]) <= 200
    assert (roc["fpr"][0], roc["tpr"][0], roc["fpr"][-1], roc["tpr"][-1]) == (0, 0, 1, 1)
    assert np.trapezoid(roc["tpr"], roc["fpr"]) == pytest.approx(roc["auc"], abs=0.005)
    # a sharp corner survives thinning
    x = np.r_[np.zeros(1000), np.linspace(0, 1, 1000)]
    yy = np.r_[np.linspace(0, 1, 1000), np.ones(1000)]
    tx, ty = downsample(x, yy, 200)
    assert len(tx) <= 200 and np.min(np.hypot(tx, ty - 1)) < 0.01


# -- permutation importance ----------------------------------------------------------------


def synthetic(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    return pd.DataFrame({
        "noise": rng.normal(size=n), "signal": signal,
        "colour": rng.choice(["red", "green", "blue"], n),
        "y": np.where(signal > 0, "yes", "no"),
    })


def tiny_onnx(n_features: int, column: int) -> bytes:
    """Logistic regression on one input column, as a real ONNX graph."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.zeros((n_features, 2), dtype=np.float32)
    w[column] = [-8.0, 8.0]
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "w"], ["logits"]),
         helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1)],
        "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, n_features])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2])],
        [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model.SerializeToString()


def test_permutation_importance_finds_the_informative_column() -> None:
    frame = synthetic()
    recipe = fit_recipe(frame, "y", "classification")
    slices = column_slices(recipe)
    assert list(slices) == ["noise", "signal", "colour"]
    run = onnx_runner(tiny_onnx(5, slices["signal"][1]))
    tensors = transform_inputs(recipe, frame)
    y = (frame["y"] == "yes").to_numpy().astype(np.int64)
    events = []
    imp = permutation_importance(run, tensors, slices, y, "classification", repeats=3,
                                 max_rows=500, emit=events.append)
    assert imp["metric"] == "accuracy" and imp["rows"] == 500 and imp["repeats"] == 3
    first, *rest = imp["features"]
    assert first["feature"] == "signal" and first["mean"] > 0.3 and first["std"] < 0.1
    assert all(f["mean"] == 0.0 and f["std"] == 0.0 for f in rest)  # the model ignores them
    assert [e.current for e in events] == list(range(10))
    assert all(isinstance(e, Progress) and e.stage == "evaluate" for e in events)


def test_regression_importance_in_r2() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(800, 3)).astype(np.float32)
    y = 2 * x[:, 2]
    imp = permutation_importance(lambda t: 2 * t["input"][:, 2:3], {"input": x},
                                 {"a": ("input", 0, 1), "b": ("input", 1, 2),
                                  "c": ("input", 2, 3)}, y, "regression", seed=1)
    assert imp["metric"] == "r2" and imp["features"][0]["feature"] == "c"
    assert imp["features"][0]["mean"] == pytest.approx(2.0, abs=0.3)  # R² 1 → about -1


def wide_table(rows: int, columns: int) -> tuple[dict, dict, np.ndarray]:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(rows, columns)).astype(np.float32)
    slices = {f"c{i}": ("input", i, i + 1) for i in range(columns)}
    return {"input": x}, slices, (x[:, 0] > 0).astype(np.int64)


def test_importance_of_a_wide_table_stays_within_its_budget() -> None:
    tensors, slices, y = wide_table(5000, 400)
    seen: list[int] = []

    def run(t: dict) -> np.ndarray:
        seen.append(len(t["input"]))
        p1 = (t["input"][:, 0] > 0).astype(np.float32)
        return np.c_[1 - p1, p1]

    imp = permutation_importance(run, tensors, slices, y, "classification", repeats=3,
                                 budget=1_000_000, time_limit=None)
    # 5000 rows × 400 columns × 3 shuffles would be 6 million rows through the model
    assert imp["repeats"] == 1 and imp["rows"] == 2500 and len(seen) == 401
    assert sum(seen) <= 1_000_000 + imp["rows"]  # the shuffles, and the unshuffled score
    assert not imp["partial"] and imp["columns"] == imp["of"] == 400
    assert imp["features"][0]["feature"] == "c0" and imp["features"][0]["mean"] > 0.3
    # a narrow table keeps its three shuffles on every row it is given
    tensors, slices, y = wide_table(3000, 5)
    seen.clear()
    imp = permutation_importance(run, tensors, slices, y, "classification", repeats=3,
                                 max_rows=3000, budget=1_000_000)
    assert imp["repeats"] == 3 and imp["rows"] == 3000 and len(seen) == 16


def test_importance_stops_at_its_time_limit_or_a_stop() -> None:
    from studio.core.errors import Abandoned

    tensors, slices, y = wide_table(300, 50)
    clock = {"calls": 0}

    def run(t: dict) -> np.ndarray:
        clock["calls"] += 1
        return np.c_[1 - t["input"][:, :1] * 0, t["input"][:, :1] * 0]

    asked = []

    def stop_after_ten() -> bool:
        asked.append(1)
        return len(asked) > 10

    imp = permutation_importance(run, tensors, slices, y, "classification", repeats=2,
                                 should_stop=stop_after_ten)
    assert imp["partial"] and imp["columns"] == len(imp["features"]) == 10 and imp["of"] == 50
    assert clock["calls"] == 1 + 10 * 2
    imp = permutation_importance(run, tensors, slices, y, "classification", time_limit=0.0)
    assert imp["partial"] and imp["features"] == [] and imp["columns"] == 0

    def gone() -> bool:
        raise Abandoned("the terminal went away")

    with pytest.raises(Abandoned):
        permutation_importance(run, tensors, slices, y, "classification", should_stop=gone)


def test_a_slow_model_trades_shuffles_for_every_column_in_time() -> None:
    import time

    tensors, slices, y = wide_table(1000, 20)

    def slow(t: dict) -> np.ndarray:
        time.sleep(1e-4 * len(t["input"]))  # 0.1 s per 1000 rows
        p1 = (t["input"][:, 0] > 0).astype(np.float32)
        return np.c_[1 - p1, p1]

    started = time.perf_counter()
    imp = permutation_importance(slow, tensors, slices, y, "classification", repeats=3,
                                 max_rows=1000, time_limit=4.0)
    # three shuffles of 20 columns would take 6 s: one each fits in the 4 s
    assert imp["repeats"] == 1 and not imp["partial"] and imp["columns"] == 20
    assert time.perf_counter() - started < 4.0


def test_evaluate_model_passes_stop_to_importance() -> None:
    frame = synthetic()
    recipe = fit_recipe(frame, "y", "classification")
    run = onnx_runner(tiny_onnx(5, column_slices(recipe)["signal"][1]))
    y = (frame["y"] == "yes").to_numpy().astype(np.int64)
    doc = evaluate_model(run, recipe, frame, y, row_ids=np.arange(len(frame)), dataset="d",
                         split="test", labels=["no", "yes"], task="classification",
                         should_stop=lambda: True)
    assert doc["importance"]["partial"] and doc["importance"]["features"] == []
    assert doc["metrics"]["accuracy"] > 0.9  # the scores themselves are whole


def test_column_slices_shuffle_like_the_raw_columns() -> None:
    """Shuffling a raw column's rows equals shuffling the rows of its slice: what permutation
    importance relies on to skip preprocessing."""
    rng = np.random.default_rng(0)
    n = 40
    words = ["apple", "pear", "plum", "fig", "kiwi", "lime", "date", "yuzu"]
    frame = pd.DataFrame({
        "num": rng.normal(size=n), "cat": rng.choice(["a", "b", "c"], n),
        "ord": rng.choice(["lo", "mid", "hi"], n),
        "t1": [" ".join(rng.choice(words, 6)) for _ in range(n)],
        "t2": [" ".join(rng.choice(words, 3)) for _ in range(n)],
        "y": rng.choice(["p", "q"], n),
    })
    recipe = fit_recipe(frame, "y", "classification", {"columns": {"ord": {"encode": "ordinal"}}},
                        kinds={"t1": "text", "t2": "text"})
    slices = column_slices(recipe)
    assert slices["num"] == ("input", 0, 1) and slices["cat"] == ("input", 1, 4)
    assert slices["ord"] == ("input", 4, 5)
    t1 = next(f for f in recipe["features"] if f["name"] == "t1")
    # a text column's slice holds its word slots, then its bigram slots
    assert slices["t1"] == ("tokens", 0, t1["max_tokens"] + t1["bigram_tokens"])
    base = transform_inputs(recipe, frame)
    assert base["input"].shape[1] == 5 and slices["t2"][2] == base["tokens"].shape[1]
    perm = rng.permutation(n)
    for column, (tensor, start, stop) in slices.items():
        shuffled = frame.copy()
        shuffled[column] = frame[column].to_numpy()[perm]
        expected = {k: v.copy() for k, v in base.items()}
        expected[tensor][:, start:stop] = base[tensor][perm, start:stop]
        got = transform_inputs(recipe, shuffled)
        for name in base:
            np.testing.assert_array_equal(got[name], expected[name], err_msg=column)


# -- the document --------------------------------------------------------------------------


def test_evaluation_document_keeps_the_format() -> None:
    frame = synthetic(n=21_000, seed=2)
    frame["note"] = "x" * 200
    recipe = fit_recipe(frame.iloc[:2000], "y", "classification", kinds={"note": "categorical"})
    col = column_slices(recipe)["signal"][1]
    run = onnx_runner(tiny_onnx(recipe_width(recipe), col))
    y = (frame["y"] == "yes").to_numpy().astype(np.int64)
    y[:300] = 1 - y[:300]  # wrong answers the model is sure of
    ids = np.arange(len(frame)) * 2 + 7  # rows of a stored frame this one was cut from
    events = []
    doc = evaluate_model(run, recipe, frame.drop(columns="y"), y, row_ids=ids, dataset="syn",
                         split="test", labels=["no", "yes"], task="classification",
                         emit=events.append)
    json.dumps(doc, allow_nan=False)
    assert (doc["task"], doc["dataset"], doc["split"], doc["n"]) == (
        "classification", "syn", "test", 21_000)
    assert doc["labels"] == ["no", "yes"]
    rows = doc["rows"]
    assert rows["truncated"] and len(rows["index"]) == 20_000
    assert set(rows["index"]) <= set(ids.tolist()) and rows["index"] == sorted(rows["index"])
    assert len(rows["actual"]) == len(rows["predicted"]) == len(rows["confidence"]) == 20_000
    worst = doc["worst"]
    assert len(worst) == 20
    confidences = [w["confidence"] for w in worst]
    assert confidences == sorted(confidences, reverse=True) and confidences[0] > 0.99
    for w in worst:
        i = (w["row"] - 7) // 2
        assert w["actual"] == ["no", "yes"][y[i]] != w["predicted"]
        assert w["values"]["signal"] == f"{frame['signal'][i]:.10g}"
        assert len(w["values"]["note"]) == 80
    assert doc["importance"]["features"][0]["feature"] == "signal"
    predicted = run(transform_inputs(recipe, frame)).argmax(axis=1)
    assert doc["metrics"]["accuracy"] == pytest.approx(np.mean(predicted == y))
    assert doc["rows"]["predicted"] == predicted[(np.array(rows["index"]) - 7) // 2].tolist()
    assert all(e.stage == "evaluate" for e in events)
    assert any("importance" in e.message for e in events)


def recipe_width(recipe: dict) -> int:
    from studio.core.datasets.recipe import n_features

    return n_features(recipe)


def test_a_regression_document_holds_no_nan() -> None:
    frame = pd.DataFrame({"x": np.arange(30, dtype=float), "y": np.arange(30, dtype=float)})
    recipe = fit_recipe(frame, "y", "regression")

    def run(t):
        out = t["input"][:, :1] * 10.0
        out[3] = np.nan  # a broken model: undefined numbers become null
        return out

    doc = evaluate_model(run, recipe, frame[["x"]], frame["y"].to_numpy(), row_ids=range(30),
                         dataset="d", split="all", labels=None, task="regression")
    text = json.dumps(doc, allow_nan=False)
    assert "NaN" not in text and doc["metrics"]["mae"] is None
    assert doc["worst"][0]["row"] == 3 and doc["worst"][0]["predicted"] is None
    assert "confidence" not in doc["rows"] and doc["rows"]["truncated"] is False


def test_a_picture_model_has_no_importance(tmp_path: Path) -> None:
    from PIL import Image

    paths = []
    for i in range(6):
        path = tmp_path / f"p{i}.png"
        Image.new("RGB", (12, 12), (40 * i, 0, 0)).save(path)
        paths.append(str(path))
    recipe = {"format": 1, "target": "label", "task": "classification", "modality": "image",
              "labels": ["dark", "light"], "dropped": [],
              "features": [{"name": "image", "kind": "image", "size": 8,
                            "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}]}
    frame = pd.DataFrame({"image": paths})

    def run(t):
        red = t["image"][:, 0].mean(axis=(1, 2))
        return np.c_[red < 0, red >= 0].astype(np.float32)

    shown = pd.DataFrame({"image": [f"class/p{i}.png" for i in range(6)]})
    doc = evaluate_model(run, recipe, frame, np.array([0, 0, 0, 0, 0, 0]), row_ids=range(6),
                         dataset="pics", split="all", labels=["dark", "light"],
                         task="classification", allow_paths=True, shown=shown)
    assert doc["importance"] is None
    assert doc["worst"] and doc["worst"][0]["values"] == {
        "image": f"class/p{doc['worst'][0]['row']}.png"}


# -- the CLI -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def eval_home(trained_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the trained home with variants of penguins and a regression model."""
    home = tmp_path_factory.mktemp("evaluate") / "home"
    shutil.copytree(trained_home, home)
    source = pd.read_csv(PENGUINS)
    files = home.parent
    unseen = source.copy()
    unseen.loc[unseen["species"] == "Chinstrap", "species"] = "Emperor"
    unseen.to_csv(files / "unseen.csv", index=False)
    source.drop(columns=["island"]).to_csv(files / "noisland.csv", index=False)
    source.drop(columns=["species"]).to_csv(files / "nospecies.csv", index=False)
    worded = source.copy()
    worded["body_mass_g"] = np.where(source["body_mass_g"] > 4000, "heavy", "light")
    worded.to_csv(files / "worded.csv", index=False)
    for name in ("unseen", "noisland", "nospecies", "worded"):
        done = run_studio(home, "data", "import", str(files / f"{name}.csv"))
        assert done.returncode == 0, done.stderr
    done = run_studio(home, "train", "penguins", "--target", "body_mass_g", "--model", "mass",
                      "--epochs", "2", timeout=240)
    assert done.returncode == 0, done.stderr
    return home


@pytest.mark.timeout(300)
def test_cli_evaluate_prints_metrics_and_json(eval_home: Path) -> None:
    text = run_studio(eval_home, "evaluate", "penguins:1", "unseen", "--split", "all")
    assert text.returncode == 0, text.stderr
    assert "warning" not in text.stderr  # another dataset: no row of it was learnt from
    doc = json.loads(run_studio(eval_home, "evaluate", "penguins:1", "unseen",
                                "--json").stdout)
    lines = text.stdout.splitlines()
    assert lines[0] == "penguins:1 on unseen: 344 rows with a 'species'"
    assert f"accuracy {doc['metrics']['accuracy']:.4f}" in lines[1]
    for label in ("Adelie", "Chinstrap", "Gentoo"):
        assert any(line.startswith(label) for line in lines)
    assert "confusion (rows: actual, columns: predicted)" in text.stdout
    assert "importance (accuracy drop" in text.stdout
    assert doc["model"] == "penguins:1" and doc["n"] == 344 and doc["split"] == "all"
    assert doc["training_data"] is False
    confusion = np.array(doc["confusion"])
    assert confusion.sum() == 276 and confusion.trace() / 344 == doc["metrics"]["accuracy"]
    assert doc["rows"]["index"] == list(range(344))
    assert {f["feature"] for f in doc["importance"]["features"]} == {
        "island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex",
        "year"}
    assert doc["rows_without_target"] == 0
    assert not doc["importance"]["partial"]


@pytest.mark.timeout(300)
def test_cli_evaluate_on_the_training_data_scores_its_test_rows(eval_home: Path) -> None:
    """The version's own dataset: by default only the rows it was tested on, the very rows
    training scored (its other rows were learnt from)."""
    trained = json.loads(run_studio(eval_home, "models", "show", "penguins:1",
                                    "--json").stdout)["evaluation"]
    text = run_studio(eval_home, "evaluate", "penguins:1", "penguins")
    assert text.returncode == 0, text.stderr
    assert "warning" not in text.stderr
    doc = json.loads(run_studio(eval_home, "evaluate", "penguins:1", "penguins",
                                "--json").stdout)
    assert doc["split"] == "test" and doc["training_data"] is True
    assert text.stdout.splitlines()[0] == (
        f"penguins:1 on penguins: test split of the training data: {doc['n']} rows")
    assert 30 < doc["n"] < 100 and doc["n"] == trained["n"]
    assert sorted(doc["rows"]["index"]) == sorted(trained["rows"]["index"])
    assert doc["metrics"]["accuracy"] == pytest.approx(trained["metrics"]["accuracy"])
    assert doc["confusion"] == trained["confusion"]
    every = run_studio(eval_home, "evaluate", "penguins:1", "penguins", "--split", "all")
    assert every.returncode == 0, every.stderr
    [warning] = every.stderr.splitlines()
    assert warning.startswith("studio: warning: most of these rows were seen in training")
    assert every.stdout.splitlines()[0] == "penguins:1 on penguins: 344 rows with a 'species'"
    refused = run_studio(eval_home, "evaluate", "penguins:1", "unseen", "--split", "test")
    assert refused.returncode == 2 and "was not trained on 'unseen'" in refused.stderr


@pytest.mark.timeout(300)
def test_cli_evaluate_scores_unseen_classes_as_wrong(eval_home: Path) -> None:
    result = run_studio(eval_home, "evaluate", "penguins", "unseen")
    assert result.returncode == 0, result.stderr
    assert ("note: 68 rows are of classes the model never saw (Emperor 68); they are scored "
            "as wrong") in result.stdout
    doc = json.loads(run_studio(eval_home, "evaluate", "penguins", "unseen", "--json").stdout)
    assert doc["unseen"] == {"rows": 68, "classes": {"Emperor": 68}}
    assert doc["metrics"]["accuracy"] <= 276 / 344
    assert doc["per_class"][1]["support"] == 0  # no Chinstrap left
    assert all(w["actual"] == "Emperor" for w in doc["worst"][:5])


@pytest.mark.timeout(300)
def test_cli_evaluate_regression(eval_home: Path) -> None:
    doc = json.loads(run_studio(eval_home, "evaluate", "mass", "penguins", "--split", "all",
                                "--json").stdout)
    assert doc["task"] == "regression" and doc["n"] == 342 and doc["rows_without_target"] == 2
    assert {"mae", "rmse", "r2", "mape", "n"} == set(doc["metrics"])
    assert sum(doc["residuals"]["counts"]) == 342
    text = run_studio(eval_home, "evaluate", "mass", "penguins")
    assert text.returncode == 0 and "mae " in text.stdout and "worst errors" in text.stdout
    trained = json.loads(run_studio(eval_home, "models", "show", "mass", "--json").stdout)
    test = json.loads(run_studio(eval_home, "evaluate", "mass", "penguins", "--json").stdout)
    assert test["split"] == "test" and test["n"] == trained["evaluation"]["n"] < 342
    assert test["metrics"]["mae"] == pytest.approx(trained["evaluation"]["metrics"]["mae"],
                                                   rel=1e-5)


BAD = {
    "missing column": (["penguins", "noisland"], "lacks penguins:1's input column 'island'"),
    "unknown model": (["nosuch:1", "penguins"], "no version nosuch:1"),
    "no target": (["penguins", "nospecies"], "has no column 'species'"),
    "text target": (["mass", "worded"], "predicts numbers"),
    "unknown dataset": (["penguins", "nosuch"], "no dataset named 'nosuch'"),
}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("case", list(BAD))
def test_cli_evaluate_bad_input_exits_2_with_one_line(eval_home: Path, case: str) -> None:
    args, says = BAD[case]
    result = run_studio(eval_home, "evaluate", *args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("studio: error: ") and says in line


@pytest.mark.timeout(300)
def test_training_stores_the_evaluation_and_models_show_carries_it(eval_home: Path,
                                                                   tmp_path: Path) -> None:
    shown = json.loads(run_studio(eval_home, "models", "show", "penguins:1", "--json").stdout)
    doc = shown["evaluation"]  # written by training, on the test split, through the ONNX
    assert (doc["task"], doc["split"], doc["labels"]) == (
        "classification", "test", ["Adelie", "Chinstrap", "Gentoo"])
    assert doc["n"] == shown["metrics"]["test"]["n"] == sum(map(sum, doc["confusion"]))
    assert doc["metrics"]["accuracy"] == pytest.approx(shown["metrics"]["test"]["accuracy"])
    assert len(doc["rows"]["index"]) == doc["n"] and len(doc["curves"]["roc"]) == 3
    assert len(doc["importance"]["features"]) == 7
    home = tmp_path / "home"
    shutil.copytree(eval_home, home)
    ws = Workspace.open(home)
    try:  # a version made before evaluation.json existed
        v1 = registry.get_version(ws, "penguins:1")
        files = {f: registry.read_file(ws, v1, f) for f in v1.manifest.raw["files"]
                 if f not in ("card.md", "evaluation.json")}
        keep = {k: v for k, v in v1.manifest.raw.items()
                if k not in ("name", "version", "created", "files", "format")}
        registry.register_version(ws, "penguins", files, keep, "card")
    finally:
        ws.db.close()
    older = json.loads(run_studio(home, "models", "show", "penguins:2", "--json").stdout)
    assert "evaluation" not in older

def test_prepare_keeps_each_rows_number_in_the_stored_frame() -> None:
    from studio.core.datasets.prepare import prepare

    rng = np.random.default_rng(0)
    y = rng.normal(size=30)
    y[[2, 5]] = np.nan
    y[7] = np.inf
    frame = pd.DataFrame({"x": rng.normal(size=30), "y": y})
    p = prepare(frame, "d", "y", "regression")
    assert p.rows.tolist() == [i for i in range(30) if i not in (2, 5, 7)]
    np.testing.assert_array_equal(p.frame["x"], frame["x"].to_numpy()[p.rows])
