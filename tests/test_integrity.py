"""Every stored byte checked: damaged blobs are found when read, by `studio verify`, and
repaired by storing the same content again; a refused image import leaves nothing behind."""

import json
import os
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from conftest import run_studio

from studio.core import registry
from studio.core.datasets import pixels
from studio.core.datasets.catalog import (
    get_dataset,
    import_dataset,
    list_datasets,
    load_frame,
)
from studio.core.errors import Cancelled, InputError, IntegrityError
from studio.core.events import Event, Log
from studio.core.integrity import verify_workspace
from studio.core.store import BlobStore
from studio.core.workspace import Workspace

TINY = {"epochs": 2, "hidden": [8], "batch_size": 8, "threads": 1,
        "preprocessing": {"columns": {"image": {"size": 32}}}}


def pictures(root: Path, classes: dict[str, int], suffix: str = ".png",
             size: tuple[int, int] = (8, 6), shade: int = 0) -> Path:
    from PIL import Image

    for c, (cls, n) in enumerate(classes.items()):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.new("RGB", size, (30 * i % 255, 60 * c % 255, shade)).save(
                root / cls / f"{cls}{i}{suffix}")
    return root


def damage(path: Path) -> None:
    """Flip one byte in the middle: same size, other content (the hard case)."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def tree(root: Path) -> dict[str, bytes | None]:
    """Every file's bytes and every folder, under ``root`` (SQLite's shared-memory index,
    which readers rewrite, left out)."""
    return {p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() else None)
            for p in sorted(root.rglob("*")) if not p.name.endswith("-shm")}


def logs_of(messages: list[str]) -> Callable[[Event], None]:
    return lambda e: messages.append(e.message) if isinstance(e, Log) else None


def train(ws: Workspace, dataset: str, **kw) -> dict:
    from studio.core.training.pipeline import run
    from studio.core.training.spec import TrainSpec

    return run(ws, TrainSpec(dataset=dataset, target="label", **{**TINY, **kw}), lambda _e: None)


# -- 1: training reads pictures verified --------------------------------------------------


def test_training_refuses_a_damaged_picture_and_names_it(ws: Workspace, tmp_path: Path) -> None:
    frame = load_frame(ws, import_dataset(ws, pictures(tmp_path / "pets", {"cats": 6,
                                                                            "dogs": 6},
                                                        suffix=".bmp")))
    row = frame.iloc[3]
    damage(ws.blobs.path(row["digest"]))  # a BMP decodes whatever its pixel bytes hold
    with pytest.raises(IntegrityError) as caught:
        train(ws, "pets")
    message = str(caught.value)
    assert repr(row["path"]) in message and "'pets'" in message and "studio verify" in message
    cli = run_studio(ws.root, "train", "pets", "--epochs", "1")
    assert cli.returncode == 1 and "Traceback" not in cli.stderr
    assert cli.stderr.splitlines()[-1] == f"studio: error: {message}"
    assert registry.list_versions(ws) == []


def test_pictures_are_hashed_once_per_training_run(ws: Workspace, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    frame = load_frame(ws, import_dataset(ws, pictures(tmp_path / "pets", {"cats": 6,
                                                                            "dogs": 6})))
    hashed: list[str] = []
    real = BlobStore.verified_path

    def counting(self: BlobStore, digest: str) -> Path:
        hashed.append(digest)
        return real(self, digest)

    monkeypatch.setattr(BlobStore, "verified_path", counting)
    train(ws, "pets", epochs=3)
    picture_reads = [d for d in hashed if d in set(frame["digest"])]
    assert sorted(picture_reads) == sorted(set(frame["digest"]))  # each once, not per epoch


# -- 2: studio verify ---------------------------------------------------------------------


def register(ws: Workspace) -> registry.Version:
    return registry.register_version(
        ws, "toy", {"model.onnx": b"onnx" * 100, "weights.safetensors": b"w" * 5000},
        {"task": "classification", "target": "y", "dataset": {"name": "t", "rows": 1}},
        "# {ref}\nA card.")


def test_verify_finds_damaged_weights_and_card_that_nothing_reads(ws: Workspace) -> None:
    version = register(ws)
    assert verify_workspace(ws).ok
    damage(ws.blobs.path(version.file_digest("weights.safetensors")))
    ws.blobs.path(version.file_digest("card.md")).unlink()
    report = verify_workspace(ws)
    assert not report.ok and report.checked == 4  # manifest, onnx, weights, card
    found = {p.state: p.uses for p in report.problems}
    assert found == {"corrupt": ["model toy:1: weights.safetensors"],
                     "missing": ["model toy:1: card.md"]}


def test_verify_lists_damaged_dataset_files_and_counts_orphans(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    ws = Workspace.open(home)
    table = tmp_path / "t.csv"
    pd.DataFrame({"x": range(20), "y": ["a", "b"] * 10}).to_csv(table, index=False)
    snapshot = import_dataset(ws, table).digest
    frame = load_frame(ws, import_dataset(ws, pictures(tmp_path / "pets", {"cats": 3,
                                                                            "dogs": 3})))
    orphan = ws.blobs.put_bytes(b"left by a killed import")
    clean = run_studio(home, "verify")
    assert clean.returncode == 0, clean.stderr
    assert "8 stored file(s) checked, all intact" in clean.stdout
    assert "1 unreferenced file(s)" in clean.stdout

    damage(ws.blobs.path(snapshot))
    cat = frame[frame["path"] == "cats/cats1.png"].iloc[0]
    ws.blobs.path(cat["digest"]).unlink()
    bad = run_studio(home, "verify")
    assert bad.returncode == 1
    assert bad.stderr.count("\n") == 1 and bad.stderr.startswith("studio: error: 2 of 8")
    assert "import the dataset's source again" in bad.stderr
    assert "corrupt" in bad.stdout and "dataset t: snapshot" in bad.stdout
    assert "missing" in bad.stdout and "dataset pets: picture cats/cats1.png" in bad.stdout

    doc = json.loads(run_studio(home, "verify", "--json").stdout)
    assert doc["ok"] is False and doc["checked"] == 8 and doc["orphans"] == 1
    assert {p["digest"]: p["state"] for p in doc["problems"]} == {
        snapshot: "corrupt", cat["digest"]: "missing"}
    assert ws.blobs.intact(orphan)  # verify removes nothing


# -- 3: storing the same content again repairs it -----------------------------------------


@pytest.mark.parametrize("how", ["flipped", "truncated"])
def test_storing_the_same_content_again_replaces_a_damaged_blob(tmp_path: Path,
                                                                how: str) -> None:
    blobs = BlobStore(tmp_path / "blobs", tmp_path / "tmp")
    source = tmp_path / "data.bin"
    source.write_bytes(os.urandom(10_000))
    for put in (lambda: blobs.put_bytes(source.read_bytes()), lambda: blobs.put_file(source)):
        digest = put()
        path = blobs.path(digest)
        if how == "flipped":
            damage(path)
        else:
            path.write_bytes(path.read_bytes()[:100])
        assert not blobs.intact(digest)
        assert put() == digest and blobs.intact(digest)
    assert not list(blobs.tmp.iterdir())


def test_reimporting_the_source_repairs_a_damaged_snapshot(tmp_path: Path,
                                                           penguins_csv: Path) -> None:
    home = tmp_path / "ws"
    ws = Workspace.open(home)
    info = import_dataset(ws, penguins_csv)
    good = load_frame(ws, info)
    damage(ws.blobs.path(info.digest))
    with pytest.raises(IntegrityError):
        load_frame(ws, info)
    again = run_studio(home, "data", "import", str(penguins_csv))
    assert again.returncode == 0, again.stderr
    assert run_studio(home, "verify").returncode == 0
    assert load_frame(ws, get_dataset(ws, info.name)).equals(good)
    assert [d.name for d in list_datasets(ws)] == [info.name]


def test_reimporting_an_image_folder_repairs_a_damaged_picture(ws: Workspace,
                                                               tmp_path: Path) -> None:
    folder = pictures(tmp_path / "pets", {"cats": 3, "dogs": 3})
    info = import_dataset(ws, folder)
    digest = load_frame(ws, info)["digest"].iloc[0]
    damage(ws.blobs.path(digest))
    messages: list[str] = []
    assert import_dataset(ws, folder, emit=logs_of(messages)) == info
    assert "reading the file again repairs it" in " ".join(messages)
    assert ws.blobs.intact(digest) and verify_workspace(ws).ok


# -- 4: a refused image import leaves the workspace as it was -----------------------------


@pytest.fixture
def shared(ws: Workspace, tmp_path: Path) -> dict[str, bytes | None]:
    """A workspace holding one image dataset, whose pictures the next import shares."""
    pictures(tmp_path / "first", {"cats": 3, "dogs": 3})
    import_dataset(ws, tmp_path / "first")
    pictures(tmp_path / "second", {"cats": 3}, shade=0)  # the same cats: shared blobs
    pictures(tmp_path / "second", {"cats": 6, "owls": 4}, ".bmp", shade=200)  # and new ones
    return tree(ws.root)


def test_a_refused_image_import_leaves_the_workspace_as_it_was(
        ws: Workspace, tmp_path: Path, shared: dict[str, bytes | None]) -> None:
    for f in (tmp_path / "second" / "owls").iterdir():  # one class no picture of which reads
        f.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(InputError, match="only one class"):
        import_dataset(ws, tmp_path / "second")
    assert tree(ws.root) == shared
    assert verify_workspace(ws).ok


def test_a_cancelled_or_name_clashing_image_import_leaves_the_workspace_as_it_was(
        ws: Workspace, tmp_path: Path, shared: dict[str, bytes | None]) -> None:
    calls = iter(range(100))
    with pytest.raises(Cancelled):
        import_dataset(ws, tmp_path / "second", should_stop=lambda: next(calls) > 8)
    assert tree(ws.root) == shared
    with pytest.raises(InputError, match="already exists"):
        import_dataset(ws, tmp_path / "second", name="first")
    assert tree(ws.root) == shared


def test_an_unreadable_class_folder_refuses_the_import_before_storing(
        ws: Workspace, tmp_path: Path, shared: dict[str, bytes | None],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # chmod does not stop root, who runs some CI: the folder's listing fails as it would
    real = os.scandir
    owls = tmp_path / "second" / "owls"

    def scandir(path: os.PathLike | str) -> object:
        if Path(path) == owls:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(InputError, match=r"owls: this folder cannot be read \(Permission"):
        import_dataset(ws, tmp_path / "second")
    assert tree(ws.root) == shared


# -- 5: a zip member that is a file and a folder ------------------------------------------


@pytest.mark.parametrize("members", [["cats", "cats/1.png"], ["cats/1.png", "cats"],
                                     ["x/cats/", "x/cats"], ["a/1.png", "a/1.png"]])
def test_a_zip_naming_a_file_and_a_folder_alike_is_refused(ws: Workspace, tmp_path: Path,
                                                           members: list[str]) -> None:
    archive = tmp_path / "pets.zip"
    with zipfile.ZipFile(archive, "w") as z, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of a duplicate name, and writes it
        for m in members:
            z.writestr(m, b"" if m.endswith("/") else b"x")
    with pytest.raises(InputError, match=r"refused: (member '(x/)?cats' is a file|it holds "
                                         "'a/1.png' twice)"):
        import_dataset(ws, archive)
    assert list(ws.tmp.iterdir()) == []


def test_cli_refuses_a_zip_with_a_file_and_folder_alike_in_one_line(tmp_path: Path) -> None:
    archive = tmp_path / "pets.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("cats", b"x")
        z.writestr("cats/1.png", b"x")
    result = run_studio(tmp_path / "ws", "data", "import", str(archive))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "'cats' is a file" in result.stderr


# -- 6: one pixel limit, at import and in training ----------------------------------------


def test_a_picture_over_the_training_limit_is_skipped_at_import(ws: Workspace,
                                                                tmp_path: Path) -> None:
    from PIL import Image

    root = pictures(tmp_path / "big", {"cats": 2, "dogs": 2})
    Image.new("1", (9100, 9000)).save(root / "cats" / "huge.png")  # 81.9 MP, a small file
    messages: list[str] = []
    info = import_dataset(ws, root, emit=logs_of(messages))
    assert "cats/huge.png (refused: 9100×9000 is over the limit of 40 million pixels)" \
        in " ".join(messages)
    assert "cats/huge.png" not in set(load_frame(ws, info)["path"])
    assert any("huge.png" in w for w in info.details["warnings"])


def test_import_keeps_what_training_can_decode_and_no_more(
        ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    monkeypatch.setattr(pixels, "MAX_PIXELS", 200_000)
    root = pictures(tmp_path / "set", {"cats": 6, "dogs": 6})
    Image.new("RGB", (500, 500), "red").save(root / "cats" / "wide.png")  # 250k: over
    # 1 MP, but a JPEG is decoded at an eighth of its width for training: 62.5k
    Image.new("RGB", (1000, 1000), "blue").save(root / "dogs" / "photo.jpg")
    frame = load_frame(ws, import_dataset(ws, root))
    assert "cats/wide.png" not in set(frame["path"]) and "dogs/photo.jpg" in set(frame["path"])
    assert train(ws, "set")["version"] == "set:1"  # everything kept can be trained on
    with pytest.raises(InputError, match="over the limit"):
        pixels.decode((root / "cats" / "wide.png").read_bytes(), 32, False)


# -- 7: links are not followed ------------------------------------------------------------


def test_links_to_folders_and_files_are_skipped_and_listed(ws: Workspace,
                                                           tmp_path: Path) -> None:
    root = pictures(tmp_path / "pets", {"cats": 2, "dogs": 2})
    outside = pictures(tmp_path / "elsewhere", {"owls": 2, "deep": 2})
    (root / "owls").symlink_to(outside / "owls", target_is_directory=True)
    (root / "cats" / "more").symlink_to(outside / "deep", target_is_directory=True)
    (root / "dogs" / "linked.png").symlink_to(outside / "owls" / "owls0.png")
    messages: list[str] = []
    info = import_dataset(ws, root, emit=logs_of(messages))
    frame = load_frame(ws, info)
    assert sorted(set(frame["label"])) == ["cats", "dogs"] and len(frame) == 4
    said = " ".join(info.details["warnings"])
    assert "owls (a link to a folder)" in said
    assert "cats/more (a link to a folder)" in said and "dogs/linked.png (a link)" in said


def test_a_folder_of_linked_classes_is_refused_saying_why(ws: Workspace,
                                                          tmp_path: Path) -> None:
    outside = pictures(tmp_path / "elsewhere", {"cats": 2, "dogs": 2})
    root = tmp_path / "links"
    root.mkdir()
    for cls in ("cats", "dogs"):
        (root / cls).symlink_to(outside / cls, target_is_directory=True)
    with pytest.raises(InputError, match="links are not followed"):
        import_dataset(ws, root)


def test_an_unchanged_reimport_reads_no_stored_file_again(tmp_path: Path, penguins_csv: Path,
                                                          monkeypatch) -> None:
    """Instant, as the README says: files untouched since the import are taken on trust;
    studio verify moves a damaged one aside, so that the next import stores it again."""
    from studio.core.datasets.catalog import find_imported
    from studio.core.integrity import verify_workspace
    from studio.core.store import BlobStore

    ws = Workspace.open(tmp_path / "ws")
    info = import_dataset(ws, penguins_csv)

    def no_hashing(*_args, **_kwargs):
        raise AssertionError("hashed a stored file")

    with monkeypatch.context() as m:
        m.setattr(BlobStore, "intact", no_hashing)
        assert find_imported(ws, penguins_csv) == info
    path = ws.blobs.path(info.digest)
    stamp = path.stat()
    damage(path)
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # rot that leaves no trace
    assert find_imported(ws, penguins_csv) == info  # taken on trust…
    assert not verify_workspace(ws).ok  # …until verify finds it and moves it aside
    assert find_imported(ws, penguins_csv) is None  # so the file is read again
    assert import_dataset(ws, penguins_csv) == get_dataset(ws, info.name)
    assert verify_workspace(ws).ok
