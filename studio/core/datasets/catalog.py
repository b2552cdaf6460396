"""Imported datasets: immutable Parquet snapshots in the blob store, listed in the database."""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pyarrow import ArrowException

from studio.core.datasets.profile import profile_columns
from studio.core.datasets.readers import read_table
from studio.core.errors import InputError, NotFoundError
from studio.core.events import Emit, Progress
from studio.core.store import now
from studio.core.workspace import Workspace

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    digest: str
    rows: int
    columns: list[dict[str, Any]]
    source: str
    created: float

    @property
    def column_names(self) -> list[str]:
        return [c["name"] for c in self.columns]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "digest": self.digest, "rows": self.rows,
            "columns": self.columns, "source": self.source, "created": self.created,
        }


def check_name(name: str, what: str = "dataset") -> str:
    if not NAME_RE.match(name):
        raise InputError(
            f"invalid {what} name {name!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def name_from_path(path: Path) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", path.stem).strip("-._") or "dataset"
    return stem[:64]


def import_dataset(
    ws: Workspace, path: Path, name: str | None = None, emit: Emit | None = None
) -> DatasetInfo:
    """Read ``path``, store it as a Parquet snapshot and list it under ``name``.

    Re-importing identical content under the same name returns the existing dataset. An
    explicit ``name`` that is taken by other content is an error; a derived one gets a suffix.
    """
    emit = emit or (lambda _e: None)
    explicit = name is not None
    name = check_name(name) if name is not None else name_from_path(path)
    emit(Progress("read", 0, 3, f"reading {path.name}"))
    df = read_table(path)
    emit(Progress("write", 1, 3, f"{len(df):,} rows × {len(df.columns)} columns"))
    with tempfile.TemporaryDirectory(dir=ws.tmp) as tmp:
        snap = Path(tmp) / "snapshot.parquet"
        try:
            df.to_parquet(snap, index=False, compression="zstd")
        except (ValueError, TypeError, ArrowException) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(f"{path.name}: cannot be stored as a table: {reason}") from exc
        digest = ws.blobs.put_file(snap)
    emit(Progress("register", 2, 3, "registering"))
    columns = profile_columns(df)
    table = ws.db.db["datasets"]
    with ws.db.immediate():
        candidate, n = name, 1
        while True:
            existing = list(table.rows_where("name = ?", [candidate]))
            if not existing:
                break
            if existing[0]["digest"] == digest:
                emit(Progress("register", 3, 3, "already imported"))
                return _info(existing[0])
            if explicit:
                raise InputError(f"a dataset named {candidate!r} already exists; "
                                 "choose another name")
            n += 1
            candidate = f"{name[:60]}-{n}"
        row = {
            "name": candidate, "digest": digest, "rows": len(df),
            "columns": json.dumps(columns), "source": str(path.resolve()),
            "description": "", "created": now(),
        }
        table.insert(row)
    emit(Progress("register", 3, 3, "done"))
    return _info(row)


def _info(row: dict[str, Any]) -> DatasetInfo:
    return DatasetInfo(
        name=row["name"], digest=row["digest"], rows=row["rows"],
        columns=json.loads(row["columns"]), source=row["source"], created=row["created"],
    )


def list_datasets(ws: Workspace) -> list[DatasetInfo]:
    return [_info(r) for r in ws.db.db["datasets"].rows_where(order_by="created")]


def get_dataset(ws: Workspace, name: str) -> DatasetInfo:
    rows = list(ws.db.db["datasets"].rows_where("name = ?", [name]))
    if not rows:
        raise NotFoundError(f"no dataset named {name!r} (see `studio data ls`)")
    return _info(rows[0])


def load_frame(ws: Workspace, info: DatasetInfo) -> pd.DataFrame:
    return pd.read_parquet(ws.blobs.verified_path(info.digest))
