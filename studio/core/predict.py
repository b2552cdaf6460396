"""Run a registered version with ONNX Runtime: tensors in, or raw rows through the recipe."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd

from studio.core import registry
from studio.core.casting import checked_cast
from studio.core.datasets import text
from studio.core.datasets.pixels import PixelBudget
from studio.core.datasets.recipe import frame_from_records, transform_inputs
from studio.core.errors import InputError
from studio.core.workspace import Workspace

MAX_ROWS = 100_000
MAX_REQUEST_VALUES = 32_000_000  # preprocessed values a request may make: 128 MB of floats
MAX_REQUEST_PIXELS = 200_000_000  # decoded pixels a request may cost
ACTIVATION_BUDGET = 64_000_000  # floats one model run may hold: 256 MB
MAX_CHUNK_ROWS = 4096


def usable_cores() -> int:
    """The cores this process may run on (a container's or taskset's limit, not the
    machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def session_options(threads: int = 0) -> ort.SessionOptions:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or min(4, usable_cores())
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # ONNX Runtime's workers otherwise spin after each run, taking the core from the event
    # loop that parses the next requests (measured: 2.6–3.4× the throughput of a served MLP)
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


class Predictor:
    """One ONNX Runtime session for one model version, with its recipe."""

    def __init__(self, ws: Workspace, version: registry.Version, threads: int = 0) -> None:
        self.version = version
        self.manifest = version.manifest
        if self.manifest.recipe is None:
            raise InputError(f"{version.ref} takes tensors, not raw rows: it has no recipe")
        self.recipe: dict[str, Any] = self.manifest.recipe
        self.task = version.task
        self.labels: list[str] | None = self.manifest.labels
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
                     if p in ort.get_available_providers()]
        self.session = ort.InferenceSession(
            registry.read_file(ws, version, "model.onnx"), session_options(threads),
            providers=providers,
        )
        self.inputs = tensor_specs(self.manifest.raw)
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.heavy = self.recipe.get("modality", "tabular") != "tabular"
        # called with every feed before it runs (a server's drift monitor); must be cheap
        self.observer: Callable[[Mapping[str, np.ndarray]], None] | None = None
        for f in self.recipe["features"]:
            if f["kind"] == "text":
                text.pin_feature(f)
        # Bounds a request must keep to, from what one row costs once preprocessed (the
        # values sent to the model) and while it runs (the largest activations).
        values = sum(math.prod(s["shape"][1:]) for s in self.inputs)
        self.max_rows = max(1, min(MAX_ROWS, MAX_REQUEST_VALUES // max(1, values)))
        self.chunk_rows = max(1, min(MAX_CHUNK_ROWS, ACTIVATION_BUDGET // _activations(
            self.inputs)))

    def run(self, tensors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The model on tensors by name: its one output by name (the V2 route's call)."""
        return {self.outputs[0]: self.infer(tensors)}

    def infer(self, tensors: Mapping[str, np.ndarray]) -> np.ndarray:
        """The model on preprocessed tensors by name (see ``recipe.model_inputs``)."""
        feed = {}
        for spec in self.inputs:
            name, shape = spec["name"], spec["shape"]
            if name not in tensors:
                raise InputError(f"missing input tensor {name!r}")
            x = tensors[name]
            if x.ndim != len(shape) or list(x.shape[1:]) != shape[1:]:
                want = ", ".join(["batch", *map(str, shape[1:])])
                raise InputError(f"input {name!r} must have shape [{want}], got {list(x.shape)}")
            if spec["datatype"] == "INT64":
                if x.dtype.kind not in "iu":
                    raise InputError(f"input {name!r} holds token ids: send INT64 integers")
                x = checked_cast(x, np.int64, f"input {name!r}", "INT64")
                if x.size and (x.min() < 0 or x.max() >= spec["vocabulary_size"]):
                    raise InputError(f"input {name!r}: token ids must be from 0 to "
                                     f"{spec['vocabulary_size'] - 1}")
            else:
                x = checked_cast(x, np.float32, f"input {name!r}", "FP32")
                if not np.isfinite(x).all():
                    raise InputError(f"input {name!r}: values must be finite FP32 numbers")
            feed[name] = x
        extra = set(tensors) - set(feed)
        if extra:
            raise InputError(f"unknown input {sorted(extra)[0]!r}; this model takes "
                             + ", ".join(repr(n) for n in feed))
        if self.observer is not None:
            self.observer(feed)
        rows = next(iter(feed.values())).shape[0]
        if rows <= self.chunk_rows:
            return self.session.run(None, feed)[0]
        # A bounded batch at a time: activations of a big request never pile up at once.
        return np.concatenate([
            self.session.run(None, {n: x[i:i + self.chunk_rows] for n, x in feed.items()})[0]
            for i in range(0, rows, self.chunk_rows)])

    def predict_frame(self, frame: pd.DataFrame, allow_paths: bool = False) -> dict[str, Any]:
        """Raw rows through the recipe and the model. ``allow_paths``: image values may be
        local files (the CLI; never the server)."""
        if not allow_paths and len(frame) > self.max_rows:
            raise InputError(f"{len(frame):,} rows is over this model's limit of "
                             f"{self.max_rows:,} per request")
        budget = None if allow_paths else PixelBudget(MAX_REQUEST_PIXELS)
        # A big local input (the CLI) goes through in parts: memory stays bounded.
        parts = [self.infer(transform_inputs(self.recipe, frame.iloc[i:i + self.max_rows],
                                             allow_paths, budget))
                 for i in range(0, len(frame), self.max_rows)]
        out = np.concatenate(parts) if parts else np.zeros((0, 1))
        if self.task == "classification":
            assert self.labels is not None
            idx = out.argmax(axis=1) if len(out) else np.zeros(0, dtype=int)
            return {"predictions": [self.labels[i] for i in idx],
                    "probabilities": out.astype(float).round(6).tolist(),
                    "labels": list(self.labels)}
        return {"predictions": out.reshape(-1).astype(float).tolist()}

    def predict_records(self, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        if len(records) == 0:
            raise InputError("no rows were sent: send at least one")
        return self.predict_frame(frame_from_records(self.recipe, records))


def _activations(inputs: Sequence[Mapping[str, Any]]) -> int:
    """Rough count of the floats one row holds at once inside the network."""
    total = 0
    for spec in inputs:
        if spec["name"] == "image":
            total += 96 * spec["shape"][2] * spec["shape"][3]  # first conv block, 3 tensors
        elif spec["name"] == "tokens":
            total += 3 * text.EMBEDDING_DIM * spec["shape"][1]
        else:
            total += 4 * spec["shape"][1]
    return max(1, total)


def tensor_specs(manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The model's input tensors; versions made before text and images had one, ``input``."""
    onnx = manifest["onnx"]
    if "inputs" in onnx:
        return list(onnx["inputs"])
    return [{"name": onnx["input"], "datatype": "FP32", "shape": [-1, int(onnx["features"])]}]


def predictions_frame(frame: pd.DataFrame, result: dict[str, Any]) -> pd.DataFrame:
    """The input rows with a ``prediction`` column and one probability column per class."""
    out = frame.copy()
    out["prediction"] = result["predictions"]
    if "probabilities" in result:
        probs = np.asarray(result["probabilities"]).reshape(len(frame), -1)
        for j, label in enumerate(result["labels"]):
            out[f"probability_{label}"] = probs[:, j]
    return out
