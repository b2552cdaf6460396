"""Accuracy on small public tables: the product's one-click model against scikit-learn's
HistGradientBoosting, side by side, on the product's own seeded split.

    python tests/benchmarks/bench_tables.py                   # one-click, through the CLI
    python tests/benchmarks/bench_tables.py --family-only mlp # one family, trained directly

Datasets: iris, wine, breast_cancer, digits (64 pixel columns), penguins
(resources/samples/penguins.csv, target species) and diabetes (regression). Each is split
by ``studio.core.datasets.prepare`` with seeds 0..4 (70/15/15, stratified for classes).
HistGradientBoosting trains on the training split only, with its defaults and early
stopping off (the validation split is the product's, for choosing among its families), on
the same feature matrix the product's recipe makes (trees do not mind the scaling). The
figure is test accuracy, or R² for diabetes. Needs the ``bench`` extra (scikit-learn).

The CLI mode runs ``studio --home TMP data import FILE.csv`` once per dataset and
``studio --home TMP train NAME --target T --seed S --json`` per seed, reading "metrics".
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
SEEDS = (0, 1, 2, 3, 4)
SPLIT = (0.7, 0.15, 0.15)
MARGIN = 0.01  # "within 0.01 of HistGradientBoosting"


def datasets() -> dict[str, tuple[pd.DataFrame, str]]:
    from sklearn import datasets as skd

    out: dict[str, tuple[pd.DataFrame, str]] = {}
    for name in ("iris", "wine", "breast_cancer", "digits"):
        bunch = getattr(skd, f"load_{name}")(as_frame=True)
        frame = bunch.frame.copy()
        # class names, not codes: a table as a person would keep it
        frame["target"] = np.asarray(bunch.target_names)[bunch.target.to_numpy()].astype(str)
        out[name] = (frame, "target")
    out["penguins"] = (pd.read_csv(ROOT / "resources" / "samples" / "penguins.csv"), "species")
    out["diabetes"] = (skd.load_diabetes(as_frame=True).frame, "target")
    return out


def split(frame: pd.DataFrame, name: str, target: str, seed: int) -> object:
    from studio.core.datasets.prepare import prepare
    from studio.core.datasets.recipe import encode_target
    from studio.core.training.families.base import TrainData

    p = prepare(frame, name, target, "auto", SPLIT, seed)
    return TrainData(p.recipe, p.task, p.frame, encode_target(p.recipe, p.frame[target]),
                     p.parts)


def score(task: str, y: np.ndarray, predicted: np.ndarray) -> float:
    """Accuracy from class scores or codes, R² from values."""
    if task == "classification":
        codes = predicted.argmax(1) if predicted.ndim == 2 else predicted
        return float((codes == y).mean())
    spread = float(((y - y.mean()) ** 2).sum())
    return 1.0 - float(((y - predicted) ** 2).sum()) / spread if spread else 0.0


def hgb(data: object, seed: int) -> tuple[float, float]:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    x, y = data.matrix(), data.y  # type: ignore[attr-defined]
    tr, te = data.train, data.test  # type: ignore[attr-defined]
    kind = (HistGradientBoostingClassifier if data.task == "classification"  # type: ignore[attr-defined]
            else HistGradientBoostingRegressor)
    model = kind(early_stopping=False, random_state=seed)
    t0 = time.perf_counter()
    model.fit(x[tr], y[tr])
    fit_s = time.perf_counter() - t0
    return score(data.task, y[te], model.predict(x[te])), fit_s  # type: ignore[attr-defined]


def family_only(family_name: str, budget_s: float,
                threads: int) -> Callable[..., tuple[float, float, str]]:
    """Train one family directly on the split, as the pipeline would with ``budget_s``."""
    import torch

    from studio.core.training import families
    from studio.core.training.families.base import FitContext, resolve_params

    torch.set_num_threads(threads)
    family = families.get(family_name)

    def run(data: object, seed: int, **_: object) -> tuple[float, float, str]:
        ctx = FitContext(emit=lambda e: None, seed=seed, threads=threads,
                         deadline=time.monotonic() + budget_s)
        t0 = time.perf_counter()
        fitted = family.train(data, resolve_params(family, {}), ctx)  # type: ignore[arg-type]
        fit_s = time.perf_counter() - t0
        te = data.test  # type: ignore[attr-defined]
        return (score(data.task, data.y[te], fitted.predict(te)),  # type: ignore[attr-defined]
                fit_s, family_name)

    return run


def one_click(home: Path) -> Callable[..., tuple[float, float, str]]:
    """``studio train DATASET`` with no options, through the CLI; fit time is the command's
    wall time (a process start and the export included)."""
    imported: set[str] = set()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STUDIO_NO_NOTES": "1"}

    def studio(*args: str) -> dict:
        done = subprocess.run([sys.executable, "-m", "studio.cli", "--home", str(home),
                               *args], capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"studio {' '.join(args)}: {done.stderr.strip()}")
        return json.loads(done.stdout) if "--json" in args else {}

    def run(data: object, seed: int, name: str, frame: pd.DataFrame,
            target: str) -> tuple[float, float, str]:
        if name not in imported:
            path = home / f"{name}.csv"
            frame.to_csv(path, index=False)
            studio("data", "import", str(path))
            imported.add(name)
        t0 = time.perf_counter()
        out = studio("train", name, "--target", target, "--seed", str(seed), "--json")
        fit_s = time.perf_counter() - t0
        metrics = out["metrics"]
        key = "accuracy" if data.task == "classification" else "r2"  # type: ignore[attr-defined]
        return float(metrics[key]), fit_s, str(out.get("family", "?"))

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family-only", metavar="FAMILY",
                        help="train this family directly instead of the one-click model")
    parser.add_argument("--budget", type=float, default=30.0,
                        help="seconds per fit in --family-only mode (default 30)")
    parser.add_argument("--threads", type=int, default=2,
                        help="torch threads in --family-only mode (default 2, as one-click "
                        "training on two cores; 1 on a machine busy with other work)")
    parser.add_argument("--datasets", help="comma-separated subset")
    parser.add_argument("--seeds", type=int, default=len(SEEDS))
    args = parser.parse_args(argv)
    sets = datasets()
    if args.datasets:
        sets = {k: sets[k] for k in args.datasets.split(",")}
    seeds = SEEDS[:args.seeds]
    with tempfile.TemporaryDirectory(prefix="bench-tables-") as tmp:
        ours = (family_only(args.family_only, args.budget, args.threads) if args.family_only
                else one_click(Path(tmp)))
        label = (f"{args.family_only} alone ({args.budget:g} s budget, {args.threads} "
                 "threads)" if args.family_only else "one-click `studio train` (seconds: "
                 "the command's wall time)")
        print(f"ours = {label}; HGB = HistGradientBoosting (defaults, early stopping off, "
              f"train split); mean over seeds {list(seeds)}; accuracy, R² for diabetes")
        head = (f"{'dataset':<14}{'metric':>8}{'HGB':>8}{'ours':>8}{'diff':>8}"
                f"{'HGB s':>8}{'ours s':>8}  won by")
        print(head)
        print("-" * len(head))
        diffs, rows = [], []
        for name, (frame, target) in sets.items():
            h, o, hs, os_, won = [], [], [], [], []
            for seed in seeds:
                data = split(frame, name, target, seed)
                a, t = hgb(data, seed)
                h.append(a)
                hs.append(t)
                b, t, winner = ours(data, seed, name=name, frame=frame, target=target)
                o.append(b)
                os_.append(t)
                won.append(winner)
            metric = "acc" if data.task == "classification" else "R²"  # type: ignore[attr-defined]
            d = float(np.mean(o) - np.mean(h))
            diffs.append(d)
            rows.append((np.mean(h), np.mean(o)))
            mark = "  << more than 0.01 below HGB" if d < -MARGIN else ""
            wins = ", ".join(f"{w}×{won.count(w)}" for w in sorted(set(won)))
            print(f"{name:<14}{metric:>8}{np.mean(h):>8.4f}{np.mean(o):>8.4f}{d:>+8.4f}"
                  f"{np.mean(hs):>8.2f}{np.mean(os_):>8.2f}  {wins}{mark}", flush=True)
        hm, om = np.mean([r[0] for r in rows]), np.mean([r[1] for r in rows])
        print("-" * len(head))
        print(f"{'average':<14}{'':>8}{hm:>8.4f}{om:>8.4f}{om - hm:>+8.4f}")
        within = all(d >= -MARGIN for d in diffs)
        print(f"targets: within {MARGIN} of HGB on every dataset: {'yes' if within else 'no'}; "
              f"above it on average: {'yes' if om > hm else 'no'}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
