"""Pruning in the compression lab: networks rebuilt from their manifests, pruned, reloaded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from conftest import penguins_workspace, train_text_and_pictures
from safetensors.torch import load as load_safetensors

from studio.core import registry
from studio.core.compress.network import build, config_from_manifest, load, load_weights
from studio.core.compress.prune import prunable_weights, prune
from studio.core.compress.source import Source, load_source, sample
from studio.core.errors import InputError
from studio.core.training.evaluation_step import evaluate_exported
from studio.core.training.families.base import FitContext
from studio.core.workspace import Workspace

QUIET = FitContext(lambda _e: None)


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    """penguins:1 mlp (hidden [256, 256, 256]), :2 linear, :3 boosted trees; reviews:1 word
    embeddings on text; shapes:1 a cnn on pictures, all trained small."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("prune")
    ws = Workspace.open(penguins_workspace(root / "ws", ("mlp", "linear", "boosted-trees")))
    train_text_and_pictures(ws, root)
    yield ws
    ws.db.close()


def source(ws: Workspace, ref: str) -> Source:
    return load_source(ws, registry.get_version(ws, ref), need_data=True,
                       should_stop=lambda: False)


def onnx_outputs(onnx: bytes, feed: dict[str, np.ndarray]) -> np.ndarray:
    session = ort.InferenceSession(onnx, providers=["CPUExecutionProvider"])
    # token ids come as training keeps them (int32); the graph takes int64
    types = {i.name: np.int64 if i.type == "tensor(int64)" else np.float32
             for i in session.get_inputs()}
    return session.run(None, {k: v.astype(types[k]) for k, v in feed.items()})[0]


def torch_outputs(model: torch.nn.Module, src: Source, feed: dict[str, np.ndarray]
                  ) -> np.ndarray:
    with torch.no_grad():
        return model(*[torch.from_numpy(feed[i["name"]]) for i in src.data.inputs]).numpy()


def accuracy(onnx: bytes, src: Source) -> float:
    return evaluate_exported(onnx, src.data, importance=False)["metrics"]["accuracy"]


@pytest.mark.parametrize("ref", ["penguins:1", "penguins:2", "reviews:1", "shapes:1"])
def test_a_rebuilt_network_computes_what_the_version_serves(ws: Workspace, ref: str) -> None:
    src = source(ws, ref)
    model, config = load(ws, src.version)
    assert json.loads(json.dumps(config)) == config  # it goes into a manifest as it is
    feed = sample(src.data, src.data.test, 64)
    ours, served = torch_outputs(model, src, feed), onnx_outputs(src.onnx, feed)
    assert ours.shape == served.shape
    np.testing.assert_allclose(ours, served, atol=1e-5)


def test_structured_half_really_shrinks_the_mlp_and_keeps_its_accuracy(ws: Workspace) -> None:
    src = source(ws, "penguins:1")
    model, config = load(ws, src.version)
    assert config["args"]["hidden"] == [256, 256, 256]
    pruned = prune(model, config, src.data, "structured", 0.5, 10, QUIET)
    assert pruned.config["args"]["hidden"] == [128, 128, 128]
    assert len(pruned.exported.onnx) <= 0.55 * len(src.onnx)
    details = pruned.details
    assert details["measured_sparsity"] == pytest.approx(0.5)
    assert details["parameters_after"] < 0.3 * details["parameters_before"]
    assert details["epochs_run"] == 10 and 1 <= details["best_epoch"] <= 10
    # 52 test rows: 3 of them may go the other way, a broken pruning loses far more
    assert accuracy(pruned.exported.onnx, src) >= accuracy(src.onnx, src) - 0.06
    feed = sample(src.data, src.data.test, 64)
    np.testing.assert_allclose(onnx_outputs(pruned.exported.onnx, feed),
                               torch_outputs(pruned.model, src, feed), atol=1e-5)


def test_magnitude_pruning_zeroes_the_asked_share_and_keeps_the_file_size(
        ws: Workspace) -> None:
    src = source(ws, "penguins:1")
    model, config = load(ws, src.version)
    pruned = prune(model, config, src.data, "magnitude", 0.7, 3, QUIET)
    weights = load_safetensors(pruned.exported.files["weights.safetensors"])
    names = list(prunable_weights(pruned.model))
    assert {"layers.0.weight", "layers.2.weight", "head.weight"} <= set(names)
    total = sum(weights[n].numel() for n in names)
    zeros = sum(int((weights[n] == 0).sum()) for n in names)
    assert zeros == round(0.7 * total)  # exactly the asked share, after fine-tuning
    assert pruned.details["measured_sparsity"] == pytest.approx(0.7, abs=1e-6)
    assert pruned.details["epochs_run"] == 3
    # the fine-tune moved the weights that were kept
    source_weights = load_safetensors(registry.read_file(ws, src.version,
                                                         "weights.safetensors"))
    kept = weights["layers.1.weight"] != 0
    assert not torch.equal(weights["layers.1.weight"][kept],
                           source_weights["layers.1.weight"][kept])
    assert pruned.config == config
    assert abs(len(pruned.exported.onnx) - len(src.onnx)) < 0.01 * len(src.onnx)
    assert "as large as before" in pruned.details["note"]


