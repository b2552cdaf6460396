"""Stream a delimited text file into Parquet: bounded memory, progress, cancel.

pyarrow parses blocks on one thread while another writes Parquet, so both cores work. Types
are inferred from the first block; a later value that does not fit (a word in a number
column) restarts the stream with the columns widened, and each is reported as mixed. pyarrow
names one column per failure: the failing block is read again as text and every column it
does not fit is widened at once, so a row of text under 200 number columns costs one
restart, not 200.
"""

from __future__ import annotations

import io
import os
import queue
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from studio.core.datasets.lazy_table import ROW_GROUP_ROWS
from studio.core.datasets.recipe import NA_TOKENS
from studio.core.datasets.sniff import CsvDialect, locate_bad_row
from studio.core.errors import Cancelled, InputError

BLOCK_BYTES = 4 << 20
# pyarrow's null list is case-sensitive: every usual spelling of the shared vocabulary
NULLS = sorted({v for t in NA_TOKENS for v in (t, t.upper(), t.title(), t.capitalize())}
               | {"NaN", "-NaN", "N/a"})
_COLUMN_ERROR = re.compile(r"In CSV column #(\d+): CSV conversion error to (\w+)")

Progress = Callable[[int, int], None]


@dataclass
class StreamResult:
    rows: int
    schema: pa.Schema
    warnings: list[str] = field(default_factory=list)
    table: pa.Table | None = None
    dialect: CsvDialect | None = None  # the one that read the file, after any restart
    reads: int = 1  # reads from the start: 1 + the restarts that widened columns


class _Clash(Exception):
    """A value did not fit its column's type after ``rows`` rows were read fine: in the
    block that follows them (``to_end``: somewhere after them)."""

    def __init__(self, message: str, rows: int, to_end: bool = False) -> None:
        super().__init__(message)
        self.rows, self.to_end = rows, to_end


class _CountingFile:
    """A file whose reads are counted, for progress in bytes."""

    def __init__(self, path: Path) -> None:
        self.f = open(path, "rb")  # noqa: SIM115 - closed by pyarrow through close()
        self.read_bytes = 0
        self.closed = False

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.read_bytes += len(data)
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.f.close()
        self.closed = True


def csv_to_parquet(
    path: Path, dialect: CsvDialect, dest: Path, progress: Progress,
    should_stop: Callable[[], bool] = lambda: False,
) -> StreamResult:
    """Stream ``path`` into the Parquet file ``dest``; memory stays at a few blocks."""
    return _resilient(path, dialect, lambda d, overrides: _stream(
        path, d, overrides, dest, progress, should_stop))


def read_csv_table(path: Path, dialect: CsvDialect) -> pa.Table:
    """The whole file as one Arrow table (multi-threaded), typed as the stream would be."""

    def attempt(d: CsvDialect, overrides: dict[str, pa.DataType]) -> StreamResult:
        read, parse, convert = _options(d, overrides)
        # opened by its bytes: pyarrow cannot encode a name that is not UTF-8
        try:
            with pa.OSFile(os.fsencode(path)) as source:
                table = pacsv.read_csv(source, read_options=read, parse_options=parse,
                                       convert_options=convert)
        except pa.ArrowInvalid as exc:
            if _COLUMN_ERROR.search(str(exc)) is None:
                raise
            raise _Clash(str(exc), 0, to_end=True) from None  # the file is in memory anyway
        result = StreamResult(table.num_rows, table.schema)
        result.table = table
        return result

    result = _resilient(path, dialect, attempt)
    assert result.table is not None
    return result.table


