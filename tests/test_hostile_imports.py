"""Files an attacker, a broken exporter or bad luck makes: each imports correctly or is
refused with one line that says why, and a refused import leaves the workspace as it was."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
from conftest import run_studio

from studio.core.datasets import csv_stream
from studio.core.datasets.catalog import (
    dataset_profile,
    export_csv,
    import_dataset,
    list_datasets,
    load_frame,
)
from studio.core.datasets.prepare import prepare
from studio.core.datasets.sniff import sniff_csv
from studio.core.errors import InputError
from studio.core.files import csv_safe
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


def nested_table(rows: int = 40) -> pa.Table:
    return pa.table({
        "tags": pa.array([list(range(i % 4)) for i in range(rows)], pa.list_(pa.int64())),
        "attrs": pa.array([[("k", i)] * (i % 3) for i in range(rows)],
                          pa.map_(pa.string(), pa.int64())),
        "blob": pa.array([b"\xff\xfe" * (i % 5) for i in range(rows)]),  # not UTF-8
        "point": pa.array([{"x": i, "y": None if i % 2 else i} for i in range(rows)]),
        "x": [float(i) for i in range(rows)],
        "label": ["a", "b"] * (rows // 2),
    })


def test_list_binary_and_struct_columns_are_profiled_by_size_not_trained_on(
        ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "nested.parquet"
    pq.write_table(nested_table(), path)
    info = import_dataset(ws, path)
    profile = {c["name"]: c for c in dataset_profile(ws, info)}
    assert {n: profile[n]["kind"] for n in ("tags", "attrs", "blob", "point")} == {
        "tags": "list", "attrs": "list", "blob": "binary", "point": "struct"}
    assert profile["tags"]["sizes"]["unit"] == "items" and profile["tags"]["sizes"]["max"] == 3
    assert profile["blob"]["sizes"]["unit"] == "bytes" and profile["blob"]["sizes"]["max"] == 8
    assert profile["point"]["sizes"]["min"] == 1 and profile["point"]["sizes"]["max"] == 2
    assert profile["blob"]["unique"] == 5
    frame = load_frame(ws, info)
    kinds = {n: c["kind"] for n, c in profile.items()}
    for given in (kinds, None):  # the profile's kinds, or judged on the rows
        recipe = prepare(frame, info.name, "label", kinds=given).recipe
        assert [f["name"] for f in recipe["features"]] == ["x"]
        reasons = {d["name"]: d["reason"] for d in recipe["dropped"]}
        assert reasons["tags"].startswith("list") and reasons["blob"].startswith("binary")
    with pytest.raises(InputError, match="holds list values"):
        prepare(frame, info.name, "tags")


def test_data_show_on_nested_columns_says_their_kinds(tmp_path: Path) -> None:
    path = tmp_path / "nested.feather"
    feather.write_feather(nested_table(), path)
    home = tmp_path / "home"
    assert run_studio(home, "data", "import", str(path)).returncode == 0
    shown = run_studio(home, "data", "show", "nested")
    assert shown.returncode == 0, shown.stderr
    assert "binary values are not used in training" in shown.stdout


def test_the_column_list_charts_nested_columns_by_size(qtbot) -> None:
    from studio.core.datasets.profile import profile_columns
    from studio.gui.widgets.column_profile import ColumnProfile

    widget = ColumnProfile()
    qtbot.addWidget(widget)
    widget.set_profile(profile_columns(nested_table().to_pandas()), 40)
    widget.select("blob")
    assert widget.chart_kind == "sizes"
    assert "bytes per value: 0 to 8" in widget.detail.text()


def test_export_neutralizes_formula_headers_and_formulas_after_whitespace() -> None:
    frame = pd.DataFrame({
        "=HYPERLINK(\"http://x\",\"y\")": [" =1+1", "\t=1", "\n@SUM(A1)", "\r+cmd"],
        "ok": [" -1", "\t2", "plain", " +3.5"],
        "cat": pd.Categorical(["=1", "a", "=1", "b"]),
    })
    safe = csv_safe(frame)
    assert list(safe.columns) == ["'=HYPERLINK(\"http://x\",\"y\")", "ok", "cat"]
    assert safe.iloc[:, 0].tolist() == ["' =1+1", "'\t=1", "'\n@SUM(A1)", "'\r+cmd"]
    assert safe["ok"].tolist() == [" -1", "\t2", "plain", " +3.5"]  # numbers stay numbers
    assert safe["cat"].tolist() == ["'=1", "a", "'=1", "b"]


def test_data_export_of_a_json_import_neutralizes_its_header(ws: Workspace,
                                                            tmp_path: Path) -> None:
    path = tmp_path / "rows.json"
    path.write_text(json.dumps([{"=cmd|' /C calc'!A0": " =2+2", "n": i} for i in range(3)]))
    info = import_dataset(ws, path)
    out = tmp_path / "out.csv"
    export_csv(ws, info.name, out)
    header, first = out.read_text().splitlines()[:2]
    assert header == "'=cmd|' /C calc'!A0,n" and first == "' =2+2,0"


def test_one_restart_widens_every_clashing_column(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(csv_stream, "BLOCK_BYTES", 1 << 16)  # a small file spans blocks
    names = [f"c{j}" for j in range(50)]
    rows = [",".join(str(i + j) for j in range(50)) for i in range(3000)]
    # the last row: text in the even columns, a decimal in the odd ones
    rows.append(",".join("word" if j % 2 == 0 else "2.5" for j in range(50)))
    path = tmp_path / "wide.csv"
    path.write_text(",".join(names) + "\n" + "\n".join(rows) + "\n")
    assert path.stat().st_size > 4 * csv_stream.BLOCK_BYTES
    result = csv_stream.csv_to_parquet(path, sniff_csv(path), tmp_path / "out.parquet",
                                       lambda done, total: None)
    assert result.reads == 2  # the first read, and one restart for all 50 columns
    types = {f.name: f.type for f in result.schema}
    assert all(types[f"c{j}"] == (pa.string() if j % 2 == 0 else pa.float64())
               for j in range(50))
    assert len(result.warnings) == 50
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.column("c1").to_pylist()[-2:] == [3000.0, 2.5]
    whole = csv_stream.read_csv_table(path, sniff_csv(path))  # studio predict's reader
    assert whole.schema.equals(table.schema) and whole.num_rows == 3001


def test_widening_never_takes_text_for_numbers(tmp_path: Path, monkeypatch) -> None:
    """The re-read block is inferred by pyarrow: blanks, NA words, decimal commas and
    true/false stay what they are; only the column that really clashes is widened."""
    monkeypatch.setattr(csv_stream, "BLOCK_BYTES", 1 << 14)
    body = [f"{i};{i},5;true;{i}" for i in range(2000)]
    body.append("NA;;false;x")
    path = tmp_path / "eu.csv"
    path.write_text("n;price;flag;code\n" + "\n".join(body) + "\n")
    result = csv_stream.csv_to_parquet(path, sniff_csv(path), tmp_path / "out.parquet",
                                       lambda done, total: None)
    types = {f.name: f.type for f in result.schema}
    assert types == {"n": pa.int64(), "price": pa.float64(), "flag": pa.bool_(),
                     "code": pa.string()}
    assert result.reads == 2
