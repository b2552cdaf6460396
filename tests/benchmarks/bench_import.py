"""Importing a 1,000,000 × 20 mixed-type CSV, side by side with plain pyarrow, in one run.

    python tests/benchmarks/bench_import.py [--rows 1000000] [--runs 3] [--no-gui]

Targets (issue 4):
- time of ``import_dataset`` ≤ 1.5 × (pyarrow.csv.read_csv + pyarrow.parquet.write_table);
- peak memory of the import ≤ 3 × the file size;
- while the GUI imports it, its thread is never blocked for more than 100 ms (a 10 ms timer
  heartbeat records the longest gap).
Each sample is a fresh process; baseline and import samples alternate so noise hits both.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec.
HWM = """
def hwm_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
"""

BASELINE = HWM + """
import json, sys, time
import pyarrow.csv as pc, pyarrow.parquet as pq
before = hwm_kb()
t = time.perf_counter()
pq.write_table(pc.read_csv(sys.argv[1]), sys.argv[2])
print(json.dumps({"s": time.perf_counter() - t, "before_kb": before, "peak_kb": hwm_kb()}))
"""

STUDIO = HWM + """
import json, sys, time
from pathlib import Path
from studio.core.workspace import Workspace
from studio.core.datasets.catalog import import_dataset
ws = Workspace.open(sys.argv[2]); ws.db
before = hwm_kb()
t = time.perf_counter()
info = import_dataset(ws, Path(sys.argv[1]))
print(json.dumps({"s": time.perf_counter() - t, "before_kb": before, "rows": info.rows,
                  "peak_kb": hwm_kb()}))
"""

GUI = """
import json, os, sys, time
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from pathlib import Path
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from studio.gui.app import create_window
w = create_window(sys.argv[2]); w.show(); w.load()
app = QApplication.instance()
gaps, last = [], [time.perf_counter()]
def beat():
    now = time.perf_counter(); gaps.append(now - last[0]); last[0] = now
timer = QTimer(); timer.setInterval(10); timer.timeout.connect(beat); timer.start()
t = time.perf_counter()
w.import_paths([Path(sys.argv[1])])
def done():
    return w.import_job is None and w.datasets.current is not None \
        and w.datasets.model.rowCount() > 0
while not done() and time.perf_counter() - t < 300:
    app.processEvents(); time.sleep(0.001)
shown = time.perf_counter() - t
while not w.datasets.profile and time.perf_counter() - t < 300:
    app.processEvents(); time.sleep(0.001)
print(json.dumps({"s": shown, "profiled_s": time.perf_counter() - t,
                  "max_gap_ms": max(gaps) * 1000, "beats": len(gaps),
                  "rows": w.datasets.current.rows}))
"""


def make_csv(path: Path, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    cols: dict[str, object] = {}
    for i in range(8):
        cols[f"num{i}"] = rng.normal(size=rows).round(4)
    for i in range(4):
        cols[f"int{i}"] = rng.integers(0, 1000, size=rows)
    for i in range(4):
        cols[f"cat{i}"] = rng.choice(["alpha", "beta", "gamma", "delta", "epsilon"], size=rows)
    cols["flag"] = rng.choice(["true", "false"], size=rows)
    cols["date"] = pd.Timestamp("2020-01-01") + pd.to_timedelta(
        rng.integers(0, 1000, size=rows), unit="D")
    cols["note"] = [f"note {i} about item {i % 977}" for i in range(rows)]
    cols["sparse"] = np.where(rng.random(rows) < 0.3, np.nan, rng.normal(size=rows))
    pd.DataFrame(cols).to_csv(path, index=False)


def run(code: str, *args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-gui", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "mixed.csv"
        make_csv(csv, args.rows)
        size_mb = csv.stat().st_size / 2**20
        print(f"file: {args.rows:,} rows × 20 columns, {size_mb:.0f} MiB")
        base, ours = [], []
        for i in range(args.runs):
            base.append(run(BASELINE, str(csv), str(Path(tmp) / "base.parquet")))
            ours.append(run(STUDIO, str(csv), str(Path(tmp) / f"ws{i}")))
        b = statistics.median(r["s"] for r in base)
        o = statistics.median(r["s"] for r in ours)
        print(f"pyarrow read_csv + write_table  {b:6.2f} s (median of {args.runs})")
        print(f"studio import_dataset           {o:6.2f} s   ratio {o / b:4.2f}x "
              f"(target ≤ 1.5x: {'PASS' if o / b <= 1.5 else 'FAIL'})")
        for label, rs in (("pyarrow", base), ("studio", ours)):
            peak = max(r["peak_kb"] for r in rs) / 1024
            grown = max(r["peak_kb"] - r["before_kb"] for r in rs) / 1024
            print(f"peak memory {label:8} {peak:6.0f} MiB process, {grown:6.0f} MiB for the "
                  f"import = {grown / size_mb:4.2f}x file size")
        grown = max(r["peak_kb"] - r["before_kb"] for r in ours) / 1024
        print(f"target: import memory ≤ 3x file size -> "
              f"{'PASS' if grown / size_mb <= 3 else 'FAIL'}")
        if not args.no_gui:
            g = run(GUI, str(csv), str(Path(tmp) / "gui"))
            print(f"GUI: dropped → table of {g['rows']:,} rows shown {g['s']:.2f} s, column "
                  f"profile shown {g['profiled_s']:.2f} s")
            print(f"GUI thread: longest gap {g['max_gap_ms']:.0f} ms over {g['beats']} "
                  f"heartbeats of 10 ms (target ≤ 100 ms: "
                  f"{'PASS' if g['max_gap_ms'] <= 100 else 'FAIL'})")


if __name__ == "__main__":
    main()