def _resilient(path: Path, dialect: CsvDialect,
               attempt: Callable[[CsvDialect, dict[str, pa.DataType]], StreamResult]
               ) -> StreamResult:
    """Quoted line breaks past the sniffed sample, or legacy bytes past it, restart the
    read with the dialect that fits: a file is never half-understood."""
    try:
        result = _widening(path, dialect, attempt)
        if not any(pa.types.is_binary(f.type) for f in result.schema):
            result.dialect = dialect
            return result
        problem = "binary"
    except InputError as exc:
        problem = str(exc)
    if dialect.encoding == "utf-8" and ("encoding" in problem or problem == "binary"):
        return _resilient(path, replace(dialect, encoding="cp1252"), attempt)
    if not dialect.multiline and "malformed CSV" in problem:
        return _resilient(path, replace(dialect, multiline=True), attempt)
    if problem == "binary":
        raise InputError(f"{path.name}: text is neither UTF-8 nor cp1252")
    raise InputError(problem)


def _widening(
    path: Path, dialect: CsvDialect,
    attempt: Callable[[CsvDialect, dict[str, pa.DataType]], StreamResult],
) -> StreamResult:
    overrides: dict[str, pa.DataType] = {}
    for reads in range(1, len(dialect.header) * 2 + 2):
        try:
            result = attempt(dialect, overrides)
            result.warnings = [_widened(name, overrides[name]) for name in dialect.header
                               if name in overrides]
            result.reads = reads
            return result
        except (pa.ArrowInvalid, _Clash) as exc:
            message = str(exc)
            if _widen(message, dialect.header, overrides) is None:
                raise InputError(f"{path.name}: {_explain(message, path, dialect)}") from None
            if isinstance(exc, _Clash):
                overrides.update(_clashing_columns(path, dialect, overrides, exc.rows,
                                                   exc.to_end))
    raise InputError(f"{path.name}: could not settle the column types")


def _widened(name: str, kind: pa.DataType) -> str:
    if kind == pa.string():
        return f"column {name!r} mixes numbers and text; kept as text"
    return f"column {name!r} holds decimals after whole numbers or blanks; read as numbers"


def _clashing_columns(path: Path, dialect: CsvDialect, overrides: dict[str, pa.DataType],
                      rows: int, to_end: bool) -> dict[str, pa.DataType]:
    """The wider type of every column whose values in the block after ``rows`` rows do not
    fit the type the stream gives it. That block is read again as text (two batches: the
    rest of the block where skipping ends, then a whole one, cover it) and its types are
    inferred by pyarrow itself (same nulls, decimal mark, true/false words): only a type
    that cannot hold them is widened; anything unclear is left to the next restart."""
    read, parse, convert = _options(dialect, overrides)
    with pa.OSFile(os.fsencode(path)) as source:  # the types the stream gives: first block
        stream = pacsv.open_csv(source, read_options=read, parse_options=parse,
                                convert_options=convert).schema
    candidates = [f.name for f in stream if not _is_text(f.type)]
    if not candidates:
        return {}
    read.skip_rows_after_names = rows
    convert.column_types = {n: pa.string() for n in dialect.header}
    convert.include_columns = candidates
    batches = []
    with pa.OSFile(os.fsencode(path)) as source:
        for batch in pacsv.open_csv(source, read_options=read, parse_options=parse,
                                    convert_options=convert):
            batches.append(batch)
            if len(batches) == 2 and not to_end:
                break
    if not batches:
        return {}
    text = io.BytesIO()
    pacsv.write_csv(pa.Table.from_batches(batches), text,
                    pacsv.WriteOptions(include_header=False))  # strings quoted: kept whole
    inferred = pacsv.read_csv(
        io.BytesIO(text.getvalue()),
        read_options=pacsv.ReadOptions(column_names=candidates,
                                       block_size=max(1 << 20, len(text.getvalue()) + 1)),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(null_values=NULLS, strings_can_be_null=True,
                                             decimal_point=dialect.decimal)).schema
    wider: dict[str, pa.DataType] = {}
    for name in candidates:
        have, need = stream.field(name).type, inferred.field(name).type
        if _is_text(need):
            wider[name] = pa.string()
        elif pa.types.is_floating(need) and (pa.types.is_integer(have)
                                             or pa.types.is_null(have)):
            wider[name] = pa.float64()
        elif pa.types.is_integer(need) and pa.types.is_null(have):
            wider[name] = pa.float64()  # as a failure of the null type is widened
    return wider


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) \
        or pa.types.is_binary(kind) or pa.types.is_large_binary(kind)


