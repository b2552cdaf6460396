"""The compression lab's first layer: int8/fp16 graphs that stay faithful, and measuring."""

from __future__ import annotations

import itertools

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from studio.core.compress.measure import measure, measure_pair, parameters
from studio.core.compress.quantize import fp16, int8_dynamic, int8_static, quantizable
from studio.core.errors import InputError

FEATURES, HIDDEN, CLASSES = 32, 256, 5


def mlp(features: int = FEATURES, hidden: int = HIDDEN, classes: int = CLASSES,
        seed: int = 0) -> bytes:
    """An MLP as torch exports nn.Linear (Gemm, transB=1, opset 17), Kaiming-scaled weights
    with a trained-looking spread: the weights are nearly all of the file."""
    rng = np.random.default_rng(seed)
    dims = [features, hidden, hidden, classes]
    nodes, inits, x = [], [], "features"
    for i, (a, b) in enumerate(itertools.pairwise(dims)):
        w = (rng.standard_normal((b, a)) * np.sqrt(2 / a)).astype(np.float32)
        bias = (rng.standard_normal(b) * 0.1).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(bias, f"b{i}")]
        out = f"h{i}"
        nodes.append(helper.make_node("Gemm", [x, f"w{i}", f"b{i}"], [out], transB=1))
        if i < len(dims) - 2:
            nodes.append(helper.make_node("Relu", [out], [f"r{i}"]))
            out = f"r{i}"
        x = out
    nodes.append(helper.make_node("Softmax", [x], ["probabilities"], axis=1))
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("features", TensorProto.FLOAT,
                                                     ["batch", features])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", classes])],
        inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def trees() -> bytes:
    """A one-tree TreeEnsembleClassifier, as LightGBM/XGBoost models export."""
    node = helper.make_node(
        "TreeEnsembleClassifier", ["features"], ["label", "probabilities"], domain="ai.onnx.ml",
        classlabels_int64s=[0, 1], nodes_treeids=[0, 0, 0], nodes_nodeids=[0, 1, 2],
        nodes_featureids=[0, 0, 0], nodes_values=[0.5, 0.0, 0.0],
        nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF"], nodes_truenodeids=[1, 0, 0],
        nodes_falsenodeids=[2, 0, 0], class_treeids=[0, 0], class_nodeids=[1, 2],
        class_ids=[1, 1], class_weights=[-1.0, 1.0], post_transform="LOGISTIC")
    graph = helper.make_graph(
        [node], "trees", [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
         helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2])])
    return helper.make_model(graph, opset_imports=[
        helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)]).SerializeToString()


def run(model: bytes, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    return session.run(None, {"features": x})[0]


@pytest.fixture(scope="module")
def fp32() -> bytes:
    return mlp()


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    return np.random.default_rng(1).standard_normal((2000, FEATURES)).astype(np.float32)


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(a.argmax(1) == b.argmax(1)))


def ops(model: bytes) -> set[str]:
    return {n.op_type for n in onnx.load_from_string(model).graph.node}


def test_int8_dynamic_is_a_quarter_the_size_and_agrees(fp32: bytes, rows: np.ndarray) -> None:
    q = int8_dynamic(fp32)
    assert len(q) <= 0.35 * len(fp32)
    # every layer was quantized, the Gemms torch exports included
    assert "Gemm" not in ops(q) and "MatMul" not in ops(q)
    assert agreement(run(fp32, rows), run(q, rows)) >= 0.98
    assert np.abs(run(fp32, rows) - run(q, rows)).max() < 0.1


def test_int8_static_is_small_and_agrees(fp32: bytes, rows: np.ndarray) -> None:
    calibration = np.random.default_rng(2).standard_normal((300, FEATURES)).astype(np.float32)
    q = int8_static(fp32, {"features": calibration})
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops(q)
    assert len(q) <= 0.35 * len(fp32)
    assert agreement(run(fp32, rows), run(q, rows)) >= 0.98
    # the probabilities stay float: not in steps of 1/255 as a quantized output would be
    steps = run(q, rows) * 255
    assert np.abs(steps - steps.round()).max() > 0.01
    # one scale per weight matrix instead of per column loses a little more
    per_tensor = int8_static(fp32, {"features": calibration}, per_channel=False)
    assert agreement(run(fp32, rows), run(per_tensor, rows)) >= 0.97


