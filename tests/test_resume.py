"""Stop, resume, survive: a run keeps per-epoch checkpoints (the last few), and one that was
stopped or killed with -9 goes on from its last one and ends where an uninterrupted run of
the same seed ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from conftest import PENGUINS, run_studio, studio_cmd
from safetensors.torch import load as load_safetensors

from studio.core import checkpoints, registry, runs
from studio.core.datasets import catalog
from studio.core.errors import InputError
from studio.core.events import Event, Metric, Progress
from studio.core.training.pipeline import run
from studio.core.training.spec import TrainSpec
from studio.core.workspace import Workspace
from studio.jobs import records

EPOCHS = 24


def _spec(**extra) -> TrainSpec:
    return TrainSpec(dataset="penguins", target="species", family="mlp", epochs=EPOCHS,
                     seed=11, threads=1, time_budget_s=3600, **extra)


def _run(ws: Workspace, spec: TrainSpec, stop_after: int | None = None) -> tuple[str, dict]:
    """A training run with its own record, as the job process keeps one; a Stop after
    ``stop_after`` epochs."""
    job = records.create_job(ws, "train", spec.to_dict())
    records.mark_running(ws, job, os.getpid())
    seen, metrics = [], []

    def emit(event: Event) -> None:
        if isinstance(event, Progress) and event.stage == "train":
            seen.append(event.current)
        if isinstance(event, Metric):
            metrics.append(event)

    result = run(ws, spec, emit, lambda: stop_after is not None and len(seen) >= stop_after,
                 job_id=job)
    records.add_metrics(ws, job, metrics)
    records.finish(ws, job, "done", result=result)
    return job, result


def _weights(ws: Workspace, ref: str) -> dict[str, torch.Tensor]:
    v = registry.get_version(ws, ref)
    return load_safetensors(registry.read_file(ws, v, "weights.safetensors"))


@pytest.fixture
def penguins_ws(ws: Workspace) -> Workspace:
    catalog.import_dataset(ws, PENGUINS)
    return ws


def test_a_stopped_run_resumes_to_where_an_uninterrupted_one_ends(penguins_ws) -> None:
    ws = penguins_ws
    _, whole = _run(ws, _spec())
    stopped, part = _run(ws, _spec(), stop_after=9)
    assert part["stopped_early"]
    kept = checkpoints.epochs(checkpoints.family_dir(ws, stopped, "mlp"))
    assert kept and kept[-1] == 9 and len(kept) <= checkpoints.KEEP  # the last whole epoch
    state = torch.load(checkpoints.latest(ws, stopped, "mlp") / "state.pt", weights_only=True)
    assert state["loop"]["epoch"] == 9  # opened without pickle's object loading

    resumed, done = _run(ws, _spec(resume=stopped))
    assert not done["stopped_early"]
    a, b = _weights(ws, whole["version"]), _weights(ws, done["version"])
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-5)
    assert done["metrics"]["log_loss"] == pytest.approx(whole["metrics"]["log_loss"], abs=1e-4)

    record = runs.get_run(ws, resumed)
    assert record.run.resumed_from == stopped
    epochs = [e for e, _ in record.history["mlp"]["val_loss"]]
    assert epochs == list(range(10, EPOCHS + 1))  # it went on from epoch 10
    # it ran to its end: nothing to resume, and its checkpoints are gone
    assert not checkpoints.run_dir(ws, resumed).exists()
    assert checkpoints.epochs(checkpoints.family_dir(ws, stopped, "mlp"))  # a Stop's stay


def test_a_run_that_cannot_be_resumed_says_why(penguins_ws) -> None:
    ws = penguins_ws
    linear = TrainSpec(dataset="penguins", target="species", family="linear", threads=1)
    job, _ = _run(ws, linear)
    with pytest.raises(InputError, match="no checkpoint"):
        run(ws, TrainSpec(**{**linear.to_dict(), "resume": job}), lambda _e: None)
    with pytest.raises(Exception, match="no run"):
        run(ws, _spec(resume="zzzzzzzz"), lambda _e: None)


def test_the_cli_refuses_to_resume_a_run_that_ran_to_its_end(trained_home: Path) -> None:
    listed = json.loads(run_studio(trained_home, "runs", "ls", "--json").stdout)["runs"]
    done = run_studio(trained_home, "train", "--resume", listed[-1]["id"])
    assert done.returncode == 2 and "nothing to resume" in done.stderr


@pytest.mark.timeout(300)
def test_a_run_killed_with_minus_9_resumes_from_the_cli(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    assert run_studio(home, "data", "import", str(PENGUINS)).returncode == 0
    cli = subprocess.Popen(studio_cmd(home, "train", "penguins", "--target", "species",
                                      "--family", "mlp", "--epochs", "5000", "--seed", "3"),
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, start_new_session=True)
    ws = Workspace.open(home)
    try:
        deadline = time.monotonic() + 120
        job = None
        while time.monotonic() < deadline:
            row = ws.db.conn.execute("SELECT id, pid FROM jobs WHERE kind = 'train' AND "
                                     "status = 'running'").fetchone()
            if row and checkpoints.epochs(checkpoints.family_dir(ws, row[0], "mlp")):
                job = row
                break
            time.sleep(0.2)
        assert job is not None, "no checkpoint was written"
        os.kill(job[1], signal.SIGKILL)
        _, err = cli.communicate(timeout=60)
        assert "killed by signal 9" in err.decode()
        assert runs.get_run(ws, job[0]).run.state == "failed"
        reached = checkpoints.epochs(checkpoints.family_dir(ws, job[0], "mlp"))[-1]
    finally:
        ws.db.close()
        if cli.poll() is None:
            os.killpg(cli.pid, signal.SIGKILL)

    # a killed run is resumed with its own settings, and a shorter budget to end it
    refused = run_studio(home, "train", "--resume", job[0][:6], "--epochs", "5")
    assert refused.returncode == 2 and "--epochs" in refused.stderr
    done = run_studio(home, "train", "--resume", job[0][:6], "--time-budget", "4", "--json",
                      timeout=240)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["version"] == "penguins:1"
    ws = Workspace.open(home)
    try:
        latest = runs.list_runs(ws)[0]
        assert latest.resumed_from == job[0] and latest.state in ("done", "stopped")
        first = min(e for e, _ in runs.get_run(ws, latest.id).history["mlp"]["val_loss"])
        assert first == reached + 1
    finally:
        ws.db.close()
