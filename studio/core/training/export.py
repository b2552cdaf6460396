"""Turn a trained torch model into the files of a version: ONNX and safetensors."""

from __future__ import annotations

import io
import warnings

import torch
from safetensors.torch import save as save_safetensors


def onnx_bytes(model: torch.nn.Module, n_features: int, task: str) -> tuple[bytes, str]:
    """ONNX graph with a dynamic batch axis; input ``input``, output named for the task."""
    output = "probabilities" if task == "classification" else "prediction"
    model.eval()
    buf = io.BytesIO()
    example = torch.zeros(2, n_features, dtype=torch.float32)
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated but exact and fast for these graphs.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (example,), buf, input_names=["input"], output_names=[output],
            dynamic_axes={"input": {0: "batch"}, output: {0: "batch"}}, opset_version=17,
            dynamo=False,
        )
    return buf.getvalue(), output


def safetensors_bytes(model: torch.nn.Module, metadata: dict[str, str]) -> bytes:
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return save_safetensors(state, metadata=metadata)
