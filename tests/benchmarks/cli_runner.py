"""The `studio` command as a benchmark runs it: in a child process on its own workspace,
one JSON document back, a failure ending the benchmark with the command's own message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def studio_json(home: str | Path, *args: str, timeout: float = 3600) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "studio", "--home", str(home), *args, "--json"],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "STUDIO_NO_NOTES": "1"})
    if done.returncode != 0:
        raise SystemExit(f"studio {' '.join(args)} failed:\n{done.stderr.strip()}")
    return json.loads(done.stdout)
