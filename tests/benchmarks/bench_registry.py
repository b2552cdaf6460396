"""The registry's two speed targets (issue 11), each measured side by side in one run.

    python tests/benchmarks/bench_registry.py [--quick] [--versions 10000] [--mb 200]

a. Listing 10,000 versions: ``listing.version_rows`` (median of several runs; target
   ≤ 50 ms), beside the bare SELECT of the same columns, and ``studio models ls --json`` end
   to end beside the same command on an empty workspace (what Python and the CLI cost).
   The workspace: one penguins model trained by ``studio train``; its manifest and files
   are registered through ``register_version`` a few hundred times (models of 20 versions,
   with aliases and tags); the rest of the 10,000 rows are SQL copies of those rows under
   new model names (``register_version`` costs ~17 ms a version here, mostly fsyncs: 10,000
   would take minutes). The copies keep their source's manifest text and blobs, which a
   listing never reads.
b. Registering a 200 MB artifact: ``register_version`` with the file as a Path, against
   ``sha256sum FILE && cp FILE DEST && sync DEST`` (and with a plain ``sync``) on the same
   file and disk; the order alternates, the first round is a warm-up and dropped, and the
   file's first bytes change every round so no blob is ever found already stored.
   Target ≤ 1.5×.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from studio.core.registry import get_version, migrate, register_version
from studio.core.registry.labels import set_alias, set_tags
from studio.core.registry.listing import version_rows
from studio.core.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "resources" / "samples" / "penguins.csv"
PER_MODEL = 20
LISTING_COLUMNS = ", ".join(migrate.LISTING_COLUMNS)


def studio(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "studio", "--home", str(home), *args],
                          capture_output=True, text=True, env=env, check=True)


def build(home: Path, versions: int, registered: int) -> float:
    """A workspace of ``versions`` rows, ``registered`` of them through the real path;
    returns seconds per registered version."""
    studio(home, "data", "import", str(SAMPLE))
    studio(home, "train", "penguins", "--target", "species", "--family", "linear")
    ws = Workspace.open(home)
    source = get_version(ws, "penguins:1")
    files = {f: ws.blobs.read_bytes(d) for f, d in source.manifest.files.items()
             if f != "card.md"}
    base = {k: v for k, v in source.raw.items()
            if k not in ("name", "version", "created", "files", "format")}
    start = time.perf_counter()
    for i in range(registered):
        name = f"penguins-{i // PER_MODEL:03d}"
        metrics = {**base["metrics"], "test": {**base["metrics"]["test"],
                                               "accuracy": 0.8 + (i % 17) / 100}}
        register_version(ws, name, files, {**base, "metrics": metrics}, "# {ref}\n")
        if i % PER_MODEL == PER_MODEL - 1:
            set_alias(ws, name, "production", str(PER_MODEL // 2))
            set_tags(ws, f"{name}:{PER_MODEL}", {"owner": "ana", "stage": "candidate"})
    per_version = (time.perf_counter() - start) / registered
    clone(ws, versions)
    ws.db.close()
    return per_version


def clone(ws: Workspace, versions: int) -> None:
    """Copy the registered models under new names until there are ``versions`` rows."""
    conn = ws.db.conn
    have = conn.execute("SELECT COUNT(*) FROM versions").fetchone()[0]
    copy = 0
    with ws.db.immediate():
        while have < versions:
            copy += 1
            limit = versions - have
            suffix = f"-copy{copy}"
            cols = [r[1] for r in conn.execute("PRAGMA table_info(versions)")]
            select = ", ".join("name || ?" if c == "name" else c for c in cols)
            conn.execute(
                f"INSERT INTO versions ({', '.join(cols)}) SELECT {select} FROM versions"
                " WHERE name NOT LIKE '%-copy%' ORDER BY name, version LIMIT ?",
                [suffix, limit])
            conn.execute("INSERT OR IGNORE INTO models (name, created) SELECT name, created"
                         " FROM versions WHERE name LIKE ? GROUP BY name", [f"%{suffix}"])
            for table in ("aliases", "tags", "lineage"):
                cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
                select = ", ".join("a.name || ?" if c == "name" else f"a.{c}" for c in cols)
                conn.execute(
                    f"INSERT INTO {table} ({', '.join(cols)}) SELECT {select} FROM {table} a"
                    " JOIN versions v ON v.name = a.name || ? AND v.version = a.version"
                    " WHERE a.name NOT LIKE '%-copy%'", [suffix, suffix])
            have = conn.execute("SELECT COUNT(*) FROM versions").fetchone()[0]


def timed(fn: Callable[[], object], runs: int) -> float:
    return timed_cpu(fn, runs)[0]


def timed_cpu(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median wall and CPU seconds: on a shared machine the CPU time says what the code
    costs, the wall time what a person waits."""
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def bench_listing(tmp: Path, versions: int, registered: int, runs: int) -> None:
    home = tmp / "listing"
    per_version = build(home, versions, registered)
    print(f"workspace: {versions:,} versions ({registered} registered through register_version "
          f"at {per_version * 1000:.0f} ms each, the rest SQL copies of those rows)")
    ws = Workspace.open(home)
    rows = version_rows(ws)
    assert len(rows) == versions, len(rows)
    assert sum(bool(r.aliases) for r in rows) >= versions // PER_MODEL // 2
    conn = ws.db.conn
    bare = timed(lambda: conn.execute(f"SELECT {LISTING_COLUMNS} FROM versions WHERE archived"
                                      " IS NULL ORDER BY name, version").fetchall(), runs)
    ours, cpu = timed_cpu(lambda: version_rows(ws), runs)
    ws.db.close()
    print(f"bare SELECT of the listing columns: {bare * 1000:.1f} ms (median of {runs})")
    print(f"listing {versions:,} versions: {ours * 1000:.1f} ms (target ≤ 50 ms: "
          f"{'PASS' if ours <= 0.05 else 'FAIL'}); CPU {cpu * 1000:.1f} ms; "
          f"{ours / bare:.1f}x the bare SELECT")
    empty = tmp / "empty"
    Workspace.open(empty).db.close()
    cli_runs = max(3, runs // 3)
    base = timed(lambda: studio(empty, "models", "ls", "--json"), cli_runs)
    full = timed(lambda: studio(home, "models", "ls", "--json"), cli_runs)
    listed = json.loads(studio(home, "models", "ls", "--json").stdout)["versions"]
    assert len(listed) == versions
    print(f"studio models ls --json: {full * 1000:.0f} ms end to end, {base * 1000:.0f} ms on "
          f"an empty workspace: {(full - base) * 1000:.0f} ms for {versions:,} rows "
          f"(median of {cli_runs})")


BASELINES = {
    "sync DEST": 'sha256sum "$1" >/dev/null && cp "$1" "$2" && sync "$2"',
    "sync": 'sha256sum "$1" >/dev/null && cp "$1" "$2" && sync',
}


def bench_register(tmp: Path, mb: int, rounds: int) -> None:
    src, dest = tmp / "model.onnx", tmp / "copy.onnx"
    with open(src, "wb") as f:
        for _ in range(mb):
            f.write(os.urandom(1 << 20))
    ws = Workspace.open(tmp / "register")
    ws.db  # noqa: B018 - opened before timing, as in a running app
    manifest = {"task": "classification", "metrics": {"test": {"accuracy": 0.9}}}
    times: dict[str, list[float]] = {"register_version": [], **{k: [] for k in BASELINES}}

    def ours() -> None:
        register_version(ws, "big", {"model.onnx": src}, manifest, "# {ref}\n")

    def shell(script: str) -> None:
        subprocess.run(["sh", "-c", script, "sh", str(src), str(dest)], check=True)
        dest.unlink()

    for r in range(rounds + 1):
        with open(src, "r+b") as f:  # new content: no blob of it is stored yet
            f.write(os.urandom(16))
        order = [("register_version", ours), *((k, lambda s=s: shell(s))
                                              for k, s in BASELINES.items())]
        if r % 2:
            order.reverse()
        for key, fn in order:
            start = time.perf_counter()
            fn()
            if r:  # round 0 warms caches up
                times[key].append(time.perf_counter() - start)
    ws.db.close()
    ours_s = statistics.median(times["register_version"])
    print(f"registering a {mb} MB artifact (median of {rounds}, warm-up dropped):")
    print(f"  register_version                        {ours_s:6.2f} s")
    for key in BASELINES:
        ratio = ours_s / statistics.median(times[key])
        print(f"  sha256sum && cp && {key:<20} {statistics.median(times[key]):6.2f} s   "
              f"register_version is {ratio:4.2f}x (target ≤ 1.5x: "
              f"{'PASS' if ratio <= 1.5 else 'FAIL'})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="2,000 versions, 50 MB")
    parser.add_argument("--versions", type=int)
    parser.add_argument("--mb", type=int)
    parser.add_argument("--only", choices=("listing", "register"))
    args = parser.parse_args()
    versions = args.versions or (2_000 if args.quick else 10_000)
    mb = args.mb or (50 if args.quick else 200)
    with tempfile.TemporaryDirectory() as tmp:
        if args.only != "register":
            bench_listing(Path(tmp), versions, min(versions, 100 if args.quick else 300),
                          runs=5 if args.quick else 9)
        if args.only != "listing":
            bench_register(Path(tmp), mb, rounds=3 if args.quick else 4)


if __name__ == "__main__":
    main()
