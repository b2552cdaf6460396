"""Read a user's file into a DataFrame, with one clear message for each way it can be bad."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from studio.core.errors import InputError

TABULAR_SUFFIXES = {
    ".csv": "csv", ".tsv": "tsv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet",
    ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".xlsx": "excel",
    ".feather": "feather", ".arrow": "feather",
}


def detect_format(path: Path) -> str:
    fmt = TABULAR_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(TABULAR_SUFFIXES))
        raise InputError(f"{path.name}: unsupported file type {path.suffix or '(none)'!r}; "
                         f"supported: {known}")
    return fmt


def read_table(path: Path) -> pd.DataFrame:
    """Read ``path`` as a table; raise :class:`InputError` with a readable reason if it is bad."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a data file")
    fmt = detect_format(path)
    if path.stat().st_size == 0:
        raise InputError(f"{path.name}: the file is empty")
    try:
        df = _read(path, fmt)
    except InputError:
        raise
    except Exception as exc:  # pyarrow and pandas raise many types for malformed input
        reason = _first_line(exc)
        raise InputError(f"{path.name}: cannot be read as {fmt.upper()}: {reason}") from exc
    validate_frame(df, path.name)
    return df


def _read(path: Path, fmt: str) -> pd.DataFrame:
    if fmt in ("csv", "tsv"):
        _reject_binary(path)
        sep = "\t" if fmt == "tsv" else None
        if sep is None:
            sep = _sniff_delimiter(path)
        _check_header(path, sep)
        return pd.read_csv(path, sep=sep, engine="pyarrow")
    if fmt == "parquet":
        return pd.read_parquet(path)
    if fmt == "feather":
        return pd.read_feather(path)
    if fmt == "jsonl":
        return pd.read_json(path, lines=True)
    if fmt == "json":
        return pd.read_json(path)
    if fmt == "excel":
        return pd.read_excel(path)
    raise InputError(f"{path.name}: unsupported format {fmt}")


def _head_lines(path: Path, limit: int = 64 * 1024) -> list[str]:
    with open(path, "rb") as f:
        head = f.read(limit).decode("utf-8-sig", errors="replace")
    lines = head.splitlines()
    return lines[:-1] if len(lines) > 1 else lines  # the last line may be cut short


def _sniff_delimiter(path: Path) -> str:
    sample = "\n".join(_head_lines(path)[:50])
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        first = sample.splitlines()[0] if sample else ""
        counts = {d: first.count(d) for d in (",", ";", "\t", "|")}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] else ","


def _check_header(path: Path, sep: str) -> None:
    """pyarrow renames duplicate names silently (a, a.1): catch them before it does."""
    lines = _head_lines(path)
    if not lines:
        return
    names = next(csv.reader([lines[0]], delimiter=sep))
    seen: set[str] = set()
    for n in names:
        if n.strip() and n in seen:
            raise InputError(f"{path.name}: duplicate column name {n!r}")
        seen.add(n)


def _reject_binary(path: Path) -> None:
    with open(path, "rb") as f:
        head = f.read(8192)
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(f"{path.name}: looks like a binary file, not text")


def validate_frame(df: pd.DataFrame, label: str) -> None:
    names = [str(c) for c in df.columns]
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
    if len(df) == 0:
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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
