"""The test evaluation of a fitted candidate, through its exported ONNX graph."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

from studio.core.events import Emit
from studio.core.training.evaluate import evaluate_model, onnx_runner, predict_rows
from studio.core.training.families.base import TrainData

# Up to this many classes the manifest keeps a copy of the confusion matrix (the Models page
# shows it); beyond, it is in evaluation.json only.
MANIFEST_CONFUSION_CLASSES = 50


def evaluate_exported(onnx: bytes, data: TrainData, importance: bool = True,
                      emit: Emit | None = None, dataset: str = "",
                      row_ids: np.ndarray | None = None,
                      should_stop: Callable[[], bool] | None = None) -> dict[str, Any]:
    """``metrics`` (the manifest's test metrics), ``scores`` (the model's outputs on the
    test rows) and ``document`` (evaluation.json's bytes). ``row_ids``: the test rows'
    numbers in the dataset's stored frame (``Prepared.rows[data.test]``); without them the
    document numbers rows within the prepared frame. ``should_stop``: asked between the
    columns of the importance, which a Stop leaves partial."""
    rows = data.test
    ids = rows if row_ids is None else np.asarray(row_ids)
    run = onnx_runner(onnx)
    frame, y = data.frame.iloc[rows], data.y[rows]
    scores = predict_rows(run, data.recipe, frame, True, emit, ids)
    document = evaluate_model(  # the split never leaves the test rows empty
        run, data.recipe, frame, y, row_ids=ids, dataset=dataset, split="test",
        labels=data.recipe.get("labels"), task=data.task, allow_paths=True,
        importance=importance, emit=emit, scores=scores, should_stop=should_stop)
    # the manifest's test metrics: the document's headline numbers (and the confusion
    # matrix older readers take from there)
    metrics = dict(document["metrics"])
    if data.task == "classification":
        scores = scores.reshape(len(rows), -1)
        if data.n_classes <= MANIFEST_CONFUSION_CLASSES:  # it grows with the square
            metrics["confusion"] = document["confusion"]
    else:
        scores = scores.reshape(-1)
    return {"metrics": metrics, "scores": scores,
            "document": json.dumps(document, allow_nan=False).encode()}
