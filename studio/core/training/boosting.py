"""Training a LightGBM booster on the table columns.

One callback does what the torch loop does per epoch: metric and progress events (throttled,
as boosting rounds are cheap), early stopping on the validation loss, a Stop from the user
and the time budget. Whichever ends training, the booster keeps the trees up to the round
with the lowest validation loss.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from typing import Any

# OpenMP threads that spin while they wait make LightGBM 10-50x slower as soon as another
# process wants the same cores (measured on 2 busy cores). libgomp reads this once, when it
# loads: a job that loaded torch before LightGBM should set it in its environment too.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import lightgbm as lgb
import numpy as np

from studio.core.events import Log, Metric, Progress
from studio.core.training.families.base import Exported, FitContext, TrainData

EVENT_EVERY_ROUNDS = 10
EVENT_INTERVAL_S = 0.1
# A leaf needs at least this share of the training rows when the asked minimum would leave
# too few rows to split on (20 rows a leaf from 100 rows allows at most 5 leaves).
SMALL_DATA_LEAF_SHARE = 0.1
# LightGBM's threads pay off on larger data only: on 5,000 rows two threads took 1.7x as
# long as one (measured on 2 busy cores; not yet measured on an idle many-core machine).
ROWS_PER_THREAD = 10_000


def thread_count(asked: int, n_train: int) -> int:
    return max(1, min(int(asked), n_train // ROWS_PER_THREAD))


def leaf_rows(asked: int, n_train: int) -> int:
    """The fewest training rows in a leaf: ``asked``, lowered on a small training split."""
    return max(1, min(asked, math.ceil(n_train * SMALL_DATA_LEAF_SHARE)))


def booster_params(data: TrainData, params: Mapping[str, Any], ctx: FitContext,
                   min_leaf: int, threads: int) -> dict[str, Any]:
    """LightGBM's parameters for this task and these knobs."""
    if data.task == "regression":
        task = {"objective": "regression", "metric": ["l2"]}
    elif data.n_classes == 2:
        task = {"objective": "binary", "metric": ["binary_logloss", "binary_error"]}
    else:
        task = {"objective": "multiclass", "num_class": data.n_classes,
                "metric": ["multi_logloss", "multi_error"]}
    subsample = float(params["subsample"])
    return {
        **task,
        "learning_rate": float(params["learning_rate"]),
        "num_leaves": int(params["leaves"]),
        "min_data_in_leaf": min_leaf,
        "feature_fraction": float(params["feature_fraction"]),
        "bagging_fraction": subsample,
        "bagging_freq": 1 if subsample < 1.0 else 0,
        "lambda_l2": float(params["lambda_l2"]),
        "num_threads": threads,
        "seed": int(ctx.seed),
        "deterministic": True,
        "force_row_wise": True,  # no timing test picking the layout: same trees every run
        "verbosity": -1,  # LightGBM prints on stdout, which carries a job's events
    }


class _Watch:
    """The per-round callback: events, early stopping, Stop and the deadline."""

    order = 30
    before_iteration = False

    def __init__(self, family: str, task: str, rounds: int, patience: int, ctx: FitContext,
                 y_val: np.ndarray) -> None:
        self.family, self.task, self.rounds, self.patience, self.ctx = (
            family, task, rounds, patience, ctx)
        self.val_spread = float(np.var(y_val)) if task == "regression" else 0.0
        self.best_round, self.best_loss = 0, math.inf
        self.best_results: list[Any] = []
        self.rounds_run = 0
        self.stopped: str | None = None
        self.last_round, self.last_time = 0, 0.0

    def __call__(self, env: Any) -> None:
        r = env.iteration + 1
        self.rounds_run = r
        results = env.evaluation_result_list
        train = [v for name, _, v, _ in results if name == "training"]
        val = [v for name, _, v, _ in results if name == "validation"]
        if val[0] < self.best_loss:
            self.best_round, self.best_loss, self.best_results = r, val[0], list(results)
        now = time.monotonic()
        if (r == 1 or r == self.rounds or r - self.last_round >= EVENT_EVERY_ROUNDS
                or now - self.last_time >= EVENT_INTERVAL_S):
            self._events(r, train[0], val)
            self.last_round, self.last_time = r, now
        if self.ctx.should_stop():
            self.stopped = "user"
        elif self.ctx.out_of_time():
            self.stopped = "time"
        elif self.patience and r - self.best_round >= self.patience:
            self.stopped = "early stopping"
        if self.stopped:
            if r != self.last_round:
                self._events(r, train[0], val)
            raise lgb.callback.EarlyStopException(self.best_round - 1, self.best_results)

    def _events(self, r: int, train_loss: float, val: list[float]) -> None:
        if self.task == "classification":
            score = ("val_accuracy", 1.0 - val[1])
        else:
            r2 = 1.0 - val[0] / self.val_spread if self.val_spread else 0.0
            score = ("val_r2", r2)
        for name, value in (("train_loss", train_loss), ("val_loss", val[0]), score):
            if math.isfinite(value):  # events are strict JSON
                self.ctx.emit(Metric(name, float(value), r, r))
        self.ctx.emit(Progress("train", r, self.rounds, f"{self.family}: round {r}/{self.rounds}"))


