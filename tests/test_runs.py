"""Runs as records: every training run is listed with what it was asked and what it made,
can be shown, compared and deleted, from the CLI as from the core."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import PENGUINS, run_studio

from studio.core import checkpoints, runs
from studio.core.errors import InputError, NotFoundError
from studio.core.workspace import Workspace
from studio.jobs import records


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with an MLP run (3 epochs) and a linear run on penguins, made by the
    real CLI."""
    home = tmp_path_factory.mktemp("runs") / "home"
    assert run_studio(home, "data", "import", str(PENGUINS)).returncode == 0
    for family in ("mlp", "linear"):
        done = run_studio(home, "train", "penguins", "--target", "species", "--family",
                          family, "--epochs", "3", "--seed", "7", timeout=240)
        assert done.returncode == 0, done.stderr
    return home


@pytest.fixture
def home(two_runs: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(two_runs, copy)
    return copy


def _json(home: Path, *args: str) -> dict:
    done = run_studio(home, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_each_training_run_is_a_record_with_its_facts(home: Path) -> None:
    listed = _json(home, "runs", "ls")["runs"]
    assert [r["family"] for r in listed] == ["linear", "mlp"]  # newest first
    for r, n in zip(listed, (2, 1), strict=True):
        assert r["state"] == "done" and r["dataset"] == "penguins"
        assert r["version"] == f"penguins:{n}" and r["metric"] == "accuracy"
        assert 0.5 < r["score"] <= 1.0 and r["duration_s"] > 0
        assert r["device"] == "cpu" and len(r["digest"]) == 64 and r["seed"] == 7

    mlp = _json(home, "runs", "show", listed[1]["id"][:6])
    assert mlp["params"]["epochs"] == 3 and "hidden" in mlp["params"]
    assert mlp["facts"]["task"] == "classification" and mlp["facts"]["families"] == ["mlp"]
    curves = mlp["history"]["mlp"]
    assert [e for e, _ in curves["val_accuracy"]] == [1, 2, 3]
    assert {"train_loss", "val_loss", "val_accuracy"} <= set(curves)
    assert "batch_loss" not in curves  # the record is per epoch

    text = run_studio(home, "runs", "show", listed[1]["id"]).stdout
    assert "val_accuracy" in text and "penguins:1" in text


def test_compare_marks_what_differs(home: Path) -> None:
    ids = [r["id"] for r in _json(home, "runs", "ls")["runs"]]
    doc = _json(home, "runs", "compare", *ids)
    assert doc["runs"] == ids
    about = {r["name"]: r for r in doc["about"]}
    assert about["family"]["values"] == ["linear", "mlp"] and about["family"]["differs"]
    assert not about["dataset"]["differs"] and not about["digest"]["differs"]
    params = {r["name"]: r for r in doc["params"]}
    assert params["seed"]["values"] == [7, 7] and not params["seed"]["differs"]
    assert params["hidden"]["values"][0] is None and params["hidden"]["differs"]
    metrics = {r["name"]: r for r in doc["metrics"]}
    assert "test accuracy" in metrics and "best val_accuracy" in metrics
    assert len(doc["curves"][ids[1]]["val_loss"]) == 3
    text = run_studio(home, "runs", "compare", *ids).stdout
    assert any(line.startswith("* family") for line in text.splitlines())
    bad = run_studio(home, "runs", "compare", ids[0])
    assert bad.returncode == 2 and "two runs" in bad.stderr


def test_filters_and_search(home: Path) -> None:
    assert [r["family"] for r in _json(home, "runs", "ls", "--family", "mlp")["runs"]] == ["mlp"]
    assert _json(home, "runs", "ls", "--dataset", "nope")["runs"] == []
    assert len(_json(home, "runs", "ls", "--status", "done")["runs"]) == 2
    assert _json(home, "runs", "ls", "--status", "failed")["runs"] == []
    assert [r["version"] for r in _json(home, "runs", "ls", "--search", "PENGUINS:2")["runs"]
            ] == ["penguins:2"]
    assert len(_json(home, "runs", "ls", "--limit", "1")["runs"]) == 1


def test_failed_and_running_runs_are_listed_and_a_running_one_is_not_deleted(
        home: Path) -> None:
    ws = Workspace.open(home)
    try:
        failed = records.create_job(ws, "train", {"dataset": "penguins", "target": "x",
                                                  "family": "mlp"})
        records.mark_running(ws, failed, os.getpid())
        records.finish(ws, failed, "failed", error="InputError: no column 'x'")
        going = records.create_job(ws, "train", {"dataset": "penguins", "target": "species",
                                                 "family": "auto"})
        records.mark_running(ws, going, os.getpid())  # this test's process: alive
        by_id = {r.id: r for r in runs.list_runs(ws)}
        assert by_id[failed].state == "failed" and "no column" in by_id[failed].error
        assert by_id[going].state == "running" and by_id[going].family == "auto"
        assert [r.id for r in runs.list_runs(ws, status="active")] == [going]
        assert [r.id for r in runs.list_runs(ws, search="no column")] == [failed]
        with pytest.raises(InputError, match="still running"):
            runs.delete(ws, [going])
        assert going in {r.id for r in runs.list_runs(ws)}  # nothing of it was removed
    finally:
        ws.db.close()


def test_rm_removes_the_record_and_checkpoints_but_keeps_the_version(home: Path) -> None:
    ws = Workspace.open(home)
    try:
        mlp = runs.list_runs(ws, family="mlp")[0].id
        folder = checkpoints.family_dir(ws, mlp, "mlp")
        checkpoints.write(folder, 1, {"weights.safetensors": b"w", "state.pt": b"s"}, {})
    finally:
        ws.db.close()
    done = run_studio(home, "runs", "rm", mlp[:8])
    assert done.returncode == 0 and mlp in done.stdout
    assert [r["family"] for r in _json(home, "runs", "ls")["runs"]] == ["linear"]
    assert not folder.exists()
    assert run_studio(home, "models", "show", "penguins:1").returncode == 0
    ws = Workspace.open(home)
    try:
        assert ws.db.conn.execute("SELECT COUNT(*) FROM metrics WHERE job_id = ?",
                                  [mlp]).fetchone()[0] == 0
    finally:
        ws.db.close()
    gone = run_studio(home, "runs", "show", mlp)
    assert gone.returncode != 0 and "no run" in gone.stderr
    assert gone.stderr.count("\n") == 1  # one line, no traceback


def test_run_ids_resolve_by_unique_prefix(ws: Workspace) -> None:
    a = records.create_job(ws, "train", {"dataset": "d", "target": "t"})
    b = records.create_job(ws, "train", {"dataset": "d", "target": "t"})
    ws.db.conn.execute("UPDATE jobs SET id = 'abcd1111' WHERE id = ?", [a])
    ws.db.conn.execute("UPDATE jobs SET id = 'abcd2222' WHERE id = ?", [b])
    assert runs.resolve(ws, "abcd1") == "abcd1111"
    with pytest.raises(InputError, match="ambiguous"):
        runs.resolve(ws, "abcd")
    with pytest.raises(NotFoundError, match="at least 4"):
        runs.resolve(ws, "abc")
    with pytest.raises(NotFoundError):
        runs.resolve(ws, "ab%_")  # LIKE wildcards are plain characters here
    imported = records.create_job(ws, "import", {"path": "x"})
    with pytest.raises(NotFoundError):
        runs.resolve(ws, imported)  # a job that is not a training run is no run


def test_a_checkpoint_is_whole_or_absent_and_only_the_last_few_are_kept(tmp_path: Path) -> None:
    folder = tmp_path / "ck"
    for epoch in range(1, 6):
        checkpoints.write(folder, epoch, {"weights.safetensors": b"w" * epoch,
                                          "state.pt": b"s"}, {"epoch": epoch})
    assert checkpoints.epochs(folder) == [3, 4, 5]
    # a write cut short leaves a partial folder that is not taken for a checkpoint
    (folder / ".epoch-00006.1.partial").mkdir()
    (folder / "epoch-00007").mkdir()  # a folder without its files is not one either
    assert checkpoints.epochs(folder) == [3, 4, 5]
