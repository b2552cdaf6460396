"""The test evaluation of a fitted candidate, through its exported ONNX graph."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from studio.core.datasets.recipe import transform_inputs
from studio.core.events import Emit
from studio.core.training.families.base import TrainData
from studio.core.training.metrics import classification_metrics, regression_metrics

CHUNK = 4096


def evaluate_exported(onnx: bytes, data: TrainData, importance: bool = True,
                      emit: Emit | None = None) -> dict[str, Any]:
    """``metrics`` (the manifest's test metrics), ``scores`` (the model's outputs on the
    test rows) and ``document`` (evaluation.json's bytes)."""
    import onnxruntime as ort

    from studio.core.predict import session_options

    session = ort.InferenceSession(onnx, session_options(), providers=["CPUExecutionProvider"])
    rows = data.test
    parts = []
    for i in range(0, len(rows), CHUNK):
        tensors = transform_inputs(data.recipe, data.frame.iloc[rows[i:i + CHUNK]],
                                   allow_paths=True)
        parts.append(session.run(None, tensors)[0])
    scores = np.concatenate(parts) if parts else np.zeros((0, max(1, data.n_classes)))
    y = data.y[rows]
    if data.task == "classification":
        metrics = classification_metrics(y, scores.argmax(1), data.n_classes)
    else:
        scores = scores.reshape(-1)
        metrics = regression_metrics(y, scores)
    document = {"task": data.task, "split": "test", "n": len(rows), "metrics": metrics}
    return {"metrics": metrics, "scores": scores,
            "document": json.dumps(document, allow_nan=False).encode()}
