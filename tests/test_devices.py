"""Devices: what `studio devices` lists, how a device is asked for, mixed precision only on
a GPU, and an out-of-memory error that halves the batch once, then says what to do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import run_studio

from studio.core.checkpoints import Plan
from studio.core.errors import InputError
from studio.core.training.families.base import FitContext
from studio.core.training.loop import Precision
from studio.core.training.pipeline import _fit_family, choose_device
from studio.core.training.spec import TrainSpec


def test_studio_devices_lists_the_cpu_with_its_memory_and_makes_no_workspace(
        tmp_path: Path) -> None:
    home = tmp_path / "never"
    done = run_studio(home, "devices", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    cpu = next(d for d in doc["devices"] if d["kind"] == "cpu")
    assert cpu["memory_bytes"] > 2**28 and "core" in cpu["detail"]
    assert doc["default"] == doc["devices"][0]["name"]
    assert not home.exists()
    text = run_studio(home, "devices").stdout
    assert text.startswith("DEVICE") and "cpu" in text and "GiB" in text


def test_a_device_is_checked_before_training(tmp_path: Path) -> None:
    spec = dict(dataset="d", target="t", family="mlp")
    with pytest.raises(InputError, match="studio devices"):
        TrainSpec(**spec, device="tpu").validate()
    TrainSpec(**spec, device="cuda:1").validate()  # a well-formed name; existence comes later
    assert choose_device("auto", 1) in ("cuda", "mps", "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA GPU"):
            choose_device("cuda", 1)
    bad = run_studio(tmp_path / "ws", "train", "x", "--device", "tpu")
    assert bad.returncode == 2


def test_mixed_precision_is_only_for_a_gpu() -> None:
    amp = Precision(torch.device("cpu"))
    assert amp.dtype is None and amp.scaler is None
    w = torch.ones(2, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.5)
    with amp.autocast():
        loss = (w * 3).sum()
    amp.step(loss, opt)
    assert torch.allclose(w.detach(), torch.tensor([-0.5, -0.5]))


class _Hungry:
    """A family whose training runs out of device memory above ``fits`` rows a batch."""

    name = "hungry"

    def __init__(self, fits: int) -> None:
        self.fits, self.sizes = fits, []

    def train(self, data: Any, params: dict[str, Any], ctx: FitContext) -> str:
        self.sizes.append(params["batch_size"])
        if params["batch_size"] > self.fits:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        return "fitted"


def test_out_of_memory_halves_the_batch_once_then_says_what_to_do(tmp_path: Path) -> None:
    said: list[Any] = []
    folder = tmp_path / "ck"
    folder.mkdir()
    (folder / "epoch-00001").mkdir()  # what the first try wrote is dropped
    ctx = FitContext(said.append, device="cuda", checkpoint=Plan(folder))
    once = _Hungry(fits=128)
    assert _fit_family(once, None, {"batch_size": 256}, ctx, said.append) == "fitted"
    assert once.sizes == [256, 128] and not folder.exists()
    assert any("out of memory at batch size 256" in getattr(e, "message", "") for e in said)

    never = _Hungry(fits=0)
    with pytest.raises(InputError, match="even at batch size 128: choose a smaller batch"):
        _fit_family(never, None, {"batch_size": 256}, FitContext(said.append), said.append)
    assert never.sizes == [256, 128]

    other = _Hungry(fits=10**9)
    other.train = lambda *_a: (_ for _ in ()).throw(ValueError("a bug"))  # type: ignore
    with pytest.raises(ValueError, match="a bug"):  # other errors are not retried
        _fit_family(other, None, {"batch_size": 256}, FitContext(said.append), said.append)
