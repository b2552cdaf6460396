"""Sniff a delimited text file: encoding, delimiter, decimal mark, header. Library first:
BOMs, charset-normalizer for legacy encodings, csv.Sniffer for the delimiter."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from studio.core.errors import InputError

SAMPLE_BYTES = 256 * 1024
MAX_FIRST_LINE = 16 << 20  # a header longer than this is no table's
MAX_COLUMNS = 100_000
SNIFFER_CHARS = 64 * 1024
# Python's csv module refuses fields over 128 KiB, which pyarrow reads fine (a long text
# cell); pyarrow's own limit is a row per block, so nothing it reads is refused here.
FIELD_LIMIT = 16 << 20
DELIMITERS = ",;\t|"
_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?$")
_COMMA_DECIMAL = re.compile(r"^[+-]?\d+,\d+$")
_DOT_DECIMAL = re.compile(r"^[+-]?\d+\.\d+$")


@dataclass(frozen=True)
class CsvDialect:
    encoding: str  # a codec name pyarrow and Python both know
    delimiter: str
    decimal: str
    header: list[str]  # the column names, made up when the file has no header row
    has_header: bool
    multiline: bool  # quoted values span lines: parsing cannot split blocks at newlines


def sniff_csv(path: Path, delimiter: str | None = None) -> CsvDialect:
    _allow_long_fields()
    raw, whole = _sample(path)
    if not whole and b"\n" not in raw and b"\r" not in raw:
        raise InputError(f"{path.name}: the first line is over {MAX_FIRST_LINE >> 20} MiB "
                         "long; a table's header or first row never is (not a table?)")
    # whole lines only: a character cut in two at the sample's end is no sign of an encoding
    lines_end = max(raw.rfind(b"\n"), raw.rfind(b"\r")) + 1
    encoding = detect_encoding(raw if whole else raw[:lines_end], path.name, whole=True)
    text = raw.decode(encoding, errors="replace").lstrip("\ufeff")
    lines = text.splitlines()
    if not whole and len(lines) > 1:
        lines = lines[:-1]  # the sample may end in the middle of a line
    lines = [ln for ln in lines if ln.strip()]
    if not lines:
        raise InputError(f"{path.name}: the file has no rows")
    sample = "\n".join(lines[:200])
    if delimiter is None:
        delimiter = _delimiter(sample)
    rows = list(csv.reader(io.StringIO(sample), delimiter=delimiter))
    multiline = any("\n" in v or "\r" in v for r in rows for v in r)
    if multiline and whole:  # pyarrow would read to the end of the file as one value
        line = _unclosed_quote(text, delimiter)
        if line is not None:
            raise InputError(f"{path.name}: malformed CSV at line {line}: a quote opened "
                             "there is never closed")
    first = rows[0]
    if len(first) > MAX_COLUMNS:
        raise InputError(f"{path.name}: {len(first):,} columns in the first row; at most "
                         f"{MAX_COLUMNS:,} are supported (is it a table?)")
    has_header = _has_header(rows)
    header = [v.strip() for v in first] if has_header else [
        f"column_{i + 1}" for i in range(len(first))]
    _check_names(header, path.name)
    body = [v.strip() for r in rows[1 if has_header else 0:] for v in r]
    decimal = "."
    if delimiter != "," and any(_COMMA_DECIMAL.match(v) for v in body) \
            and not any(_DOT_DECIMAL.match(v) for v in body):
        decimal = ","
    return CsvDialect(encoding, delimiter, decimal, header, has_header, multiline)


def detect_encoding(raw: bytes, label: str, whole: bool = False) -> str:
    """``whole``: ``raw`` ends at a line's end (else a sample cut anywhere: it is judged up
    to its last line break)."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if raw.startswith(b"\xef\xbb\xbf"):
        return "utf-8"  # the BOM is skipped when reading
    if b"\x00" in raw:
        utf16 = _utf16_without_bom(raw)
        if utf16 is None:
            raise InputError(f"{label}: looks like a binary file, not text")
        return utf16
    cut = raw.rfind(b"\n") if len(raw) == SAMPLE_BYTES and not whole else len(raw)
    try:
        raw[: cut if cut > 0 else len(raw)].decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    from studio.core.datasets.encoding import legacy_encoding

    encoding = legacy_encoding(raw)
    if encoding is None:
        raise InputError(f"{label}: the text encoding could not be recognised")
    return encoding


def _utf16_without_bom(raw: bytes) -> str | None:
    """UTF-16 saved without its byte-order mark (some Windows tools): text whose every other
    byte is zero. Its byte order is the side the zeros are on."""
    n = len(raw) - len(raw) % 2
    if n < 4:
        return None
    even, odd = raw[0:n:2], raw[1:n:2]
    for codec, zeros, chars in (("utf-16-le", odd, even), ("utf-16-be", even, odd)):
        if zeros.count(0) >= 0.9 * len(zeros) and chars.count(0) <= 0.01 * len(chars):
            try:
                text = raw[:n].decode(codec)
            except UnicodeDecodeError:
                return None
            return codec if "\x00" not in text else None
    return None


