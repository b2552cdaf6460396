"""A training run's checkpoints: per epoch, the last few kept, for resuming a run that was
stopped, crashed or killed.

``runs/<run id>/<family>/epoch-NNNNN/`` holds ``weights.safetensors`` (the model after that
epoch), ``best.safetensors`` (the best epoch's weights so far; absent when the epoch itself
is the best: its weights are) and ``state.pt`` (optimizer state, random generator state and
the loop's own counters: tensors and plain values, which ``torch.load(weights_only=True)``
opens; no pickle of objects). A checkpoint is written to a scratch folder and renamed into
place, so a process killed mid-write leaves the previous one whole.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.core.workspace import Workspace

KEEP = 3
# An epoch shorter than this is not written each time (a tiny table trains hundreds of
# epochs a second): a kill loses at most this much work. Files are not fsynced: a killed
# process leaves what it wrote in the page cache; only a power cut could lose the last one.
EVERY_S = 1.0
RUNS_DIR = "runs"
_EPOCH = re.compile(r"epoch-(\d{5})$")
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class Plan:
    """Where one family of a run writes its checkpoints, and the one it starts from."""

    write_to: Path | None = None
    resume_from: Path | None = None
    every_s: float = EVERY_S


def run_dir(ws: Workspace, run_id: str) -> Path:
    return ws.root / RUNS_DIR / _SAFE.sub("_", run_id)


def family_dir(ws: Workspace, run_id: str, family: str) -> Path:
    return run_dir(ws, run_id) / _SAFE.sub("_", family)


def epochs(folder: Path) -> list[int]:
    """The epochs with a whole checkpoint in ``folder``, oldest first."""
    if not folder.is_dir():
        return []
    found = []
    for child in folder.iterdir():
        m = _EPOCH.match(child.name)
        if m and (child / "state.pt").is_file() and (child / "weights.safetensors").is_file():
            found.append(int(m.group(1)))
    return sorted(found)


def latest(ws: Workspace, run_id: str, family: str) -> Path | None:
    folder = family_dir(ws, run_id, family)
    done = epochs(folder)
    return folder / f"epoch-{done[-1]:05d}" if done else None


def write(folder: Path, epoch: int, files: dict[str, bytes], meta: dict[str, Any],
          keep: int = KEEP) -> Path:
    """One epoch's checkpoint, whole or not at all; the oldest beyond ``keep`` removed."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(".epoch-*.partial"):  # what a killed write left
        shutil.rmtree(stale, ignore_errors=True)
    final = folder / f"epoch-{epoch:05d}"
    scratch = folder / f".epoch-{epoch:05d}.{os.getpid()}.partial"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    for name, data in {**files, "meta.json": json.dumps(meta).encode()}.items():
        (scratch / name).write_bytes(data)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(scratch, final)
    for old in epochs(folder)[:-keep]:
        shutil.rmtree(folder / f"epoch-{old:05d}", ignore_errors=True)
    return final


def read_meta(folder: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((folder / "meta.json").read_text()))
    except (OSError, ValueError):
        return {}


def resumable(ws: Workspace, run_id: str) -> dict[str, int]:
    """Each family of the run with a checkpoint, and the epoch it reached."""
    root = run_dir(ws, run_id)
    if not root.is_dir():
        return {}
    out = {}
    for child in sorted(root.iterdir()):
        done = epochs(child)
        if done:
            out[read_meta(child / f"epoch-{done[-1]:05d}").get("family", child.name)] = done[-1]
    return out


def remove_run(ws: Workspace, run_id: str) -> None:
    shutil.rmtree(run_dir(ws, run_id), ignore_errors=True)

