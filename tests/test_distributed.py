"""Training beyond one process: `studio train --nproc-per-node 2` runs the trainer in two
CPU processes under torch.distributed (gloo); only the first writes to the store, and the
model is as good as a single process's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import PENGUINS, run_studio

from studio.core import runs
from studio.core.workspace import Workspace


@pytest.mark.timeout(400)
def test_two_gloo_processes_train_as_well_as_one_and_only_rank_0_writes(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    assert run_studio(home, "data", "import", str(PENGUINS)).returncode == 0
    common = ["train", "penguins", "--target", "species", "--family", "mlp", "--epochs", "40",
              "--seed", "2", "--json"]
    one = run_studio(home, *common, timeout=200)
    assert one.returncode == 0, one.stderr
    two = run_studio(home, *common, "--nproc-per-node", "2", timeout=300)
    assert two.returncode == 0, two.stderr
    a, b = json.loads(one.stdout), json.loads(two.stdout)
    assert b["version"] == "penguins:2"  # one version, written once
    assert b["metrics"]["accuracy"] >= 0.9
    assert abs(a["metrics"]["accuracy"] - b["metrics"]["accuracy"]) <= 0.06
    assert abs(a["metrics"]["log_loss"] - b["metrics"]["log_loss"]) <= 0.15

    ws = Workspace.open(home)
    try:
        listed = runs.list_runs(ws)
        assert len(listed) == 2 and listed[0].state == "done"  # one record for the run
        epochs = [e for e, _ in runs.get_run(ws, listed[0].id).history["mlp"]["val_loss"]]
        assert epochs == list(range(1, 41))  # each epoch once: only rank 0 emitted
        assert ws.db.conn.execute("SELECT COUNT(*) FROM versions").fetchone()[0] == 2
    finally:
        ws.db.close()


def test_distributed_options_are_checked_before_anything_starts(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    assert run_studio(home, "data", "import", str(PENGUINS)).returncode == 0
    for extra, said in ((["--nproc-per-node", "2"], "one neural family"),
                        (["--family", "mlp", "--nnodes", "2"], "--rdzv-endpoint"),
                        (["--family", "mlp", "--nproc-per-node", "0"], "nproc-per-node"),
                        (["--family", "mlp", "--nnodes", "2", "--rdzv-endpoint", "a b"],
                         "HOST:PORT")):
        done = run_studio(home, "train", "penguins", "--target", "species", *extra)
        assert done.returncode == 2 and said in done.stderr, (extra, done.stderr)
