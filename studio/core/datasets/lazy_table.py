"""A snapshot opened for viewing: rows are read from Parquet a row group at a time.

Opening costs the file's footer only, so a dataset of millions of rows shows at once and
never sits whole in the viewer's memory. It offers the few things of ``pyarrow.Table`` that a
view needs: ``num_rows``, ``column_names``, ``slice``, ``column`` and ``select``.
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROW_GROUP_ROWS = 16_384  # what imports write: a row group is read in milliseconds
CACHED_GROUPS = 8


class LazyTable:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = pq.ParquetFile(path)
        meta = self._file.metadata
        self.num_rows: int = meta.num_rows
        self.column_names: list[str] = list(self._file.schema_arrow.names)
        self._starts = [0]
        for i in range(meta.num_row_groups):
            self._starts.append(self._starts[-1] + meta.row_group(i).num_rows)
        self._groups: OrderedDict[int, pa.Table] = OrderedDict()
        self._lock = threading.Lock()  # one ParquetFile, read from the view and from workers
        self._column: tuple[str, pa.ChunkedArray] | None = None

    def largest_row_group(self) -> int:
        return max((b - a for a, b in zip(self._starts, self._starts[1:], strict=False)),
                   default=0)

    def _group(self, i: int) -> pa.Table:
        with self._lock:
            table = self._groups.get(i)
            if table is None:
                table = self._file.read_row_group(i)
                self._groups[i] = table
                if len(self._groups) > CACHED_GROUPS:
                    self._groups.popitem(last=False)
            else:
                self._groups.move_to_end(i)
            return table

    def slice(self, offset: int, length: int) -> pa.Table:
        end = min(self.num_rows, offset + length)
        if offset >= end:
            return self._file.schema_arrow.empty_table()
        first = bisect.bisect_right(self._starts, offset) - 1
        last = bisect.bisect_right(self._starts, end - 1) - 1
        parts = [self._group(i) for i in range(first, last + 1)]
        table = parts[0] if len(parts) == 1 else pa.concat_tables(parts)
        return table.slice(offset - self._starts[first], end - offset)

    def column(self, name: str) -> pa.ChunkedArray:
        """One whole column (the last one asked for is kept: a split preview asks again
        for the same target at each change of ratios)."""
        with self._lock:
            if self._column is not None and self._column[0] == name:
                return self._column[1]
        column = pq.read_table(self.path, columns=[name]).column(0)
        with self._lock:
            self._column = (name, column)
        return column

    def select(self, names: Sequence[str]) -> pa.Table:
        return pq.read_table(self.path, columns=list(names))
