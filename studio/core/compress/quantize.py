"""ONNX graphs made smaller: int8 (dynamic, or static calibrated on the user's rows) and fp16.

Each function takes and returns a whole ``.onnx`` file as bytes. What a method cannot do
to a graph (a boosted-tree ensemble has no weight matrices to quantize) is refused with an
:class:`InputError` saying why, before any work.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from studio.core.errors import InputError

if TYPE_CHECKING:
    import onnx

ML_DOMAIN = "ai.onnx.ml"
TREE_OPS = {"TreeEnsembleClassifier", "TreeEnsembleRegressor", "TreeEnsemble"}
WEIGHT_OPS = {"MatMul", "Gemm", "Conv", "Gather"}
CALIBRATION_BATCH = 64


def _load(onnx_bytes: bytes) -> onnx.ModelProto:
    import onnx

    try:
        return onnx.load_from_string(onnx_bytes)
    except Exception as e:  # a DecodeError, or protobuf's own
        raise InputError(f"the model is not a readable ONNX file: {e}") from None


def _initializers(model: onnx.ModelProto) -> set[str]:
    return {t.name for t in model.graph.initializer}


def quantizable(onnx_bytes: bytes, method: str) -> str | None:
    """Why ``method`` ("int8" or "fp16") does not apply to this graph, or None when it does."""
    model = _load(onnx_bytes)
    trees = sorted({n.op_type for n in model.graph.node
                    if n.domain == ML_DOMAIN and n.op_type in TREE_OPS})
    if trees:
        what = f"a boosted-tree ensemble ({ML_DOMAIN} {', '.join(trees)})"
        if method == "int8":
            return (f"the model is {what}: int8 quantization and pruning act on weight "
                    "matrices, and trees have none (distil it into an MLP first)")
        return (f"the model is {what}: its thresholds are compared as float32 and "
                "fp16 would move them")
    weights = _initializers(model)
    if not any(n.op_type in WEIGHT_OPS and any(i in weights for i in n.input)
               for n in model.graph.node):
        return ("the model has no MatMul, Gemm, Conv or embedding with stored weights, "
                f"so {method} would change nothing")
    return None


def _refuse(onnx_bytes: bytes, method: str) -> onnx.ModelProto:
    reason = quantizable(onnx_bytes, method)
    if reason:
        raise InputError(f"cannot apply {method}: {reason}")
    return _load(onnx_bytes)


def _gemm_as_matmul(model: onnx.ModelProto) -> onnx.ModelProto:
    """Each plain Gemm with stored weights as MatMul + Add. torch exports nn.Linear as Gemm,
    and ONNX Runtime's dynamic quantizer only has an integer kernel for MatMul: left as
    Gemm, the layers that hold nearly all the weights would stay float32."""
    from onnx import helper, numpy_helper

    inits = {t.name: t for t in model.graph.initializer}
    nodes: list[onnx.NodeProto] = []
    for node in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        plain = (node.op_type == "Gemm" and node.domain in ("", "ai.onnx")
                 and attrs.get("transA", 0) == 0 and attrs.get("alpha", 1.0) == 1.0
                 and attrs.get("beta", 1.0) == 1.0 and len(node.input) >= 2
                 and node.input[1] in inits)
        if not plain:
            nodes.append(node)
            continue
        weight = node.input[1]
        if attrs.get("transB", 0):
            w = numpy_helper.to_array(inits[weight]).T
            weight = f"{node.input[1]}_t"
            if weight not in inits:
                inits[weight] = numpy_helper.from_array(np.ascontiguousarray(w), weight)
        out = node.output[0]
        has_bias = len(node.input) > 2 and node.input[2] != ""
        product = f"{out}_matmul" if has_bias else out
        nodes.append(helper.make_node("MatMul", [node.input[0], weight], [product],
                                      name=f"{node.name or out}_matmul"))
        if has_bias:
            nodes.append(helper.make_node("Add", [product, node.input[2]], [out],
                                          name=f"{node.name or out}_bias"))
    used = {i for n in nodes for i in n.input}
    graph_inputs = {i.name for i in model.graph.input}
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    kept = [t for name, t in inits.items() if name in used or name in graph_inputs]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    return model


@cache
def _has_vnni() -> bool:
    """Whether the CPU multiplies u8×s8 without saturating (VNNI, or not x86 at all)."""
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return True
    if "flags" not in flags:  # not x86 (ARM reports "Features"): no u8s8 saturation there
        return True
    return any(f in flags for f in ("avx512_vnni", "avx_vnni", "amx_int8"))


class _NoAdvice(logging.Filter):
    """Drops the quantizer's advice to pre-process (printed on every call, to the root
    logger): shape inference and Gemm as MatMul are done here, and the graph optimizer runs
    when a session loads the result."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-process" not in record.getMessage()


