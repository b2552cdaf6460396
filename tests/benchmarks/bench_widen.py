"""Widening column types: a CSV of number columns whose last row is text in every column,
read with one restart for all clashing columns (now) and one restart per column (before,
simulated by turning the re-read of the failing block off), side by side in one run.

    python tests/benchmarks/bench_widen.py [--columns 200] [--rows 7500] [--runs 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from studio.core.datasets import csv_stream
from studio.core.datasets.sniff import sniff_csv


def make_csv(path: Path, columns: int, rows: int) -> None:
    with open(path, "w") as f:
        f.write(",".join(f"c{j}" for j in range(columns)) + "\n")
        for i in range(rows):
            f.write(",".join(str(i % 1000 + j) for j in range(columns)) + "\n")
        f.write(",".join("text" for _ in range(columns)) + "\n")


def timed(path: Path, dest: Path) -> tuple[float, int]:
    start = time.perf_counter()
    result = csv_stream.csv_to_parquet(path, sniff_csv(path), dest, lambda done, total: None)
    return time.perf_counter() - start, result.reads - 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--columns", type=int, default=200)
    parser.add_argument("--rows", type=int, default=7500)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    probe = csv_stream._clashing_columns
    with tempfile.TemporaryDirectory() as tmp:
        path, dest = Path(tmp) / "wide.csv", Path(tmp) / "out.parquet"
        make_csv(path, args.columns, args.rows)
        size = path.stat().st_size
        times: dict[str, list[float]] = {"one restart": [], "a restart per column": []}
        restarts: dict[str, int] = {}
        for _ in range(args.runs):  # alternating, so noise hits both
            for label, widen in (("one restart", probe),
                                 ("a restart per column", lambda *a, **k: {})):
                csv_stream._clashing_columns = widen
                seconds, restarts[label] = timed(path, dest)
                times[label].append(seconds)
        csv_stream._clashing_columns = probe
    print(f"{args.columns} columns × {args.rows + 1:,} rows, {size / 1e6:.1f} MB, "
          "text in every column of the last row")
    for label, samples in times.items():
        print(f"  {label:<22} {statistics.median(samples):7.2f} s  "
              f"({restarts[label]} restart{'s' if restarts[label] != 1 else ''})")


if __name__ == "__main__":
    main()
