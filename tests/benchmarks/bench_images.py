"""The cnn family against a linear model on raw pixels, on scikit-learn's digits.

    python tests/benchmarks/bench_images.py [--seeds 0,1,2,3,4] [--size 32] [--threads 2]
                                            [--params '{"augment_flip": true}']
    python tests/benchmarks/bench_images.py --cli [--cli-args='--epochs 5']  # one-click

The 1,797 8×8 digits are written out as a folder of 32×32 RGB PNGs, one sub-folder per class,
and imported into a temporary workspace as `studio data import FOLDER` does. The product's own
seeded stratified split decides the rows; the baseline is scikit-learn's LogisticRegression on
the raw 8×8 pixels of the same training rows (standardized), scored on the same test rows.
Needs the `bench` extra (scikit-learn).

The test split holds 269 pictures (one is 0.37 points) and the logistic baseline ranges from
94.8% to 98.9% over the first ten seeds: judge the mean over several seeds, not one.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from cli_runner import studio_json

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

PNG_SIZE = 32


def write_digits(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """The digits as ``folder/<digit>/<index>.png``; returns the raw pixels and labels."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    for i, (pixels, label) in enumerate(zip(digits.images, digits.target, strict=True)):
        grey = Image.fromarray(np.round(pixels * 255 / 16).astype(np.uint8), "L")
        img = grey.resize((PNG_SIZE, PNG_SIZE), Image.Resampling.BILINEAR).convert("RGB")
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        img.save(folder / str(label) / f"{i:04d}.png")
    return digits.data.astype(np.float64), digits.target


def original_index(paths: list[str]) -> np.ndarray:
    """Each imported picture's row in scikit-learn's array, from its file name."""
    return np.array([int(re.search(r"(\d+)\.png$", p).group(1)) for p in paths])


def baseline(x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray
             ) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    started = time.perf_counter()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    model.fit(x[train], y[train])
    seconds = time.perf_counter() - started
    return float((model.predict(x[test]) == y[test]).mean()), seconds


def direct(folder: Path, home: Path, x: np.ndarray, y: np.ndarray, seed: int,
           size: int | None, params: dict, threads: int) -> dict:
    """Import as the CLI's job does, split as training does, train the cnn family alone."""
    import torch

    from studio.core.datasets import catalog
    from studio.core.datasets.prepare import prepare
    from studio.core.datasets.recipe import encode_target
    from studio.core.events import Log
    from studio.core.training.families import get
    from studio.core.training.families.base import FitContext, TrainData, resolve_params
    from studio.core.training.spec import TrainSpec
    from studio.core.workspace import Workspace

    torch.set_num_threads(threads)
    ws = Workspace.open(home)
    info = catalog.import_dataset(ws, folder)
    stored = catalog.load_frame(ws, info)
    spec = TrainSpec(dataset=info.name, target="label", seed=seed)
    options = {"columns": {"image": {"size": size}}} if size else {}
    p = prepare(stored, info.name, "label", "auto", spec.split, seed, options,
                blob_path=ws.blobs.path)
    assert len(p.frame) == len(stored), "every picture has a label"
    rows = original_index(stored["path"].tolist())
    tr, _va, te = p.parts
    base_acc, base_s = baseline(x, y, rows[tr], rows[te])
    labels = p.recipe["labels"]
    data = TrainData(p.recipe, p.task, p.frame, encode_target(p.recipe, p.frame["label"]),
                     p.parts, scratch=ws.blobs.tmp)

    def emit(event: object) -> None:
        if isinstance(event, Log):
            print(f"  {event.message}", file=sys.stderr)

    family = get("cnn")
    ctx = FitContext(emit=emit, seed=seed, threads=threads)
    started = time.perf_counter()
    fitted = family.train(data, resolve_params(family, params), ctx)
    fit_s = time.perf_counter() - started
    predicted = np.asarray(labels)[fitted.predict(te).argmax(1)]
    truth = np.asarray([str(v) for v in p.frame["label"].iloc[te]])
    ws.db.close()
    return {"seed": seed, "size": p.recipe["features"][0]["size"], "test_rows": len(te),
            "baseline": base_acc, "baseline_s": base_s,
            "cnn": float((predicted.astype(str) == truth).mean()), "cnn_s": fit_s,
            "epochs": fitted.details.get("epochs_run"),
            "best_epoch": fitted.details.get("best_epoch")}