def _quantized(run: Callable[[Path, Path], None], model: onnx.ModelProto) -> bytes:
    import onnx

    advice = _NoAdvice()
    logging.getLogger().addFilter(advice)
    try:
        with tempfile.TemporaryDirectory(prefix="studio-quantize-") as tmp:
            src, dst = Path(tmp, "model.onnx"), Path(tmp, "quantized.onnx")
            onnx.save_model(model, src)
            run(src, dst)
            return dst.read_bytes()
    finally:
        logging.getLogger().removeFilter(advice)


def int8_dynamic(onnx_bytes: bytes, per_channel: bool = False) -> bytes:
    """Weights stored as int8, activations quantized on the fly at each call.

    Per-tensor by default: ONNX Runtime's fused int8 MatMul kernel takes one scale per
    weight matrix, and per-channel scales send it down a slower path for an accuracy gain
    that is small on the MLPs trained here."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = _gemm_as_matmul(_refuse(onnx_bytes, "int8"))
    for i, node in enumerate(model.graph.node):
        node.name = node.name or f"node_{i}"
    # ONNX Runtime's per-channel kernels take a weight matrix: a batched MatMul (RealMLP's
    # embedding of each column, a 3-D weight) cannot have them, and stays fp32
    shapes = {t.name: len(t.dims) for t in model.graph.initializer}
    batched = [n.name for n in model.graph.node if n.op_type == "MatMul"
               and any(shapes.get(i, 2) > 2 for i in n.input)] if per_channel else []

    def run(src: Path, dst: Path) -> None:
        quantize_dynamic(src, dst, weight_type=QuantType.QInt8, per_channel=per_channel,
                         reduce_range=not _has_vnni(), nodes_to_exclude=batched)

    return _quantized(run, model)


class _Rows:
    """ONNX Runtime's calibration reader over tensors by name, a batch at a time."""

    def __init__(self, tensors: Mapping[str, np.ndarray], names: list[str]) -> None:
        self.tensors = tensors
        self.names = names
        self.batches = self._batches()

    def _batches(self) -> Iterator[dict[str, np.ndarray]]:
        rows = min(len(self.tensors[n]) for n in self.names)
        for i in range(0, rows, CALIBRATION_BATCH):
            yield {n: self.tensors[n][i:i + CALIBRATION_BATCH] for n in self.names}

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.batches, None)

    def rewind(self) -> None:
        self.batches = self._batches()


