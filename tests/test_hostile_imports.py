"""Files an attacker, a broken exporter or bad luck makes: each imports correctly or is
refused with one line that says why, and a refused import leaves the workspace as it was."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from studio.core.datasets.catalog import import_dataset, load_frame
from studio.core.datasets.sniff import sniff_csv
from studio.core.workspace import Workspace


def imported(ws: Workspace, path: Path) -> pd.DataFrame:
    return load_frame(ws, import_dataset(ws, path))


def test_text_columns_keep_their_header(ws: Workspace, tmp_path: Path) -> None:
    # Labels of different lengths: csv.Sniffer's length test saw no header here.
    path = tmp_path / "reviews.csv"
    labels = ["sport", "politics", "tech"]
    path.write_text("text,label\n" + "".join(
        f"this is sentence number {i} about things,{labels[i % 3]}\n" for i in range(30)))
    frame = imported(ws, path)
    assert list(frame.columns) == ["text", "label"]
    assert len(frame) == 30 and set(frame["label"]) == set(labels)


def test_headerless_text_rows_stay_data(tmp_path: Path) -> None:
    path = tmp_path / "bare.csv"
    # the first row's label is a category the body holds again
    path.write_text("great film,pos\nawful film,neg\nfine film,pos\nbad film,neg\n")
    assert not sniff_csv(path).has_header
    path.write_text("red,,small\nblue,x,big\n")  # an empty first cell is no column name
    assert not sniff_csv(path).has_header
    path.write_text("yes,yes,no\nno,maybe,yes\n")  # nor is a repeated one
    assert not sniff_csv(path).has_header


def test_a_cell_over_the_csv_module_field_limit_imports(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text("id,text\n1," + "x" * 200_000 + "\n2,short\n")
    frame = imported(ws, path)
    assert frame["text"].str.len().tolist() == [200_000, 5]
