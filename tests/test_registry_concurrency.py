"""GUI, CLI and server use one workspace at once: writers in several processes and a reader
listing meanwhile never meet "database is locked", and every write lands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import REPO_ROOT

from studio.core import registry
from studio.core.registry.listing import version_rows
from studio.core.workspace import Workspace

WRITERS, EACH = 3, 25


def test_writers_in_several_processes_and_a_reader_never_meet_a_lock(tmp_path: Path) -> None:
    ws = Workspace.open(tmp_path / "ws")
    ws.db  # noqa: B018 - migrate once, before the writers race to
    tool = REPO_ROOT / "tests" / "tools" / "registry_writer.py"
    procs = [subprocess.Popen([sys.executable, str(tool), str(ws.root), f"m{i}", str(EACH)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(WRITERS)]
    listed = 0
    while any(p.poll() is None for p in procs):
        rows = version_rows(ws)
        for row in rows[-3:]:
            registry.get_version(ws, row.name)
        listed += 1
    for p in procs:
        _out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert "locked" not in err
    rows = version_rows(ws)
    assert len(rows) == WRITERS * EACH and listed > 0
    for i in range(WRITERS):
        assert registry.resolve(ws, f"m{i}@production") == (f"m{i}", EACH)
    ws.db.close()
