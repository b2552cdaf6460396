"""Excel workbooks: which sheets they have, and which one to read.

A workbook often opens with a cover or notes sheet before the data, so the default is the
largest sheet, not the first; the sizes come from each sheet's recorded dimensions, read
from the zip without loading any cell.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import pandas as pd

from studio.core.errors import InputError


@dataclass(frozen=True)
class SheetChoice:
    name: str
    sheets: list[str]  # every sheet of the workbook, in its order
    note: str | None  # why this sheet, when the workbook had several to choose from


def excel_sheets(path: Path) -> list[tuple[str, int, int]]:
    """Each worksheet's name, rows below its header row, and columns; (name, 0, 0) when empty.

    Read from the workbook's index and each sheet's recorded extent, a few KiB of the zip:
    openpyxl would first load every shared string (seconds on a big workbook), and it is
    asked only for a sheet that records no extent.
    """
    if not zipfile.is_zipfile(path):
        raise InputError(f"{path.name}: not an Excel workbook (.xlsx is a zip file)")
    try:
        return _recorded_sizes(path)
    except DAMAGED:
        return _counted_sizes(path)  # an unusual layout or a damaged part: openpyxl says


def sheet_names(path: Path) -> list[str]:
    """The worksheets' names from the workbook's index alone: no cell is read."""
    if not zipfile.is_zipfile(path):
        raise InputError(f"{path.name}: not an Excel workbook (.xlsx is a zip file)")
    try:
        with zipfile.ZipFile(path) as z:
            return [name for name, _ in _worksheets(z)]
    except DAMAGED:
        return [name for name, _, _ in _counted_sizes(path)]


def _worksheets(z: zipfile.ZipFile) -> list[tuple[str, str]]:
    """(name, zip member) of each worksheet, in the workbook's order; chart sheets left out."""
    book = ElementTree.fromstring(_small_part(z, "xl/workbook.xml"))
    rels = ElementTree.fromstring(_small_part(z, "xl/_rels/workbook.xml.rels"))
    targets = {r.get("Id"): r.get("Target", "") for r in rels.iter(f"{_PKG}Relationship")
               if r.get("Type", "").endswith("/worksheet")}
    out = []
    for sheet in book.iter(f"{_MAIN}sheet"):
        target = targets.get(sheet.get(f"{_REL}id"))
        if target is not None:
            member = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
            out.append((sheet.get("name", ""), member))
    if not out:
        raise ValueError("no worksheets")
    return out


# What a damaged or unusual workbook raises while its zip and XML are read.
DAMAGED = (KeyError, ValueError, OSError, EOFError, RuntimeError, NotImplementedError,
           zipfile.BadZipFile, zlib.error, ElementTree.ParseError)
MAX_INDEX_BYTES = 16 << 20
_A_CELL = re.compile(rb"<(?:\w+:)?c[\s>/]")
_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_PKG = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_DIMENSION = re.compile(rb"<(?:\w+:)?dimension\s+ref=\"\$?([A-Z]+)\$?(\d+)"
                        rb"(?::\$?([A-Z]+)\$?(\d+))?\"")


def _recorded_sizes(path: Path) -> list[tuple[str, int, int]]:
    with zipfile.ZipFile(path) as z:
        sizes = []
        for name, member in _worksheets(z):
            with z.open(member) as f:
                head = f.read(8192)
            found = _DIMENSION.search(head)
            if found is None:
                raise ValueError("no recorded extent")
            last_col, last_row = found.group(3) or found.group(1), found.group(4) or found.group(2)
            rows, cols = int(last_row), _column_number(last_col.decode())
            if rows <= 1 and cols <= 1 and not _A_CELL.search(head):
                rows = cols = 0  # a new sheet records A1 as its extent
            sizes.append((name, max(rows - 1, 0), cols))
        return sizes


def _small_part(z: zipfile.ZipFile, member: str) -> bytes:
    """An index part of the workbook; a few KiB in any real file, refused when huge (a zip
    stops reading at the size its header gives, so the check holds)."""
    if z.getinfo(member).file_size > MAX_INDEX_BYTES:
        raise InputError(f"{member} of the workbook is over {MAX_INDEX_BYTES >> 20} MiB: "
                         "not an index a spreadsheet program writes")
    return z.read(member)


def _column_number(letters: str) -> int:
    number = 0
    for ch in letters:
        number = number * 26 + ord(ch) - ord("A") + 1
    return number


def _counted_sizes(path: Path) -> list[tuple[str, int, int]]:
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises KeyError, ValueError… for a damaged workbook
        raise InputError(f"{path.name}: cannot be read as an Excel workbook: "
                         f"{str(exc).strip() or type(exc).__name__}") from exc
    try:
        sizes = []
        for sheet in book.worksheets:
            if not (sheet.max_row and sheet.max_column):  # no recorded dimensions: count
                sheet.calculate_dimension(force=True)
            rows, cols = sheet.max_row or 0, sheet.max_column or 0
            if rows <= 1 and cols <= 1 and _first_cell(sheet) is None:
                rows = cols = 0  # a new sheet records A1 as its extent
            sizes.append((sheet.title, max(rows - 1, 0), cols))
        return sizes
    except DAMAGED as exc:
        raise InputError(f"{path.name}: cannot be read as an Excel workbook: "
                         f"{str(exc).strip() or type(exc).__name__}") from exc
    finally:
        book.close()


def _first_cell(sheet: object) -> object:
    for row in sheet.iter_rows(max_row=1, max_col=1, values_only=True):  # type: ignore[attr-defined]
        return row[0] if row else None
    return None


def pick_sheet(path: Path, sheet: str | None) -> SheetChoice:
    """The sheet asked for by name, else the one with the most cells."""
    if sheet is not None:  # a sheet asked for by name needs only the names
        names = sheet_names(path)
        if sheet not in names:
            raise InputError(f"{path.name}: no sheet {sheet!r}; its sheets: {', '.join(names)}")
        return SheetChoice(sheet, names, None)
    sizes = excel_sheets(path)
    names = [name for name, _, _ in sizes]
    if not names:
        raise InputError(f"{path.name}: the workbook has no worksheets")
    listed = ", ".join(names)
    name = largest_sheet(sizes)
    if name is None:
        return SheetChoice(names[0], names, None)  # the read says what is wrong with it
    note = (f"sheet {name!r} (the largest of {len(names)}: {listed})"
            if sum(1 for _, _, cols in sizes if cols) > 1 else None)
    return SheetChoice(name, names, note)


def largest_sheet(sizes: list[tuple[str, int, int]]) -> str | None:
    """The sheet with the most cells (the first of equals); None when all are empty."""
    filled = [(name, (rows + 1) * cols) for name, rows, cols in sizes if cols]
    return max(filled, key=lambda f: f[1])[0] if filled else None


def read_excel(path: Path, name: str) -> pd.DataFrame:
    return pd.read_excel(path, sheet_name=name, engine="openpyxl")
