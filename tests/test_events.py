"""The event vocabulary and the job runner that carries it from a subprocess."""

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from studio.core import registry
from studio.core.datasets import catalog
from studio.core.events import (
    EVENT_TYPES,
    Candidate,
    Compressed,
    Done,
    Event,
    Failed,
    Log,
    Metric,
    Progress,
    Started,
    Trial,
    is_terminal,
    parse_event,
)
from studio.core.training.spec import TrainSpec
from studio.core.workspace import Workspace
from studio.jobs import records
from studio.jobs.runner import JobRunner

EXAMPLES: list[Event] = [
    Started("job1", "train", "cpu"),
    Started("job2", "import"),
    Progress("train", 3, 40, "epoch 3/40"),
    Progress("read", 0.5, 0),
    Metric("val_loss", 0.125, 3, 27),
    Metric("val_accuracy", 0.5, 2, 9, series="boosted-trees"),
    Candidate("mlp", "Multilayer perceptron", "training", "accuracy", message="30 s"),
    Candidate("linear", "Linear", "done", "r2", 0.25, -0.5, 1.5, 1024, chosen=True),
    Compressed({"method": "int8-dynamic", "version": "penguins:2", "delta_points": -0.5,
                "collapsed": False, "measurement": {"file_bytes": 1024}}),
    Trial(3, "complete", "abc123", "mlp", {"learning_rate": 0.01, "hidden": [64, 64]}, 0.97,
          "accuracy", 1, 0.98),
    Trial(4, "pruned", message="pruned at epoch 2"),
    Log("column 'x' not used: all values missing", "warning"),
    Log("plain"),
    Done({"version": "penguins:1", "metrics": {"accuracy": 0.98, "confusion": [[1, 0], [0, 1]]}}),
    Done(),
    Failed("no such file", user_error=True),
    Failed("stopped", cancelled=True),
    Failed("boom"),
]


# -- the vocabulary -----------------------------------------------------------------------


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: type(e).__name__)
def test_event_round_trips_through_json(event: Event) -> None:
    line = event.to_json()
    assert "\n" not in line
    assert json.loads(line)["event"] == event.kind
    parsed = parse_event(line)
    assert type(parsed) is type(event)
    assert parsed == event


def test_every_event_type_has_an_example() -> None:
    assert {type(e) for e in EXAMPLES} == set(EVENT_TYPES.values())


@pytest.mark.parametrize("line", [
    "", "   ", "\n", "not json at all", "{", "Epoch 1/10 loss=0.3",
    "[1, 2, 3]", '"started"', "42", "null", "true",
    "{}", '{"event": "nonsense"}', '{"event": null}', '{"event": ["metric"]}',
    '{"event": {"kind": "done"}}', '{"kind": "done"}',
    '{"event": "metric", "name": "loss"}',  # fields missing
    '{"event": "log", "message": "hi", "colour": "red"}',  # unknown field
    "[" * 100_000,  # nested too deep for the parser
])
def test_lines_that_are_not_events_parse_to_none(line: str) -> None:
    assert parse_event(line) is None


def test_terminal_events() -> None:
    assert is_terminal(Done()) and is_terminal(Failed("x"))
    assert not any(is_terminal(e) for e in (Started("j", "k"), Progress("s", 1, 2),
                                            Metric("m", 1.0, 1, 1), Log("l")))


# -- the job runner -----------------------------------------------------------------------


@pytest.fixture
def runners() -> Iterator[list[JobRunner]]:
    """Collects the runners a test starts and makes sure none outlives it."""
    started: list[JobRunner] = []
    yield started
    for runner in started:
        if runner.proc is not None and runner.proc.poll() is None:
            runner.proc.kill()
            runner.proc.wait(timeout=30)


def start(runners: list[JobRunner], ws: Workspace, kind: str, spec: dict) -> JobRunner:
    runner = JobRunner(ws, kind, spec)
    runners.append(runner)
    runner.start()
    return runner


def train_spec(epochs: int) -> dict:
    # one neural family: these tests are about the job's life, which its epochs mark
    return TrainSpec(dataset="penguins", target="species", family="mlp",
                     epochs=epochs).to_dict()


def wait_for_training(runner: JobRunner) -> list[Event]:
    """Events up to and including the first finished epoch."""
    seen: list[Event] = []
    for event in runner.events():
        seen.append(event)
        if isinstance(event, Progress) and event.stage == "train":
            return seen
    raise AssertionError(f"the job ended before its first epoch: {seen[-1]}")


@pytest.mark.timeout(60)
def test_import_job_events_and_record(
    ws: Workspace, penguins_csv: Path, runners: list[JobRunner]
) -> None:
    runner = start(runners, ws, "import", {"path": str(penguins_csv), "name": None})
    events = list(runner.events())

    assert isinstance(events[0], Started)
    assert events[0].job_id == runner.job_id and events[0].job_kind == "import"
    progress = [e for e in events if isinstance(e, Progress)]
    assert len(progress) >= 2
    assert all(0 <= p.current <= p.total for p in progress)
    assert isinstance(events[-1], Done)
    assert sum(is_terminal(e) for e in events) == 1
    assert events[-1].result["dataset"] == "penguins"
    assert events[-1].result["rows"] == 344
    assert runner.final is events[-1]
    assert runner.wait(timeout=10) == 0

    job = records.get_job(ws, runner.job_id)
    assert job["status"] == "done"
    assert job["kind"] == "import"
    assert job["pid"] == runner.proc.pid
    assert json.loads(job["result"])["dataset"] == "penguins"
    assert job["ended"] >= job["started"] >= job["created"]
    assert catalog.get_dataset(ws, "penguins").rows == 344