def test_int8_static_calibrates_on_many_rows(fp32: bytes, rows: np.ndarray) -> None:
    # 512 rows are 8 batches of 64, and 2,000 are 32: every batch sets the ranges (ONNX
    # Runtime's own option to fold them every 8 batches drops them instead)
    for n in (512, 2000):
        calibration = np.random.default_rng(3).standard_normal((n, FEATURES)).astype(
            np.float32)
        q = int8_static(fp32, {"features": calibration})
        assert agreement(run(fp32, rows), run(q, rows)) >= 0.97


def test_int8_static_needs_calibration_rows(fp32: bytes) -> None:
    with pytest.raises(InputError, match="calibration data has no tensor 'features'"):
        int8_static(fp32, {"pixels": np.zeros((4, FEATURES), np.float32)})
    with pytest.raises(InputError, match="no rows"):
        int8_static(fp32, {"features": np.zeros((0, FEATURES), np.float32)})


def test_fp16_halves_the_size_and_keeps_fp32_tensors(fp32: bytes, rows: np.ndarray) -> None:
    half = fp16(fp32)
    model = onnx.load_from_string(half)
    assert len(half) <= 0.55 * len(fp32)
    assert [i.type.tensor_type.elem_type for i in model.graph.input] == [TensorProto.FLOAT]
    assert [o.type.tensor_type.elem_type for o in model.graph.output] == [TensorProto.FLOAT]
    assert {t.data_type for t in model.graph.initializer} == {TensorProto.FLOAT16}
    out = run(half, rows)  # fed float32, as a V2 client sends
    assert out.dtype == np.float32
    assert np.abs(out - run(fp32, rows)).max() < 0.01


def test_tree_ensembles_are_refused_with_the_reason() -> None:
    model = trees()
    assert "TreeEnsembleClassifier" in (quantizable(model, "int8") or "")
    for compress in (int8_dynamic, fp16,
                     lambda m: int8_static(m, {"features": np.zeros((8, 4), np.float32)})):
        with pytest.raises(InputError, match="boosted-tree ensemble"):
            compress(model)


def test_a_graph_without_weights_and_a_bad_file_are_refused() -> None:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])])
    relu = helper.make_model(graph).SerializeToString()
    with pytest.raises(InputError, match="no MatMul, Gemm, Conv or embedding"):
        int8_dynamic(relu)
    with pytest.raises(InputError, match="not a readable ONNX file"):
        fp16(b"not a model")


def test_measure_pair_reports_both_models(fp32: bytes) -> None:
    q = int8_dynamic(fp32)
    inputs = [{"name": "features", "datatype": "FP32", "shape": [-1, FEATURES]}]
    sample = {"features": np.ones((3, FEATURES), np.float32)}  # fewer rows than a batch
    pair = measure_pair(fp32, q, inputs, sample, repeats=1, memory=False)
    weights = FEATURES * HIDDEN + HIDDEN * HIDDEN + HIDDEN * CLASSES
    assert pair.source.parameters == parameters(fp32) == weights + 2 * HIDDEN + CLASSES
    assert pair.source.file_bytes == len(fp32) and pair.candidate.file_bytes == len(q)
    assert pair.size_ratio == len(q) / len(fp32)
    for m in (pair.source, pair.candidate):
        assert 0 < m.latency_p50_ms <= m.latency_p99_ms
        assert m.throughput_rows_s > 0 and m.peak_memory_bytes is None and m.threads == 1
    with pytest.raises(InputError, match="no tensor 'features'"):
        measure(fp32, inputs, {"x": sample["features"]}, repeats=1, memory=False)


def test_peak_memory_follows_the_weights() -> None:
    big = mlp(features=64, hidden=1536, classes=4)  # 2.4 M weights: 9.4 MB as float32
    inputs = [{"name": "features", "datatype": "FP32", "shape": [-1, 64]}]
    sample = {"features": np.ones((64, 64), np.float32)}
    pair = measure_pair(big, int8_dynamic(big), inputs, sample, repeats=1)
    source, candidate = pair.source.peak_memory_bytes, pair.candidate.peak_memory_bytes
    assert source is not None and candidate is not None
    assert source >= 4 * parameters(big)  # the float32 weights are held, at least once
    assert candidate < source
