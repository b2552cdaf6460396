"""Tuning: each trial is a run with its own record and curves; the pruner ends trials that
fall behind; the study is kept in the workspace and can be continued; the best trial
becomes a version with one command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import PENGUINS, run_studio

from studio.core import runs
from studio.core.datasets import catalog
from studio.core.errors import InputError
from studio.core.events import Event, Trial
from studio.core.training import tune
from studio.core.workspace import Workspace
from studio.jobs import records

Book = records.TrialBook  # the jobs layer's record of trial runs


@pytest.fixture
def penguins_ws(ws: Workspace) -> Workspace:
    catalog.import_dataset(ws, PENGUINS)
    return ws


def test_each_trial_is_a_run_and_a_weak_one_is_pruned(penguins_ws) -> None:
    ws = penguins_ws
    events: list[Event] = []
    spec = tune.TuneSpec("penguins", "species", family="mlp", trials=8, epochs=12,
                         study="mlp-search", threads=1)
    result = tune.run(ws, spec, events.append, lambda: False, Book(ws))
    assert result["study"] == "mlp-search" and result["ran"] == 8
    ends = [e for e in events if isinstance(e, Trial) and e.state != "running"]
    assert [e.number for e in ends] == list(range(8))
    assert all(e.best_value is not None for e in ends if e.state == "complete")
    assert {e.state for e in ends} == {"complete", "pruned"}  # weak trials were cut short
    complete = [e for e in ends if e.state == "complete"]
    assert result["best"]["value"] == max(e.value for e in complete)

    trial_runs = {r.id: r for r in runs.list_runs(ws) if r.trial}
    assert len(trial_runs) == 8
    assert {r.id for r in runs.list_runs(ws, status="pruned")} == {
        e.run_id for e in ends if e.state == "pruned"}
    for e in ends:
        run = trial_runs[e.run_id]
        assert run.trial == f"mlp-search#{e.number}" and run.family == "mlp"
        assert run.version is None  # a trial registers nothing by itself
        detail = runs.get_run(ws, run.id)
        assert detail.history["mlp"]["val_accuracy"]  # its curve, per epoch
        if e.state == "pruned":
            assert run.status == "cancelled" and "pruned at epoch" in run.error
            assert run.state == "pruned"
            assert len(detail.history["mlp"]["val_accuracy"]) < 12
    hidden = {tuple(runs.get_run(ws, i).params["hidden"]) for i in trial_runs}
    assert len(hidden) > 1  # the sampler varied the network

    # continued by name: the earlier trials count, new ones are added
    more = tune.run(ws, tune.TuneSpec("penguins", "species", family="mlp", trials=2,
                                      epochs=12, study="mlp-search", threads=1),
                    lambda _e: None, lambda: False, Book(ws))
    assert more["trials"] == 10 and more["ran"] == 2
    assert len(tune.trials(ws, "mlp-search")) == 10

    # a trial goes on as a plain run: what made it a trial is not carried over
    from studio.core.training.spec import TrainSpec

    fields = runs.resume_fields(runs.get_run(ws, ends[0].run_id, history=False))
    assert "tune" not in fields and fields["resume"] == ends[0].run_id
    TrainSpec.from_dict(fields)
    assert not (ws.root / "runs" / ends[0].run_id).exists()  # a trial keeps no checkpoints

    version = tune.register_best(ws, "mlp-search")
    assert version.ref == "penguins:1"
    best = more["best"]
    assert runs.get_run(ws, best["run"]).run.id == best["run"]
    with pytest.raises(InputError, match="already"):
        tune.register_best(ws, "mlp-search")


def test_bad_tuning_options_are_refused_before_anything_runs(penguins_ws) -> None:
    ws = penguins_ws
    with pytest.raises(InputError, match="study name"):
        tune.TuneSpec("penguins", "species", study="../x").validate()
    with pytest.raises(InputError, match="trials"):
        tune.TuneSpec("penguins", "species", trials=-1).validate()
    with pytest.raises(InputError):
        tune.TuneSpec("penguins", "species", family="nope").validate()
    with pytest.raises(Exception, match="no study"):
        tune.register_best(ws, "never-made")
    for hostile in ("../studies/x", "/etc/passwd", "", ".hidden"):
        with pytest.raises(InputError, match="study name"):
            tune.register_best(ws, hostile)
    assert not any((ws.root / "studies").glob("*")) if (ws.root / "studies").exists() else True
    with pytest.raises(InputError, match="does not fit"):
        tune.run(ws, tune.TuneSpec("penguins", "species", family="cnn", trials=1),
                 lambda _e: None, lambda: False, Book(ws))


@pytest.mark.timeout(300)
def test_studio_tune_from_the_cli_searches_families_and_registers_the_best(
        tmp_path: Path) -> None:
    home = tmp_path / "ws"
    assert run_studio(home, "data", "import", str(PENGUINS)).returncode == 0
    done = run_studio(home, "tune", "penguins", "--target", "species", "--trials", "5",
                      "--epochs", "8", "--study", "all", "--register", "--json", timeout=280)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["ran"] == 5 and doc["version"] == "penguins:1"
    assert doc["best"]["family"] in ("mlp", "linear", "boosted-trees")
    listed = json.loads(run_studio(home, "runs", "ls", "--search", "all#", "--json").stdout)
    assert len(listed["runs"]) == 5
    assert (home / "studies" / "all.journal").is_file()
    again = run_studio(home, "tune", "--register-best", "all")
    assert again.returncode == 2 and "already" in again.stderr
