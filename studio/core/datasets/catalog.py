"""Imported datasets: immutable Parquet snapshots in the blob store, listed in the database."""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from studio.core.datasets.csv_stream import csv_to_parquet
from studio.core.datasets.excel import SheetChoice, pick_sheet
from studio.core.datasets.lazy_table import ROW_GROUP_ROWS, LazyTable
from studio.core.datasets.prepare import is_image_dataset
from studio.core.datasets.profile import PROFILE_RULES, column_profile
from studio.core.datasets.readers import check_file, dialect_for, read_arrow
from studio.core.errors import Cancelled, InputError, IntegrityError, NotFoundError, StudioError
from studio.core.events import Emit, Event, Log, Progress
from studio.core.names import check_name
from studio.core.printable import printable, printable_path
from studio.core.store import BlobStore, now, scratch_prefix
from studio.core.workspace import Workspace


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    digest: str
    rows: int
    columns: list[dict[str, Any]]
    source: str
    created: float
    description: str = ""
    choices: dict[str, Any] = field(default_factory=dict)  # last target and task chosen
    # how the file was read: format, encoding, delimiter, decimal, sheet, sheets, warnings
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def column_names(self) -> list[str]:
        return [c["name"] for c in self.columns]

    def import_report(self) -> dict[str, Any]:
        """What an import tells: the size and how the file was read (None where it does not
        apply, or for a dataset imported before these were kept)."""
        keys = ("format", "encoding", "delimiter", "decimal", "sheet", "sheets")
        return {"dataset": self.name, "rows": self.rows, "columns": len(self.columns),
                **{k: self.details.get(k) for k in keys},
                "warnings": list(self.details.get("warnings") or [])}

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "digest": self.digest, "rows": self.rows,
            "columns": self.columns, "source": self.source, "created": self.created,
            "description": self.description, "choices": self.choices,
            "details": self.details,
        }


log = logging.getLogger(__name__)
BLOB_NAME = re.compile(r"[0-9a-f]{64}")
SAMPLE_GROUPS = 200


def name_from_path(path: Path) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", path.stem).strip("-._") or "dataset"
    return stem[:64]


def source_key(path: Path, options: dict[str, Any] | None = None) -> str:
    """Where the file is, what it looked like and how it was read: a changed file, or
    another sheet of it, gets a new key."""
    suffix = f"|{json.dumps(options, sort_keys=True)}" if options else ""
    if path.is_dir():  # a folder changes when any file in it changes, moves or is renamed
        import hashlib

        h = hashlib.sha256()
        for f in sorted(path.rglob("*")):
            if f.is_file():
                st = f.stat()
                h.update(os.fsencode(f.relative_to(path).as_posix())
                         + f"|{st.st_size}|{st.st_mtime_ns}\n".encode())
        return f"{printable_path(path.resolve())}|{h.hexdigest()}{suffix}"
    st = path.stat()
    # printable: SQLite stores UTF-8 only, and a name need not be (bytes on Linux)
    return f"{printable_path(path.resolve())}|{st.st_size}|{st.st_mtime_ns}{suffix}"


def import_options(path: Path, fmt: str, sheet: str | None = None) -> dict[str, Any]:
    """The choices that change what an import of ``path`` gives, resolved: the default sheet
    and the same sheet asked for by name are one import."""
    choice = _sheet_choice(path, fmt, sheet)
    return {} if choice is None else {"sheet": choice.name}


def _sheet_choice(path: Path, fmt: str, sheet: str | None) -> SheetChoice | None:
    return pick_sheet(path, sheet) if fmt == "excel" else None


def find_imported(ws: Workspace, path: Path, name: str | None = None,
                  sheet: str | None = None) -> DatasetInfo | None:
    """The dataset already made from this unchanged file, read the same way (under ``name``,
    if given)."""
    try:
        fmt = check_file(path)
        return _find_by_key(ws, source_key(path, import_options(path, fmt, sheet)), name)
    except (OSError, StudioError):
        return None  # the import itself says what is wrong


def _find_by_key(ws: Workspace, key: str, name: str | None,
                 emit: Emit | None = None) -> DatasetInfo | None:
    """The dataset made from this file, if its stored files are intact: a damaged one is
    not found, so importing the file again stores good copies in their place."""
    for row in ws.db.db["datasets"].rows_where("source_key = ?", [key]):
        if name is None or row["name"] == name:
            info = _info(row)
            damage = None if _looks_intact(ws, info) else damaged_file(ws, info)
            if damage is None:
                return info
            if emit is not None:
                emit(Log(f"{damage} of {info.name!r} is damaged: reading the file again "
                         "repairs it"))
            return None
    return None


