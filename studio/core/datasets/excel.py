"""Excel workbooks: which sheets they have, and which one to read.

A workbook often opens with a cover or notes sheet before the data, so the default is the
largest sheet, not the first; the sizes come from each sheet's recorded dimensions, which
openpyxl reads without loading the cells.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from studio.core.errors import InputError


@dataclass(frozen=True)
class SheetChoice:
    name: str
    sheets: list[str]  # every sheet of the workbook, in its order
    note: str | None  # why this sheet, when the workbook had several to choose from


def excel_sheets(path: Path) -> list[tuple[str, int, int]]:
    """Each worksheet's name, rows below its header row, and columns; (name, 0, 0) when empty."""
    import openpyxl

    if not zipfile.is_zipfile(path):
        raise InputError(f"{path.name}: not an Excel workbook (.xlsx is a zip file)")
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
    finally:
        book.close()


def _first_cell(sheet: object) -> object:
    for row in sheet.iter_rows(max_row=1, max_col=1, values_only=True):  # type: ignore[attr-defined]
        return row[0] if row else None
    return None


def pick_sheet(path: Path, sheet: str | int | None) -> SheetChoice:
    """The sheet asked for (a name or a 0-based position), else the one with the most cells."""
    sizes = excel_sheets(path)
    names = [name for name, _, _ in sizes]
    listed = ", ".join(names)
    if isinstance(sheet, int):
        if not 0 <= sheet < len(names):
            raise InputError(f"{path.name}: no sheet number {sheet + 1}; its sheets: {listed}")
        return SheetChoice(names[sheet], names, None)
    if sheet is not None:
        if sheet not in names:
            raise InputError(f"{path.name}: no sheet {sheet!r}; its sheets: {listed}")
        return SheetChoice(sheet, names, None)
    filled = [(name, (rows + 1) * cols) for name, rows, cols in sizes if cols]
    if not filled:
        return SheetChoice(names[0], names, None)  # the read says what is wrong with it
    name = max(filled, key=lambda f: f[1])[0]  # the first of equals
    note = (f"sheet {name!r} (the largest of {len(names)}: {listed})"
            if len(filled) > 1 else None)
    return SheetChoice(name, names, note)


def read_excel(path: Path, name: str) -> pd.DataFrame:
    return pd.read_excel(path, sheet_name=name, engine="openpyxl")
