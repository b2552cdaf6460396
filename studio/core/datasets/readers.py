"""Read a user's file, with one clear message for each way it can be bad.

Delimited text goes through :mod:`sniff` (encoding, delimiter, decimal mark, header) and
pyarrow; the other formats through their pyarrow or pandas readers.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa

from studio.core.datasets.sniff import CsvDialect, sniff_csv
from studio.core.errors import InputError

Warn = Callable[[str], None]  # told what a reader chose for the person: a sheet, a JSON key

TABULAR_SUFFIXES = {
    ".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".txt": "csv", ".parquet": "parquet",
    ".pq": "parquet", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".xlsx": "excel",
    ".xlsm": "excel", ".feather": "feather", ".arrow": "feather", ".zip": "zip",
}


def detect_format(path: Path) -> str:
    fmt = TABULAR_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(TABULAR_SUFFIXES))
        raise InputError(f"{path.name}: unsupported file type {path.suffix or '(none)'!r}; "
                         f"supported: {known}")
    return fmt


def check_file(path: Path) -> str:
    """The file's format, after the checks every reader needs."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        return "images"
    fmt = detect_format(path)
    if path.stat().st_size == 0:
        raise InputError(f"{path.name}: the file is empty")
    return fmt


def dialect_for(path: Path, fmt: str) -> CsvDialect:
    return sniff_csv(path, "\t" if fmt == "tsv" else None)


def read_table(path: Path, sheet: str | None = None, warn: Warn | None = None
               ) -> pd.DataFrame:
    """Read ``path`` whole into a DataFrame (for ``studio predict`` and small files)."""
    fmt = check_file(path)
    if fmt in ("images", "zip"):
        raise InputError(f"{path.name}: expected a table (CSV, Parquet, JSON, Excel…)")
    if fmt in TYPED:
        return read_arrow(path, fmt).to_pandas()
    if fmt in ("csv", "tsv"):
        from studio.core.datasets.csv_stream import read_csv_table

        frame = read_csv_table(path, dialect_for(path, fmt)).to_pandas()
    else:
        frame = _guard(path, fmt, lambda: read_other(path, fmt, sheet, warn))
    validate_frame(frame, path.name)
    return frame


def read_arrow(path: Path, fmt: str, sheet: str | None = None, warn: Warn | None = None
               ) -> pa.Table:
    """A non-CSV file as an Arrow table, checked like :func:`read_table`."""
    if fmt in TYPED:
        table = _guard(path, fmt, lambda: TYPED[fmt](path))
        _check_names([str(n) for n in table.column_names], path.name)
        if table.num_rows == 0:
            raise InputError(f"{path.name}: no rows after the header")
        for name, column in zip(table.column_names, table.columns, strict=True):
            try:  # every later step (profile, training, the table view) goes through pandas
                column.slice(0, 100).to_pandas()
            except (pa.ArrowException, TypeError, ValueError):
                raise InputError(f"{path.name}: column {name!r} is of type {column.type}, "
                                 "which cannot be read here") from None
        return table
    frame = _guard(path, fmt, lambda: read_other(path, fmt, sheet, warn))
    validate_frame(frame, path.name)
    return _guard(path, fmt, lambda: pa.Table.from_pandas(frame, preserve_index=False))


def native_file(path: Path) -> pa.NativeFile:
    """``path`` opened for pyarrow by its bytes: pyarrow encodes a str path as UTF-8 and so
    cannot open a name that is not (surrogates on Linux)."""
    return pa.OSFile(os.fsencode(path))


def read_parquet(path: Path) -> pa.Table:
    import pyarrow.parquet as pq

    with native_file(path) as f:
        return pq.read_table(f)


def read_feather(path: Path) -> pa.Table:
    import pyarrow.feather as feather

    with native_file(path) as f:
        return feather.read_table(f)


# Formats that carry their own column types: lists, bytes and structs are kept (profiled by
# size, not trained on); in JSON or a sheet they are untyped objects, refused.
TYPED: dict[str, Callable[[Path], pa.Table]] = {"parquet": read_parquet, "feather": read_feather}


def read_other(path: Path, fmt: str, sheet: str | None = None, warn: Warn | None = None
               ) -> pd.DataFrame:
    warn = warn or (lambda _m: None)
    if fmt in TYPED:
        return TYPED[fmt](path).to_pandas()
    if fmt == "jsonl":
        return pd.read_json(path, lines=True)
    if fmt == "json":
        return _read_json(path, warn)
    if fmt == "excel":
        return _read_excel(path, sheet, warn)
    raise InputError(f"{path.name}: unsupported format {fmt}")


def _read_json(path: Path, warn: Warn) -> pd.DataFrame:
    """Records (a list of objects), columns (an object of lists), or records under one key of
    an object, as web APIs return them ({"data": [...], "next": null})."""
    import json

    with open(path, "rb") as f:
        data = json.load(f)
    if isinstance(data, dict):
        keys = [k for k, v in data.items() if _is_records(v)]
        if len(keys) > 1:
            named = ", ".join(repr(k) for k in keys)
            raise InputError(f"{path.name}: several keys hold lists of rows ({named}); "
                             "keep the one to import")
        if keys:
            warn(f"rows from the key {keys[0]!r}")
            data = data[keys[0]]
    if isinstance(data, list):
        if not all(isinstance(r, dict) for r in data):
            raise InputError(f"{path.name}: a JSON list must hold objects (one per row)")
        return pd.DataFrame.from_records(data)
    if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
        lengths = {len(v) for v in data.values()}
        if len(lengths) > 1:
            raise InputError(f"{path.name}: the JSON columns have different lengths")
        return pd.DataFrame(data)
    raise InputError(f"{path.name}: expected a list of row objects, an object of column "
                     "lists, or an object with one key holding a list of row objects")


def _is_records(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(r, dict) for r in value)


def _read_excel(path: Path, sheet: str | None, warn: Warn) -> pd.DataFrame:
    from studio.core.datasets.excel import pick_sheet, read_excel

    choice = pick_sheet(path, sheet)
    if choice.note:
        warn(choice.note)
    return read_excel(path, choice.name)


def _guard(path: Path, fmt: str, read):  # type: ignore[no-untyped-def]
    try:
        return read()
    except InputError:
        raise
    except Exception as exc:  # pyarrow and pandas raise many types for malformed input
        raise InputError(f"{path.name}: cannot be read as {fmt.upper()}: "
                         f"{_first_line(exc)}") from exc


def validate_frame(df: pd.DataFrame, label: str, rows: int | None = None) -> None:
    _check_names([str(c) for c in df.columns], label)
    if (len(df) if rows is None else rows) == 0:
        raise InputError(f"{label}: no rows after the header")
    for name in df.columns:
        if df[name].dtype != object:
            continue
        kinds = {type(v) for v in df[name].dropna().head(10_000)}
        if kinds & {dict, list}:
            raise InputError(f"{label}: column {name!r} holds nested objects or lists; "
                             "flatten them into columns first")
        if len(kinds) > 1:  # e.g. 1 and "x" in one JSON column: keep it, as text
            df[name] = df[name].map(lambda v: v if v is None or v != v else str(v))


def _check_names(names: list[str], label: str) -> None:
    if not names:
        raise InputError(f"{label}: no columns found")
    empty = [i + 1 for i, n in enumerate(names) if not n.strip() or n.startswith("Unnamed: ")]
    if empty:
        raise InputError(f"{label}: column {empty[0]} has no name")
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise InputError(f"{label}: duplicate column name {n!r}")
        seen.add(n)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
