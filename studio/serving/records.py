"""The bodies the records route reads, each turned into one list of rows.

Accepted: ``{"instances": [{column: value}, ...]}`` (KServe V1, TF Serving), MLflow's
``{"dataframe_split": {"columns": [...], "data": [[...]]}}``, ``{"dataframe_records":
[...]}`` and column-wise ``{"inputs": {column: [values]}}``, and a CSV body sent as
``text/csv`` (its header row names the columns). Every format becomes the same rows, so a
model answers each exactly as it answers ``instances``.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from studio.core.errors import InputError

FORMATS = ("instances", "dataframe_split", "dataframe_records", "inputs")
USAGE = ('send {"instances": [{column: value, ...}, ...]}, {"dataframe_split": {"columns": '
         '[...], "data": [[...], ...]}}, {"dataframe_records": [...]}, {"inputs": {column: '
         '[values]}} or a CSV body (Content-Type: text/csv)')


@dataclass(frozen=True)
class CsvBody:
    """A ``text/csv`` body, parsed once the model (and so its row limit) is known."""

    data: bytes
    charset: str = "utf-8"


def is_csv(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() == "text/csv"


def csv_body(data: bytes, content_type: str | None) -> CsvBody:
    """The body with the charset its Content-Type names (UTF-8 when it names none)."""
    for param in (content_type or "").split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"')
            try:
                return CsvBody(data, codecs.lookup(charset).name)
            except LookupError:
                raise InputError(f"unknown charset {charset[:40]!r} in Content-Type") from None
    return CsvBody(data)


def rows_of(body: Any, max_rows: int) -> list[Mapping[str, Any]]:
    """The rows a records body holds, at most ``max_rows`` (counted before any is built)."""
    if isinstance(body, CsvBody):
        return _csv_rows(body, max_rows)
    if not isinstance(body, Mapping):
        raise InputError(f"body must be a JSON object: {USAGE}")
    given = [k for k in FORMATS if k in body]
    if len(given) != 1:
        raise InputError(("body holds both " + " and ".join(repr(k) for k in given)
                          + "; send one") if given else USAGE)
    key = given[0]
    value = body[key]
    if key == "dataframe_split":
        return _split_rows(value, max_rows)
    if key == "inputs" and isinstance(value, Mapping):
        return _column_rows(value, max_rows)
    if not isinstance(value, list):
        raise InputError(f"{key!r} must be a list of objects")
    _check_count(len(value), max_rows)
    return value


def _check_count(rows: int, max_rows: int) -> None:
    if rows > max_rows:
        raise InputError(f"{rows:,} rows is over this model's limit of {max_rows:,} per "
                         "request")


def _split_rows(split: Any, max_rows: int) -> list[Mapping[str, Any]]:
    """MLflow's pandas "split" orient: column names, then rows of values in that order."""
    if not isinstance(split, Mapping):
        raise InputError("'dataframe_split' must be an object with 'columns' and 'data'")
    columns, data = split.get("columns"), split.get("data")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise InputError("'dataframe_split' needs 'columns', a list of column names")
    if len(set(columns)) != len(columns):
        raise InputError("'dataframe_split' names a column twice")
    if not isinstance(data, list):
        raise InputError("'dataframe_split' needs 'data', a list of rows")
    _check_count(len(data), max_rows)
    index = split.get("index")
    if index is not None and (not isinstance(index, list) or len(index) != len(data)):
        raise InputError("'dataframe_split': 'index' must be a list with one entry per row")
    rows = []
    for i, row in enumerate(data):
        if not isinstance(row, list) or len(row) != len(columns):
            raise InputError(f"'dataframe_split' row {i} must be a list of {len(columns)} "
                             "values, one per column")
        rows.append(dict(zip(columns, row, strict=True)))
    return rows


def _column_rows(columns: Mapping[str, Any], max_rows: int) -> list[Mapping[str, Any]]:
    """Column-wise ``{"inputs": {column: [values]}}`` (MLflow, TF Serving's columnar form)."""
    lengths = {len(v) if isinstance(v, list) else -1 for v in columns.values()}
    if -1 in lengths:
        raise InputError("'inputs' must map each column to a list of its values")
    if len(lengths) > 1:
        raise InputError(f"the columns of 'inputs' differ in length: {sorted(lengths)}")
    rows = lengths.pop() if lengths else 0
    _check_count(rows, max_rows)
    names = list(columns)
    return [{n: columns[n][i] for n in names} for i in range(rows)]


def _csv_rows(body: CsvBody, max_rows: int) -> list[Mapping[str, Any]]:
    """A CSV body's rows, read as the dataset importer reads a CSV file: its missing-value
    words are missing here too, and numbers are typed per column."""
    import pandas as pd

    from studio.core.datasets.csv_stream import NULLS

    if not body.data.strip():
        raise InputError("the CSV body is empty: send a header row, then one row per line")
    try:
        frame = pd.read_csv(io.BytesIO(body.data), encoding=body.charset, nrows=max_rows + 1,
                            keep_default_na=False, na_values=NULLS)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError,
            ValueError) as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
        raise InputError(f"the body is not a readable CSV ({first})") from None
    if not isinstance(frame.index, pd.RangeIndex):  # pandas took extra fields as an index
        raise InputError("the body is not a readable CSV (the first row has more fields "
                         "than the header)")
    if len(frame) > max_rows:
        raise InputError(f"the CSV holds more than this model's limit of {max_rows:,} rows "
                         "per request")
    if len(frame) == 0:
        raise InputError("the CSV body has a header row but no rows")
    # pandas renames a second 'x' to 'x.1': read the header as written to catch it
    text = io.TextIOWrapper(io.BytesIO(body.data), encoding=body.charset, errors="replace",
                            newline="")
    try:
        names = next(csv.reader(text), [])
    except csv.Error:  # a header field past the csv module's size limit, say
        raise InputError("the CSV header row cannot be read") from None
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputError(f"the CSV header names column {twice[0][:60]!r} twice")
    return frame.to_dict("records")
