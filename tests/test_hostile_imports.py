"""Files an attacker, a broken exporter or bad luck makes: each imports correctly or is
refused with one line that says why, and a refused import leaves the workspace as it was."""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import shutil
import subprocess
import zipfile
from concurrent.futures import ThreadPoolExecutor
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
from studio.core.printable import printable
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
    for rows in ("alice,alice@example.com\nbob,bob@example.com\n",  # an address
                 "2024-01-01,alpha\n2024-01-02,beta\n",  # a date
                 "10:30,start\n11:00,stop\n",  # a time
                 "The film was a pleasure from start to end\nI left early\n"):  # a sentence
        path.write_text(rows)
        assert not sniff_csv(path).has_header, rows
    path.write_text("text,label\nThe film was a pleasure from start to end,pos\nDull,neg\n")
    assert sniff_csv(path).has_header  # sentences under short names: a header


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


# ---------------------------------------------------------------------------------------
# The corpus: every file is made here. An expectation is (rows, columns) for a correct
# import, or the words the one-line refusal must hold.

def _png(color: tuple[int, int, int] = (200, 0, 0)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buf, "PNG")
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def _feather_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    feather.write_feather(table, buf)
    return buf.getvalue()


def _folder(classes: dict[str, dict[str, bytes]]) -> dict[str, bytes]:
    return {f"{c}/{n}": data for c, files in classes.items() for n, data in files.items()}


def _union() -> pa.Table:  # a type Feather holds and pandas cannot
    ints_or_text = pa.UnionArray.from_sparse(pa.array([0, 1], pa.int8()),
                                             [pa.array([1, 2]), pa.array(["a", "b"])])
    return pa.table({"u": ints_or_text, "y": [1, 2]})


_LABELS = ["sport", "politics", "tech"]


