"""Importing the files people actually have: encodings, dialects and every kind of bad input."""

from __future__ import annotations

import os
import signal
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from studio.core.datasets import catalog
from studio.core.datasets.catalog import import_dataset, list_datasets, load_frame
from studio.core.errors import Cancelled, InputError
from studio.core.events import Log, Progress
from studio.core.workspace import Workspace


def imported(ws: Workspace, path: Path, **kw) -> pd.DataFrame:
    return load_frame(ws, import_dataset(ws, path, **kw))


def workspace_files(ws: Workspace) -> list[str]:
    return sorted(str(p.relative_to(ws.root)) for p in ws.root.rglob("*")
                  if p.is_file() and not p.name.startswith("studio.db"))


@pytest.mark.parametrize("encoding,bom", [
    ("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("utf-16", b""), ("cp1252", b""),
])
def test_text_encodings(ws: Workspace, tmp_path: Path, encoding: str, bom: bytes) -> None:
    text = "name,city,amount\nJosé,Zürich,1.5\nRenée,Kraków,2.5\nŽofia,Bærum,3.0\n"
    if encoding == "cp1252":
        text = text.replace("Kraków", "Krakow").replace("Ž", "Z")
    path = tmp_path / "people.csv"
    path.write_bytes(bom + text.encode(encoding))
    frame = imported(ws, path)
    assert list(frame.columns) == ["name", "city", "amount"]
    assert frame["name"].iloc[0] == "José"
    assert frame["amount"].tolist() == [1.5, 2.5, 3.0]


def test_semicolons_and_decimal_commas(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "eu.csv"
    path.write_text("produit;prix;quantité\npomme;1,25;3\npoire;0,80;5\n")
    frame = imported(ws, path)
    assert frame["prix"].tolist() == [1.25, 0.80]
    assert frame["quantité"].tolist() == [3, 5]


def test_tsv_and_headerless_numbers(ws: Workspace, tmp_path: Path) -> None:
    tsv = tmp_path / "t.tsv"
    tsv.write_text("a\tb\n1\tx\n2\ty\n")
    assert list(imported(ws, tsv).columns) == ["a", "b"]
    bare = tmp_path / "bare.csv"
    bare.write_text("1,2.5,3\n4,5.5,6\n")
    frame = imported(ws, bare)
    assert list(frame.columns) == ["column_1", "column_2", "column_3"]
    assert len(frame) == 2


def test_quoted_newlines_stay_in_one_value(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "reviews.csv"
    path.write_text('id,review,stars\n1,"Great,\nwould buy again",5\n2,"Meh",2\n')
    frame = imported(ws, path)
    assert frame["review"].tolist() == ["Great,\nwould buy again", "Meh"]


def test_a_late_word_in_a_number_column_keeps_it_as_text(ws: Workspace, tmp_path: Path) -> None:
    rows = [f"{i},{i * 0.5}" for i in range(300_000)]  # past the first 4 MiB block
    path = tmp_path / "late.csv"
    path.write_text("code,value\n" + "\n".join(rows) + "\nX-17,1.0\n")
    logs: list[str] = []
    info = import_dataset(ws, path, emit=lambda e: logs.append(e.message)
                          if isinstance(e, Log) else None)
    frame = load_frame(ws, info)
    assert info.rows == 300_001
    assert frame["code"].iloc[-1] == "X-17" and frame["code"].iloc[0] == "0"
    assert any("'code'" in m and "text" in m for m in logs)


@pytest.mark.parametrize("content,expected", [
    (b"", "empty"),
    (b"a,b,c\n", "no rows"),
    (b"\x00\x01\x02\x03binary\x00", "binary"),
    (b"a,b,c\n1,2,3\n4,5\n6,7,8\n", "line 3"),
    (b'a,b,c\n1,"2,3\n4,5,6\n', "line 2"),
    (b"a,,c\n1,2,3\n", "column 2 has no name"),
    (b"a,b,a\n1,2,3\n", "duplicate column name 'a'"),
])
def test_bad_csv_is_refused_and_leaves_the_workspace_unchanged(
    ws: Workspace, tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    before = workspace_files(ws)
    with pytest.raises(InputError, match=expected):
        import_dataset(ws, path)
    assert list_datasets(ws) == []
    assert workspace_files(ws) == before


def test_excel_first_or_named_sheet(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "book.xlsx"
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        first = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
        first.to_excel(writer, sheet_name="first", index=False)
        pd.DataFrame({"c": [3.5]}).to_excel(writer, sheet_name="second", index=False)
    assert list(imported(ws, path).columns) == ["a", "b"]
    assert imported(ws, path, name="second", sheet="second")["c"].tolist() == [3.5]
    with pytest.raises(InputError, match="no sheet"):
        import_dataset(ws, path, name="third", sheet="nope")
    fake = tmp_path / "fake.xlsx"
    fake.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="not an Excel workbook"):
        import_dataset(ws, fake)


def test_json_records_columns_and_lines(ws: Workspace, tmp_path: Path) -> None:
    records = tmp_path / "records.json"
    records.write_text('[{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]')
    columns = tmp_path / "columns.json"
    columns.write_text('{"a": [1, 2], "b": ["x", "y"]}')
    lines = tmp_path / "lines.jsonl"
    lines.write_text('{"a": 1, "b": "x"}\n{"a": 2, "b": "y"}\n')
    for path in (records, columns, lines):
        frame = imported(ws, path)
        assert frame["a"].tolist() == [1, 2] and frame["b"].tolist() == ["x", "y"]
    bad = tmp_path / "scalar.json"
    bad.write_text("42")
    with pytest.raises(InputError, match="expected a list"):
        import_dataset(ws, bad)


def test_parquet_and_feather(ws: Workspace, tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": np.arange(5), "y": list("abcde")})
    frame.to_parquet(tmp_path / "f.parquet")
    frame.to_feather(tmp_path / "f.feather")
    assert imported(ws, tmp_path / "f.parquet").equals(frame)
    assert imported(ws, tmp_path / "f.feather", name="f2")["y"].tolist() == list("abcde")
    (tmp_path / "no.parquet").write_text("not parquet")
    with pytest.raises(InputError, match="cannot be read as PARQUET"):
        import_dataset(ws, tmp_path / "no.parquet")


def test_reimport_of_an_unchanged_file_reads_nothing(ws: Workspace, penguins_csv: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    first = import_dataset(ws, penguins_csv)

    def must_not_read(*_a, **_k):
        raise AssertionError("the unchanged file was read again")

    monkeypatch.setattr(catalog, "csv_to_parquet", must_not_read)
    again = import_dataset(ws, penguins_csv)
    assert again.name == first.name and again.digest == first.digest
    assert len(list_datasets(ws)) == 1


def test_same_content_elsewhere_is_not_stored_twice(ws: Workspace, penguins_csv: Path,
                                                    tmp_path: Path) -> None:
    copy = tmp_path / "penguins.csv"
    copy.write_bytes(penguins_csv.read_bytes())
    a = import_dataset(ws, penguins_csv)
    b = import_dataset(ws, copy)
    assert (a.name, a.digest) == (b.name, b.digest)
    assert len(list_datasets(ws)) == 1


def test_cancel_leaves_nothing_behind(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text("a,b\n" + "\n".join(f"{i},{i}" for i in range(600_000)) + "\n")
    before = workspace_files(ws)
    with pytest.raises(Cancelled):
        import_dataset(ws, path, should_stop=lambda: True)
    assert list_datasets(ws) == [] and workspace_files(ws) == before


def test_progress_reports_bytes(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text("a,b\n" + "\n".join(f"{i},{i}" for i in range(600_000)) + "\n")
    events: list[Progress] = []
    import_dataset(ws, path, emit=lambda e: events.append(e) if isinstance(e, Progress) else 0)
    reads = [e for e in events if e.stage == "read"]
    assert len(reads) >= 2 and reads[-1].current == path.stat().st_size


@pytest.mark.timeout(60)
def test_killing_an_import_lists_no_half_dataset(ws: Workspace, tmp_path: Path) -> None:
    from studio.jobs.records import reap_stale
    from studio.jobs.runner import JobRunner

    path = tmp_path / "big.csv"
    rng = np.random.default_rng(0)
    pd.DataFrame(rng.normal(size=(1_500_000, 4)), columns=list("abcd")).to_csv(path, index=False)
    runner = JobRunner(ws, "import", {"path": str(path), "name": None})
    runner.start()
    for event in runner.events():
        if isinstance(event, Progress) and event.stage == "read" and event.current > 0:
            os.kill(runner.proc.pid, signal.SIGKILL)
            break
    list(runner.events())
    reap_stale(ws)
    assert list_datasets(ws) == []
    assert not any(p.is_file() for p in (ws.root / "blobs").rglob("*"))


def test_zip_without_class_folders_is_refused(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "data.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("a.txt", "hello")
    with pytest.raises(InputError):
        import_dataset(ws, path)


def make_images(root: Path, classes: dict[str, int], size: tuple[int, int] = (8, 6)) -> Path:
    from PIL import Image

    for cls, n in classes.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            color = (40 * i % 255, 100, 200 if cls == "cats" else 20)
            Image.new("RGB", size, color).save(root / cls / f"{cls}{i}.png")
    return root


def test_image_folder_skips_and_lists_bad_files(ws: Workspace, tmp_path: Path) -> None:
    root = make_images(tmp_path / "pets", {"cats": 3, "dogs": 2})
    (root / "dogs" / "notes.txt").write_text("not an image")
    (root / "cats" / "fake.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    good = (root / "dogs" / "dogs0.png").read_bytes()
    (root / "dogs" / "cut.png").write_bytes(good[: len(good) // 2])  # truncated
    logs: list[str] = []
    info = import_dataset(ws, root, emit=lambda e: logs.append(e.message)
                          if isinstance(e, Log) else None)
    frame = load_frame(ws, info)
    assert info.name == "pets"
    assert sorted(frame["label"].value_counts().items()) == [("cats", 3), ("dogs", 2)]
    assert set(frame["path"]) >= {"cats/cats0.png", "dogs/dogs1.png"}
    assert all(ws.blobs.exists(d) for d in frame["digest"])
    assert frame["width"].tolist() == [8] * 5
    skipped = " ".join(logs)
    assert "notes.txt" in skipped and "fake.png" in skipped and "cut.png" in skipped


def test_one_class_and_no_images_are_refused(ws: Workspace, tmp_path: Path) -> None:
    one = make_images(tmp_path / "one", {"cats": 2})
    with pytest.raises(InputError, match="only one class"):
        import_dataset(ws, one)
    empty = tmp_path / "empty"
    (empty / "a").mkdir(parents=True)
    (empty / "b").mkdir()
    with pytest.raises(InputError, match="no readable images"):
        import_dataset(ws, empty)


def test_decompression_bomb_is_refused_not_decoded(ws: Workspace, tmp_path: Path) -> None:
    from PIL import Image

    root = make_images(tmp_path / "set", {"a": 1, "b": 1})
    bomb = Image.new("1", (1, 1))
    bomb.save(root / "a" / "bomb.png")
    raw = (root / "a" / "bomb.png").read_bytes()
    # the same 1-bit PNG, claiming 20000 × 20000 pixels in its header
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 1, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    patched = raw[:8] + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk)) \
        + raw[8 + 25:]
    (root / "a" / "bomb.png").write_bytes(patched)
    assert Image.MAX_IMAGE_PIXELS is not None
    logs: list[str] = []
    import_dataset(ws, root, emit=lambda e: logs.append(e.message) if isinstance(e, Log) else 0)
    assert "bomb.png" in " ".join(logs) and "decompression bomb" in " ".join(logs)


def test_zip_of_a_class_folder(ws: Workspace, tmp_path: Path) -> None:
    root = make_images(tmp_path / "src" / "flowers", {"rose": 2, "tulip": 2})
    archive = tmp_path / "flowers.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in root.rglob("*.png"):
            z.write(f, f.relative_to(root.parent).as_posix())
    frame = imported(ws, archive)
    assert sorted(set(frame["label"])) == ["rose", "tulip"]
    assert not list((ws.root / "tmp").glob("unzip-*"))


@pytest.mark.parametrize("member", ["../evil.png", "/abs/evil.png", "a/../../evil.png"])
def test_zip_slip_is_refused(ws: Workspace, tmp_path: Path, member: str) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("a/ok.png", b"x")
        z.writestr(member, b"x")
    with pytest.raises(InputError, match="outside the archive"):
        import_dataset(ws, archive)
    assert not (tmp_path / "evil.png").exists()


def test_zip_with_a_symlink_is_refused(ws: Workspace, tmp_path: Path) -> None:
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as z:
        info = zipfile.ZipInfo("a/link.png")
        info.external_attr = (0o120777 << 16)
        z.writestr(info, "/etc/passwd")
    with pytest.raises(InputError, match="is a link"):
        import_dataset(ws, archive)


def test_zip_bomb_is_refused(ws: Workspace, tmp_path: Path) -> None:
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("a/zeros.png", b"\0" * (50 << 20))
    with pytest.raises(InputError, match="zip bomb"):
        import_dataset(ws, archive)


def test_quoted_line_breaks_after_the_sniffed_sample(ws: Workspace, tmp_path: Path) -> None:
    rows = [f'{i},"plain {i}"' for i in range(200_000)]
    rows.append('200000,"two\nlines"')
    path = tmp_path / "notes.csv"
    path.write_text("id,note\n" + "\n".join(rows) + "\n")
    frame = imported(ws, path)
    assert len(frame) == 200_001 and frame["note"].iloc[-1] == "two\nlines"


def test_spaces_after_delimiters_and_a_late_word(ws: Workspace, tmp_path: Path) -> None:
    rows = [f"{i}, {i % 90}" for i in range(300_000)] + ["300000, unknown"]
    path = tmp_path / "spaced.csv"
    path.write_text("id, age\n" + "\n".join(rows) + "\n")
    info = import_dataset(ws, path)
    assert info.column_names == ["id", "age"]
    assert load_frame(ws, info)["age"].iloc[-1].strip() == "unknown"


@pytest.mark.parametrize("rows", [10, 300_000])
def test_a_late_cp1252_byte_is_read_as_cp1252(ws: Workspace, tmp_path: Path, rows: int) -> None:
    body = "".join(f"{i},plain\n" for i in range(rows)).encode() + "9,Jos\xe9\n".encode("cp1252")
    path = tmp_path / "late.csv"
    path.write_bytes(b"n,name\n" + body)
    frame = imported(ws, path)
    assert frame["name"].iloc[-1] == "José"


def test_a_number_column_blank_at_first_stays_numeric(ws: Workspace, tmp_path: Path) -> None:
    rows = [f"{i}," for i in range(300_000)] + ["300000,4.5"]
    path = tmp_path / "blank.csv"
    path.write_text("id,score\n" + "\n".join(rows) + "\n")
    frame = imported(ws, path)
    assert frame["score"].dtype.kind == "f" and frame["score"].iloc[-1] == 4.5


def test_headerless_rows_with_text_are_not_taken_for_a_header(ws: Workspace,
                                                              tmp_path: Path) -> None:
    path = tmp_path / "iris.csv"
    path.write_text("5.1,3.5,1.4,0.2,Iris-setosa\n4.9,3.0,1.4,0.2,Iris-setosa\n"
                    "6.3,3.3,6.0,2.5,Iris-virginica\n")
    frame = imported(ws, path)
    assert len(frame) == 3 and frame.columns[0] == "column_1"


def test_moving_an_image_to_another_class_is_a_change(ws: Workspace, tmp_path: Path) -> None:
    root = make_images(tmp_path / "pets", {"cats": 3, "dogs": 2})
    first = import_dataset(ws, root)
    (root / "cats" / "cats0.png").rename(root / "dogs" / "cats0.png")
    second = import_dataset(ws, root)
    assert second.digest != first.digest
    assert load_frame(ws, second)["label"].value_counts()["dogs"] == 3


def test_a_refused_image_folder_stores_no_images(ws: Workspace, tmp_path: Path) -> None:
    one = make_images(tmp_path / "one", {"cats": 2})
    with pytest.raises(InputError, match="only one class"):
        import_dataset(ws, one)
    assert not any(p.is_file() for p in (ws.root / "blobs").rglob("*"))


def test_deleting_an_image_dataset_removes_only_its_own_pictures(ws: Workspace,
                                                                  tmp_path: Path) -> None:
    from studio.core.datasets.catalog import delete_dataset, get_dataset, load_frame

    make_images(tmp_path / "a", {"cats": 3, "dogs": 3})
    make_images(tmp_path / "b", {"cats": 3, "dogs": 2, "owls": 2})  # shares 5 pictures
    a = load_frame(ws, import_dataset(ws, tmp_path / "a"))
    b = load_frame(ws, import_dataset(ws, tmp_path / "b"))
    only_a = set(a["digest"]) - set(b["digest"])
    assert only_a and set(a["digest"]) & set(b["digest"])
    delete_dataset(ws, "a")
    assert not any(ws.blobs.exists(d) for d in only_a)
    assert all(ws.blobs.exists(d) for d in b["digest"])
    assert load_frame(ws, get_dataset(ws, "b")).equals(b)
    delete_dataset(ws, "b")
    assert [p for p in ws.blobs.root.rglob("*") if p.is_file()] == []


def test_delete_is_refused_while_a_job_uses_the_dataset_and_odd_tables_delete_cleanly(
        ws: Workspace, tmp_path: Path) -> None:
    import os

    from studio.core.datasets.catalog import delete_dataset, list_datasets
    from studio.jobs import records

    csv = tmp_path / "looks_like_images.csv"  # image-manifest column names, not blob names
    csv.write_text("path,label,digest,width,height\na.png,x,md5:0000,1,1\nb.png,y,,2,2\n")
    import_dataset(ws, csv)
    job = records.create_job(ws, "train", {"dataset": "looks_like_images", "target": "label"})
    records.mark_running(ws, job, os.getpid())
    with pytest.raises(InputError, match=f"being trained on \\(job {job}\\)"):
        delete_dataset(ws, "looks_like_images")
    records.finish(ws, job, "done", result={})
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    crashed = records.create_job(ws, "train", {"dataset": "looks_like_images"})
    records.mark_running(ws, crashed, int(dead.stdout))  # its process is gone: holds nothing
    delete_dataset(ws, "looks_like_images")
    assert list_datasets(ws) == []
    assert [p for p in ws.blobs.root.rglob("*") if p.is_file()] == []