def _unclosed_quote(text: str, delimiter: str) -> int | None:
    """The line where a quoted value opens that the end of ``text`` (the whole file) finds
    still open; None when every quote closes (or the file is malformed otherwise, which
    pyarrow may well accept)."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)
    start = 1
    try:
        for _ in reader:
            start = reader.line_num + 1
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            return start
    return None


def _has_header(rows: list[list[str]]) -> bool:
    """A header unless the first row is clearly data. Numbers below a first cell that is
    not one say header; numbers under numbers say data. In a file of text columns only
    (sentences and their labels look exactly like this) the first row is a header unless it
    cannot be one: an empty or repeated name, or a value its column's body holds again
    (a category of headerless rows), or a cell no name looks like (an e-mail, a date, a
    sentence)."""
    first, body = [v.strip() for v in rows[0]], rows[1:]
    if not any(first):
        return False
    if all(_NUMBER.match(v) for v in first if v):
        return False  # a first row of numbers is data
    numeric_columns = 0
    for j, head in enumerate(first):
        cells = [r[j].strip() for r in body if j < len(r) and r[j].strip()]
        if cells and sum(bool(_NUMBER.match(c)) for c in cells) >= 0.8 * len(cells):
            numeric_columns += 1
            if not _NUMBER.match(head):
                return True
    if numeric_columns:
        return False  # numbers under numbers: no header row
    if not all(first) or len(set(first)) < len(first):
        return False
    if body and not all(_looks_like_a_name(v) for v in first):
        return False  # an e-mail, a date, a sentence: a row of data
    for j, head in enumerate(first):
        if any(j < len(r) and r[j].strip() == head for r in body):
            return False
    return True


_NOT_A_NAME = re.compile(r"@|://|^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}|^\d{1,2}:\d{2}")


def _looks_like_a_name(cell: str) -> bool:
    """What a column name looks like: short, a few words, no address, date or time."""
    return len(cell) <= 40 and len(cell.split()) <= 5 and not _NOT_A_NAME.search(cell)


def _allow_long_fields() -> None:
    """Only ever raised, never lowered: another reader in this process may rely on it."""
    if csv.field_size_limit() < FIELD_LIMIT:
        csv.field_size_limit(FIELD_LIMIT)


def _sample(path: Path) -> tuple[bytes, bool]:
    """The file's start, and whether that is all of it: SAMPLE_BYTES, or more when the first
    line is longer (a wide table's header: 50,000 gene ids), then SAMPLE_BYTES of rows."""
    with open(path, "rb") as f:
        raw = f.read(SAMPLE_BYTES)
        while b"\n" not in raw and b"\r" not in raw and len(raw) < MAX_FIRST_LINE:
            more = f.read(1 << 20)
            if not more:
                return raw, True
            raw += more
        if len(raw) > SAMPLE_BYTES:  # a long first line: a few rows after it too
            raw += f.read(SAMPLE_BYTES)
        return raw, not f.read(1)


def _delimiter(sample: str) -> str:
    # csv.Sniffer's quote regex is quadratic on long unbalanced text: it sees a bounded
    # sample, and a first line longer than that is judged by counting alone
    first_line_end = sample.find("\n")
    if first_line_end < 0 or first_line_end > SNIFFER_CHARS:
        return _counted_delimiter(sample.split("\n", 1)[0])
    try:
        return csv.Sniffer().sniff(sample[:SNIFFER_CHARS], delimiters=DELIMITERS).delimiter
    except csv.Error:
        return _counted_delimiter(sample.splitlines()[0])


def _counted_delimiter(first: str) -> str:
    counts = {d: first.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _check_names(names: list[str], label: str) -> None:
    seen: set[str] = set()
    for i, n in enumerate(names):
        if not n:
            raise InputError(f"{label}: column {i + 1} has no name")
        if n in seen:
            raise InputError(f"{label}: duplicate column name {n!r}")
        seen.add(n)


def locate_bad_row(path: Path, dialect: CsvDialect, limit_s: float = 30.0) -> str:
    """Where a parse error is, for the message: pyarrow does not say which line."""
    import time

    _allow_long_fields()
    deadline = time.monotonic() + limit_s
    expected = len(dialect.header)
    with open(path, encoding=dialect.encoding, errors="replace", newline="") as f:
        reader = csv.reader(f, delimiter=dialect.delimiter, strict=True)
        start = 1
        try:
            for row in reader:
                if row and len(row) != expected:
                    return f"line {start}: expected {expected} fields, found {len(row)}"
                start = reader.line_num + 1
                if time.monotonic() > deadline:
                    break
        except csv.Error as exc:
            return f"line {start}: {exc} (an unterminated quote?)"
    return "a malformed row"
