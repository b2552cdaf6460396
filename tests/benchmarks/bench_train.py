"""Training throughput through the real job path, CPU and CUDA side by side in one run.

    python tests/benchmarks/bench_train.py [--rows 200000] [--epochs 3] [--batch-size 1024]

Generates a synthetic mixed-type classification table, imports it, then trains the same spec
once per available device and prints rows/s per epoch and the CUDA/CPU ratio.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def make_table(rows: int, path: Path, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 16))
    cats = rng.choice(["north", "south", "east", "west"], size=rows)
    logits = x[:, :4] @ np.array([1.5, -2.0, 1.0, 0.5]) + (cats == "east") * 1.2
    label = np.digitize(logits, [-1.0, 1.0])
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(16)])
    frame["region"] = cats
    frame["label"] = np.array(["low", "mid", "high"])[label]
    frame.to_csv(path, index=False)


def studio(home: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "studio", "--home", home, *args, "--json"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=1024)
    args = parser.parse_args()
    import torch

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    with tempfile.TemporaryDirectory() as home:
        csv = Path(home) / "synthetic.csv"
        make_table(args.rows, csv)
        studio(home, "data", "import", str(csv))
        results = {}
        for device in devices:
            start = time.perf_counter()
            doc = studio(home, "train", "synthetic", "--target", "label", "--family", "mlp",
                         "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
                         "--device", device, "--model", f"synthetic-{device}")
            wall = time.perf_counter() - start
            show = studio(home, "models", "show", doc["version"])
            train_s = show["training"]["duration_s"]
            rows_s = args.rows * 0.7 * args.epochs / train_s
            results[device] = rows_s
            print(f"{device:5} {doc['headline']:<16} train {train_s:7.2f} s  wall {wall:6.2f} s"
                  f"  {rows_s:12,.0f} rows/s  device recorded: {show['training']['device']}")
    if "cuda" in results:
        print(f"cuda/cpu throughput ratio: {results['cuda'] / results['cpu']:.2f}x")
    else:
        print("no CUDA device: CPU figures only")


if __name__ == "__main__":
    main()