@pytest.mark.timeout(60)
def test_import_job_with_bad_input_fails_as_a_user_error(
    ws: Workspace, tmp_path: Path, runners: list[JobRunner]
) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    runner = start(runners, ws, "import", {"path": str(empty), "name": None})
    events = list(runner.events())
    final = events[-1]
    assert isinstance(final, Failed)
    assert final.user_error and not final.cancelled
    assert "empty" in final.error
    assert runner.wait(timeout=10) == 2
    job = records.get_job(ws, runner.job_id)
    assert job["status"] == "failed" and "empty" in job["error"]
    assert catalog.list_datasets(ws) == []


@pytest.mark.timeout(120)
def test_killed_training_fails_and_registers_nothing(
    ws: Workspace, penguins_csv: Path, runners: list[JobRunner]
) -> None:
    catalog.import_dataset(ws, penguins_csv)
    runner = start(runners, ws, "train", train_spec(2000))
    seen = wait_for_training(runner)
    assert isinstance(seen[0], Started)
    assert any(isinstance(e, Metric) for e in seen)

    os.kill(runner.proc.pid, signal.SIGKILL)
    rest = list(runner.events())

    final = rest[-1]
    assert isinstance(final, Failed)
    assert "signal" in final.error and str(int(signal.SIGKILL)) in final.error
    assert not final.cancelled and not final.user_error
    assert runner.final is final and not runner.running
    assert runner.poll() == []  # nothing after the verdict

    job = records.get_job(ws, runner.job_id)
    assert job["status"] == "failed"
    assert "signal" in job["error"]
    assert registry.list_versions(ws) == []
    # the metrics written before the kill are kept
    names = {r["name"] for r in ws.db.db["metrics"].rows_where("job_id = ?", [runner.job_id])}
    assert "train_loss" in names
    # and a later reap does not touch the verdict
    assert records.reap_stale(ws) == 0
    assert records.get_job(ws, runner.job_id)["error"] == job["error"]


@pytest.mark.timeout(120)
def test_stopped_training_keeps_the_best_epoch(
    ws: Workspace, penguins_csv: Path, runners: list[JobRunner]
) -> None:
    catalog.import_dataset(ws, penguins_csv)
    runner = start(runners, ws, "train", train_spec(2000))
    wait_for_training(runner)

    runner.stop(grace_s=60)
    rest = list(runner.events())
    final = rest[-1]
    job = records.get_job(ws, runner.job_id)
    if isinstance(final, Failed):  # stopped before an epoch ended: nothing to keep
        assert final.cancelled
        assert job["status"] == "cancelled"
        assert registry.list_versions(ws) == []
        return
    assert isinstance(final, Done), final
    assert final.result["stopped_early"] is True
    assert final.result["version"] == "penguins:1"
    assert job["status"] == "done"
    version = registry.get_version(ws, "penguins:1")
    training = version.manifest.raw["training"]
    assert training["stopped_early"] is True
    assert 1 <= training["best_epoch"] <= training["epochs_run"] < 2000
    assert version.manifest.raw["lineage"]["job"] == runner.job_id
    assert runner.wait(timeout=30) == 0


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_reap_stale_fails_jobs_whose_process_is_gone(ws: Workspace) -> None:
    dead = records.create_job(ws, "train", {"dataset": "x"})
    records.mark_running(ws, dead, dead_pid())
    alive = records.create_job(ws, "train", {"dataset": "y"})
    records.mark_running(ws, alive, os.getpid())
    finished = records.create_job(ws, "import", {"path": "z"})
    records.mark_running(ws, finished, dead_pid())
    records.finish(ws, finished, "done", result={"dataset": "z"})
    queued = records.create_job(ws, "import", {"path": "q"})  # just created: within grace

    assert records.reap_stale(ws) == 1

    row = records.get_job(ws, dead)
    assert row["status"] == "failed"
    assert row["error"] and row["ended"] is not None
    assert records.get_job(ws, alive)["status"] == "running"
    assert records.get_job(ws, finished)["status"] == "done"
    assert records.get_job(ws, queued)["status"] == "queued"
    assert records.reap_stale(ws) == 0  # idempotent


def test_finish_keeps_the_first_verdict(ws: Workspace) -> None:
    job = records.create_job(ws, "import", {})
    records.mark_running(ws, job, os.getpid())
    records.finish(ws, job, "done", result={"ok": 1})
    records.finish(ws, job, "failed", error="late")
    row = records.get_job(ws, job)
    assert row["status"] == "done" and row["error"] is None


def test_reaping_sweeps_what_killed_jobs_left_in_tmp(ws) -> None:
    import os
    import subprocess
    import sys

    from studio.jobs.records import reap_stale

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (ws.tmp / f"import-{dead.pid}-abc.part").write_bytes(b"half a parquet")
    (ws.tmp / f"unzip-{dead.pid}-xyz").mkdir()
    (ws.tmp / f"unzip-{dead.pid}-xyz" / "a.png").write_bytes(b"x")
    (ws.tmp / f"blob-{os.getpid()}-live.part").write_bytes(b"being written")
    (ws.tmp / "import-old.part").write_bytes(b"from before names had a pid")
    os.utime(ws.tmp / "import-old.part", (0, 0))
    (ws.tmp / "import-new.part").write_bytes(b"maybe someone's, not a day old")
    (ws.tmp / "keep.txt").write_text("not ours")
    reap_stale(ws)
    assert sorted(p.name for p in ws.tmp.iterdir()) == [
        f"blob-{os.getpid()}-live.part", "import-new.part", "keep.txt"]
