"""One-click training time against HistGradientBoosting on a 50,000-row, 20-column table.

    python tests/benchmarks/bench_oneclick.py [--rows 50000] [--task classification|regression]

The target (issue 10): `studio train DATASET` with no options takes at most 1.5× the time
scikit-learn's HistGradientBoosting takes on the same training split, plus 60 s, on this
machine. Both run in this one process tree, one after the other, and the ratio is printed
beside the accuracy (R²) each reaches on the same test split. scikit-learn is a benchmark
dependency only (`pip install -e ".[bench]"`).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from cli_runner import studio_json


def make_table(rows: int, task: str, seed: int = 0) -> pd.DataFrame:
    """16 numeric columns (some noise, some skewed, some missing) and 4 categorical ones."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 16))
    x[:, 12:] = np.exp(x[:, 12:])  # skewed
    x[rng.random((rows, 16)) < 0.03] = np.nan
    frame = pd.DataFrame(x, columns=[f"num_{i}" for i in range(16)])
    for j, levels in enumerate((3, 5, 12, 40)):
        frame[f"cat_{j}"] = rng.choice([f"c{k}" for k in range(levels)], size=rows)
    xf = np.nan_to_num(x)
    signal = (xf[:, 0] * 1.5 - xf[:, 1] + np.sin(2 * xf[:, 2]) + 0.5 * xf[:, 3] * xf[:, 4]
              + np.log1p(xf[:, 12]) + (frame["cat_1"].isin(["c1", "c3"])) * 1.0
              + (frame["cat_3"].str[1:].astype(int) % 7 == 0) * 0.8)
    noisy = signal + rng.normal(scale=0.5, size=rows)
    frame["target"] = (np.digitize(noisy, np.quantile(noisy, [1 / 3, 2 / 3])).astype(str)
                       if task == "classification" else noisy)
    return frame


def hgb(frame: pd.DataFrame, task: str, parts: tuple[np.ndarray, ...]) -> tuple[float, float]:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    x = frame.drop(columns=["target"]).copy()
    for c in x.columns:
        if not pd.api.types.is_numeric_dtype(x[c]):
            x[c] = x[c].astype("category")
    y = frame["target"]
    tr, va, te = parts
    model = (HistGradientBoostingClassifier if task == "classification"
             else HistGradientBoostingRegressor)(categorical_features="from_dtype",
                                                 random_state=0)
    start = time.perf_counter()
    model.fit(x.iloc[np.concatenate([tr, va])], y.iloc[np.concatenate([tr, va])])
    seconds = time.perf_counter() - start
    return seconds, float(model.score(x.iloc[te], y.iloc[te]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--task", choices=["classification", "regression"],
                        default="classification")
    args = parser.parse_args()
    from studio.core.datasets.prepare import prepare

    frame = make_table(args.rows, args.task)
    parts = prepare(frame, "bench", "target", args.task).parts
    hgb_s, hgb_score = hgb(frame, args.task, parts)
    with tempfile.TemporaryDirectory() as home:
        csv = Path(home) / "oneclick.csv"
        frame.to_csv(csv, index=False)
        studio_json(home, "data", "import", str(csv))
        start = time.perf_counter()
        doc = studio_json(home, "train", "oneclick", "--target", "target", "--task", args.task)
        ours_s = time.perf_counter() - start
    metric = "accuracy" if args.task == "classification" else "r2"
    limit = 1.5 * hgb_s + 60
    print(f"{args.rows:,} rows × 20 columns, {args.task}, {os.cpu_count()} cores")
    print(f"  {'':28} {'seconds':>8} {metric:>9}")
    print(f"  {'HistGradientBoosting':28} {hgb_s:8.1f} {hgb_score:9.4f}")
    print(f"  {'studio train (one click)':28} {ours_s:8.1f} {doc['metrics'][metric]:9.4f}"
          f"   winner: {doc['family']}")
    for r in sorted(doc["leaderboard"], key=lambda r: -r["validation"]):
        print(f"    {r['family']:<16} validation {r['validation']:.4f}  test {r['test']:.4f}"
              f"  fit {r['fit_s']:.1f} s")
    print(f"  time ratio ours/HGB: {ours_s / hgb_s:.1f}×; limit 1.5×HGB + 60 s = {limit:.1f} s: "
          f"{'within' if ours_s <= limit else 'OVER'}")


if __name__ == "__main__":
    main()
