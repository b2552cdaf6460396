"""A table cell that sorts by a key (a number, a date) rather than by its text."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QTableWidgetItem


class SortItem(QTableWidgetItem):
    def __init__(self, text: str, key: Any) -> None:
        super().__init__(text)
        self.key = key

    def __lt__(self, other: QTableWidgetItem) -> bool:
        if isinstance(other, SortItem):
            try:
                return bool(self.key < other.key)
            except TypeError:
                pass
        return super().__lt__(other)
