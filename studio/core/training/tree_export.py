"""A LightGBM booster as an ONNX graph in the one contract serving knows.

onnxmltools converts the trees (``TreeEnsembleClassifier``/``Regressor`` of the ai.onnx.ml
domain); the graph is then cut to that contract: the one input ``input`` FP32
``[batch, features]``, and one output, ``probabilities`` FP32 ``[batch, classes]`` or
``prediction`` FP32 ``[batch, 1]``. The converter's class-label output is dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightgbm as lgb
import onnx
from onnx import TensorProto, helper

BATCH = "batch"
# Trees per TreeEnsembleRegressor node: ONNX sums leaf values in float32, LightGBM in double;
# the converter adds the groups' sums in double. Over 1000 trees that drifts 7e-7 of the
# value from LightGBM's instead of 2e-6 (measured).
REGRESSION_SPLIT = 100


def booster_onnx(booster: lgb.Booster, inputs: Sequence[Mapping[str, Any]], task: str,
                 n_classes: int) -> tuple[bytes, str]:
    """The serialized graph and the name of its output."""
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    if [spec["name"] for spec in inputs] != ["input"]:
        raise ValueError("boosted trees take the table columns only, got inputs "
                         f"{[spec['name'] for spec in inputs]}")
    width = int(inputs[0]["shape"][1])
    if booster.num_feature() != width:
        raise ValueError(f"the booster has {booster.num_feature()} features, the recipe "
                         f"{width}")
    regression = task == "regression"
    # the converter refuses to split an ensemble that fits in one group
    split = REGRESSION_SPLIT if regression and booster.num_trees() > REGRESSION_SPLIT else None
    model = convert_lightgbm(booster, initial_types=[("input", FloatTensorType([None, width]))],
                             zipmap=False, split=split)
    output = "prediction" if regression else "probabilities"
    _to_contract(model, output, 1 if regression else n_classes)
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString(), output


def _to_contract(model: onnx.ModelProto, output: str, width: int) -> None:
    """Keep the one float output, named ``output`` and shaped ``[batch, width]``; drop what
    only fed the others."""
    graph = model.graph
    floats = [o for o in graph.output if o.type.tensor_type.elem_type == TensorProto.FLOAT]
    if len(floats) != 1:
        raise ValueError(f"expected one float output from the converter, got "
                         f"{[o.name for o in graph.output]}")
    source = floats[0].name
    rank = len(floats[0].type.tensor_type.shape.dim)
    if rank != 2:  # a [batch] value becomes [batch, 1]
        shape = helper.make_tensor(f"{output}_shape", TensorProto.INT64, [2], [-1, width])
        graph.initializer.append(shape)
        graph.node.append(helper.make_node("Reshape", [source, shape.name], [output]))
    else:
        _rename(graph, source, output)
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(output, TensorProto.FLOAT,
                                                      [BATCH, width]))
    graph.input[0].type.tensor_type.shape.dim[0].dim_param = BATCH
    _prune(graph)


def _rename(graph: onnx.GraphProto, old: str, new: str) -> None:
    for node in graph.node:
        for names in (node.input, node.output):
            for i, name in enumerate(names):
                if name == old:
                    names[i] = new


def _prune(graph: onnx.GraphProto) -> None:
    """Remove the nodes and initializers no output depends on."""
    needed = {o.name for o in graph.output}
    keep = []
    for node in reversed(graph.node):  # the converter writes nodes in topological order
        if needed & set(node.output):
            keep.append(node)
            needed.update(node.input)
    del graph.node[:]
    graph.node.extend(reversed(keep))
    initializers = [t for t in graph.initializer if t.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(initializers)