def through_cli(folder: Path, home: Path, x: np.ndarray, y: np.ndarray, seed: int,
                extra: list[str]) -> dict:
    """`studio data import` then one-click `studio train`, as a person would run them."""
    from studio.core.datasets import catalog
    from studio.core.datasets.prepare import prepare
    from studio.core.workspace import Workspace

    def studio(*args: str) -> dict:
        return studio_json(home, *args)

    name = studio("data", "import", str(folder))["dataset"]
    started = time.perf_counter()
    result = studio("train", name, "--seed", str(seed), *extra)
    fit_s = time.perf_counter() - started
    ws = Workspace.open(home)
    stored = catalog.load_frame(ws, catalog.get_dataset(ws, name))
    p = prepare(stored, name, "label", "auto", [0.7, 0.15, 0.15], seed, {},
                blob_path=ws.blobs.path)  # the same seeded split the training cut
    ws.db.close()
    rows = original_index(stored["path"].tolist())
    base_acc, base_s = baseline(x, y, rows[p.parts[0]], rows[p.parts[2]])
    return {"seed": seed, "test_rows": len(p.parts[2]), "baseline": base_acc,
            "baseline_s": base_s, "cnn": float(result["metrics"]["accuracy"]),
            "cnn_s": fit_s, "version": result["version"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3,4",
                        help="comma-separated split and training seeds")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the family "
                        "alone; `studio train` uses every core)")
    parser.add_argument("--size", type=int, help="the recipe's picture size (default: the "
                        "product's choice)")
    parser.add_argument("--params", default="{}", help="cnn family parameters as JSON")
    parser.add_argument("--cli", action="store_true", help="train through `studio train` "
                        "(every fitting family, the best on validation) instead")
    parser.add_argument("--cli-args", default="", help="more arguments for `studio train`, "
                        "as one string (--cli-args='--epochs 1')")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-images-") as tmp:
        folder = Path(tmp) / "digits"
        x, y = write_digits(folder)
        for n, seed in enumerate(int(s) for s in args.seeds.split(",")):
            home = Path(tmp) / f"home-{n}"
            if args.cli:
                r = through_cli(folder, home, x, y, seed, shlex.split(args.cli_args))
            else:
                r = direct(folder, home, x, y, seed, args.size, json.loads(args.params),
                           args.threads)
            results.append(r)
            print(json.dumps(r), file=sys.stderr)
    what = "studio train (one click)" if args.cli else "cnn family"
    fit = "fit s: " + ("studio" if args.cli else "cnn")
    print(f"\n{'seed':>4}  {'test rows':>9}  {'logistic (8×8 px)':>18}  {what:>24}  "
          f"{'gain':>6}  {'fit s: logistic':>15}  {fit:>11}")
    for r in results:
        print(f"{r['seed']:>4}  {r['test_rows']:>9}  {r['baseline']:>18.4f}  {r['cnn']:>24.4f}  "
              f"{100 * (r['cnn'] - r['baseline']):>+5.1f}p  {r['baseline_s']:>15.2f}  "
              f"{r['cnn_s']:>11.1f}")
    if len(results) > 1:
        b = np.mean([r["baseline"] for r in results])
        c = np.mean([r["cnn"] for r in results])
        print(f"{'mean':>4}  {'':>9}  {b:>18.4f}  {c:>24.4f}  {100 * (c - b):>+5.1f}p")
    gain = np.mean([r["cnn"] - r["baseline"] for r in results])
    print(f"target: {what} ≥ logistic + 2 points (mean) → "
          f"{'met' if gain >= 0.02 else 'NOT met'}")


if __name__ == "__main__":
    main()
