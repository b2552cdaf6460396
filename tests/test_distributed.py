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


class _Tiny:
    """Made in each process: a network with the loop's raw/forward pair."""

    @staticmethod
    def make():
        import torch

        class Tiny(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.net = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(),
                                               torch.nn.Dropout(0.2), torch.nn.Linear(32, 2))

            def raw(self, x):
                return self.net(x)

            def forward(self, x):
                return torch.softmax(self.net(x), 1)

        torch.manual_seed(0)
        return Tiny()


def _rank_main(rank: int, world: int, init_file: str, out_dir: str, budget_s: float) -> None:
    import time

    import numpy as np
    import pandas as pd
    import torch
    import torch.distributed as dist

    from studio.core.training.families.base import FitContext, TrainData
    from studio.core.training.loop import fit

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(700, 8)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    order = rng.permutation(700)
    data = TrainData({"labels": ["a", "b"], "features": []}, "classification",
                     pd.DataFrame(index=range(700)), y,
                     (order[:500], order[500:600], order[600:]))
    xs = torch.from_numpy(x)
    params = {"epochs": 100_000, "batch_size": 64, "learning_rate": 0.01,
              "weight_decay": 0.0, "schedule": "cosine", "optimizer": "adamw", "patience": 0}
    model = _Tiny.make()
    ctx = FitContext(lambda _e: None, deadline=time.monotonic() + budget_s, seed=0)
    result = fit(model, data, lambda rows: [xs[torch.from_numpy(rows)]], params, ctx, "tiny")
    digest = float(sum(p.detach().double().sum() for p in model.parameters()))
    Path(out_dir, f"{rank}.json").write_text(json.dumps(
        {"checksum": digest, "epochs": result.epochs_run, "stopped": result.stopped,
         "best": result.best_epoch}))
    dist.destroy_process_group()


@pytest.mark.timeout(120)
def test_processes_stay_identical_under_a_time_budget(tmp_path: Path) -> None:
    """The schedule follows the clock once the budget binds: every process must follow the
    first one's, stop at the same step and pick the same best epoch, or the copies drift
    apart (and a process left waiting in a collective hangs the run)."""
    import torch.multiprocessing as mp

    mp.spawn(_rank_main, args=(2, str(tmp_path / "init"), str(tmp_path), 2.5), nprocs=2,
             join=True)
    a, b = (json.loads((tmp_path / f"{r}.json").read_text()) for r in (0, 1))
    assert a["stopped"] == b["stopped"] == "time"
    assert a["epochs"] == b["epochs"] and a["best"] == b["best"]
    assert a["checksum"] == b["checksum"]  # the same weights, bit for bit
