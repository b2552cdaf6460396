"""The shared torch loop: a loss that turns NaN keeps the last good epoch, early stopping
restores the best one, and a deadline ends training after at least one epoch."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
import torch

from studio.core.errors import InputError
from studio.core.events import Event, Log
from studio.core.training.families.base import FitContext, TrainData, resolve_params
from studio.core.training.families.mlp import FAMILY as MLP
from studio.core.training.loop import fit


def table(n: int = 400) -> TrainData:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    recipe = {"task": "classification", "labels": ["no", "yes"], "modality": "tabular",
              "features": [{"name": f"x{i}", "kind": "numeric", "mean": 0.0, "scale": 1.0,
                            "fill": 0.0} for i in range(3)], "dropped": []}
    frame = pd.DataFrame(x, columns=["x0", "x1", "x2"])
    idx = np.arange(n)
    return TrainData(recipe, "classification", frame, y, (idx[:280], idx[280:340], idx[340:]))


class Poisoned(torch.nn.Module):
    """Logistic regression whose output turns NaN after ``good`` optimizer steps."""

    def __init__(self, good: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(3, 2)
        self.good, self.calls = good, 0

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.calls += 1
        out = self.linear(x)
        return out * float("nan") if self.calls > self.good else out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.raw(x), dim=1)


def run(model: torch.nn.Module, data: TrainData, events: list[Event], **params) -> object:
    x = torch.from_numpy(data.matrix())
    knobs = resolve_params(MLP, {"batch_size": 70, **params})
    return fit(model, data, lambda rows: [x[torch.from_numpy(rows)]], knobs,
               FitContext(events.append, seed=0), "test")


def test_a_nan_loss_stops_and_keeps_the_last_good_epoch() -> None:
    data, events = table(), []
    model = Poisoned(good=4 * 3)  # 4 batches an epoch: three good epochs
    result = run(model, data, events, epochs=20)
    assert result.stopped == "diverged"
    assert result.epochs_run == 3 and 1 <= result.best_epoch <= 3
    assert any(isinstance(e, Log) and "NaN" in e.message for e in events)
    model.calls = 0  # the kept weights are finite and predict
    assert torch.isfinite(model.linear.weight).all()


def test_a_nan_in_the_first_epoch_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="diverged"):
        run(Poisoned(good=1), table(), [], epochs=5)


def test_early_stopping_restores_the_best_epoch() -> None:
    data = table()
    torch.manual_seed(0)
    model = Poisoned(good=10**9)
    result = run(model, data, [], epochs=200, patience=3, learning_rate=0.05)
    assert result.stopped == "early stopping"
    assert result.epochs_run == result.best_epoch + 3
    best = max(h["val_score"] for h in result.history)
    assert result.best_score == best


def test_the_deadline_ends_training_after_one_epoch_at_least() -> None:
    data, events = table(), []
    x = torch.from_numpy(data.matrix())
    knobs = resolve_params(MLP, {"batch_size": 1, "epochs": 1000})
    model = Poisoned(good=10**9)
    started = time.monotonic()
    result = fit(model, data, lambda rows: [x[torch.from_numpy(rows)]], knobs,
                 FitContext(events.append, deadline=time.monotonic() - 1, seed=0), "test")
    assert result.epochs_run == 1 and result.stopped == "time"
    assert time.monotonic() - started < 30