@pytest.mark.parametrize("ref", ["reviews:1", "shapes:1"])
def test_a_pruned_network_reloads_from_its_config(ws: Workspace, ref: str) -> None:
    src = source(ws, ref)
    model, config = load(ws, src.version)
    pruned = prune(model, config, src.data, "structured", 0.5, 2, QUIET)
    stored = json.loads(json.dumps(pruned.config))  # as the manifest keeps it
    assert config_from_manifest({"network": stored}) == stored
    if ref == "reviews:1":
        assert stored["args"]["text_dim"] == config["args"]["text_dim"] // 2
        assert stored["args"]["hidden"] == [16]
    else:
        assert stored["args"]["image"]["channels"] == [4, 8, 16, 32]
    reloaded = load_weights(build(stored), pruned.exported.files["weights.safetensors"])
    feed = sample(src.data, src.data.test, 64)
    again = torch_outputs(reloaded, src, feed)
    np.testing.assert_array_equal(again, torch_outputs(pruned.model, src, feed))
    np.testing.assert_allclose(again, onnx_outputs(pruned.exported.onnx, feed), atol=1e-5)
    assert len(pruned.exported.onnx) < 0.6 * len(src.onnx)


def test_what_cannot_be_pruned_is_refused_with_a_reason(ws: Workspace) -> None:
    trees = registry.get_version(ws, "penguins:3")
    with pytest.raises(InputError, match="boosted-trees model has no network"):
        load(ws, trees)
    src = source(ws, "penguins:2")
    model, config = load(ws, src.version)
    with pytest.raises(InputError, match=r"no hidden neurons.*use magnitude pruning"):
        prune(model, config, src.data, "structured", 0.5, 0, QUIET)
    with pytest.raises(InputError, match="kind must be one of magnitude, structured"):
        prune(model, config, src.data, "random", 0.5, 0, QUIET)
    with pytest.raises(InputError, match="sparsity must be above 0 and below 1"):
        prune(model, config, src.data, "magnitude", 1.0, 0, QUIET)
    with pytest.raises(InputError, match="no recipe"):
        config_from_manifest({"family": "mlp", "task": "classification"})


def test_a_stop_during_the_fine_tune_keeps_the_best_epoch_so_far(ws: Workspace) -> None:
    src = source(ws, "penguins:1")
    model, config = load(ws, src.version)
    asked = 0

    def should_stop() -> bool:  # penguins train in one batch an epoch: stop in the third
        nonlocal asked
        asked += 1
        return asked > 2

    ctx = FitContext(lambda _e: None, should_stop=should_stop)
    pruned = prune(model, config, src.data, "structured", 0.5, 10, ctx)
    assert pruned.details["stopped"] == "user"
    assert pruned.details["epochs_run"] == 2
    assert len(pruned.exported.onnx) <= 0.55 * len(src.onnx)


def test_without_fine_tuning_the_network_is_only_cut(ws: Workspace, tmp_path: Path) -> None:
    src = source(ws, "penguins:1")
    model, config = load(ws, src.version)
    pruned = prune(model, config, src.data, "magnitude", 0.3, 0, QUIET)
    assert pruned.details["epochs_run"] == 0 and pruned.details["params"] == {}
    weights = load_safetensors(pruned.exported.files["weights.safetensors"])
    source_weights = load_safetensors(registry.read_file(ws, src.version,
                                                         "weights.safetensors"))
    kept = weights["layers.0.weight"] != 0
    assert torch.equal(weights["layers.0.weight"][kept],
                       source_weights["layers.0.weight"][kept])


def test_units_ranked_on_training_rows_move_the_outputs_less(ws: Workspace) -> None:
    """Before any fine-tune: ranking units by what they carry on training rows, and folding
    the removed units' means into the next layer, beats ranking by weight norms alone."""
    from studio.core.compress.prune import _batches, _sample
    from studio.core.compress.structured import narrow

    src = source(ws, "penguins:1")
    model, config = load(ws, src.version)
    batch, _ = _batches(config, src.data, QUIET, {})
    x = batch(src.data.validation)

    def divergence(cut: torch.nn.Module) -> float:  # KL(source ‖ cut), mean over rows
        with torch.no_grad():
            p, q = model(*x), cut(*x)
        return float((p * (p.clamp_min(1e-9).log() - q.clamp_min(1e-9).log())).sum(1).mean())

    by_norms, _, _ = narrow(model, config, 0.5)
    by_rows, _, _ = narrow(model, config, 0.5, _sample(model, src.data, batch, 0))
    assert divergence(by_rows) < 0.75 * divergence(by_norms)
