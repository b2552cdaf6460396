"""First contact, side by side in one run:

    python tests/benchmarks/bench_first_contact.py [--rows 100000] [--runs 5]

- the display check before Qt loads (``studio.gui.preflight``) against a bare interpreter;
- listing a workbook's sheets with their sizes: from the zip's index (what the app does) vs
  openpyxl's read-only workbook (what it did), on a generated workbook of ``--rows`` rows;
- the workspace watch's tick (``PRAGMA data_version``), idle and after another process wrote.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(fn, runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def preflight(runs: int) -> None:
    env = {**os.environ, "DISPLAY": ":0"}
    env.pop("QT_QPA_PLATFORM", None)
    bare = timed(lambda: subprocess.run([sys.executable, "-c", "pass"], env=env), runs)
    check = timed(lambda: subprocess.run(
        [sys.executable, "-c", "from studio.gui.preflight import display_problem; "
         "display_problem()"], env=env), runs)
    print(f"display check  {check * 1000:7.1f} ms   bare interpreter {bare * 1000:7.1f} ms"
          f"   → the check adds {(check - bare) * 1000:.1f} ms")


def workbook(rows: int, folder: Path) -> Path:
    import numpy as np
    import pandas as pd

    path = folder / "book.xlsx"
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"city": rng.choice(["Lyon", "Nice", "Lille"], rows),
                         "note": [f"row {i}" for i in range(rows)],
                         "price": rng.normal(300_000, 50_000, rows).round()})
    with pd.ExcelWriter(path) as writer:
        pd.DataFrame({"title": ["Prices 2026"]}).to_excel(writer, sheet_name="Cover", index=False)
        data.to_excel(writer, sheet_name="Data", index=False)
    return path


def sheets(rows: int, runs: int) -> None:
    import openpyxl

    from studio.core.datasets.excel import excel_sheets

    with tempfile.TemporaryDirectory() as tmp:
        print(f"writing a {rows:,}-row workbook…", flush=True)
        path = workbook(rows, Path(tmp))

        def with_openpyxl() -> None:
            book = openpyxl.load_workbook(path, read_only=True, data_only=True)
            [(s.title, s.max_row, s.max_column) for s in book.worksheets]
            book.close()

        fast = timed(lambda: excel_sheets(path), runs)
        slow = timed(with_openpyxl, max(1, runs // 2))
        print(f"sheet sizes    {fast * 1000:7.1f} ms   openpyxl {slow * 1000:9.1f} ms"
              f"   → {slow / fast:,.0f}× faster  ({excel_sheets(path)})")


def watch(runs: int) -> None:
    from studio.core.workspace import Workspace

    with tempfile.TemporaryDirectory() as tmp:
        ws, other = Workspace.open(tmp), Workspace.open(tmp)
        version = lambda: ws.db.conn.execute("PRAGMA data_version").fetchone()[0]  # noqa: E731
        idle = timed(version, runs * 200)

        def changed() -> None:
            other.db.conn.execute("UPDATE datasets SET description = 'x' WHERE 0")
            other.db.conn.execute("INSERT INTO profiles (digest, columns) VALUES (?, '[]')",
                                  [str(time.perf_counter_ns())])
            version()
            ws.db.conn.execute("SELECT name, digest, rows, description, choices "
                               "FROM datasets ORDER BY name").fetchall()
            ws.db.conn.execute("SELECT name, version FROM versions").fetchall()

        busy = timed(changed, runs * 20)
        print(f"watch tick     {idle * 1e6:7.1f} µs idle, {busy * 1e6:.1f} µs after a write "
              "(once a second)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    preflight(args.runs)
    watch(args.runs)
    sheets(args.rows, args.runs)


if __name__ == "__main__":
    main()
