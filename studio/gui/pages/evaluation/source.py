"""The rows an evaluation names, read from the dataset snapshot it was made on.

The snapshot is opened once, in a worker thread (``run_in_thread``), and shared by the view's
panels; nothing here runs on the GUI thread but the constructor."""

from __future__ import annotations

import threading
from typing import Any

from studio.core.errors import InputError, NotFoundError
from studio.core.workspace import Workspace
from studio.gui.pages.evaluation.document import Evaluation

HIDDEN = ("digest",)  # an image dataset's blob names: nothing a person reads


class DatasetRows:
    def __init__(self, ws: Workspace, evaluation: Evaluation) -> None:
        self.ws = ws
        self.name = evaluation.dataset
        self.digest = evaluation.digest
        self._lock = threading.Lock()
        self._table: Any = None
        self.images = False

    def open(self) -> Any:
        """The snapshot as a (lazy) Arrow table; InputError when it is not in the workspace."""
        with self._lock:
            if self._table is None:
                from studio.core.datasets.catalog import load_table
                from studio.core.datasets.prepare import is_image_dataset

                info = self._info()
                self._table = load_table(self.ws, info)
                self.images = is_image_dataset(info.column_names)
            return self._table

    def _info(self) -> Any:
        from studio.core.datasets.catalog import dataset_by_digest, get_dataset

        if self.digest:
            try:
                return dataset_by_digest(self.ws, self.digest)
            except NotFoundError:
                pass
        try:
            info = get_dataset(self.ws, self.name)
        except NotFoundError:
            raise InputError(f"the dataset {self.name!r} is no longer in the workspace: "
                             "its rows cannot be shown") from None
        if self.digest and info.digest != self.digest:
            raise InputError(f"the dataset {self.name!r} was imported again since this "
                             "evaluation: its rows are not the ones evaluated") from None
        return info

    def rows(self, numbers: list[int], extra: dict[str, list[Any]] | None = None) -> Any:
        """The rows ``numbers`` (in that order) as an Arrow table, ``extra`` columns first."""
        import pyarrow as pa

        table = self.open()
        if numbers and (min(numbers) < 0 or max(numbers) >= table.num_rows):
            raise InputError(f"the evaluation names row {max(numbers):,} but {self.name!r} "
                             f"has {table.num_rows:,} rows: it was made on other data")
        picked = take(table, numbers)
        picked = picked.select([c for c in picked.column_names if c not in HIDDEN])
        for pos, (name, values) in enumerate((extra or {}).items()):
            picked = picked.add_column(pos, unique(name, picked.column_names), pa.array(values))
        return picked

    def thumbnails(self, numbers: list[int], px: int) -> list[Any]:
        """A QImage (or None) for each row of an image dataset, small pictures enlarged to
        ``px``: a mistake is looked at closely; [] for a table."""
        from studio.gui.widgets.thumbnails import thumbnail

        table = self.open()
        if not self.images:
            return []
        digests = take(table, numbers).column("digest").to_pylist()
        return [thumbnail(self.ws, d, px, enlarge=True) if isinstance(d, str) else None
                for d in digests]


def take(table: Any, numbers: list[int]) -> Any:
    """Rows by number from a pyarrow Table or a LazyTable (which reads a row group at a time:
    the rows are visited in file order, then put back in the order asked)."""
    import pyarrow as pa

    if isinstance(table, pa.Table):
        return table.take(pa.array(numbers, type=pa.int64()))
    if not numbers:
        return table.slice(0, 0)
    order = sorted(range(len(numbers)), key=numbers.__getitem__)
    runs: list[Any] = []
    start = prev = numbers[order[0]]
    for k in [*order[1:], None]:
        n = numbers[k] if k is not None else None
        if n is not None and n <= prev + 1:
            prev = n
            continue
        runs.append(table.slice(start, prev - start + 1))
        if n is not None:
            start = prev = n
    contiguous = pa.concat_tables(runs)
    # position of each asked row inside ``contiguous`` (duplicates share one slot)
    slots, seen, filled = [0] * len(numbers), {}, 0
    for k in order:
        n = numbers[k]
        if n not in seen:
            seen[n] = filled
            filled += 1
        slots[k] = seen[n]
    return contiguous.take(pa.array(slots, type=pa.int64()))


def unique(name: str, taken: list[str]) -> str:
    while name in taken:
        name = f"{name} (evaluation)"
    return name
