"""The shared torch loop: a loss that turns NaN keeps the last good epoch, early stopping
restores the best one, and a deadline ends training after at least one epoch, judging
the weights of an epoch it cut short."""

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


class Clock(FitContext):
    """Out of time from the ``steps``-th question on: a deadline that falls mid-epoch."""

    def __init__(self, steps: int) -> None:
        super().__init__(lambda e: None, seed=0)
        self.steps, self.asked = steps, 0

    def out_of_time(self) -> bool:
        self.asked += 1
        return self.asked >= self.steps


def test_an_epoch_cut_short_by_the_deadline_is_judged_too() -> None:
    """The schedule follows the clock, so the steps before the deadline ran at its end
    (the learning rate down): their weights count as an epoch and may be the best."""
    data = table()
    x = torch.from_numpy(data.matrix())
    knobs = resolve_params(MLP, {"batch_size": 70, "epochs": 1000})
    # the first epoch never asks (it always runs whole); the second runs 2 of its 4 steps
    result = fit(Poisoned(good=10**9), data, lambda rows: [x[torch.from_numpy(rows)]], knobs,
                 Clock(steps=3), "test")
    assert result.stopped == "time" and result.epochs_run == 2
    assert [h["epoch"] for h in result.history] == [1, 2]


class Grouped(Poisoned):
    """A model that names its optimizer groups: the bias frozen by a zero learning-rate
    factor, and told the training progress before each step."""

    def __init__(self) -> None:
        super().__init__(good=10**9)
        self.progress: list[float] = []

    def param_groups(self) -> list[dict]:
        return [{"params": [self.linear.weight]},
                {"params": [self.linear.bias], "lr_factor": 0.0, "betas": (0.5, 0.5)}]

    def set_progress(self, t: float) -> None:
        self.progress.append(t)


def test_a_model_s_own_groups_and_progress_hook_are_honoured() -> None:
    data = table()
    model = Grouped()
    weight, bias = model.linear.weight.detach().clone(), model.linear.bias.detach().clone()
    result = run(model, data, [], epochs=3, schedule="constant")
    assert result.epochs_run == 3
    assert torch.equal(model.linear.bias, bias)  # lr factor 0: never moved
    assert not torch.equal(model.linear.weight, weight)
    assert len(model.progress) == 3 * 4 and model.progress == sorted(model.progress)
    assert 0.0 <= model.progress[0] < model.progress[-1] < 1.0


def fit_grouped(deadline: float, **params) -> Grouped:
    data = table()
    x = torch.from_numpy(data.matrix())
    torch.manual_seed(0)
    model = Grouped()
    knobs = resolve_params(MLP, {"batch_size": 70, "schedule": "onecycle", **params})
    fit(model, data, lambda rows: [x[torch.from_numpy(rows)]], knobs,
        FitContext(lambda e: None, deadline=deadline, seed=0), "test")
    return model


def test_a_budget_that_is_never_near_leaves_the_run_repeatable() -> None:
    """The clock shapes the schedule only when it would end training: the same seed under
    an hour's budget trains the same weights, however long each step took."""
    first = fit_grouped(time.monotonic() + 3600, epochs=4)
    second = fit_grouped(time.monotonic() + 3600, epochs=4)
    assert first.progress == second.progress
    assert torch.equal(first.linear.weight, second.linear.weight)


def test_a_budget_that_ends_training_drives_the_schedule_to_its_end() -> None:
    model = fit_grouped(time.monotonic() + 0.5, epochs=10_000, batch_size=1)
    assert model.progress == sorted(model.progress)
    assert model.progress[-1] > 0.8  # annealed by the deadline, not a ten-thousandth of the way


def test_a_loss_hook_replaces_the_training_loss_but_not_the_yardstick() -> None:
    """A hook that teaches the opposite labels is what the model learns, while validation
    and the kept epoch still judge it on the true labels."""
    data = table()
    x = torch.from_numpy(data.matrix())
    flipped = torch.from_numpy(1 - data.y)
    seen: list[np.ndarray] = []

    def opposite(out: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        assert rows.dtype == torch.int64 and len(rows) == len(out)
        seen.append(rows.numpy().copy())
        return torch.nn.functional.cross_entropy(out, flipped[rows])

    knobs = resolve_params(MLP, {"batch_size": 70, "epochs": 5, "schedule": "constant",
                                 "learning_rate": 0.1})
    torch.manual_seed(0)
    model = Poisoned(good=10**9)
    result = fit(model, data, lambda rows: [x[torch.from_numpy(rows)]], knobs,
                 FitContext(lambda e: None, seed=0), "test", loss=opposite)
    # every epoch the hook saw each training row once, by its index into the data
    assert np.array_equal(np.sort(np.concatenate(seen[:4])), data.train)
    assert len(seen) == 5 * 4
    with torch.no_grad():
        test = torch.from_numpy(data.test)
        accuracy = float((model.raw(x[test]).argmax(1) == torch.from_numpy(data.y)[test])
                         .float().mean())
    assert accuracy < 0.3  # it learnt the flipped labels
    assert all(h["val_score"] < 0.5 for h in result.history)  # scored on the true ones


START = torch.tensor([[-1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])  # separates table() perfectly


def test_keep_start_gives_back_weights_no_epoch_beats() -> None:
    data = table()
    x = torch.from_numpy(data.matrix())
    knobs = resolve_params(MLP, {"batch_size": 70, "epochs": 3, "learning_rate": 0.5,
                                 "schedule": "constant", "weight_decay": 0.0})

    def fitted(keep_start: bool) -> tuple[object, torch.nn.Module]:
        torch.manual_seed(0)
        model = Poisoned(good=10**9)
        with torch.no_grad():  # a perfect separator of the data to start from
            model.linear.weight.copy_(START)
            model.linear.bias.zero_()

        def shaken(out: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
            # the margin of the right class, minimized: every step makes the model worse
            return ((out[:, 1] - out[:, 0]) * torch.sign(x[rows, 0])).mean()

        result = fit(model, data, lambda rows: [x[torch.from_numpy(rows)]], knobs,
                     FitContext(lambda _e: None, seed=0), "test", loss=shaken,
                     keep_start=keep_start)
        return result, model

    result, model = fitted(keep_start=True)
    assert result.best_epoch == 0 and result.epochs_run == 3
    assert torch.equal(model.linear.weight, START)
    result, model = fitted(keep_start=False)  # without it, the best of the worse epochs
    assert result.best_epoch >= 1 and result.best_score < 1.0
    assert not torch.equal(model.linear.weight, START)
