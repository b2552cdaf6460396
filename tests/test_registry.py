"""The registry: references, aliases that move atomically, tags, cards, archive, delete and
gc, comparing versions, the schema-7 migration, and a lookup that stays light."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import copied_workspace, penguins_workspace, run_studio
from starlette.testclient import TestClient

from studio.core import registry
from studio.core.errors import InputError, IntegrityError, NotFoundError
from studio.core.registry import compare, labels, lifecycle, servers, versions
from studio.core.registry.listing import version_rows
from studio.core.registry.manifest import Manifest
from studio.core.workspace import Workspace
from studio.serving.app import create_app
from studio.serving.dataplane import ModelRepository


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """penguins:1 (linear) and penguins:2 (boosted trees), made once."""
    return penguins_workspace(tmp_path_factory.mktemp("registry") / "ws",
                              ("linear", "boosted-trees"))


@pytest.fixture
def rws(template: Path, tmp_path: Path) -> Iterator[Workspace]:
    with copied_workspace(template, tmp_path / "ws") as ws:
        yield ws


def test_references_have_one_grammar() -> None:
    assert registry.parse_ref("pg") == registry.Ref("pg")
    assert registry.parse_ref("pg:3") == registry.Ref("pg", 3)
    assert registry.parse_ref("pg@production") == registry.Ref("pg", alias="production")
    assert registry.parse_ref("pg@latest") == registry.Ref("pg")
    for bad in ("pg:0", "pg:x", "pg:", "pg@", "pg@5", "../pg", "pg@a/b", "", "pg:٣"):
        with pytest.raises(InputError):
            registry.parse_ref(bad)


def test_an_alias_moves_and_resolves_everywhere(rws: Workspace) -> None:
    moved = labels.set_alias(rws, "penguins", "production", "1")
    assert (moved.version, moved.previous) == (1, None)
    assert registry.get_version(rws, "penguins@production").version == 1
    moved = labels.set_alias(rws, "penguins", "production", "penguins:2")
    assert (moved.version, moved.previous) == (2, 1)
    assert registry.resolve(rws, "penguins@production") == ("penguins", 2)
    with pytest.raises(NotFoundError, match="its aliases: production"):
        registry.resolve(rws, "penguins@staging")
    with pytest.raises(InputError, match="latest"):
        labels.set_alias(rws, "penguins", "latest", "1")
    with pytest.raises(NotFoundError):
        labels.set_alias(rws, "penguins", "staging", "9")

    shown = run_studio(rws.root, "models", "show", "penguins@production", "--json")
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    onnx = rws.blobs.path(doc["files"]["model.onnx"])
    assert doc["ref"] == "penguins:2" and doc["aliases"] == ["production"]
    assert doc["size_bytes"] == onnx.stat().st_size
    assert {"relation": "trained_on", "kind": "dataset",
            "ref": doc["lineage"]["dataset"]} in doc["links"]["from"]


def test_readers_never_see_an_alias_missing_while_it_moves(rws: Workspace) -> None:
    labels.set_alias(rws, "penguins", "production", "1")
    seen: set[int] = set()
    errors: list[Exception] = []
    done = threading.Event()

    def read() -> None:
        reader = Workspace.open(rws.root)
        try:
            while not done.is_set():
                seen.add(registry.resolve(reader, "penguins@production")[1])
        except Exception as exc:
            errors.append(exc)
        finally:
            reader.db.close()

    thread = threading.Thread(target=read)
    thread.start()
    for i in range(5000):  # until the reader has seen both (or a bound)
        labels.set_alias(rws, "penguins", "production", str(1 + i % 2))
        if i >= 200 and seen == {1, 2}:
            break
        if i % 50 == 0:
            time.sleep(0.001)  # let the reader in
    done.set()
    thread.join()
    assert not errors and seen == {1, 2}


def test_archived_versions_leave_lists_and_latest_but_stay_reachable(rws: Workspace) -> None:
    lifecycle.archive(rws, "penguins:2")
    assert registry.resolve(rws, "penguins") == ("penguins", 1)
    assert [r.ref for r in version_rows(rws)] == ["penguins:1"]
    assert [r.ref for r in version_rows(rws, archived=True)] == ["penguins:1", "penguins:2"]
    assert registry.get_version(rws, "penguins:2").version == 2
    lifecycle.archive(rws, "penguins:2", archived=False)
    assert registry.resolve(rws, "penguins") == ("penguins", 2)


def test_delete_is_refused_while_aliased_or_served_then_gc_frees_its_files(
        rws: Workspace) -> None:
    labels.set_alias(rws, "penguins", "production", "2")
    with pytest.raises(InputError, match="penguins@production"):
        lifecycle.delete_version(rws, "penguins:2")
    labels.remove_alias(rws, "penguins", "production")
    servers.announce(rws, "http://127.0.0.1:9", ["penguins:2"])
    with pytest.raises(InputError, match=r"served at http://127\.0\.0\.1:9"):
        lifecycle.delete_version(rws, "penguins:2")
    servers.withdraw(rws, "http://127.0.0.1:9")

    v1, v2 = registry.get_version(rws, "penguins:1"), registry.get_version(rws, "penguins:2")
    only_v2 = set(v2.manifest.files.values()) - set(v1.manifest.files.values())
    only_v2.add(rws.db.conn.execute("SELECT manifest_digest FROM versions WHERE version = 2"
                                    ).fetchone()[0])
    lifecycle.delete_version(rws, "penguins:2")
    with pytest.raises(NotFoundError):
        registry.get_version(rws, "penguins:2")
    assert lifecycle.gc(rws).removed == 0  # younger than the grace period: kept
    from studio.core.integrity import VerifyReport, blob_uses

    # what only penguins:2 used, less what its run's leaderboard still holds (a family
    # there can still be registered)
    gone = only_v2 - set(blob_uses(rws, VerifyReport()))
    expected = sum(rws.blobs.path(d).stat().st_size for d in gone)
    report = lifecycle.gc(rws, grace_s=0)
    assert gone and (report.removed, report.freed_bytes) == (len(gone), expected)
    assert not any(rws.blobs.exists(d) for d in gone)
    assert all(rws.blobs.exists(d) for d in v1.manifest.files.values())
    assert run_studio(rws.root, "models", "verify").returncode == 0
    assert registry.get_version(rws, "penguins").version == 1


def test_a_file_gc_removes_while_a_version_registers_is_stored_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """gc may judge a file unused and old by a look taken just before a registration found
    that file already stored; the registration must then store it again before its row
    refers to it, or the new version points at nothing."""
    ws = Workspace.open(tmp_path / "ws")
    files = {"model.onnx": b"the same model, trained again" * 100}
    onnx = hashlib.sha256(files["model.onnx"]).hexdigest()
    registry.register_version(ws, "m", files, {"task": "classification"}, "# {ref}")
    lifecycle.delete_version(ws, "m:1")
    real = versions.library_versions

    def gc_meanwhile() -> dict[str, str]:  # runs after the files are stored, before the row
        old = time.time() - 2 * lifecycle.GC_GRACE_S  # as gc saw it before it was stored
        os.utime(ws.blobs.path(onnx), (old, old))
        assert lifecycle.gc(ws).removed == 1 and not ws.blobs.exists(onnx)
        return real()

    monkeypatch.setattr(versions, "library_versions", gc_meanwhile)
    v = registry.register_version(ws, "m", files, {"task": "classification"}, "# {ref}")
    assert registry.read_file(ws, v, "model.onnx") == files["model.onnx"]
    ws.db.close()


def test_a_deleted_version_s_number_is_never_given_again(rws: Workspace) -> None:
    v2 = registry.get_version(rws, "penguins:2")
    files = {f: registry.read_file(rws, v2, f) for f in v2.manifest.files if f != "card.md"}
    raw = {k: v for k, v in v2.manifest.raw.items()
           if k not in ("name", "version", "created", "files", "format")}
    lifecycle.delete_version(rws, "penguins:2")
    lifecycle.delete_version(rws, "penguins:1")
    again = registry.register_version(rws, "penguins", files, raw, "# {ref}")
    assert again.ref == "penguins:3"
    assert registry.resolve(rws, "penguins") == ("penguins", 3)


def test_a_server_s_row_counts_only_while_its_process_lives(rws: Workspace) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    rws.db.conn.execute("INSERT INTO servers VALUES (?, ?, ?, ?)",
                        [child.pid, "http://127.0.0.1:1", '["penguins:1"]', 0.0])
    assert servers.serving(rws) == {}
    lifecycle.delete_version(rws, "penguins:1")


def test_tags_descriptions_and_edited_cards(rws: Workspace) -> None:
    assert labels.set_tags(rws, "penguins:1", {"owner": "ana", "stage": "dev"}) == {
        "owner": "ana", "stage": "dev"}
    assert labels.set_tags(rws, "penguins:1", labels.parse_tags([], ["stage"])) == {
        "owner": "ana"}
    for bad in ({"": "x"}, {"a=b": "x"}, {"k": "x" * 501}, {"k": "line\nbreak"}):
        with pytest.raises(InputError):
            labels.set_tags(rws, "penguins:1", bad)
    r = run_studio(rws.root, "models", "tag", "penguins:2", "team=vision", "note=",
                   "--remove", "absent", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["tags"] == {"note": "", "team": "vision"}
    r = run_studio(rws.root, "models", "tag", "penguins:2", "--remove", "team")
    assert r.returncode == 0 and r.stdout.strip() == "note="
    labels.set_description(rws, "penguins:1", "  the linear baseline ")
    row = version_rows(rws, "penguins")[0]
    assert row.tags == {"owner": "ana"} and row.description == "the linear baseline"

    version = registry.get_version(rws, "penguins:1")
    original = labels.card_text(rws, version)
    assert "penguins:1" in original
    labels.set_card(rws, "penguins:1", "# Penguins\n\nEdited by hand.\n")
    assert labels.card_text(rws, version) == "# Penguins\n\nEdited by hand.\n"
    assert registry.read_file(rws, version, "card.md").decode() == original  # kept
    lifecycle.gc(rws, grace_s=0)
    assert labels.card_text(rws, version).startswith("# Penguins")  # gc kept the edit


def test_compare_side_by_side_and_a_metric_across_versions(rws: Workspace) -> None:
    table = compare.compare(rws, ["penguins:1", "penguins:2"])
    assert table["refs"] == ["penguins:1", "penguins:2"]
    assert table["rows"]["about"]["family"] == ["linear", "boosted-trees"]
    assert len(table["rows"]["metrics"]["accuracy"]) == 2
    assert table["rows"]["inputs"]["input"][0] == table["rows"]["inputs"]["input"][1]
    series = compare.metric_series(rws, "penguins", "accuracy")
    assert [s["ref"] for s in series] == ["penguins:1", "penguins:2"]
    assert all(0 < s["value"] <= 1 for s in series)
    with pytest.raises(InputError, match="no version"):
        compare.metric_series(rws, "penguins", "r2")
    r = run_studio(rws.root, "models", "compare", "penguins", "--metric", "accuracy")
    assert r.returncode == 0 and r.stdout.count("█") >= 2, r.stderr


def test_a_workspace_from_schema_6_gains_the_registry_tables(rws: Workspace) -> None:
    conn = rws.db.conn
    for table in ("models", "aliases", "tags", "lineage", "servers"):
        conn.execute(f"DROP TABLE {table}")
    conn.execute("DROP INDEX versions_listing")  # schema 8's, over columns schema 6 lacks
    for column in ("kind", "family", "metric", "score", "size_bytes", "total_bytes", "source",
                   "parent", "archived", "card_digest", "description", "metrics"):
        conn.execute(f"ALTER TABLE versions DROP COLUMN {column}")
    conn.execute("PRAGMA user_version = 6")
    rws.db.close()
    reopened = Workspace.open(rws.root)
    rows = version_rows(reopened)
    assert [(r.ref, r.family, r.source) for r in rows] == [
        ("penguins:1", "linear", "training"), ("penguins:2", "boosted-trees", "training")]
    assert all(r.size_bytes and r.metric == "accuracy" for r in rows)
    edges = reopened.db.conn.execute("SELECT DISTINCT relation FROM lineage").fetchall()
    assert {e[0] for e in edges} == {"trained_on"}  # made in-process: no job to name
    reopened.db.close()


def test_a_workspace_from_the_first_schema_7_gains_the_metrics_column(rws: Workspace) -> None:
    conn = rws.db.conn
    conn.execute("DROP INDEX versions_listing")
    conn.execute("ALTER TABLE versions DROP COLUMN metrics")
    conn.execute("PRAGMA user_version = 7")
    rws.db.close()
    reopened = Workspace.open(rws.root)
    rows = version_rows(reopened)
    assert len(rows) == 2 and all(0 < r.test_metrics["accuracy"] <= 1 for r in rows)
    reopened.db.close()


def test_a_listing_reads_one_index_not_the_rows_that_hold_manifests(rws: Workspace) -> None:
    """Each row keeps its manifest (kilobytes) before the listing's columns: reading them
    from the table walks every manifest, ~5x slower at 10,000 versions."""
    statements: list[str] = []
    rws.db.conn.set_trace_callback(statements.append)
    try:
        assert len(version_rows(rws)) == 2
        assert len(version_rows(rws, "penguins", archived=True)) == 2
    finally:
        rws.db.conn.set_trace_callback(None)
    listings = [s for s in statements if "FROM versions" in s]
    assert len(listings) == 2
    for sql in listings:
        plan = " ".join(r[3] for r in rws.db.conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
        assert "COVERING INDEX versions_listing" in plan, (sql, plan)


def test_looking_a_model_up_imports_no_dataset_stack(rws: Workspace) -> None:
    code = ("import sys; from studio.core.workspace import Workspace; "
            "from studio.core import registry; ws = Workspace.open(sys.argv[1]); "
            "v = registry.get_version(ws, 'penguins'); assert v.manifest.task; "
            "print(sorted(m for m in ('pandas', 'pyarrow', 'sqlite_utils', "
            "'studio.core.datasets') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code, str(rws.root)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_a_manifest_that_escapes_is_refused() -> None:
    good = {"name": "m", "version": 1, "task": "classification",
            "files": {"model.onnx": "a" * 64}}
    assert Manifest.parse(good).files == {"model.onnx": "a" * 64}
    for bad in ({"files": {"../model.onnx": "a" * 64}}, {"files": {"sub/x": "a" * 64}},
                {"files": {"model.onnx": "../../etc/passwd"}}, {"name": "../m"},
                {"name": "m/n"}, {"version": 0}, {"version": True}):
        with pytest.raises(IntegrityError):
            Manifest.parse({**good, **bad})


def test_a_version_no_run_made_is_listed_and_shown(rws: Workspace) -> None:
    """An imported model: no recipe, no training section, its own tensors."""
    source = registry.get_version(rws, "penguins:1")
    onnx = registry.read_file(rws, source, "model.onnx")
    manifest = {"task": None, "onnx": {
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 10]}],
        "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]}]},
        "imported": {"source": "/somewhere/model.onnx", "format": "onnx",
                     "original": {"model.onnx": "b" * 64}}}
    v = registry.register_version(rws, "outside", {"model.onnx": onnx}, manifest, "# outside")
    assert v.manifest.source == "import" and v.kind == "imported onnx" and v.task is None
    shown = run_studio(rws.root, "models", "show", "outside", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["links"]["from"] == [
        {"relation": "imported_from", "kind": "source", "ref": "/somewhere/model.onnx"}]
    listed = run_studio(rws.root, "models", "ls")
    assert "outside:1" in listed.stdout and "imported onnx" in listed.stdout


def test_the_server_serves_an_alias_and_refuses_a_damaged_version(rws: Workspace) -> None:
    labels.set_alias(rws, "penguins", "production", "2")
    repo = ModelRepository(rws, ["penguins@production"], threads=1)
    row = {"island": "Biscoe", "bill_length_mm": 50.0, "bill_depth_mm": 15.0,
           "flipper_length_mm": 220, "body_mass_g": 5500, "sex": "male", "year": 2008}
    with TestClient(create_app(repo)) as client:
        meta = client.get("/v2/models/penguins@production")
        assert meta.status_code == 200 and meta.json()["name"] == "penguins", meta.text
        r = client.post("/v1/models/penguins@production:predict", json={"instances": [row]})
        assert r.status_code == 200 and r.json()["model_version"] == "2", r.text
        assert r.json()["model_name"] == "penguins"
        labels.set_alias(rws, "penguins", "production", "1")
        # served as it was until the server follows the move, then the new version
        r = client.post("/v1/models/penguins@production:predict", json={"instances": [row]})
        assert r.status_code == 200 and r.json()["model_version"] == "2", r.text
        assert repo.follow_aliases() == ["penguins@production: penguins:2 → penguins:1"]
        r = client.post("/v1/models/penguins@production:predict", json={"instances": [row]})
        assert r.status_code == 200 and r.json()["model_version"] == "1", r.text
        assert repo.served() == ["penguins:1"]  # the version nothing asks for is let go

    path = rws.blobs.path(registry.get_version(rws, "penguins:1").manifest.files["model.onnx"])
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    os.chmod(path, 0o644)
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="penguins:1 cannot be served"):
        ModelRepository(rws, ["penguins:1"], threads=1)
    assert run_studio(rws.root, "models", "verify").returncode == 1


def test_opening_the_workspace_sweeps_what_dead_processes_left(tmp_path: Path) -> None:
    ws = Workspace.open(tmp_path / "ws")
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = ws.tmp / f"blob-{child.pid}-abc.part"
    mine = ws.tmp / f"blob-{os.getpid()}-abc.part"
    folder = ws.tmp / f"unzip-{child.pid}-x"
    for p in (dead, mine):
        p.write_bytes(b"half")
    folder.mkdir()
    (folder / "a.png").write_bytes(b"x")
    Workspace.open(ws.root)
    assert not dead.exists() and not folder.exists() and mine.exists()