def _looks_intact(ws: Workspace, info: DatasetInfo) -> bool:
    """Every stored file of the dataset there, none written since the dataset was made: what
    an instant re-import may take on trust (anything else is hashed). Damage that leaves no
    trace in a file's time is found by reading it, or by `studio verify`, which moves a
    damaged file aside so that the next import stores it again."""
    digests = [info.digest]
    if is_image_dataset(info.column_names):
        try:
            column = pq.read_table(ws.blobs.path(info.digest), columns=["digest"]).column(0)
        except (OSError, pa.ArrowException):
            return False
        digests += [d for d in column.to_pylist() if isinstance(d, str) and BLOB_NAME.fullmatch(d)]
    written_by = info.created  # blobs are stored before their row: later means rewritten
    try:
        return all(ws.blobs.path(d).stat().st_mtime <= written_by for d in set(digests))
    except (OSError, StudioError):
        return False


def damaged_file(ws: Workspace, info: DatasetInfo) -> str | None:
    """The first of the dataset's stored files that is missing or damaged; None when all
    are intact. Hashes each one."""
    if not is_image_dataset(info.column_names):
        return None if ws.blobs.intact(info.digest) else "the stored snapshot"
    try:
        pictures = picture_files(ws, info)  # hashes the snapshot as it reads it
    except (StudioError, OSError, pa.ArrowException):
        return "the stored snapshot"
    for path, digest in sorted(pictures.items()):
        if not ws.blobs.intact(digest):
            return f"picture {path!r}"
    return None


def check_pictures(ws: Workspace, info: DatasetInfo, frame: pd.DataFrame,
                   emit: Emit | None = None,
                   should_stop: Callable[[], bool] = lambda: False) -> None:
    """Hash every picture of an image dataset (``frame``: its manifest) once, before
    training reads them by path: a damaged one stops the run with its name instead of
    being trained on. Missing ones are left to :func:`prepare`, which counts them."""
    if not is_image_dataset(info.column_names):
        return
    seen: set[str] = set()
    pairs = list(zip(frame["path"], frame["digest"], strict=True))
    for i, (path, digest) in enumerate(pairs):
        if should_stop():
            raise Cancelled("training cancelled")
        if emit is not None and i % 256 == 0:
            emit(Progress("check", i, len(pairs), f"checking pictures {i:,}/{len(pairs):,}"))
        if digest in seen:
            continue
        seen.add(digest)
        try:
            ws.blobs.verified_path(digest)
        except NotFoundError:
            continue
        except IntegrityError:
            raise IntegrityError(
                f"picture {path!r} of dataset {info.name!r} is damaged on disk (it no longer "
                "matches its digest); run `studio verify` to list every damaged file, then "
                "import the folder again to repair it") from None


def import_dataset(
    ws: Workspace, path: Path, name: str | None = None, emit: Emit | None = None,
    should_stop: Callable[[], bool] = lambda: False, sheet: str | None = None,
) -> DatasetInfo:
    """Read ``path``, store it as an immutable Parquet snapshot and list it under ``name``.

    The same unchanged file, read with the same options (a workbook's sheet), is found by its
    path, size and time without being read again (unless its stored files are damaged: they
    are stored again); other identical content is found by the snapshot's digest. An
    explicit ``name`` taken by other content is an error; a derived one gets a suffix.
    ``details`` of the result say how the file was read. An import that fails removes the
    blobs it added: the workspace is left as it was.
    """
    blobs = ws.blobs.tracking()
    try:
        return _import(ws, blobs, path, name, emit, should_stop, sheet)
    except BaseException:
        _discard_new(ws, blobs.created)
        raise