def int8_static(onnx_bytes: bytes, calibration: Mapping[str, np.ndarray],
                per_channel: bool = True) -> bytes:
    """Weights and activations as int8 (QDQ format), the activations' ranges taken from
    ``calibration``: preprocessed tensors by input name, a sample of the training split
    (every row given is used, a batch at a time)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    model = _gemm_as_matmul(_refuse(onnx_bytes, "int8"))
    names = [i.name for i in model.graph.input if i.name not in _initializers(model)]
    missing = [n for n in names if n not in calibration]
    if missing:
        raise InputError(f"calibration data has no tensor {missing[0]!r}: static int8 needs "
                         "rows of the training split to set activation ranges")
    feed: dict[str, np.ndarray] = {}
    for inp in model.graph.input:
        if inp.name in names:
            x = np.asarray(calibration[inp.name])
            # 7 is INT64 in ONNX's TensorProto; anything else the product feeds is float32
            integer = inp.type.tensor_type.elem_type == 7
            feed[inp.name] = np.ascontiguousarray(x, dtype=np.int64 if integer else np.float32)
    if min(len(x) for x in feed.values()) == 0:
        raise InputError("calibration data has no rows: static int8 needs rows of the "
                         "training split to set activation ranges")
    reader = type("Calibration", (_Rows, CalibrationDataReader), {})(feed, names)
    # What makes the outputs (a Softmax, a Sigmoid) stays float: quantized, probabilities
    # would come in steps of 1/255, a rare class's as exactly 0.
    for i, node in enumerate(model.graph.node):
        node.name = node.name or f"node_{i}"
    outputs = {o.name for o in model.graph.output}
    keep_float = [n.name for n in model.graph.node
                  if set(n.output) & outputs and n.op_type not in WEIGHT_OPS]

    def run(src: Path, dst: Path) -> None:
        quantize_static(src, dst, reader, quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        per_channel=per_channel, reduce_range=not _has_vnni(),
                        nodes_to_exclude=keep_float)
        # (MinMax calibration keeps only each batch's minima and maxima, so many rows cost
        # little memory; its CalibMaxIntermediateOutputs would drop them, not fold them)

    return _quantized(run, model)


def fp16(onnx_bytes: bytes, sample: Mapping[str, np.ndarray] | None = None) -> bytes:
    """Weights and arithmetic in float16; the inputs and outputs stay float32, so the V2
    tensors a client sends do not change. On a CPU this saves size, not time.

    What would not fit fp16's range stays fp32: nodes reading constants beyond it, the
    graph's tail after its last weighted layer (a regression's scaling back to its units),
    and, given preprocessed ``sample`` rows, every node whose values come near the range's
    end there, with all that follows each of them."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = _refuse(onnx_bytes, "fp16")
    for i, node in enumerate(model.graph.node):
        node.name = node.name or f"node_{i}"
    start = set(_beyond_fp16(model)) | _tail(model)
    if sample is not None:
        start |= _large_values(model, sample)
    blocked = sorted(_downstream(model, start))
    half = convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=False,
                                    node_block_list=blocked)
    if blocked:
        _skip_round_trips(half, set(blocked))
    _sort(half)
    return half.SerializeToString()


def _tail(model: onnx.ModelProto) -> set[str]:
    """The nodes after the last weighted layer: a head's scaling and clipping, cheap in
    fp32, where a value in the target's own units (millions, say) would overflow fp16."""
    weights = _initializers(model)
    last = max((i for i, n in enumerate(model.graph.node)
                if n.op_type in WEIGHT_OPS and any(x in weights for x in n.input)), default=-1)
    return {n.name for n in model.graph.node[last + 1:]} if last >= 0 else set()


