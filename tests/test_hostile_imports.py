"""Files an attacker, a broken exporter or bad luck makes: each imports correctly or is
refused with one line that says why, and a refused import leaves the workspace as it was."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import run_studio

from studio.core.datasets.catalog import import_dataset, list_datasets, load_frame
from studio.core.datasets.sniff import sniff_csv
from studio.core.errors import InputError
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


def test_a_name_that_is_not_utf8_imports_lists_and_shows(tmp_path: Path) -> None:
    folder = Path(os.fsdecode(os.fsencode(tmp_path) + b"/d\xe9"))  # bytes on Linux
    folder.mkdir()
    path = folder / os.fsdecode(b"caf\xe9.csv")
    path.write_text("a,b\n1,x\n2,y\n")
    table = folder / os.fsdecode(b"t\xe9.parquet")
    with pa.OSFile(os.fsencode(table), "wb") as f:  # pyarrow cannot open such a str path
        pq.write_table(pa.table({"n": [1, 2, 3]}), f)
    home = tmp_path / "home"
    for source, name in ((path, "caf"), (table, "t")):
        done = run_studio(home, "data", "import", str(source))
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"{name}:")
    listed = run_studio(home, "data", "ls")
    assert listed.returncode == 0 and "d\\xe9/caf\\xe9.csv" in listed.stdout, listed.stderr
    shown = run_studio(home, "data", "show", "caf", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["source"].endswith("d\\xe9/caf\\xe9.csv")
    again = run_studio(home, "data", "import", str(path))  # found by its key, not read again
    assert again.returncode == 0 and "already imported" in again.stdout, again.stderr


def test_a_picture_name_that_is_not_utf8_is_refused_before_copying(ws: Workspace,
                                                                  tmp_path: Path) -> None:
    from PIL import Image

    root = os.fsencode(tmp_path / "pets")
    for cls in (b"c\xe9t", b"dog"):
        os.makedirs(root + b"/" + cls)
        for i in range(2):
            Image.new("RGB", (8, 8), (i * 90, 0, 0)).save(root + b"/" + cls + b"/%d.png" % i)
    with pytest.raises(InputError, match=r"the name 'c\\xe9t' is not valid UTF-8"):
        import_dataset(ws, Path(os.fsdecode(root)))
    assert not any(f.is_file() for f in ws.blobs.root.rglob("*")) and list_datasets(ws) == []
