"""Where everything lives: ``STUDIO_HOME`` or the platform's user data folder."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from studio.core.store import BlobStore, Database, sweep_scratch

APP_DIR_NAME = "ModelStudio"


def default_home() -> Path:
    """The workspace folder: ``$STUDIO_HOME`` if set, else the platform's user data dir."""
    env = os.environ.get("STUDIO_HOME")
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / APP_DIR_NAME


@dataclass(frozen=True)
class Workspace:
    """One folder holding the database, the blob store and scratch space."""

    root: Path

    @classmethod
    def open(cls, root: Path | str | None = None) -> Workspace:
        ws = cls(Path(root) if root is not None else default_home())
        ws.root.mkdir(parents=True, exist_ok=True)
        ws.tmp.mkdir(exist_ok=True)
        sweep_scratch(ws.tmp)  # what a crashed process left half-written
        return ws

    @property
    def db_path(self) -> Path:
        return self.root / "studio.db"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @cached_property
    def db(self) -> Database:
        return Database(self.db_path)

    @cached_property
    def blobs(self) -> BlobStore:
        return BlobStore(self.root / "blobs", self.tmp)
