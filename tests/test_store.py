"""The SQLite store, the content-addressed blob store and the model registry on top of them."""

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from studio.core import registry
from studio.core.errors import InputError, IntegrityError, NotFoundError
from studio.core.store import BlobStore, Database
from studio.core.workspace import Workspace


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(tmp_path / "studio.db")
    yield database
    database.close()


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs", tmp_path / "tmp")


def part_files(store: BlobStore) -> list[Path]:
    return [p for p in [*store.tmp.rglob("*"), *store.root.rglob("*")]
            if p.name.endswith(".part")]


def blob_files(store: BlobStore) -> list[Path]:
    return sorted(p for p in store.root.rglob("*") if p.is_file())


# -- database -----------------------------------------------------------------------------


def test_database_uses_wal_and_a_busy_timeout(db: Database) -> None:
    assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
    # a second connection (another process) sees WAL too: it is a property of the file
    other = sqlite3.connect(db.path)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        other.close()


def test_database_has_its_tables_and_reopens(tmp_path: Path) -> None:
    first = Database(tmp_path / "studio.db")
    first.db["datasets"].insert({"name": "d", "digest": "x", "rows": 1, "columns": "[]",
                                 "source": "s", "description": "", "created": 0.0})
    first.close()
    again = Database(tmp_path / "studio.db")
    try:
        assert {"datasets", "jobs", "metrics", "versions"} <= set(again.db.table_names())
        assert [r["name"] for r in again.db["datasets"].rows] == ["d"]
    finally:
        again.close()


def test_immediate_rolls_back_on_exception(db: Database) -> None:
    db.conn.execute("CREATE TABLE t (x INTEGER)")
    with pytest.raises(RuntimeError), db.immediate() as conn:
        conn.execute("INSERT INTO t VALUES (1)")
        raise RuntimeError("boom")
    assert not db.conn.in_transaction
    assert db.conn.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 0
    # the connection is still usable and a clean block commits
    with db.immediate() as conn:
        conn.execute("INSERT INTO t VALUES (2)")
    assert not db.conn.in_transaction
    other = sqlite3.connect(db.path)
    try:
        assert other.execute("SELECT x FROM t").fetchall() == [(2,)]
    finally:
        other.close()


def test_immediate_holds_the_write_lock(db: Database) -> None:
    db.conn.execute("CREATE TABLE t (x INTEGER)")
    other = sqlite3.connect(db.path, timeout=0.1, isolation_level=None)
    try:
        with db.immediate(), pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("INSERT INTO t VALUES (1)")
        other.execute("INSERT INTO t VALUES (1)")
    finally:
        other.close()


# -- blobs --------------------------------------------------------------------------------


