"""A virtual table model over an Arrow table: rows are turned into Python values a block at a
time, only when the view asks for them, so a million-row table opens at once."""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor

Index = QModelIndex | QPersistentModelIndex
if TYPE_CHECKING:
    import numpy as np

MISSING_COLOR = QColor("#9aa0a6")
DISPLAY = Qt.ItemDataRole.DisplayRole
FOREGROUND = Qt.ItemDataRole.ForegroundRole
ALIGNMENT = Qt.ItemDataRole.TextAlignmentRole
RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
BLOCK_ROWS = 256
CACHED_BLOCKS = 64
MAX_DECIMALS = 6
SIGNIFICANT = 6  # digits a measured value shows, as %g would
SCIENTIFIC_ABOVE, SCIENTIFIC_BELOW = 1e15, 1e-4
# Columns of codes rather than quantities, by name: "id", "user_id", "year", "zip", "userId".
_CODE_NAME = re.compile(
    r"(?i:(?:^|[^a-z])(?:id|uuid|guid|year|yr|zip|zipcode|postcode|postal|code|phone|isbn|sku)"
    r"s?(?:$|[^a-z]))|[a-z](?:Id|ID|Year|Code|Zip)s?$")


class TableModel(QAbstractTableModel):
    def __init__(self) -> None:
        super().__init__()
        self._table: Any = None  # pyarrow.Table
        self._names: list[str] = []
        self._rows = 0
        self._kinds: dict[str, str] = {}
        self._numbers: set[int] = set()  # columns of an Arrow number type: right-aligned
        self._blocks: OrderedDict[int, list[list[Any]]] = OrderedDict()

    def set_table(self, table: Any, kinds: dict[str, str] | None = None,
                  first_block: list[list[str | None]] | None = None) -> None:
        """Show ``table``; ``first_block`` is its first rows already formatted (by
        :func:`format_block` in a worker), so the first paint formats nothing."""
        self.beginResetModel()
        self._table = table
        self._names = list(table.column_names)
        self._rows = table.num_rows
        self._kinds = kinds or {}
        self._numbers = _number_columns(table.slice(0, 0).schema)  # a LazyTable has no .schema
        self._blocks.clear()
        if first_block is not None:
            self._blocks[0] = first_block
        self.endResetModel()

    def set_kinds(self, kinds: dict[str, str]) -> None:
        self._kinds = kinds
        if any(k == "identifier" for k in kinds.values()):
            self._blocks.clear()  # formatted before the kinds were known: ids lose separators
        if self._rows:
            self.dataChanged.emit(self.index(0, 0),
                                  self.index(self._rows - 1, len(self._names) - 1))

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._rows

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._names)

    def _text(self, row: int, col: int) -> str | None:
        """The cell as display text; None when it is missing. Formatted a block at a time."""
        start = row - row % BLOCK_ROWS
        block = self._blocks.get(start)
        if block is None:
            block = format_block(self._table, start, self._kinds)
            self._blocks[start] = block
            if len(self._blocks) > CACHED_BLOCKS:
                self._blocks.popitem(last=False)
        return block[col][row - start]

    def head_texts(self, col: int, rows: int) -> list[str]:
        """The first ``rows`` cells of a column as shown (one block, no Qt indexes)."""
        return ["—" if t is None else t
                for t in (self._text(r, col) for r in range(min(rows, self._rows)))]

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == DISPLAY:
            text = self._text(index.row(), index.column())
            return "—" if text is None else text
        if role == FOREGROUND:
            return MISSING_COLOR if self._text(index.row(), index.column()) is None else None
        if role == ALIGNMENT and index.column() in self._numbers:
            return RIGHT
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            if orientation == Qt.Orientation.Horizontal:
                return self._names[section]
            return str(section + 1)
        if role == Qt.ItemDataRole.ToolTipRole and orientation == Qt.Orientation.Horizontal:
            # the header elides a long name: the tip says it whole
            name = self._names[section]
            kind = self._kinds.get(name)
            return f"{name}\n{kind}" if kind else name
        return None


def _number_columns(schema: Any) -> set[int]:
    import pyarrow as pa

    return {i for i, field in enumerate(schema)
            if pa.types.is_integer(field.type) or pa.types.is_floating(field.type)
            or pa.types.is_decimal(field.type)}


def format_block(table: Any, start: int,
                 kinds: Mapping[str, str] | None = None) -> list[list[str | None]]:
    """Display texts of the block of rows from ``start``, column by column. No Qt: a worker
    thread may call it.

    Each column's format is decided once for the block (see :func:`column_formatter`);
    ``kinds`` are the profile's column kinds when known (the first block is formatted before
    the profile exists: the rules there must not need them).
    """
    piece = table.slice(start, BLOCK_ROWS)
    kinds = kinds or {}
    out = []
    for c, name in enumerate(piece.column_names):
        column = piece.column(c)
        fmt = column_formatter(column, str(name), kinds.get(str(name)))
        out.append([fmt(v) for v in column.to_pylist()])
    return out


