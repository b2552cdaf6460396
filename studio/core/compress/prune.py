"""Pruning a torch network, then fine-tuning it on the training split.

``magnitude``: the smallest weights of every linear and convolutional layer and of the word
vectors, ranked together (one global threshold), are set to zero and held there through the
fine-tune. The network keeps its shape, so its dense ONNX file is as large as before: the
zeros pay off only with a sparse runtime or a compressed download. ``structured``: whole
neurons, channels and word vector numbers are removed
(:mod:`studio.core.compress.structured`), and the exported graph really is smaller and
faster.

The fine-tune is the families' own loop (:func:`studio.core.training.loop.fit`): schedules,
the best epoch restored, Stop and the time budget, at a fraction of the family's learning
rate with a cosine schedule, since the weights are already near a good place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from studio.core.compress.network import build
from studio.core.errors import InputError
from studio.core.events import Log
from studio.core.training.families.base import Exported, FitContext, TrainData

KINDS = ("magnitude", "structured")
FINETUNE_LR = 0.2  # of the family's learning rate
SAMPLE_ROWS = 256  # training rows structured pruning ranks units on and takes means from
SAMPLE_BATCH = 64
MAGNITUDE_NOTE = ("magnitude pruning zeroes single weights but keeps every tensor's shape: "
                  "the dense ONNX file and the weights are as large as before, and run as "
                  "fast; a sparse runtime or a compressed download would gain from the zeros")


@dataclass
class Pruned:
    model: nn.Module  # in evaluation mode, on the CPU
    config: dict[str, Any]  # the network's description (the manifest's "network")
    exported: Exported
    details: dict[str, Any]


def prunable_weights(model: nn.Module) -> dict[str, tuple[nn.Parameter, float]]:
    """The weights magnitude pruning ranks, by state-dict name: linear layers' matrices,
    convolutions' kernels and the word vectors (most of a text model's weights), each with
    the factor its layer multiplies it by (an NTK layer's 1/√fan-in; 1 for the others), so
    weights of different layers are compared by their effect."""
    from studio.core.training.realmlp import NTKLinear

    out = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear | nn.Conv2d | nn.Embedding):
            out[f"{name}.weight"] = (module.weight, 1.0)
        elif isinstance(module, NTKLinear):
            out[f"{name}.weight"] = (module.weight, float(module.gain))
    return out


def _masks(model: nn.Module, sparsity: float) -> dict[str, torch.Tensor]:
    """The global magnitude masks: exactly ``sparsity`` of the prunable weights (rounded)
    become zero, the smallest by effect; ties broken by position, so it is deterministic."""
    weights = prunable_weights(model)
    if not weights:
        raise InputError("the network has no linear or convolutional weights to prune")
    scores = torch.cat([(p.detach().abs() * gain).reshape(-1).cpu()
                        for p, gain in weights.values()])
    drop = round(sparsity * len(scores))
    keep = torch.ones(len(scores), dtype=torch.bool)
    keep[torch.argsort(scores, stable=True)[:drop]] = False
    masks, at = {}, 0
    for name, (p, _) in weights.items():
        masks[name] = keep[at:at + p.numel()].reshape(p.shape).to(p.device)
        at += p.numel()
    return masks


def finetune_params(config: Mapping[str, Any], epochs: int,
                    given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The loop's knobs for the fine-tune: the family's, as the version was trained, at
    :data:`FINETUNE_LR` of its learning rate with a cosine schedule and no early stop;
    ``given`` (checked as the family's own parameters) overrides any of them."""
    from studio.core.training import families
    from studio.core.training.families.base import resolve_params

    family = families.get(str(config["family"]))
    known = {p.name for p in family.params}
    trained = resolve_params(family, {k: v for k, v in (config.get("params") or {}).items()
                                      if k in known})
    tuned = {**trained, "epochs": max(1, epochs), "schedule": "cosine", "patience": 0,
             "learning_rate": float(trained["learning_rate"]) * FINETUNE_LR}
    return resolve_params(family, {**tuned, **(given or {})})


def _batches(config: Mapping[str, Any], data: TrainData, ctx: FitContext,
             params: Mapping[str, Any]) -> tuple[Callable[[np.ndarray], list[Any]],
                                                 Callable[..., Any] | None]:
    """The batch function the family trains with (and the cnn's augmenter)."""
    device = torch.device(ctx.device)
    if config["builder"] == "realmlp":
        x_all = torch.from_numpy(data.matrix()).to(device)
        return (lambda rows: [x_all[torch.from_numpy(rows).to(device)]]), None
    from studio.core.training.data import ModelData
    from studio.core.training.families.network import skip_unreadable

    model_data = ModelData(data.recipe, data.frame, device, ctx.emit, scratch=data.scratch,
                           skip_unreadable=True)
    skip_unreadable(str(config["family"]), data, model_data.unreadable, ctx)
    augment = None
    if config["family"] == "cnn" and "augment_shift" in params:
        from studio.core.training.augment import Augment, augmenter

        feature = next(f for f in data.recipe["features"] if f["kind"] == "image")
        plan = Augment(float(params["augment_shift"]), bool(params["augment_flip"]),
                       float(params["augment_jitter"]))
        augment = augmenter(plan, model_data.names, feature)
    return model_data.batch, augment


def _fine_tune(model: nn.Module, config: Mapping[str, Any], data: TrainData, epochs: int,
               ctx: FitContext, params: Mapping[str, Any],
               batches: tuple[Callable[[np.ndarray], list[Any]] | None,
                              Callable[..., Any] | None],
               masks: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    from studio.core.training.loop import fit

    if epochs == 0 or batches[0] is None:
        return {"epochs_run": 0, "best_epoch": 0, "stopped": None, "kept_unfine_tuned": True}
    device = torch.device(ctx.device)
    model.to(device)
    weights = prunable_weights(model)
    # A pruned weight's gradient is zeroed, so AdamW's moments for it stay zero and its
    # decoupled decay multiplies zero: it stays exactly zero through every step.
    on_device = {name: mask.to(device) for name, mask in masks.items()}
    hooks = [weights[name][0].register_hook(lambda g, m=mask: g * m)
             for name, mask in on_device.items()]
    try:
        result = fit(model, data, batches[0], params, ctx, f"{config['family']} fine-tune",
                     batches[1], keep_start=True)
    finally:
        for h in hooks:
            h.remove()
    # best epoch 0: no epoch of fine-tuning beat the pruned network on the validation split
    return {"epochs_run": result.epochs_run, "best_epoch": result.best_epoch,
            "stopped": result.stopped, "kept_unfine_tuned": result.best_epoch == 0}


def _sample(model: nn.Module, data: TrainData, batch: Callable[[np.ndarray], list[Any]],
            seed: int) -> list[list[torch.Tensor]]:
    """Up to :data:`SAMPLE_ROWS` training rows as the model's inputs, on its device, in
    batches of :data:`SAMPLE_BATCH`."""
    rows = np.sort(np.random.default_rng(seed).permutation(data.train)[:SAMPLE_ROWS])
    device = next(model.parameters()).device
    return [[t.to(device) for t in batch(rows[i:i + SAMPLE_BATCH])]
            for i in range(0, len(rows), SAMPLE_BATCH)]


def _export(model: nn.Module, config: Mapping[str, Any], data: TrainData,
            kind: str) -> Exported:
    from studio.core.training.export import onnx_bytes, safetensors_bytes

    onnx, output = onnx_bytes(model, data.inputs, data.task)
    meta = {"family": str(config["family"]), "task": data.task, "pruning": kind}
    return Exported(onnx, output, {"weights.safetensors": safetensors_bytes(model, meta)})


def zero_share(weights: bytes, names: list[str]) -> float:
    """The share of exact zeros among the named tensors of a safetensors file."""
    from safetensors.torch import load

    state = load(weights)
    total = sum(state[n].numel() for n in names)
    return float(sum(int((state[n] == 0).sum()) for n in names) / total)


def _count(model: nn.Module) -> tuple[int, int]:
    params = list(model.parameters())
    return sum(p.numel() for p in params), sum(int((p != 0).sum()) for p in params)


def _structured(model: nn.Module, config: Mapping[str, Any], sparsity: float,
                sample: list[list[torch.Tensor]], ctx: FitContext
                ) -> tuple[nn.Module, dict[str, Any], dict[str, Any]]:
    from studio.core.compress.structured import narrow

    work, new_config, layers = narrow(model, config, sparsity, sample)
    before, after = sum(r["before"] for r in layers), sum(r["after"] for r in layers)
    ctx.emit(Log(f"prune: {before - after:,} of {before:,} units removed ("
                 + ", ".join(f"{r['layer']} {r['before']}→{r['after']} {r['what']}"
                             for r in layers) + ")"))
    return work, new_config, {"layers": layers}


def _magnitude(model: nn.Module, config: Mapping[str, Any], sparsity: float,
               ctx: FitContext) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    work = build(config)
    work.load_state_dict(model.state_dict())
    masks = _masks(work, sparsity)
    with torch.no_grad():
        for name, (p, _) in prunable_weights(work).items():
            p.mul_(masks[name])
    zeros = sum(int((~m).sum()) for m in masks.values())
    ctx.emit(Log(f"prune: {zeros:,} of {sum(m.numel() for m in masks.values()):,} weights "
                 "set to zero"))
    return work, masks


def _measured(kind: str, config: Mapping[str, Any], weights: bytes,
              layers: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The sparsity read back from the exported weights (loaded into the network their
    description builds, strictly, so the export is proven to reload)."""
    from studio.core.compress.network import load_weights

    model = load_weights(build(config), weights)
    if kind == "magnitude":
        return {"measured_sparsity": zero_share(weights, list(prunable_weights(model))),
                "measured_on": "zero weights among the linear and convolutional layers' "
                               "weights and the word vectors"}
    from studio.core.compress.structured import groups

    before = sum(r["before"] for r in layers or [])
    after = sum(g.units for g in groups(model, config))
    return {"measured_sparsity": 1 - after / before,
            "measured_on": "share of hidden neurons, channels and word-vector numbers "
                           "removed",
            "units": {"before": before, "after": after}}


def prune(model: nn.Module, config: Mapping[str, Any], data: TrainData, kind: str,
          sparsity: float, epochs: int, ctx: FitContext,
          params: Mapping[str, Any] | None = None) -> Pruned:
    """``model`` (built from ``config``, left as it is) pruned by ``kind`` at ``sparsity``,
    fine-tuned ``epochs`` on ``data``'s training split (0: not at all), and exported."""
    if kind not in KINDS:
        raise InputError(f"pruning kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if not 0.0 < float(sparsity) < 1.0:
        raise InputError(f"sparsity must be above 0 and below 1, got {sparsity}")
    if epochs < 0:
        raise InputError(f"fine-tune epochs must be 0 or more, got {epochs}")
    tune = finetune_params(config, epochs, params)
    before, _ = _count(model)
    details: dict[str, Any] = {"kind": kind, "sparsity": float(sparsity)}
    # rows are read (pictures decoded) only where something needs them
    batches = (_batches(config, data, ctx, tune) if kind == "structured" or epochs
               else (None, None))
    masks: dict[str, torch.Tensor] = {}
    layers = None
    if kind == "structured":
        assert batches[0] is not None
        sample = _sample(model, data, batches[0], ctx.seed)
        work, new_config, shape = _structured(model, config, float(sparsity), sample, ctx)
        layers = shape["layers"]
        details["layers"] = layers
    else:
        new_config = dict(config)
        work, masks = _magnitude(model, config, float(sparsity), ctx)
        details["note"] = MAGNITUDE_NOTE
    details.update(_fine_tune(work, new_config, data, epochs, ctx, tune, batches, masks))
    # the zeros are plain weights now (no mask to keep): the pruning is permanent
    work = work.cpu().eval()
    exported = _export(work, new_config, data, kind)
    details.update(_measured(kind, new_config, exported.files["weights.safetensors"], layers))
    after, nonzero = _count(work)
    details.update(parameters_before=before, parameters_after=after,
                   nonzero_parameters_after=nonzero, params=dict(tune) if epochs else {})
    return Pruned(work, new_config, exported, details)
