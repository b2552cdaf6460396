"""Run a registered version with ONNX Runtime: tensors in, or raw rows through the recipe."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd

from studio.core import registry
from studio.core.datasets.recipe import frame_from_records, transform
from studio.core.errors import InputError
from studio.core.workspace import Workspace


def session_options(threads: int = 0) -> ort.SessionOptions:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return opts


class Predictor:
    """One ONNX Runtime session for one model version, with its recipe."""

    def __init__(self, ws: Workspace, version: registry.Version, threads: int = 0) -> None:
        self.version = version
        self.manifest = version.manifest
        self.recipe = self.manifest["recipe"]
        self.task = version.task
        self.labels: list[str] | None = self.manifest.get("labels")
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
                     if p in ort.get_available_providers()]
        self.session = ort.InferenceSession(
            registry.read_file(ws, version, "model.onnx"), session_options(threads),
            providers=providers,
        )
        self.input = self.session.get_inputs()[0]
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.n_features = int(self.manifest["onnx"]["features"])

    def infer(self, x: np.ndarray) -> np.ndarray:
        """The model on a float32 [batch, features] matrix of preprocessed features."""
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise InputError(f"input must have shape [batch, {self.n_features}], got "
                             f"{list(x.shape)}")
        return self.session.run(None, {self.input.name: x.astype(np.float32, copy=False)})[0]

    def predict_frame(self, frame: pd.DataFrame) -> dict[str, Any]:
        out = self.infer(transform(self.recipe, frame)) if len(frame) else np.zeros((0, 1))
        if self.task == "classification":
            assert self.labels is not None
            idx = out.argmax(axis=1) if len(out) else np.zeros(0, dtype=int)
            return {"predictions": [self.labels[i] for i in idx],
                    "probabilities": out.astype(float).round(6).tolist(),
                    "labels": list(self.labels)}
        return {"predictions": out.reshape(-1).astype(float).tolist()}

    def predict_records(self, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        if len(records) == 0:
            raise InputError("'instances' is empty: send at least one row")
        return self.predict_frame(frame_from_records(self.recipe, records))


def predictions_frame(frame: pd.DataFrame, result: dict[str, Any]) -> pd.DataFrame:
    """The input rows with a ``prediction`` column and one probability column per class."""
    out = frame.copy()
    out["prediction"] = result["predictions"]
    if "probabilities" in result:
        probs = np.asarray(result["probabilities"]).reshape(len(frame), -1)
        for j, label in enumerate(result["labels"]):
            out[f"probability_{label}"] = probs[:, j]
    return out