def _import(
    ws: Workspace, blobs: BlobStore, path: Path, name: str | None, emit: Emit | None,
    should_stop: Callable[[], bool], sheet: str | None,
) -> DatasetInfo:
    outer = emit or (lambda _e: None)
    warnings: list[str] = []

    def emit(event: Event) -> None:  # every warning of the readers, for the summary
        if isinstance(event, Log) and event.level == "warning":
            warnings.append(event.message)
        outer(event)

    explicit = name is not None
    name = check_name(name) if name is not None else name_from_path(path)
    fmt = check_file(path)
    details: dict[str, Any] = {"format": fmt, "encoding": None, "delimiter": None,
                               "decimal": None, "sheet": None, "sheets": None}
    choice = _sheet_choice(path, fmt, sheet)
    if choice is not None:
        details.update(sheet=choice.name, sheets=choice.sheets)
    # a folder's key walks every file: compute it once
    key = source_key(path, {} if choice is None else {"sheet": choice.name})
    table = ws.db.db["datasets"]
    seen = _find_by_key(ws, key, name if explicit else None, emit)
    if seen is not None:
        emit(Progress("done", 1, 1, "already imported"))
        return seen

    if fmt == "images":
        _check_names_inside(path)
    size = path.stat().st_size if path.is_file() else 0
    emit(Progress("read", 0, size, f"reading {printable(path.name)}"))
    pictures: set[str] = set()
    fd, tmp_name = tempfile.mkstemp(dir=ws.blobs.tmp, prefix=scratch_prefix("import"),
                                    suffix=".part")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if fmt in ("images", "zip"):
            from studio.core.datasets.images import image_folder_table, image_zip_table

            read = image_folder_table if fmt == "images" else image_zip_table
            arrow = read(path, blobs, emit, should_stop)
            pq.write_table(arrow, tmp, compression="snappy", row_group_size=ROW_GROUP_ROWS)
            rows, schema = arrow.num_rows, arrow.schema
            pictures = set(arrow.column("digest").to_pylist())
        elif fmt in ("csv", "tsv"):
            result = csv_to_parquet(
                path, dialect_for(path, fmt), tmp,
                lambda done, total: emit(Progress("read", done, total, "")), should_stop)
            rows, schema = result.rows, result.schema
            if result.dialect is not None:
                details.update(encoding=result.dialect.encoding,
                               delimiter=result.dialect.delimiter,
                               decimal=result.dialect.decimal)
            for w in result.warnings:
                emit(Log(w, "warning"))
        else:
            if choice is not None and choice.note:
                emit(Log(choice.note, "warning"))
            arrow = read_arrow(path, fmt, details["sheet"],
                               lambda message: emit(Log(message, "warning")))
            pq.write_table(arrow, tmp, compression="snappy", row_group_size=ROW_GROUP_ROWS)
            rows, schema = arrow.num_rows, arrow.schema
        if rows == 0:
            raise InputError(f"{path.name}: no rows after the header")
        emit(Progress("store", size, size, f"{rows:,} rows × {len(schema)} columns"))
        digest = blobs.adopt(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    details["warnings"] = warnings
    columns = [{"name": f.name, "dtype": str(f.type)} for f in schema]
    with ws.db.immediate():
        # A delete of the same content may have removed shared files since they were written.
        if any(not ws.blobs.exists(d) for d in (digest, *pictures)):
            raise InputError(f"{path.name}: its stored files were deleted while it was being "
                             "imported; import it again")
        candidate, n = name, 1
        while True:
            existing = list(table.rows_where("name = ?", [candidate]))
            if not existing:
                break
            if existing[0]["digest"] == digest:
                table.update(candidate, {"source_key": key, "details": json.dumps(details)})
                return _info({**existing[0], "details": json.dumps(details)})
            if explicit:
                raise InputError(f"a dataset named {candidate!r} already exists; "
                                 "choose another name")
            n += 1
            candidate = f"{name[:60]}-{n}"
        row = {
            "name": candidate, "digest": digest, "rows": rows,
            "columns": json.dumps(columns), "source": printable_path(path.resolve()),
            "description": "", "created": now(), "source_key": key,
            "details": json.dumps(details),
        }
        table.insert(row)
    return _info(row)


def _discard_new(ws: Workspace, created: set[str] | None) -> None:
    """Remove the blobs a failed import added, so that it leaves the workspace as it was.
    Under the write lock, and not those a dataset or version listed meanwhile uses (the
    same pictures imported at once); when that cannot be told, they stay as orphans."""
    if not created:
        return
    from studio.core import job_rows

    others = [r for r in ws.db.db["jobs"].rows_where(
        "kind = 'import' AND status IN ('queued', 'running')")
        if r["pid"] != os.getpid() and job_rows.alive(r)]
    if others:  # it may share pictures it found stored by this one: orphans are safer
        log.warning("kept %d file(s) of a failed import: another import is running",
                    len(created))
        return
    try:
        with ws.db.immediate() as conn:
            used: set[str] = set()
            for info in list_datasets(ws):
                used |= {info.digest} | _picture_digests(ws, info, strict=True)
            for manifest_digest, text in conn.execute(
                    "SELECT manifest_digest, manifest FROM versions"):
                used |= {manifest_digest, *json.loads(text).get("files", {}).values()}
            ws.blobs.discard(created - used)
    except (StudioError, OSError, ValueError, sqlite3.Error, pa.ArrowException) as exc:
        log.warning("kept %d file(s) of a failed import: %s", len(created), exc)


def _check_names_inside(folder: Path) -> None:
    """Labels and paths are stored as UTF-8 text: a name inside that is not (bytes on Linux)
    is refused before anything is copied. The folder's own name may be anything."""
    for p in folder.rglob("*"):
        if printable(p.name) != p.name:
            inside = printable_path(p.relative_to(folder))
            raise InputError(f"{printable(folder.name)}: the name '{inside}' is not valid "
                             "UTF-8; rename it and import again")


def cached_profile(ws: Workspace, info: DatasetInfo) -> list[dict[str, Any]] | None:
    for row in ws.db.db["profiles"].rows_where("digest = ? AND rules = ?",
                                               [info.digest, PROFILE_RULES], limit=1):
        return list(json.loads(row["columns"]))
    return None


def dataset_profile(ws: Workspace, info: DatasetInfo, emit: Emit | None = None
                    ) -> list[dict[str, Any]]:
    """Column statistics, computed once per snapshot and kept in the database.

    One column is read at a time: a snapshot of millions of rows is never whole in memory.
    """
    cached = cached_profile(ws, info)
    if cached is not None:
        return cached
    parquet = pq.ParquetFile(ws.blobs.verified_path(info.digest))
    names = parquet.schema_arrow.names
    profile = []
    for i, name in enumerate(names):
        if emit is not None:
            emit(Progress("profile", i, len(names), f"profiling {name}"))
        profile.append(column_profile(parquet.read(columns=[name]).column(0).to_pandas()
                                      .rename(name)))
    ws.db.db["profiles"].upsert({"digest": info.digest, "columns": json.dumps(profile),
                                 "rules": PROFILE_RULES},
                                pk="digest")
    return profile


def _info(row: dict[str, Any]) -> DatasetInfo:
    return DatasetInfo(
        name=row["name"], digest=row["digest"], rows=row["rows"],
        columns=json.loads(row["columns"]), source=row["source"], created=row["created"],
        description=row.get("description") or "",
        choices=json.loads(row.get("choices") or "{}"),
        details=json.loads(row.get("details") or "{}"),
    )


def list_datasets(ws: Workspace) -> list[DatasetInfo]:
    return [_info(r) for r in ws.db.db["datasets"].rows_where(order_by="created")]


def get_dataset(ws: Workspace, name: str) -> DatasetInfo:
    rows = list(ws.db.db["datasets"].rows_where("name = ?", [name]))
    if not rows:
        raise NotFoundError(f"no dataset named {name!r} (see `studio data ls`)")
    return _info(rows[0])


def dataset_by_digest(ws: Workspace, digest: str) -> DatasetInfo:
    for row in ws.db.db["datasets"].rows_where("digest = ?", [digest], limit=1):
        return _info(row)
    raise NotFoundError(f"no dataset holds the snapshot {digest[:12]} any more")


def load_frame(ws: Workspace, info: DatasetInfo) -> pd.DataFrame:
    return pd.read_parquet(ws.blobs.verified_path(info.digest))


def load_sample(ws: Workspace, info: DatasetInfo, rows: int) -> pd.DataFrame:
    """About ``rows`` rows for a preview: the whole dataset when it is that small, else row
    groups spread evenly over the file (never its first rows only: files are often sorted)."""
    path = ws.blobs.verified_path(info.digest)
    parquet = pq.ParquetFile(path)
    meta = parquet.metadata
    if meta.num_rows <= rows or meta.num_row_groups < 2:
        return parquet.read().to_pandas()
    count = meta.num_row_groups
    wanted = min(count, SAMPLE_GROUPS)  # many groups, a stride of each: spread, not blocks
    groups = sorted({int(i * count / wanted) for i in range(wanted)})
    per_group = max(1, rows // len(groups))
    parts = []
    for g in groups:  # one group in memory at a time, a stride of its rows kept
        table = parquet.read_row_group(g)
        step = max(1, table.num_rows // per_group)
        parts.append(table.take(pa.array(range(0, table.num_rows, step))))
    return pa.concat_tables(parts).to_pandas()


def rename_dataset(ws: Workspace, name: str, new_name: str) -> DatasetInfo:
    check_name(new_name)
    with ws.db.immediate():
        info = get_dataset(ws, name)
        if new_name == name:
            return info
        if list(ws.db.db["datasets"].rows_where("name = ?", [new_name])):
            raise InputError(f"a dataset named {new_name!r} already exists")
        ws.db.conn.execute("UPDATE datasets SET name = ? WHERE name = ?", [new_name, name])
    return get_dataset(ws, new_name)


def describe_dataset(ws: Workspace, name: str, description: str) -> DatasetInfo:
    get_dataset(ws, name)
    ws.db.conn.execute("UPDATE datasets SET description = ? WHERE name = ?",
                       [description.strip()[:2000], name])
    return get_dataset(ws, name)


def remember_choices(ws: Workspace, name: str, target: str, task: str) -> None:
    """Keep what the person trains this dataset on: the next time it opens with them."""
    ws.db.conn.execute("UPDATE datasets SET choices = ? WHERE name = ?",
                       [json.dumps({"target": target, "task": task}), name])


def delete_dataset(ws: Workspace, name: str) -> None:
    """Unlist the dataset; its snapshot (and an image dataset's pictures) go too, unless
    another dataset shares them.

    Models trained on it keep working: a version carries its own recipe and files. Files are
    removed under the write lock, after the row's removal is committed: a crash leaves
    unreferenced files at worst, and an import of the same content, which checks its files
    under that lock, never lists a dataset whose files are gone.
    """
    from studio.core import job_rows

    job_rows.reap(ws)  # a row left by a killed process holds nothing
    with ws.db.immediate() as conn:
        info = get_dataset(ws, name)
        for row in ws.db.db["jobs"].rows_where(
                "kind = 'train' AND status IN ('queued', 'running')"):
            if job_rows.alive(row) and json.loads(row["spec"] or "{}").get("dataset") == name:
                raise InputError(f"{name!r} is being trained on (job {row['id']}): stop the "
                                 "training first")
        files = {info.digest} | _picture_digests(ws, info)
        conn.execute("DELETE FROM datasets WHERE name = ?", [name])
    try:
        with ws.db.immediate() as conn:
            for other in list_datasets(ws):
                files -= {other.digest} | _picture_digests(ws, other, strict=True)
            if info.digest in files:
                conn.execute("DELETE FROM profiles WHERE digest = ?", [info.digest])
            for digest in files:
                try:
                    ws.blobs.path(digest).unlink(missing_ok=True)
                except OSError as exc:  # one file held open elsewhere: the rest still go
                    log.warning("could not remove %s: %s", digest[:12], exc)
    except (StudioError, OSError, sqlite3.Error, pa.ArrowException) as exc:
        # The dataset is gone already; keeping files that might be shared is the safe side.
        log.warning("kept the files of %s: %s", name, exc)


def _picture_digests(ws: Workspace, info: DatasetInfo, strict: bool = False) -> set[str]:
    """The image blobs an image dataset's manifest names; empty for a table. ``strict``: a
    manifest that cannot be read, or is damaged, is an error (its pictures must not be
    taken for unused)."""
    try:
        return set(picture_files(ws, info).values())
    except (OSError, pa.ArrowException, StudioError):
        if strict:
            raise
        return set()


def picture_files(ws: Workspace, info: DatasetInfo) -> dict[str, str]:
    """Picture path → blob digest, from an image dataset's verified manifest; empty for a
    table."""
    if not is_image_dataset(info.column_names):
        return {}
    table = pq.read_table(ws.blobs.verified_path(info.digest), columns=["path", "digest"])
    return {p: d for p, d in zip(table.column(0).to_pylist(), table.column(1).to_pylist(),
                                  strict=True)
            if isinstance(d, str) and BLOB_NAME.fullmatch(d)}


def export_csv(ws: Workspace, name: str, dest: Path) -> int:
    """The dataset as CSV, cells that a spreadsheet would run as formulas neutralized."""
    from studio.core.files import atomic_write_text, csv_safe

    frame = load_frame(ws, get_dataset(ws, name))
    atomic_write_text(dest, csv_safe(frame).to_csv(index=False))
    return len(frame)


def load_table(ws: Workspace, info: DatasetInfo) -> Any:
    """The snapshot for viewing: read a row group at a time when its row groups are small
    (every import writes them so), else whole as an Arrow table."""
    path = ws.blobs.verified_path(info.digest)
    lazy = LazyTable(path)
    if lazy.largest_row_group() <= 4 * ROW_GROUP_ROWS:
        lazy.slice(0, 1)  # the first rows are read here, off the view's thread
        return lazy
    return pq.read_table(path)
