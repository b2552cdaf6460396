"""The end of a version's life: archive (hidden from lists and from NAME, still there),
delete (refused while an alias points at it or a server serves it), and ``gc``, which
removes the files nothing refers to any more."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from studio.core.errors import InputError
from studio.core.registry.servers import serving
from studio.core.registry.versions import resolve
from studio.core.store import now
from studio.core.workspace import Workspace

# Blobs younger than this are left to gc: a registration or import in flight writes its
# files before the row that refers to them.
GC_GRACE_S = 3600.0


def archive(ws: Workspace, ref: str, archived: bool = True) -> tuple[str, int]:
    with ws.db.immediate() as conn:
        name, number = resolve(ws, ref)
        conn.execute("UPDATE versions SET archived = ? WHERE name = ? AND version = ?",
                     [now() if archived else None, name, number])
    return name, number


def compressing(ws: Workspace, ref: str) -> bool:
    """Whether a live compression job reads the version ``ref`` (NAME:N): its source, or
    a stage it made that the next stage of a chain starts from."""
    import json

    from studio.core.job_rows import alive

    name, _, number = ref.rpartition(":")
    made_by = ws.db.conn.execute("SELECT job_id FROM versions WHERE name = ? AND version = ?",
                                 [name, int(number)]).fetchone()
    cursor = ws.db.conn.execute(
        "SELECT id, kind, spec, status, pid, created FROM jobs WHERE kind = 'compress' AND"
        " status IN ('queued', 'running')")
    names = [d[0] for d in cursor.description]
    for values in cursor.fetchall():
        row = dict(zip(names, values, strict=True))
        try:
            source = json.loads(row["spec"] or "{}").get("source")
        except ValueError:
            source = None
        if (source == ref or (made_by and made_by[0] == row["id"])) and alive(row):
            return True
    return False


def delete_version(ws: Workspace, ref: str) -> tuple[str, int]:
    """Remove a version's row, tags and lineage; its files go at the next ``gc``."""
    with ws.db.immediate() as conn:
        name, number = resolve(ws, ref)
        held = [a for (a,) in conn.execute(
            "SELECT alias FROM aliases WHERE name = ? AND version = ? ORDER BY alias",
            [name, number])]
        if held:
            raise InputError(
                f"{name}:{number} is {', '.join(f'{name}@{a}' for a in held)}: move or "
                f"remove the alias first (`studio models alias {name} {held[0]} N` or "
                f"`--remove`)")
        urls = serving(ws).get(f"{name}:{number}")
        if urls:
            where = ", ".join("a server that is starting" if u.startswith("starting-") else u
                              for u in urls)
            raise InputError(f"{name}:{number} is being served at {where}: stop that server "
                             "first")
        if compressing(ws, f"{name}:{number}"):
            raise InputError(f"{name}:{number} is being compressed: stop that run (or wait "
                             "for it) first")
        for table in ("tags", "lineage"):
            conn.execute(f"DELETE FROM {table} WHERE name = ? AND version = ?", [name, number])
        conn.execute("UPDATE candidates SET version = NULL WHERE version = ?",
                     [f"{name}:{number}"])
        # the models row stays, with the highest number given: never given again
        conn.execute("DELETE FROM versions WHERE name = ? AND version = ?", [name, number])
    return name, number


@dataclass(frozen=True)
class GcReport:
    removed: int
    freed_bytes: int
    kept_recent: int  # unreferenced, but younger than the grace period

    def summary(self) -> str:
        from studio.core.printable import human_bytes

        text = (f"removed {self.removed:,} unreferenced file(s), freed "
                f"{human_bytes(self.freed_bytes)}")
        if self.kept_recent:
            text += (f"; {self.kept_recent:,} newer than {GC_GRACE_S / 3600:g} h kept (work "
                     "in progress may still need them)")
        return text


def gc(ws: Workspace, grace_s: float = GC_GRACE_S, dry_run: bool = False) -> GcReport:
    """Remove every blob that no dataset, version, card or candidate refers to."""
    from studio.core.integrity import VerifyReport, blob_uses

    report = VerifyReport()
    uses = blob_uses(ws, report)
    if report.unchecked:
        raise InputError("cannot tell which files are in use: "
                         + "; ".join(report.unchecked) + " (run `studio verify`)")
    cutoff = time.time() - grace_s

    def sort(paths: Iterable[Path]) -> tuple[list[tuple[Path, int]], int]:
        """(old enough to remove, with sizes), and how many are too recent."""
        old, recent = [], 0
        for path in paths:
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            if stat.st_mtime > cutoff:
                recent += 1
            else:
                old.append((path, stat.st_size))
        return old, recent

    candidates, recent = sort(p for p in ws.blobs.root.glob("??/*")
                              if p.parent.name + p.name not in uses and p.is_file())
    # Looked at again under the write lock: a writer stores (or touches) its files before
    # the row that uses them and, under this lock, checks they are still there; a file
    # touched since the first look is in use by one of them.
    with contextlib.nullcontext() if dry_run else ws.db.immediate():
        doomed, touched = sort(path for path, _size in candidates)
        if not dry_run:
            ws.blobs.discard({p.parent.name + p.name for p, _size in doomed})
    removed, freed = len(doomed), sum(size for _p, size in doomed)
    return GcReport(removed, freed, recent + touched)


def disk_use(ws: Workspace) -> dict[str, int]:
    """Model name → bytes of its versions' files (a file two versions share counts once)."""
    import json

    seen: dict[str, set[str]] = {}
    for name, text in ws.db.conn.execute("SELECT name, manifest FROM versions"):
        seen.setdefault(name, set()).update(json.loads(text).get("files", {}).values())
    out = {}
    for name, digests in seen.items():
        total = 0
        for d in digests:
            try:
                total += ws.blobs.path(d).stat().st_size
            except OSError:
                continue
        out[name] = total
    return out