def _options(
    dialect: CsvDialect, overrides: dict[str, pa.DataType]
) -> tuple[pacsv.ReadOptions, pacsv.ParseOptions, pacsv.ConvertOptions]:
    return (
        # the sniffer's (stripped, checked) names, so type overrides find their column
        pacsv.ReadOptions(block_size=BLOCK_BYTES, encoding=dialect.encoding,
                          column_names=dialect.header, skip_rows=1 if dialect.has_header else 0),
        pacsv.ParseOptions(delimiter=dialect.delimiter, newlines_in_values=dialect.multiline),
        pacsv.ConvertOptions(null_values=NULLS, strings_can_be_null=True,
                             column_types=overrides, decimal_point=dialect.decimal),
    )


def _widen(message: str, names: list[str], overrides: dict[str, pa.DataType]) -> str | None:
    """Widen the column pyarrow named; None when that cannot help."""
    match = _COLUMN_ERROR.search(message)
    if match is None:
        return None
    name = names[int(match.group(1))]
    if match.group(2) in ("string", "binary", "large_string"):
        return None  # an encoding problem, not a type one: widening cannot help
    if match.group(2) in ("int64", "int32", "null") and name not in overrides:
        overrides[name] = pa.float64()  # 1, 2, 2.5 (or empty, then numbers): numbers after all
        return name
    if overrides.get(name) == pa.string():
        return None
    overrides[name] = pa.string()
    return name


def _explain(message: str, path: Path, dialect: CsvDialect) -> str:
    if "CSV parse error" in message:
        return f"malformed CSV at {locate_bad_row(path, dialect)}"
    if "Could not skip initial" in message:  # a header line and nothing after it
        return "no rows after the header"
    if "UTF8" in message or "utf8" in message.lower() or "to string" in message:
        return f"text is not valid {dialect.encoding} (a different encoding?)"
    return message.splitlines()[0]


def _stream(
    path: Path, dialect: CsvDialect, overrides: dict[str, pa.DataType], dest: Path,
    progress: Progress, should_stop: Callable[[], bool],
) -> StreamResult:
    total = path.stat().st_size
    source = _CountingFile(path)
    read, parse, convert = _options(dialect, overrides)
    reader = pacsv.open_csv(pa.PythonFile(source, mode="r"), read_options=read,
                            parse_options=parse, convert_options=convert)
    batches: queue.Queue[Any] = queue.Queue(maxsize=4)  # bounds memory to a few blocks
    stop = threading.Event()

    def hand_over(item: Any) -> bool:
        while not stop.is_set():  # the writer may have left: never block for good
            try:
                batches.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in reader:
                if not hand_over(batch):
                    return
            hand_over(None)
        except BaseException as exc:  # handed to the writer's thread to raise there
            hand_over(exc)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    rows = 0
    try:
        with pq.ParquetWriter(dest, reader.schema, compression="snappy") as writer:
            while (item := batches.get()) is not None:
                if isinstance(item, pa.ArrowInvalid) and _COLUMN_ERROR.search(str(item)):
                    # batches come in order: the clash is in the block after ``rows``
                    raise _Clash(str(item), rows)
                if isinstance(item, BaseException):
                    raise item
                writer.write_batch(item, row_group_size=ROW_GROUP_ROWS)
                rows += item.num_rows
                progress(source.read_bytes, total)
                if should_stop():
                    raise Cancelled("import cancelled")
    finally:
        stop.set()
        thread.join(timeout=5)
        source.close()
    return StreamResult(rows, reader.schema)
