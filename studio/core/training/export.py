"""Turn a trained torch model into the files of a version: ONNX and safetensors."""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from safetensors.torch import save as save_safetensors

DTYPES = {"FP32": torch.float32, "INT64": torch.int64}


def onnx_bytes(model: torch.nn.Module, inputs: Sequence[Mapping[str, Any]],
               task: str) -> tuple[bytes, str]:
    """ONNX graph taking ``inputs`` (name, datatype, shape; -1 is the batch axis), each with
    a dynamic batch axis; the output is named for the task."""
    output = "probabilities" if task == "classification" else "prediction"
    model.eval()
    buf = io.BytesIO()
    examples = tuple(torch.zeros([2, *spec["shape"][1:]], dtype=DTYPES[spec["datatype"]])
                     for spec in inputs)
    names = [spec["name"] for spec in inputs]
    axes = {n: {0: "batch"} for n in [*names, output]}
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated but exact and fast for these graphs.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, examples, buf, input_names=names, output_names=[output],
            dynamic_axes=axes, opset_version=17, dynamo=False,
        )
    return buf.getvalue(), output


def safetensors_bytes(model: torch.nn.Module, metadata: dict[str, str]) -> bytes:
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return save_safetensors(state, metadata=metadata)