def _corpus() -> dict[str, tuple[object, tuple[int, int] | str]]:
    """name: (content: bytes, text, or a folder's {relative path: bytes}, expectation);
    made when the test runs, not when the suite is collected."""
    return {
        "empty.csv": (b"", "the file is empty"),
        "header_only.csv": ("a,b\n", "no rows after the header"),
        "header_no_newline.csv": ("a,b", "no rows after the header"),
        "garbage.csv": (bytes(range(256)) * 40, "binary file"),
        "nul.csv": ("a,b\n1,x\x00y\n", "binary file"),
        "gzipped.csv": (gzip.compress(b"a,b\n1,2\n" * 100), "binary file"),
        "utf16_nobom.csv": ("name,score\nAda,1\nBob,2\n".encode("utf-16-le"), (2, 2)),
        "mixed_endings.csv": (b"a,b\r\n1,2\n3,4\r5,6\r\n", (3, 2)),
        "unterminated.csv": ('a,b\n1,"open\n2,3\n4,5\n', "quote opened there is never closed"),
        "ragged.csv": ("a,b\n1,2\n3,4,5\n6,7\n", "line 3: expected 2 fields, found 3"),
        "dup_cols.csv": ("a,a\n1,2\n3,4\n", "duplicate column name 'a'"),
        "empty_colname.csv": ("a,,c\n1,2,3\n", "column 2 has no name"),
        "wide_header.csv": (",".join(f"c{i}" for i in range(10_000)) + "\n"
                            + ",".join("1" for _ in range(10_000)) + "\n", (1, 10_000)),
        "blank_lines.csv": ("   \n\n \t \n", "no rows"),
        "only_bom.csv": (b"\xef\xbb\xbf", "no rows"),
        "long_line.csv": ("x" * 2_000_000, "no rows after the header"),  # one 2 MB name
        "long_numbers.csv": (",".join(str(i) for i in range(300_000)),
                             "300,000 columns in the first row"),
        "html.csv": ("<!DOCTYPE html><html><body>Not found</body></html>\n",
                     "no rows after the header"),
        "tabs.txt": ("a\tb\n1\tx\n2\ty\n", (2, 2)),
        "eu.csv": (b"\xef\xbb\xbfname;price\nA;1,5\nB;2,25\n", (2, 2)),
        "formula_header.csv": ("=cmd|' /C calc'!A0,b\n1,2\n3,4\n", (2, 2)),
        "texts.csv": ("text,label\n" + "".join(f"sentence number {i} about things,"
                                               f"{_LABELS[i % 3]}\n" for i in range(30)), (30, 2)),
        "long_cell.csv": ("id,text\n1," + "x" * 200_000 + "\n2,y\n", (2, 2)),
        os.fsdecode(b"caf\xe9.csv"): ("a,b\n1,x\n2,y\n3,z\n", (3, 2)),
        "scalar.json": ("42", "expected a list of row objects"),
        "nested.json": (json.dumps([{"a": {"b": 1}}, {"a": {"b": 2}}]), "nested objects"),
        "scalars.json": ("[1, 2, 3]", "must hold objects"),
        "empty_list.json": ("[]", "no columns found"),
        "deep.json": ("[" * 100_000 + "]" * 100_000, "cannot be read as JSON"),
        "mixed.json": (json.dumps([{"a": 1}, {"a": "x"}, {"a": None}]), (3, 1)),
        "broken.jsonl": ('{"a": 1}\n{"a": \n', "cannot be read as JSONL"),
        "notzip.xlsx": ("this is not a workbook\n", "not an Excel workbook"),
        "noworkbook.xlsx": (_zip({"[Content_Types].xml": b"<Types/>"}), "no valid workbook part"),
        "truncated.parquet": (_parquet_bytes(pa.table({"a": list(range(1000))}))[:900],
                              "cannot be read as PARQUET"),
        "nested.parquet": (_parquet_bytes(pa.table({"l": [[1, 2], [3], []],
                                                    "b": [b"\xff", b"", b"ab"], "y": [1, 2, 3]})),
                           (3, 3)),
        "text.feather": ("just some text\n", "cannot be read as FEATHER"),
        "union.feather": (_feather_bytes(_union()), "column 'u' is of type sparse_union"),
        "program.exe": (b"MZ\x90\x00", "unsupported file type '.exe'"),
        "zipslip.zip": (_zip({"cats/a.png": _png(), "../x.png": _png()}), "points outside"),
        "bomb.zip": (_zip({"cats/a.png": b"\0" * (4 << 20), "dogs/b.png": _png()}), "zip bomb"),
        "flat": ({"a.png": _png(), "b.png": _png((1, 2, 3))}, "no class sub-folders"),
        "oneclass": (_folder({"cats": {"0.png": _png(), "1.png": _png((1, 2, 3))}}),
                     "only one class ('cats')"),
        "pets": (_folder({"cats": {"0.png": _png(), "1.png": _png((0, 9, 0))},
                          "dogs": {"0.png": _png((0, 0, 9)), "1.png": _png((9, 9, 0)),
                                   "broken.png": _png((1, 2, 3))[:40]}}), (4, 5)),
        "badnames": ({os.fsdecode(b"c\xe9t/0.png"): _png(), "dog/0.png": _png((1, 2, 3))},
                     "is not valid UTF-8"),
    }


# Correct imports also checked through the CLI (the rest in-process, for time).
CLI_IMPORTS = {"texts.csv", os.fsdecode(b"caf\xe9.csv"), "nested.parquet", "pets"}
_SUMMARY = re.compile(r"^\S+: ([\d,]+) rows? × ([\d,]+) columns?")


def _make(root: Path, name: str, content: object) -> Path:
    path = root / name
    if isinstance(content, dict):
        for rel, data in content.items():
            (path / rel).parent.mkdir(parents=True, exist_ok=True)
            (path / rel).write_bytes(data)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(str(content), encoding="utf-8")
    return path


def _state(home: Path) -> tuple[dict[str, int], list[dict]]:
    """Files and their sizes (the database aside: a refused import still records its job)
    and the datasets listed."""
    files = {f.relative_to(home).as_posix(): f.stat().st_size for f in home.rglob("*")
             if f.is_file() and not f.name.startswith("studio.db")}
    ws = Workspace.open(home)
    try:
        return files, [d.to_dict() for d in list_datasets(ws)]
    finally:
        ws.db.close()