def train_booster(family: str, data: TrainData, params: Mapping[str, Any],
                  ctx: FitContext) -> BoosterFitted:
    x = data.matrix()
    tr, va = data.train, data.validation
    y_tr, y_va = data.y[tr], data.y[va]
    weight = None
    if data.task == "classification" and params["class_weights"]:
        counts = np.bincount(y_tr, minlength=data.n_classes).astype(np.float64)
        per_class = np.where(counts > 0, len(y_tr) / np.maximum(counts, 1) / data.n_classes,
                             0.0)
        weight = per_class[y_tr]
    min_leaf = leaf_rows(int(params["min_child_samples"]), len(tr))
    if min_leaf < int(params["min_child_samples"]):
        ctx.emit(Log(f"{family}: {len(tr)} training rows; a leaf needs at least {min_leaf} "
                     f"of them instead of {params['min_child_samples']}"))
    lgb_params = booster_params(data, params, ctx, min_leaf,
                                thread_count(ctx.threads, len(tr)))
    rounds, patience = int(params["rounds"]), int(params["patience"])
    watch = _Watch(family, data.task, rounds, patience, ctx, y_va)
    train_set = lgb.Dataset(x[tr], label=y_tr, weight=weight, params=lgb_params,
                            free_raw_data=True)
    val_set = lgb.Dataset(x[va], label=y_va, reference=train_set)
    booster = lgb.train(lgb_params, train_set, num_boost_round=rounds,
                        valid_sets=[train_set, val_set], valid_names=["training", "validation"],
                        callbacks=[watch], keep_training_booster=True)
    best = watch.best_round or watch.rounds_run
    # Only the kept trees travel on: predictions, the ONNX graph and booster.txt agree.
    booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    why = {"early stopping": f"no lower validation loss for {patience} rounds",
           "user": "stopped by the user", "time": "the time budget ran out"}
    if watch.stopped:
        ctx.emit(Log(f"{family}: {why[watch.stopped]}; stopped at round {watch.rounds_run} "
                     f"of {rounds}, keeping round {best}"))
    else:
        ctx.emit(Log(f"{family}: ran all {rounds} rounds; keeping round {best}"))
    details = {"rounds_run": watch.rounds_run, "best_round": best, "stopped": watch.stopped,
               "min_child_samples_used": min_leaf, "params": dict(params)}
    return BoosterFitted(family, booster, data, details, lgb_params["num_threads"])


class BoosterFitted:
    """A trained booster as a fitted model: LightGBM predicts, onnxmltools exports."""

    def __init__(self, family: str, booster: lgb.Booster, data: TrainData,
                 details: dict[str, Any], threads: int = 1) -> None:
        self.family, self.booster, self.details = family, booster, details
        self._data, self._threads = data, threads

    def predict(self, rows: np.ndarray) -> np.ndarray:
        out = self.booster.predict(self._data.matrix()[rows], num_threads=self._threads)
        if self._data.task == "classification" and self._data.n_classes == 2:
            return np.stack([1.0 - out, out], axis=1)
        return out

    def export(self) -> Exported:
        from studio.core.training.tree_export import booster_onnx

        onnx, output = booster_onnx(self.booster, self._data.inputs, self._data.task,
                                    self._data.n_classes)
        return Exported(onnx, output,
                        {"booster.txt": self.booster.model_to_string().encode("utf-8")})
