"""The seam every model family fits behind.

A family says which tasks and inputs it fits (and why not, for the others), which parameters
it takes (with defaults, bounds and a sentence for a tooltip), and trains on a
:class:`TrainData` into a :class:`Fitted` model. A fitted model predicts on row indices (for
validation and the leaderboard) and exports itself to the one contract serving knows: an ONNX
graph that takes the recipe's tensors (``recipe.model_inputs``) and returns class
probabilities ``[batch, classes]`` or a value ``[batch, 1]``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from studio.core.checkpoints import Plan
from studio.core.errors import InputError
from studio.core.events import Emit
from studio.core.training.params import Param


@dataclass
class TrainData:
    """What every family trains on: the fitted recipe, the rows and the split.

    ``y`` holds every row's target (class codes as int64, or float32 values); ``parts`` are
    the row indices of the train, validation and test splits. Tensors are built lazily and
    kept: a family that uses only the table matrix never decodes a picture.
    """

    recipe: dict[str, Any]
    task: str  # "classification" or "regression"
    frame: pd.DataFrame
    y: np.ndarray
    parts: tuple[np.ndarray, np.ndarray, np.ndarray]
    scratch: Path | None = None
    rows: np.ndarray | None = None  # each row's number in the dataset's stored frame
    _matrix: np.ndarray | None = field(default=None, repr=False)

    @property
    def train(self) -> np.ndarray:
        return self.parts[0]

    @property
    def validation(self) -> np.ndarray:
        return self.parts[1]

    @property
    def test(self) -> np.ndarray:
        return self.parts[2]

    @property
    def n_classes(self) -> int:
        return len(self.recipe.get("labels") or []) if self.task == "classification" else 0

    @property
    def modality(self) -> str:
        return str(self.recipe.get("modality", "tabular"))

    @property
    def inputs(self) -> list[dict[str, Any]]:
        from studio.core.datasets.recipe import model_inputs

        return model_inputs(self.recipe)

    def matrix(self) -> np.ndarray:
        """The float32 ``input`` tensor (the table columns) for every row, built once."""
        if self._matrix is None:
            from studio.core.datasets.recipe import transform

            self._matrix = transform(self.recipe, self.frame)
        return self._matrix


@dataclass
class FitContext:
    """How a family reports and when it must end. ``deadline`` is a ``time.monotonic()``
    instant (None: no limit): a family that reaches it stops and keeps its best so far, as a
    Stop from the user does."""

    emit: Emit
    should_stop: Callable[[], bool] = lambda: False
    deadline: float | None = None
    device: str = "cpu"
    threads: int = 1
    seed: int = 0
    checkpoint: Plan | None = None  # where the torch loop keeps per-epoch checkpoints

    def out_of_time(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def left_s(self) -> float:
        return math.inf if self.deadline is None else max(0.0, self.deadline - time.monotonic())


@dataclass
class Exported:
    """A fitted model as the files of a version."""

    onnx: bytes
    output: str  # "probabilities" or "prediction"
    files: dict[str, bytes]  # beside model.onnx: weights.safetensors, a booster's text, ...


class Fitted(Protocol):
    family: str
    # for the manifest and the leaderboard: epochs_run/best_epoch or rounds/best_round,
    # stopped ("user", "time", "early stopping", "diverged" or None), the params used
    details: dict[str, Any]

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """Scores for the given row indices of the TrainData: probabilities
        ``[n, classes]`` or values ``[n]`` (in the target's own units)."""
        ...

    def export(self) -> Exported:
        ...


class Family(Protocol):
    name: str  # as typed after --family: "mlp", "boosted-trees", "linear", "embedding", "cnn"
    title: str  # as shown in the GUI
    description: str  # one sentence for a tooltip
    params: Sequence[Param]

    def unfit_reason(self, task: str, modality: str) -> str | None:
        """None when the family fits this task and kind of input; else why not, a sentence
        a tooltip can show."""
        ...

    def train(self, data: TrainData, params: Mapping[str, Any], ctx: FitContext) -> Fitted:
        ...


def resolve_params(family: Family, given: Mapping[str, Any]) -> dict[str, Any]:
    """The family's defaults overlaid with ``given`` (checked); a key the family does not
    have is an error that lists the ones it has."""
    known = {p.name: p for p in family.params}
    out = {p.name: p.default for p in family.params}
    for key, value in given.items():
        if key not in known:
            raise InputError(f"family {family.name} has no parameter {key!r}; it has: "
                             + ", ".join(sorted(known)))
        out[key] = known[key].check(value)
    return out