def test_hostile_corpus(tmp_path: Path) -> None:
    CORPUS = _corpus()
    assert len(CORPUS) >= 30
    files = tmp_path / "files"
    files.mkdir()
    paths = {name: _make(files, name, content) for name, (content, _) in CORPUS.items()}
    base = tmp_path / "base"  # a workspace that already holds a dataset
    ws = Workspace.open(base)
    import_dataset(ws, _make(tmp_path, "seed.csv", "x,y\n1,a\n2,b\n"))
    ws.db.close()
    before = _state(base)
    problems: list[str] = []

    in_process = [n for n, (_, want) in CORPUS.items()
                  if isinstance(want, tuple) and n not in CLI_IMPORTS]
    ws = Workspace.open(tmp_path / "shared")
    for name in in_process:
        try:
            info = import_dataset(ws, paths[name])
        except Exception as exc:  # every failure is listed, not just the first
            problems.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        if (info.rows, len(info.columns)) != CORPUS[name][1]:
            problems.append(f"{name}: {info.rows} × {len(info.columns)}, "
                            f"expected {CORPUS[name][1]}")
    ws.db.close()

    def through_cli(name: str) -> tuple[str, subprocess.CompletedProcess, Path]:
        home = tmp_path / "homes" / f"case{list(CORPUS).index(name)}"
        shutil.copytree(base, home)
        return name, run_studio(home, "data", "import", str(paths[name])), home

    with ThreadPoolExecutor(max_workers=3) as pool:  # each call is mostly start-up
        runs = list(pool.map(through_cli, [n for n in CORPUS if n not in in_process]))
    for name, done, home in runs:
        want = CORPUS[name][1]
        label = printable(name)
        if "Traceback" in done.stderr:
            problems.append(f"{label}: traceback\n{done.stderr}")
            continue
        if isinstance(want, tuple):
            match = _SUMMARY.match(done.stdout)
            got = match and (int(match[1].replace(",", "")), int(match[2].replace(",", "")))
            if done.returncode != 0 or got != want:
                problems.append(f"{label}: exit {done.returncode}, {done.stdout!r} "
                                f"{done.stderr!r}, expected {want}")
            continue
        lines = done.stderr.splitlines()
        if done.returncode != 2 or len(lines) != 1 or not lines[0].startswith(
                "studio: error: ") or want not in lines[0] or label not in lines[0]:
            problems.append(f"{label}: exit {done.returncode}, stderr {done.stderr!r}, "
                            f"expected one line naming it and saying {want!r}")
        elif _state(home) != before:
            problems.append(f"{label}: the refused import changed the workspace")
    assert not problems, "\n".join(problems)


def test_a_wide_table_with_a_header_over_256_kib_imports(ws: Workspace, tmp_path: Path) -> None:
    """20,000 gene ids make a 320 KB header: a table, not "a first line too long"."""
    n = 20_000
    path = tmp_path / "genes.csv"
    path.write_text(",".join(f"ENSG{i:011d}" for i in range(n)) + "\n"
                    + "\n".join(",".join(str((r * 7 + i) % 100) for i in range(n))
                                for r in range(3)) + "\n")
    frame = imported(ws, path)
    assert frame.shape == (3, n) and frame.columns[-1] == f"ENSG{n - 1:011d}"


def test_a_wide_header_with_accents_is_utf8_and_one_line_json_is_no_slow_sniff(
        tmp_path: Path) -> None:
    import json
    import time

    from studio.core.datasets.sniff import sniff_csv

    wide = tmp_path / "genes.csv"  # an "è" falls across the 256 KiB sample's end
    wide.write_text(",".join(f"gène_{i}" for i in range(30_000)) + "\n"
                    + ",".join("1" for _ in range(30_000)) + "\n")
    dialect = sniff_csv(wide)
    assert dialect.encoding == "utf-8" and dialect.header[:2] == ["gène_0", "gène_1"]
    blob = tmp_path / "response.txt"  # an API's JSON saved under the wrong name
    blob.write_text(json.dumps({"k": ['a"b' * 3, "x"] * 30_000}))
    start = time.perf_counter()
    sniff_csv(blob)
    assert time.perf_counter() - start < 5  # csv.Sniffer took minutes on such a line
