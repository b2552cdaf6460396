"""Crash consistency: a process registering versions (or importing a dataset) is killed with
SIGKILL at random moments; after each kill the workspace opens consistent.

One workspace lives through every trial, as a real one lives through many crashes. After
each kill: SQLite's integrity and foreign-key checks pass; every file under the blob store
is whole under its name; every version's manifest and files are there and hash right, and
the row's copy of the manifest is the stored one; aliases, tags and lineage point at
versions that exist; opening the workspace removed what the dead writer left half-written.
Delays come from a seeded RNG: a failure prints the seed and trial, and
``STUDIO_CRASH_SEED=S STUDIO_CRASH_TRIALS=N`` runs that sequence again (the kill's exact
moment still varies with the machine's load).
"""

from __future__ import annotations

import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import REPO_ROOT, run_studio

from studio.core import registry
from studio.core.workspace import Workspace

TOOL = REPO_ROOT / "tests" / "tools" / "register_loop.py"
SEED = int(os.environ.get("STUDIO_CRASH_SEED", "1106"))
TRIALS = int(os.environ.get("STUDIO_CRASH_TRIALS", "50"))
IMPORT_EVERY = 5  # one trial in five also imports datasets
DELAY_S = (0.02, 0.4)

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL and pids are POSIX")


@dataclass
class Seen:
    """What the kills left, over all trials: proof that they landed mid-write."""

    hashed: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    orphans: set[str] = field(default_factory=set)
    scratch_trials: int = 0  # a half-written file was there before the workspace opened
    orphan_trials: int = 0  # blobs stored, the row that would use them never committed


def test_a_writer_killed_at_any_moment_leaves_a_consistent_workspace(tmp_path: Path) -> None:
    root, sources = tmp_path / "ws", tmp_path / "sources"
    Workspace.open(root).db.close()  # made (and migrated) before the first child starts
    rng = random.Random(SEED)
    seen = Seen()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    started = time.monotonic()
    for trial in range(TRIALS):
        importing = trial % IMPORT_EVERY == IMPORT_EVERY - 1
        delay = rng.uniform(*DELAY_S)
        child_seed = rng.randrange(1 << 32)
        where = (f"seed {SEED} trial {trial} ({'importing' if importing else 'registering'}, "
                 f"killed {delay * 1000:.0f} ms after ready, child seed {child_seed})")
        log = tmp_path / "child.log"
        with open(log, "wb") as err:
            child = subprocess.Popen(
                [sys.executable, str(TOOL), str(root), str(sources), str(child_seed),
                 *(["--import"] if importing else [])],
                stdout=subprocess.PIPE, stderr=err, env=env)
            try:
                ready = select.select([child.stdout], [], [], 60)[0]
                line = child.stdout.readline() if ready else b""
                assert line == b"ready\n", f"{where}: child not ready: {log.read_text()}"
                time.sleep(delay)
                child.send_signal(signal.SIGKILL)
            finally:
                child.kill()
                child.wait()  # reaped: a zombie's pid still looks alive to the sweep
                child.stdout.close()
        assert child.returncode == -signal.SIGKILL, f"{where}: {log.read_text()}"
        try:
            check(root, seen, where)
        except Exception as exc:  # a read that raises: say which trial, too
            raise AssertionError(f"{where}: {type(exc).__name__}: {exc}") from exc
        shutil.rmtree(sources, ignore_errors=True)

    versions, datasets = counts(root)
    print(f"\n{TRIALS} kills in {time.monotonic() - started:.1f} s: {versions} versions, "
          f"{datasets} datasets; {seen.scratch_trials} kills left a half-written file, "
          f"{seen.orphan_trials} left stored blobs without their row")
    # the kills must have hit writes in flight, and the writers must have got work done
    assert seen.scratch_trials >= 1 and seen.orphan_trials >= 1
    assert versions >= TRIALS // 2 and datasets >= 1
    verified = run_studio(root, "models", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def check(root: Path, seen: Seen, where: str) -> None:
    left = [p.name for p in (root / "tmp").iterdir()]
    seen.scratch_trials += bool(left)
    ws = Workspace.open(root)
    try:
        still = [p.name for p in ws.tmp.iterdir()]
        assert not still, f"{where}: opening left {still} (before: {left})"
        conn = ws.db.conn
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)], where
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == [], where

        stored = set()
        for path in ws.blobs.root.iterdir():
            assert path.is_dir() and len(path.name) == 2, f"{where}: stray {path}"
            for blob in path.iterdir():
                digest = path.name + blob.name
                assert whole(ws, digest, seen), f"{where}: blob {digest} is not its content"
                stored.add(digest)

        used = set()
        rows = conn.execute("SELECT name, version, manifest_digest, manifest, size_bytes,"
                            " total_bytes FROM versions").fetchall()
        for name, number, manifest_digest, text, size_bytes, total_bytes in rows:
            version = registry.get_version(ws, f"{name}:{number}")  # reads the blob, verified
            assert version.raw == json.loads(text), f"{where}: {name}:{number} row ≠ blob"
            files = version.manifest.files
            for digest in (manifest_digest, *files.values()):
                assert digest in stored, f"{where}: {name}:{number} lacks blob {digest}"
            assert size_bytes == ws.blobs.path(files["model.onnx"]).stat().st_size, where
            assert total_bytes == sum(ws.blobs.path(d).stat().st_size
                                      for d in files.values()) + len(text), where
            used |= {manifest_digest, *files.values()}
        versions = {(n, v) for n, v, *_ in rows}
        for table in ("aliases", "tags", "lineage"):
            for n, v in conn.execute(f"SELECT name, version FROM {table}"):
                assert (n, v) in versions, f"{where}: {table} row for missing {n}:{v}"
        for name, digest in conn.execute("SELECT name, digest FROM datasets"):
            assert digest in stored, f"{where}: dataset {name} lacks its snapshot"
            used.add(digest)

        orphans = stored - used
        seen.orphan_trials += bool(orphans - seen.orphans)
        seen.orphans = orphans
    finally:
        ws.db.close()


def whole(ws: Workspace, digest: str, seen: Seen) -> bool:
    """``ws.blobs.intact``, skipped for a blob hashed before and untouched since (same
    inode, size and mtime): blobs never change in place, and hashing every one after every
    trial would make the test quadratic."""
    st = ws.blobs.path(digest).stat()
    key = (st.st_ino, st.st_size, st.st_mtime_ns)
    if seen.hashed.get(digest) == key:
        return True
    if not ws.blobs.intact(digest, st.st_size):
        return False
    seen.hashed[digest] = key
    return True


def counts(root: Path) -> tuple[int, int]:
    ws = Workspace.open(root)
    try:
        conn = ws.db.conn
        return (conn.execute("SELECT COUNT(*) FROM versions").fetchone()[0],
                conn.execute("SELECT COUNT(*) FROM datasets").fetchone()[0])
    finally:
        ws.db.close()
