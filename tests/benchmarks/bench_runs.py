"""The Runs page's speed targets (issue 14), measured in one run.

    python tests/benchmarks/bench_runs.py [--runs 1000] [--epochs 40]

The workspace holds one real run made by ``studio train`` (penguins, mlp, a few epochs);
its jobs row is copied to ``--runs`` runs under new ids, each given ``--epochs`` epochs of
train/validation metrics and a step-loss row every few steps (~200 metric rows a run), with
a spread of states, families and datasets, as a busy workspace has after months of work.

a. The store query: ``runs.list_runs`` (every run, newest first), median of 30; beside the
   bare SELECT of the same rows without JSON (what parsing costs). Target ≤ 20 ms.
b. The list showing: ``RunsPage.refresh()`` (query, model reset, filters' choices,
   selection kept) and the table's first paint, median of 15 on an offscreen 1280×800
   window. Target ≤ 100 ms.
Also printed: comparing 5 runs (curves and rows), and a search typed into the filter.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from studio.core import runs
from studio.core.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "resources" / "samples" / "penguins.csv"
STATES = ["done"] * 14 + ["failed", "cancelled", "interrupted"]
FAMILIES = ["mlp", "linear", "boosted-trees", "embedding", "cnn"]


def median_ms(fn: Callable[[], object], n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def build(home: Path, n_runs: int, epochs: int) -> None:
    studio = [sys.executable, "-m", "studio", "--home", str(home)]
    subprocess.run([*studio, "data", "import", str(SAMPLE)], check=True, capture_output=True)
    subprocess.run([*studio, "train", "penguins", "--family", "mlp", "--epochs", "3"],
                   check=True, capture_output=True)
    ws = Workspace.open(home)
    conn = ws.db.conn
    cols = [r[1] for r in conn.execute("PRAGMA table_info(jobs)")]
    template = dict(zip(cols, conn.execute("SELECT * FROM jobs WHERE kind = 'train'").fetchone(),
                        strict=True))
    rng = random.Random(0)
    t = time.time() - n_runs * 600
    with ws.db.immediate():
        for i in range(n_runs):
            row = dict(template)
            state = STATES[i % len(STATES)]
            family = FAMILIES[i % len(FAMILIES)]
            dataset = f"data{i % 23}"
            run_id = uuid.uuid4().hex[:12]
            row.update(id=run_id, created=t + i * 600, started=t + i * 600 + 1,
                       ended=t + i * 600 + rng.uniform(5, 500), status=state,
                       spec=row["spec"].replace('"penguins"', f'"{dataset}"')
                       .replace('"mlp"', f'"{family}"'),
                       result=row["result"].replace('"mlp"', f'"{family}"')
                       if state == "done" else None,
                       error="InputError: the loss became NaN" if state == "failed" else None)
            conn.execute(f"INSERT INTO jobs ({','.join(cols)}) VALUES "
                         f"({','.join('?' * len(cols))})", [row[c] for c in cols])
            metrics = []
            step = 0
            for epoch in range(1, epochs + 1):
                for _ in range(3):
                    step += 10
                    metrics.append((run_id, epoch, step, "batch_loss", rng.random(), family))
                for name in ("train_loss", "val_loss", "val_accuracy"):
                    metrics.append((run_id, epoch, step, name, rng.random(), family))
            conn.executemany("INSERT INTO metrics (job_id, epoch, step, name, value, series) "
                             "VALUES (?, ?, ?, ?, ?, ?)", metrics)
    ws.db.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        t0 = time.perf_counter()
        build(home, args.runs, args.epochs)
        ws = Workspace.open(home)
        total = ws.db.conn.execute("SELECT COUNT(*) FROM jobs WHERE kind = 'train'").fetchone()[0]
        rows = ws.db.conn.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]
        print(f"workspace: {total:,} runs, {rows:,} metric rows "
              f"(built in {time.perf_counter() - t0:.1f} s)")

        bare = median_ms(lambda: ws.db.conn.execute(
            "SELECT id, status, created, started, ended, error, device FROM jobs "
            "WHERE kind = 'train' ORDER BY created DESC").fetchall(), 30)
        query = median_ms(lambda: runs.list_runs(ws), 30)
        ids = [r.id for r in runs.list_runs(ws, status="done")[:5]]
        compare = median_ms(lambda: runs.compare(ws, ids), 10)

        from PySide6.QtWidgets import QApplication

        from studio.gui.pages.runs.view import RunsPage

        app = QApplication.instance() or QApplication([])
        page = RunsPage(ws)
        page.resize(1280, 800)
        page.show()
        app.processEvents()

        def show_list() -> None:
            page.refresh()
            page.view.viewport().repaint()

        shown = median_ms(show_list, 15)
        # one run going on (this process stands for its job): the page's poll each second
        ws.db.conn.execute("UPDATE jobs SET status = 'running', pid = ?, ended = NULL "
                           "WHERE id = ?", [os.getpid(), ids[0]])
        page.refresh()
        poll = median_ms(page._poll, 15)
        search = median_ms(lambda: (page.search.setText("data1"), page.search.setText("")), 10)
        listed = page.model.rowCount()
        page.close()
        ws.db.close()

    ok_query, ok_list = query <= 20.0, shown <= 100.0
    print(f"a. store query, {total:,} runs: {query:.1f} ms (bare SELECT {bare:.1f} ms, "
          f"{query / bare:.1f}x) target <= 20 ms {'OK' if ok_query else 'MISSED'}")
    print(f"b. list shown ({listed:,} rows, query + model + first paint): {shown:.1f} ms "
          f"target <= 100 ms {'OK' if ok_list else 'MISSED'}")
    print(f"   compare 5 runs (rows + curves): {compare:.1f} ms; a search typed and cleared: "
          f"{search:.1f} ms; the page's poll while a run is active: {poll:.1f} ms a second")
    return 0 if ok_query and ok_list else 1


if __name__ == "__main__":
    raise SystemExit(main())
