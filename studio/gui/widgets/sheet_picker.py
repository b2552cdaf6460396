"""Ask which sheet of a workbook to import, when it has more than one with data."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QInputDialog, QWidget

EXCEL_SUFFIXES = (".xlsx", ".xlsm")


def ask_sheet(parent: QWidget, path: Path) -> tuple[bool, str | None]:
    """(go on, the sheet): (True, None) when there is nothing to ask, (False, None) when the
    person cancels. A workbook that cannot be read is left to the import to explain."""
    if path.suffix.lower() not in EXCEL_SUFFIXES or not path.is_file():
        return True, None
    from studio.core.datasets.excel import excel_sheets
    from studio.core.errors import InputError

    try:
        sheets = [s for s in excel_sheets(path) if s[2] > 0]
    except InputError:
        return True, None
    if len(sheets) < 2:
        return True, None
    largest = max(range(len(sheets)), key=lambda i: (sheets[i][1] + 1) * sheets[i][2])
    chosen = show_dialog(parent, path, [sheet_label(*s) for s in sheets], largest)
    return (False, None) if chosen is None else (True, sheets[chosen][0])


def sheet_label(name: str, rows: int, columns: int) -> str:
    return (f"{name} — {rows:,} row{'' if rows == 1 else 's'} × "
            f"{columns} column{'' if columns == 1 else 's'}")


def show_dialog(parent: QWidget, path: Path, labels: list[str], current: int) -> int | None:
    """The index of the chosen label; None on Cancel."""
    label, ok = QInputDialog.getItem(
        parent, "Choose a sheet", f"{path.name} has {len(labels)} sheets with data. "
        "Import which one?", labels, current, False)
    return labels.index(label) if ok and label in labels else None
