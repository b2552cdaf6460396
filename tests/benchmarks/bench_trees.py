"""The boosted-trees family beside scikit-learn's HistGradientBoosting models, same splits.

    pip install -e ".[bench]"   # scikit-learn: a benchmark dependency only
    python tests/benchmarks/bench_trees.py [--seeds 5] [--datasets iris,wine,digits,diabetes]

Each dataset (bundled with scikit-learn, nothing is downloaded) goes through the studio's own
``prepare`` (stratified 70/15/15 split, recipe fitted on the training rows), then:

- boosted-trees with its default parameters, early stopping on the validation rows;
- HGB (defaults) trained on the training rows only: the like-for-like comparison;
- HGB (defaults) trained on training + validation rows (it does not early-stop on sets this
  small, so the validation rows are more data for it, a head start the family does not get).

Prints, averaged over the seeds: test accuracy and log loss (classes) or R² and RMSE
(diabetes, a regression), fit seconds (one thread each) and boosting rounds kept.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd


def load(name: str) -> pd.DataFrame:
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")()
    frame = pd.DataFrame(bunch.data, columns=[str(c) for c in bunch.feature_names])
    if hasattr(bunch, "target_names"):
        frame["target"] = [str(bunch.target_names[t]) for t in bunch.target]
    return frame


def load_target(name: str) -> np.ndarray:
    from sklearn import datasets

    return getattr(datasets, f"load_{name}")().target


REGRESSION = {"diabetes"}


def scores(out: np.ndarray, y: np.ndarray, task: str) -> tuple[float, float]:
    """Accuracy and log loss, or R² and RMSE."""
    if task == "classification":
        picked = np.clip(out[np.arange(len(y)), y], 1e-15, 1.0)
        return float((out.argmax(1) == y).mean()), float(-np.mean(np.log(picked)))
    residual = float(((out - y) ** 2).sum())
    return 1 - residual / float(((y - y.mean()) ** 2).sum()), (residual / len(y)) ** 0.5


def run(name: str, seed: int, overrides: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    from studio.core.datasets.prepare import prepare
    from studio.core.datasets.recipe import encode_target
    from studio.core.training.families.base import FitContext, TrainData, resolve_params
    from studio.core.training.families.boosted_trees import FAMILY

    frame = load(name)
    task = "regression" if name in REGRESSION else "classification"
    if task == "regression":
        frame["target"] = load_target(name)
    p = prepare(frame, name, "target", task, (0.7, 0.15, 0.15), seed)
    data = TrainData(p.recipe, p.task, p.frame, encode_target(p.recipe, p.frame["target"]),
                     p.parts)
    x, y = data.matrix(), data.y
    out: dict[str, dict[str, float]] = {}
    start = time.perf_counter()
    fitted = FAMILY.train(data, resolve_params(FAMILY, overrides),
                          FitContext(emit=lambda e: None, seed=seed, threads=1))
    fit_s = time.perf_counter() - start
    first, second = scores(fitted.predict(data.test), y[data.test], task)
    out["boosted-trees"] = {"score": first, "loss": second, "fit_s": fit_s,
                            "rounds": fitted.details["best_round"]}
    for label, rows in (("HGB train", data.train),
                        ("HGB train+val", np.concatenate([data.train, data.validation]))):
        with threadpool_limits(1):
            start = time.perf_counter()
            hgb = (HistGradientBoostingClassifier if task == "classification"
                   else HistGradientBoostingRegressor)
            model = hgb(random_state=seed).fit(x[rows], y[rows])
            fit_s = time.perf_counter() - start
            pred = (model.predict_proba(x[data.test]) if task == "classification"
                    else model.predict(x[data.test]))
        first, second = scores(pred, y[data.test], task)
        out[label] = {"score": first, "loss": second, "fit_s": fit_s, "rounds": model.n_iter_}
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--datasets", default="iris,breast_cancer,wine,digits,diabetes")
    parser.add_argument("--params", default="{}", help="boosted-trees parameters as JSON")
    args = parser.parse_args()
    overrides = json.loads(args.params)
    print(f"{'dataset':<14} {'model':<15} {'accuracy/R²':>11} {'logloss/RMSE':>12} "
          f"{'fit s':>7} {'rounds':>7}")
    for name in args.datasets.split(","):
        runs = [run(name, seed, overrides) for seed in range(args.seeds)]
        for model in runs[0]:
            mean = {k: statistics.fmean(r[model][k] for r in runs) for k in runs[0][model]}
            print(f"{name:<14} {model:<15} {mean['score']:>11.4f} {mean['loss']:>12.4f} "
                  f"{mean['fit_s']:>7.3f} {mean['rounds']:>7.0f}", flush=True)


if __name__ == "__main__":
    main()
