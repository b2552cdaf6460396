"""Runs that end badly leave nothing half-kept: a lost terminal is not a Stop, a row whose
process is gone blocks nothing, and a model card is never a template."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pandas as pd
import pytest
from conftest import PENGUINS, run_studio, studio_cmd

from studio.core.workspace import Workspace


def _job_rows(home) -> list[dict]:
    ws = Workspace.open(home)
    try:
        return [dict(r) for r in ws.db.db["jobs"].rows_where(order_by="created")]
    finally:
        ws.db.close()


@pytest.mark.timeout(240)
def test_a_killed_terminal_registers_nothing_and_is_told_once(tmp_path):
    home = tmp_path / "ws"
    assert run_studio(home, "data", "import", str(PENGUINS)).returncode == 0
    cli = subprocess.Popen(studio_cmd(home, "train", "penguins", "--target", "species",
                                      "--epochs", "3000"), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # until the job trains
        rows = [r for r in _job_rows(home) if r["kind"] == "train"]
        if rows and rows[-1]["status"] == "running" and rows[-1]["pid"] != cli.pid:
            break
        time.sleep(0.2)
    time.sleep(1.0)  # a few epochs: a Stop would now keep one
    cli.send_signal(signal.SIGKILL)
    cli.wait(timeout=30)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the job sees its stdin close and ends on its own
        job = [r for r in _job_rows(home) if r["kind"] == "train"][-1]
        if job["status"] not in ("queued", "running"):
            break
        time.sleep(0.2)
    assert job["status"] == "interrupted", job
    assert "went away" in job["error"]
    listed = run_studio(home, "models", "ls", "--json")
    assert json.loads(listed.stdout)["versions"] == []  # no half-trained penguins:1
    assert "interrupted" not in listed.stderr  # a script's JSON call is not where to say it
    told = run_studio(home, "models", "ls")
    assert "was interrupted" in told.stderr and "penguins" in told.stderr
    again = run_studio(home, "models", "ls")
    assert "interrupted" not in again.stderr  # said once


def test_a_queued_row_whose_starter_died_blocks_no_delete(tmp_path):
    home = tmp_path / "ws"
    assert run_studio(home, "data", "import", str(PENGUINS)).returncode == 0
    dead = subprocess.Popen(["true"])
    dead.wait()
    ws = Workspace.open(home)
    ws.db.db["jobs"].insert({
        "id": "queuedjob01", "kind": "train", "spec": json.dumps({"dataset": "penguins"}),
        "status": "queued", "pid": dead.pid, "device": None, "created": time.time(),
        "started": None, "ended": None, "error": None, "result": None})
    ws.db.close()
    removed = run_studio(home, "data", "rm", "penguins")
    assert removed.returncode == 0, removed.stderr
    job = next(r for r in _job_rows(home) if r["id"] == "queuedjob01")
    assert job["status"] == "failed"


def test_a_live_queued_row_still_protects_its_dataset(tmp_path):
    home = tmp_path / "ws"
    assert run_studio(home, "data", "import", str(PENGUINS)).returncode == 0
    ws = Workspace.open(home)
    ws.db.db["jobs"].insert({
        "id": "queuedjob02", "kind": "train", "spec": json.dumps({"dataset": "penguins"}),
        "status": "queued", "pid": os.getpid(), "device": None, "created": time.time(),
        "started": None, "ended": None, "error": None, "result": None})
    ws.db.close()
    refused = run_studio(home, "data", "rm", "penguins")
    assert refused.returncode == 2
    assert "being trained on" in refused.stderr


HOSTILE_LABELS = ["{a}", "b}", "{ref:>50000000}", "{ref.__class__.__mro__}", "*x*|y"]


@pytest.mark.timeout(240)
def test_labels_and_names_in_the_card_are_text_not_a_template(tmp_path):
    frame = pd.read_csv(PENGUINS).dropna()
    frame["species"] = [HOSTILE_LABELS[i % len(HOSTILE_LABELS)] for i in range(len(frame))]
    frame = frame.rename(columns={"island": "{island}"})
    csv = tmp_path / "odd.csv"
    frame.to_csv(csv, index=False)
    home = tmp_path / "ws"
    assert run_studio(home, "data", "import", str(csv)).returncode == 0
    trained = run_studio(home, "train", "odd", "--target", "species", "--epochs", "2",
                         timeout=240)
    assert trained.returncode == 0, trained.stderr
    ws = Workspace.open(home)
    try:
        from studio.core.registry import get_version, read_file

        version = get_version(ws, "odd:1")
        card = read_file(ws, version, "card.md").decode()
    finally:
        ws.db.close()
    assert len(card) < 20_000  # "{ref:>50000000}" was a 50 MB padding instruction
    assert "\\_\\_mro\\_\\_" in card and "<class" not in card  # written, never evaluated
    assert card.startswith("# odd:1")
    assert "\\{ref:\\>50000000\\}" in card  # shown as text: markdown escapes it
    assert "\\*x\\*\\|y" in card


@pytest.mark.parametrize("value", ["nan", "inf", "-Infinity", 1e999, "twelve", True])
def test_a_recipe_fill_value_must_be_a_finite_number(tmp_path, value):
    home = tmp_path / "ws"
    assert run_studio(home, "data", "import", str(PENGUINS)).returncode == 0
    recipe = tmp_path / "r.json"
    recipe.write_text(json.dumps({"columns": {"body_mass_g": {
        "fill": "constant", "fill_value": value}}}).replace("Infinity", "1e999"))
    out = run_studio(home, "train", "penguins", "--target", "species", "--epochs", "1",
                     "--recipe", str(recipe))
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1
    assert "'body_mass_g'" in out.stderr and "fill_value must be a" in out.stderr


def test_the_app_says_at_start_which_run_was_lost(qtbot, tmp_path):
    from studio.gui.app import create_window

    ws = Workspace.open(tmp_path / "ws")
    ws.db.db["jobs"].insert({
        "id": "lostjob0001", "kind": "train", "spec": json.dumps({"dataset": "penguins"}),
        "status": "interrupted", "pid": None, "device": "cpu", "created": time.time(),
        "started": time.time(), "ended": time.time(), "result": None,
        "error": "the process that started it went away (a closed terminal or a killed "
                 "app): nothing was kept"})
    ws.db.close()
    window = create_window(tmp_path / "ws")
    qtbot.addWidget(window)
    window.show()
    window.load()
    assert "training on 'penguins'" in window.status_text.toolTip()
    assert "nothing was kept" in window.status_text.toolTip()
    window.close()


@pytest.mark.timeout(120)
def test_an_abandoned_import_keeps_nothing_and_ends_interrupted(tmp_path):
    """What a window closed during an import does: the job's stdin closes without a Stop."""
    import numpy as np

    from studio.core.events import Failed, Progress
    from studio.jobs.runner import JobRunner

    big = tmp_path / "big.csv"
    pd.DataFrame(np.random.default_rng(0).normal(size=(1_500_000, 4))).to_csv(big, index=False)
    ws = Workspace.open(tmp_path / "ws")
    runner = JobRunner(ws, "import", {"path": str(big), "name": None})
    runner.start()
    for event in runner.events():
        if isinstance(event, Progress) and event.current:
            break  # it is reading
    runner.abandon()
    final = [*runner.events()][-1] if runner.final is None else runner.final
    assert isinstance(final, Failed)
    row = _job_rows(tmp_path / "ws")[-1]
    assert row["status"] == "interrupted" and "went away" in row["error"]
    assert list(ws.db.db["datasets"].rows) == []
    assert not [p for p in (tmp_path / "ws" / "blobs").rglob("*") if p.is_file()]
    ws.db.close()


@pytest.mark.timeout(240)
def test_training_works_from_a_folder_holding_a_triton_model_repository(tmp_path):
    """`studio models export --triton triton/` then training from the same folder: the
    folder must not shadow the triton library torch imports."""
    home = tmp_path / "ws"
    assert run_studio(home, "data", "import", str(PENGUINS)).returncode == 0
    (tmp_path / "triton").mkdir()
    done = subprocess.run(studio_cmd(home, "train", "penguins", "--target", "species",
                                     "--family", "mlp", "--epochs", "2"),
                          capture_output=True, text=True, timeout=200, cwd=tmp_path,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