def _large_values(model: onnx.ModelProto, sample: Mapping[str, np.ndarray]) -> set[str]:
    """Nodes whose float outputs reach half of fp16's largest value on ``sample``."""
    import onnxruntime as ort
    from onnx import TensorProto, shape_inference

    probe = shape_inference.infer_shapes(model)
    named = {o.name for o in probe.graph.output}
    for info in probe.graph.value_info:
        if info.type.tensor_type.elem_type == TensorProto.FLOAT and info.name not in named:
            probe.graph.output.append(info)
    session = ort.InferenceSession(probe.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    feed = {}
    for i in session.get_inputs():
        if i.name not in sample:
            return set()
        x = np.asarray(sample[i.name])
        feed[i.name] = x.astype(np.int64 if "int64" in i.type else np.float32)
    values = session.run(None, feed)
    big = set()
    for out, value in zip(session.get_outputs(), values, strict=True):
        v = np.asarray(value)
        if np.issubdtype(v.dtype, np.floating) and v.size:
            finite = np.abs(v[np.isfinite(v)])
            if finite.size and finite.max() > FP16_MAX / 2:
                big.add(out.name)
    return {n.name for n in model.graph.node if set(n.output) & big}


def _downstream(model: onnx.ModelProto, names: set[str]) -> set[str]:
    """``names`` and every node that reads, directly or not, what they make."""
    out = set(names)
    made = {o for n in model.graph.node if n.name in out for o in n.output}
    for node in model.graph.node:  # in the graph's order: producers come first
        if node.name not in out and set(node.input) & made:
            out.add(node.name)
            made.update(node.output)
    return out


def _sort(model: onnx.ModelProto) -> None:
    """The nodes in an order where each comes after what it reads (the converter appends
    its casts at the end, and a checker or importer refuses such a graph)."""
    ready = {i.name for i in model.graph.input} | _initializers(model) | {""}
    pending = list(model.graph.node)
    ordered: list[onnx.NodeProto] = []
    while pending:
        left = []
        for node in pending:
            if all(i in ready for i in node.input):
                ordered.append(node)
                ready.update(node.output)
            else:
                left.append(node)
        if len(left) == len(pending):  # a cycle or a missing input: left as it was
            return
        pending = left
    del model.graph.node[:]
    model.graph.node.extend(ordered)


def _skip_round_trips(model: onnx.ModelProto, blocked: set[str]) -> None:
    """The converter casts what a kept-fp32 node makes to fp16 and straight back before
    the next fp32 node (or the graph's output): a value of millions becomes infinity on the
    way. Each such round trip is taken out, the fp32 value passed on as it is."""
    from onnx import TensorProto, helper

    def cast_to(node: onnx.NodeProto) -> int | None:
        return next((a.i for a in node.attribute if a.name == "to"), None) \
            if node.op_type == "Cast" else None

    made_by = {o: n for n in model.graph.node for o in n.output}
    origin = {o for n in model.graph.node if n.name in blocked for o in n.output}
    keep: list[onnx.NodeProto] = []
    replaced: dict[str, str] = {}
    for node in model.graph.node:
        down = made_by.get(node.input[0]) if node.input else None
        if cast_to(node) == TensorProto.FLOAT and down is not None and \
                cast_to(down) == TensorProto.FLOAT16 and down.input[0] in origin:
            replaced[node.output[0]] = down.input[0]
            continue
        keep.append(node)
    outputs = {o.name for o in model.graph.output}
    for node in keep:
        for i, name in enumerate(node.input):
            node.input[i] = replaced.get(name, name)
    for name, value in replaced.items():
        if name in outputs:  # the graph's output keeps its name
            keep.append(helper.make_node("Identity", [value], [name], name=f"{name}_fp32"))
    used = {i for n in keep for i in n.input} | outputs
    del model.graph.node[:]
    model.graph.node.extend(n for n in keep if cast_to(n) != TensorProto.FLOAT16
                            or set(n.output) & used)


FP16_MAX = 65504.0


def _beyond_fp16(model: onnx.ModelProto) -> list[str]:
    """Nodes that read a float constant beyond fp16's range (a regression's target scale
    of millions, say): kept in fp32, since fp16 would clip the constant to ±65504."""
    from onnx import TensorProto, numpy_helper

    big = {t.name for t in model.graph.initializer
           if t.data_type == TensorProto.FLOAT and t.dims is not None
           and np.abs(numpy_helper.to_array(t)).max(initial=0.0) > FP16_MAX}
    for node in model.graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value" and a.t.data_type == TensorProto.FLOAT and np.abs(
                        numpy_helper.to_array(a.t)).max(initial=0.0) > FP16_MAX:
                    big.update(node.output)
    return [n.name for n in model.graph.node
            if set(n.input) & big or (n.op_type == "Constant" and set(n.output) & big)]