def column_formatter(column: Any, name: str,
                     kind: str | None = None) -> Callable[[Any], str | None]:
    """How one column's cells read, decided from its Arrow type and its values in the block.

    Whole numbers are written in full with thousands separators (a float column of whole
    numbers too, as a column with gaps reads from a CSV); other floats get the decimals the
    block needs, at most :data:`MAX_DECIMALS`; scientific notation only for magnitudes a
    person would write that way. Codes get no separators: an "identifier" column, a column
    named like an id, year or code, and whole numbers that all look like years (1000–2999),
    since 2,008 is no year anyone writes.
    """
    import numpy as np  # not at module level: the window opens before numpy loads
    import pyarrow as pa

    kind_of = column.type
    if pa.types.is_dictionary(kind_of):
        kind_of = kind_of.value_type
    nested = _nested_formatter(kind_of)
    if nested is not None:
        return nested
    if pa.types.is_integer(kind_of):
        values = column.drop_null().to_numpy()
        return _whole if _is_code(name, kind, values) else _grouped
    if pa.types.is_floating(kind_of):
        values = column.to_numpy(zero_copy_only=False).astype(np.float64)
        finite = values[np.isfinite(values)]
        return _float_formatter(finite, name, kind, np.finfo(np.float32).eps
                                if pa.types.is_float32(kind_of) or pa.types.is_float16(kind_of)
                                else np.finfo(np.float64).eps)
    return _plain


def _nested_formatter(kind_of: Any) -> Callable[[Any], str | None] | None:
    """Lists, maps, bytes and structs by their size: a value may be megabytes, and bytes
    need not be text."""
    import pyarrow as pa

    t = pa.types
    if t.is_list(kind_of) or t.is_large_list(kind_of) or t.is_fixed_size_list(kind_of) \
            or t.is_map(kind_of):
        return lambda v: None if v is None else _count(len(v), "item", "[", "]")
    if t.is_binary(kind_of) or t.is_large_binary(kind_of) or t.is_fixed_size_binary(kind_of):
        return lambda v: None if v is None else _count(len(v), "byte", "<", ">")
    if t.is_struct(kind_of):
        return lambda v: None if v is None else _count(
            sum(x is not None for x in v.values()), "field", "{", "}")
    return None


def _count(n: int, unit: str, left: str, right: str) -> str:
    return f"{left}{n:,} {unit}{'' if n == 1 else 's'}{right}"


def _float_formatter(finite: np.ndarray, name: str, kind: str | None,
                     eps: float) -> Callable[[Any], str | None]:
    import numpy as np

    if not len(finite):
        return _plain_float
    biggest = float(np.abs(finite).max())
    if biggest >= SCIENTIFIC_ABOVE or biggest < SCIENTIFIC_BELOW:
        return _scientific
    decimals = _decimals(finite, eps)
    if decimals == 0:
        return _whole_float if _is_code(name, kind, finite) else _grouped_float
    return lambda v: _fixed(v, decimals)


def _decimals(values: np.ndarray, eps: float) -> int:
    """The fewest decimals that write every value exactly, as typed into a file (12.5 and
    3.25: two). Measured or computed values never are exact: they get about
    :data:`SIGNIFICANT` digits at the column's largest magnitude, as %g would."""
    import numpy as np

    biggest = float(np.abs(values).max())
    slack = 8 * eps * np.maximum(np.abs(values), 1.0)
    # Decimals finer than the type's precision always "fit": a float32 0.1 is no 0.100000.
    within = math.floor(-math.log10(16 * eps * max(biggest, 1.0)))
    for d in range(min(MAX_DECIMALS, within) + 1):
        if bool((np.abs(np.round(values, d) - values) <= slack).all()):
            return d
    digits = math.floor(math.log10(biggest)) + 1
    return min(MAX_DECIMALS, max(1, SIGNIFICANT - max(digits, 0)))


def _is_code(name: str, kind: str | None, values: np.ndarray) -> bool:
    if kind == "identifier" or _CODE_NAME.search(name):
        return True
    # year-like: all four-digit whole numbers (every number in the block is whole here)
    return bool(len(values)) and bool(((values >= 1000) & (values <= 2999)).all())


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _plain(value: Any) -> str | None:
    return None if value is None else str(value)


def _plain_float(value: Any) -> str | None:
    return None if _missing(value) else f"{value:g}"


def _grouped(value: Any) -> str | None:
    return None if value is None else f"{value:,}"


def _whole(value: Any) -> str | None:
    return None if value is None else str(value)


def _grouped_float(value: Any) -> str | None:
    if _missing(value):
        return None
    return f"{value:,.0f}" if math.isfinite(value) else _inf(value)


def _whole_float(value: Any) -> str | None:
    if _missing(value):
        return None
    return f"{value:.0f}" if math.isfinite(value) else _inf(value)


def _fixed(value: Any, decimals: int) -> str | None:
    if _missing(value):
        return None
    if not math.isfinite(value):
        return _inf(value)
    if value and abs(value) < 0.5 * 10.0 ** -decimals:  # would read as 0.00: say how small
        return f"{value:.3g}"
    return f"{value:,.{decimals}f}"


def _scientific(value: Any) -> str | None:
    if _missing(value):
        return None
    return f"{value:.6g}" if math.isfinite(value) else _inf(value)


def _inf(value: float) -> str:
    return "∞" if value > 0 else "−∞"


def fit_columns(view: Any, rows: int = 50, widest: int = 320) -> None:
    """Column widths from the header and the first rows. Qt's resizeColumnsToContents walks
    every row of a hidden view: seconds on a million rows."""
    model = view.model()
    metrics = view.fontMetrics()
    header = view.horizontalHeader().fontMetrics()
    for c in range(model.columnCount()):
        title = str(model.headerData(c, Qt.Orientation.Horizontal))
        texts = model.head_texts(c, rows) if isinstance(model, TableModel) else [
            str(model.data(model.index(r, c))) for r in range(min(rows, model.rowCount()))]
        width = max([header.horizontalAdvance(title) + 8]
                    + [metrics.horizontalAdvance(t) for t in texts])
        view.setColumnWidth(c, min(widest, width + 16))
