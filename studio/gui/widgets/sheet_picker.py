"""Ask which sheet of a workbook to import, when it has more than one with data."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QInputDialog, QWidget

EXCEL_SUFFIXES = (".xlsx", ".xlsm")


def is_workbook(path: Path) -> bool:
    return path.suffix.lower() in EXCEL_SUFFIXES and path.is_file()


def list_sheets(path: Path) -> list[tuple[str, int, int]]:
    """The workbook's sheets with their sizes: file work, for a worker thread."""
    from studio.core.datasets.excel import excel_sheets

    return excel_sheets(path)


def ask_sheet(parent: QWidget, path: Path, sheets: list[tuple[str, int, int]]
              ) -> tuple[bool, str | None]:
    """(go on, the sheet) from the sheets ``list_sheets`` found: the one sheet with data, or
    the person's choice among several, the largest first; (False, None) on Cancel."""
    filled = [s for s in sheets if s[2] > 0]
    if len(filled) < 2:
        return True, filled[0][0] if filled else None
    from studio.core.datasets.excel import largest_sheet

    largest = [s[0] for s in filled].index(largest_sheet(filled))
    chosen = show_dialog(parent, path, [sheet_label(*s) for s in filled], largest)
    return (False, None) if chosen is None else (True, filled[chosen][0])


def sheet_label(name: str, rows: int, columns: int) -> str:
    return (f"{name} — {rows:,} row{'' if rows == 1 else 's'} × "
            f"{columns} column{'' if columns == 1 else 's'}")


def show_dialog(parent: QWidget, path: Path, labels: list[str], current: int) -> int | None:
    """The index of the chosen label; None on Cancel."""
    label, ok = QInputDialog.getItem(
        parent, "Choose a sheet", f"{path.name} has {len(labels)} sheets with data. "
        "Import which one?", labels, current, False)
    return labels.index(label) if ok and label in labels else None
