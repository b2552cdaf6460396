"""SQLite tables (sqlite-utils, WAL) and a content-addressed blob store.

Blobs are written to a temporary name, fsynced and renamed to their SHA-256; they are
verified when read. Rows that point at blobs are written only after the blobs exist, so a
process killed at any moment leaves either no row or a row whose blobs are all present.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from studio.core.errors import IntegrityError, NotFoundError

if TYPE_CHECKING:
    import sqlite_utils

BUSY_TIMEOUT_S = 30.0
CHUNK = 1 << 20
SCHEMA_VERSION = 11


def now() -> float:
    return time.time()


class Database:
    """The workspace database: a sqlite-utils handle on one autocommit connection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # isolation_level=None: every statement commits on its own unless we open an explicit
        # transaction; sqlite-utils' internal `with conn:` blocks then cannot end ours early.
        conn = sqlite3.connect(
            str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode = wal")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        self.conn = conn
        self._migrate()

    @cached_property
    def db(self) -> sqlite_utils.Database:
        """sqlite-utils on the same connection, made when first used: importing it imports
        pandas (~0.9 s), which neither the GUI before its window is up nor a server looking
        a model up should pay."""
        import sqlite_utils

        return sqlite_utils.Database(self.conn)

    def _migrate(self) -> None:
        if self.conn.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
            return
        with self.immediate():
            # read again under the write lock: another process may have migrated meanwhile
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            if version < 1:
                self._create_v1()
            if version < 2:
                # source_key: path, size and mtime of the imported file, for instant re-import;
                # profiles: column statistics computed once per snapshot, on first view.
                self.db["datasets"].add_column("source_key", str)
                self.db["datasets"].create_index(["source_key"], if_not_exists=True)
                self.db["profiles"].create({"digest": str, "columns": str}, pk="digest",
                                           if_not_exists=True)
            if version < 3:
                # rules: the version of the kind rules a profile was computed with; a profile
                # from older rules is computed again (NULL: before this column existed).
                self.db["profiles"].add_column("rules", int)
            if version < 4:
                # choices: what the person last chose to train on it (target, task); details:
                # how the file was read (encoding, delimiter, sheet, warnings), so a re-import
                # that reads nothing can still say it. JSON; NULL: from before these columns.
                existing = self.db["datasets"].columns_dict
                for column in ("choices", "details"):
                    if column not in existing:
                        self.db["datasets"].add_column(column, str)
            if version < 5 and "noticed" not in self.db["jobs"].columns_dict:
                # noticed: when a person was told that a job was interrupted (NULL: not yet)
                self.db["jobs"].add_column("noticed", float)
            if version < 6:
                # candidates: a run's leaderboard, with the files of the families that lost
                # (see core/training/candidates.py); series: the family a metric belongs to
                self.db["candidates"].create(
                    {"job_id": str, "family": str, "title": str, "model": str, "row": str,
                     "manifest": str, "files": str, "version": str},
                    pk=("job_id", "family"), if_not_exists=True)
                if "series" not in self.db["metrics"].columns_dict:
                    self.db["metrics"].add_column("series", str)
            if version < 7:
                self._registry_v7()
            if version < 8:
                from studio.core.registry.migrate import registry_v8

                registry_v8(self.conn, self.path.parent / "blobs")
            if version < 9:
                from studio.core.registry.migrate import registry_v9

                registry_v9(self.conn)
            if version < 10:
                from studio.core.request_log import create_table

                create_table(self.conn)
            if version < 11:
                # facts: what a training run learned of its data once loaded (digest, task,
                # families), kept even when it fails later; runs are listed newest first
                if "facts" not in self.db["jobs"].columns_dict:
                    self.db["jobs"].add_column("facts", str)
                self.db["jobs"].create_index(["kind", "created"], if_not_exists=True)
            self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _registry_v7(self) -> None:
        """The registry's own tables: models, aliases, tags, lineage edges, the servers that
        serve versions; versions gain what listing them needs without reading manifests."""
        from studio.core.registry.migrate import registry_v7

        registry_v7(self.conn, self.path.parent / "blobs")

    def _create_v1(self) -> None:
        self.db["datasets"].create(
            {
                "name": str, "digest": str, "rows": int, "columns": str, "source": str,
                "description": str, "created": float,
            },
            pk="name", if_not_exists=True,
        )
        self.db["jobs"].create(
            {
                "id": str, "kind": str, "spec": str, "status": str, "pid": int,
                "device": str, "created": float, "started": float, "ended": float,
                "error": str, "result": str,
            },
            pk="id", if_not_exists=True,
        )
        self.db["metrics"].create(
            {"job_id": str, "epoch": int, "step": int, "name": str, "value": float},
            foreign_keys=[("job_id", "jobs", "id")], if_not_exists=True,
        )
        self.db["metrics"].create_index(["job_id", "name"], if_not_exists=True)
        self.db["versions"].create(
            {
                "name": str, "version": int, "task": str, "dataset": str,
                "manifest_digest": str, "manifest": str, "job_id": str, "created": float,
            },
            pk=("name", "version"), if_not_exists=True,
        )

    @contextlib.contextmanager
    def immediate(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken up front, so read-then-write cannot race another writer."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


class BlobStore:
    """Immutable files named by their SHA-256 under ``root/ab/cdef…``.

    A blob that is already there is checked before a new copy is dropped: a damaged one is
    replaced, so storing the same content again repairs it.
    """

    def __init__(self, root: Path, tmp: Path, created: set[str] | None = None) -> None:
        self.root = root
        self.tmp = tmp
        # the blobs this store placed where none was before (``tracking``), for an undo
        self.created = created
        self.root.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)

    def tracking(self) -> BlobStore:
        """The same store, noting in ``created`` every blob it adds: work that fails can
        then remove what it added, and only that."""
        return BlobStore(self.root, self.tmp, created=set())

    def path(self, digest: str) -> Path:
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise NotFoundError(f"not a blob digest: {digest!r}")
        return self.root / digest[:2] / digest[2:]

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def intact(self, digest: str, size: int | None = None) -> bool:
        """Whether the blob is there with the content its name says (``size``, when known,
        rules out most damage without reading it)."""
        path = self.path(digest)
        try:
            if size is not None and path.stat().st_size != size:
                return False
            h = hashlib.sha256()
            with open(path, "rb") as f:
                _copy_hash(f, h)
        except FileNotFoundError:
            return False
        return h.hexdigest() == digest

    def quarantine(self, digest: str) -> Path | None:
        """Move a damaged blob aside (``damaged/`` beside the store), so that its content,
        when it arrives again, is stored afresh and found again; the bad copy stays for a
        look. None when it was not there."""
        src = self.path(digest)
        dest = self.root.parent / "damaged" / f"{digest}-{time.time_ns()}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(src, dest)
        except OSError:  # gone, or held open where that forbids a move (Windows)
            return None
        return dest

    def put_bytes(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        if self.intact(digest, len(data)):
            self._touch(digest)
        else:
            self._commit(digest, lambda f: f.write(data))
        return digest

    def _touch(self, digest: str) -> None:
        """A blob stored again is new to ``gc``: work about to refer to it (a version's row
        is written after its files) must not lose it to a collection meanwhile."""
        with contextlib.suppress(OSError):
            os.utime(self.path(digest))

    def put_file(self, src: Path) -> str:
        """Copy ``src`` into the store, hashing as it streams; returns its digest."""
        h = hashlib.sha256()
        fd, tmp_name = tempfile.mkstemp(dir=self.tmp, prefix=scratch_prefix("blob"), suffix=".part")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
                while chunk := inp.read(CHUNK):
                    h.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            return self._settle(tmp, h.hexdigest())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def adopt(self, tmp: Path) -> str:
        """Move a finished file written under ``tmp`` into the store without copying it."""
        h = hashlib.sha256()
        with open(tmp, "r+b") as f:
            _copy_hash(f, h)
            os.fsync(f.fileno())
        return self._settle(tmp, h.hexdigest())

    def _settle(self, tmp: Path, digest: str) -> str:
        """A finished temporary file becomes the blob, unless the blob is already there
        intact (a damaged one is replaced by this good copy)."""
        if self.intact(digest, tmp.stat().st_size):
            tmp.unlink()
            self._touch(digest)
        else:
            self._place(tmp, digest)
        return digest

    def _commit(self, digest: str, write: Any) -> None:
        fd, tmp_name = tempfile.mkstemp(dir=self.tmp, prefix=scratch_prefix("blob"), suffix=".part")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                write(out)
                out.flush()
                os.fsync(out.fileno())
            self._place(tmp, digest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _place(self, tmp: Path, digest: str) -> None:
        dest = self.path(digest)
        new = not dest.exists()
        for attempt in (1, 2):
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(tmp, dest)
                break
            except FileNotFoundError:
                # ``discard`` of another process removed the emptied folder in between
                if attempt == 2 or not tmp.exists():
                    raise
        _fsync_dir(dest.parent)
        if new and self.created is not None:
            self.created.add(digest)

    def discard(self, digests: set[str]) -> None:
        """Remove these blobs, and their folders once empty. The caller has made sure that
        nothing refers to them."""
        for digest in digests:
            path = self.path(digest)
            path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # not empty: other blobs live there
                path.parent.rmdir()

    def read_bytes(self, digest: str) -> bytes:
        try:
            data = self.path(digest).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"blob {digest[:12]} is missing from the workspace") from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise IntegrityError(f"blob {digest[:12]} is corrupt (digest mismatch)")
        return data

    def verified_path(self, digest: str) -> Path:
        """The blob's path, after checking its content still matches its name."""
        path = self.path(digest)
        h = hashlib.sha256()
        try:
            with open(path, "rb") as f:
                _copy_hash(f, h)
        except FileNotFoundError:
            raise NotFoundError(f"blob {digest[:12]} is missing from the workspace") from None
        if h.hexdigest() != digest:
            raise IntegrityError(f"blob {digest[:12]} is corrupt (digest mismatch)")
        return path


def _copy_hash(f: BinaryIO, h: Any) -> None:
    while chunk := f.read(CHUNK):
        h.update(chunk)


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


SCRATCH_KINDS = ("blob-", "import-", "unzip-", "model-", "hub-", "tmp")


def scratch_prefix(kind: str) -> str:
    """``kind-PID-``: a scratch file's name says which process writes it, so one left by a
    process that died can be told from one still being written."""
    return f"{kind}-{os.getpid()}-"


def sweep_scratch(tmp: Path, legacy_age_s: float = 86_400.0) -> int:
    """Remove scratch files and folders that dead processes left in ``tmp``; returns how
    many. Names from before they carried a process id go once a day old."""
    import shutil

    removed = 0
    for entry in tmp.iterdir() if tmp.is_dir() else []:
        if not entry.name.startswith(SCRATCH_KINDS):
            continue  # not ours: left alone
        parts = entry.name.split("-", 2)
        if len(parts) == 3 and parts[1].isdigit():
            stale = not process_alive(int(parts[1]))
        else:
            try:
                stale = time.time() - entry.stat().st_mtime > legacy_age_s
            except FileNotFoundError:
                continue
        if not stale:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed += 1
    return removed


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists (where that cannot be told: assume it does)."""
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A killed process whose parent is gone too stays a zombie until something reaps it (in a
    # container, PID 1 may never): it exists, but is no job.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2:][:1] not in ("Z", "X")