def test_put_bytes_returns_sha256_and_is_idempotent(blobs: BlobStore) -> None:
    data = b"hello, blob store\n" * 100
    digest = blobs.put_bytes(data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert blobs.exists(digest)
    assert blobs.path(digest).read_bytes() == data
    before = blob_files(blobs)
    inode = blobs.path(digest).stat().st_ino
    assert blobs.put_bytes(data) == digest
    assert blob_files(blobs) == before
    assert blobs.path(digest).stat().st_ino == inode  # not rewritten
    assert part_files(blobs) == []


def test_put_file_matches_put_bytes_and_is_idempotent(blobs: BlobStore, tmp_path: Path) -> None:
    data = bytes(range(256)) * 9000  # over one streaming chunk
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    digest = blobs.put_file(src)
    assert digest == hashlib.sha256(data).hexdigest()
    assert blobs.read_bytes(digest) == data
    assert blobs.put_file(src) == digest
    assert blobs.put_bytes(data) == digest
    assert len(blob_files(blobs)) == 1
    assert src.read_bytes() == data  # the source is copied, not moved
    assert part_files(blobs) == []


def test_put_file_of_a_missing_source_leaves_nothing(blobs: BlobStore, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        blobs.put_file(tmp_path / "nope.bin")
    assert part_files(blobs) == []
    assert blob_files(blobs) == []


def test_empty_blob(blobs: BlobStore) -> None:
    digest = blobs.put_bytes(b"")
    assert digest == hashlib.sha256(b"").hexdigest()
    assert blobs.read_bytes(digest) == b""


@pytest.mark.parametrize("reader", ["read_bytes", "verified_path"])
def test_corrupted_blob_is_detected(blobs: BlobStore, reader: str) -> None:
    digest = blobs.put_bytes(b"precious model weights" * 50)
    path = blobs.path(digest)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(IntegrityError):
        getattr(blobs, reader)(digest)


@pytest.mark.parametrize("reader", ["read_bytes", "verified_path"])
def test_missing_blob_is_not_found(blobs: BlobStore, reader: str) -> None:
    digest = blobs.put_bytes(b"soon gone")
    blobs.path(digest).unlink()
    with pytest.raises(NotFoundError):
        getattr(blobs, reader)(digest)
    never_stored = hashlib.sha256(b"never stored").hexdigest()
    with pytest.raises(NotFoundError):
        getattr(blobs, reader)(never_stored)


def test_verified_path_of_an_intact_blob(blobs: BlobStore) -> None:
    digest = blobs.put_bytes(b"intact")
    path = blobs.verified_path(digest)
    assert path.read_bytes() == b"intact"
    assert path.name == digest[2:] and path.parent.name == digest[:2]


@pytest.mark.parametrize("digest", ["", "abc", "../" * 30, "G" * 64, "A" * 64])
def test_malformed_digests_are_rejected(blobs: BlobStore, digest: str) -> None:
    with pytest.raises(NotFoundError):
        blobs.read_bytes(digest)


# -- registry -----------------------------------------------------------------------------

MANIFEST = {"task": "classification", "dataset": {"name": "toy"}}


def register(ws: Workspace, name: str = "toy", payload: bytes = b"onnx bytes",
             **files: bytes | Path) -> registry.Version:
    return registry.register_version(
        ws, name, {"model.onnx": payload, **files}, dict(MANIFEST), "# {ref}\n")


def test_versions_are_numbered_and_resolved(ws: Workspace) -> None:
    made = [register(ws, payload=f"model {i}".encode()) for i in range(3)]
    assert [v.version for v in made] == [1, 2, 3]
    assert [v.ref for v in made] == ["toy:1", "toy:2", "toy:3"]

    latest = registry.get_version(ws, "toy")
    assert latest.ref == "toy:3"
    assert registry.read_file(ws, latest, "model.onnx") == b"model 2"
    second = registry.get_version(ws, "toy:2")
    assert second.version == 2
    assert registry.read_file(ws, second, "model.onnx") == b"model 1"
    assert second.manifest.raw["name"] == "toy" and second.manifest.raw["version"] == 2
    assert registry.read_file(ws, second, "card.md") == b"# toy:2\n"
    assert [v.ref for v in registry.list_versions(ws)] == ["toy:1", "toy:2", "toy:3"]


def test_names_number_their_versions_independently(ws: Workspace) -> None:
    register(ws, "a")
    register(ws, "b")
    assert register(ws, "a").ref == "a:2"
    assert registry.get_version(ws, "b").ref == "b:1"
    assert [v.ref for v in registry.list_versions(ws, "a")] == ["a:1", "a:2"]


@pytest.mark.parametrize("ref", ["a:b", "a:0", "", "a:-1", "a:", ":1", "a b", "a:1:2"])
def test_bad_refs_are_input_errors(ws: Workspace, ref: str) -> None:
    register(ws, "a")
    with pytest.raises(InputError):
        registry.get_version(ws, ref)


@pytest.mark.parametrize("ref", ["nope", "nope:1", "toy:2"])
def test_unknown_versions_are_not_found(ws: Workspace, ref: str) -> None:
    register(ws)
    with pytest.raises(NotFoundError):
        registry.get_version(ws, ref)


def test_a_version_row_has_all_its_blobs(ws: Workspace, tmp_path: Path) -> None:
    extra = tmp_path / "weights.bin"
    extra.write_bytes(b"w" * 5000)
    version = register(ws, **{"weights.safetensors": extra})
    assert set(version.manifest.raw["files"]) == {"model.onnx", "weights.safetensors", "card.md"}
    row = ws.db.conn.execute(
        "SELECT manifest_digest, manifest FROM versions WHERE name = 'toy' AND version = 1"
    ).fetchone()
    assert ws.blobs.read_bytes(row[0]).decode() == row[1]
    assert json.loads(row[1])["files"] == version.manifest.raw["files"]
    for digest in version.manifest.raw["files"].values():
        ws.blobs.verified_path(digest)


def test_a_failed_registration_leaves_no_row(ws: Workspace, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        register(ws, **{"weights.safetensors": tmp_path / "missing.bin"})
    assert registry.list_versions(ws) == []
    # a manifest that cannot be written rolls the transaction back
    with pytest.raises(ValueError):
        registry.register_version(ws, "toy", {"model.onnx": b"x"},
                                  {**MANIFEST, "bad": float("nan")}, "# {ref}")
    assert registry.list_versions(ws) == []
    assert not ws.db.conn.in_transaction
    # and the next good registration still gets number 1
    assert register(ws).ref == "toy:1"


def test_invalid_model_names_are_refused(ws: Workspace) -> None:
    for name in ["", "-x", "a/b", "x" * 65]:
        with pytest.raises(InputError):
            register(ws, name)
    assert registry.list_versions(ws) == []


def test_corrupted_manifest_blob_is_detected(ws: Workspace) -> None:
    register(ws)
    digest = ws.db.conn.execute("SELECT manifest_digest FROM versions").fetchone()[0]
    ws.blobs.path(digest).write_bytes(b"{}")
    with pytest.raises(IntegrityError):
        registry.get_version(ws, "toy:1")


def test_default_workspace_is_the_session_scratch_home(studio_home_env: Path) -> None:
    """Without --home, STUDIO_HOME decides; the suite points it away from the user's data."""
    opened = Workspace.open()
    assert opened.root == studio_home_env
    assert opened.tmp.is_dir()
