"""Structured pruning: whole units taken out of a network, so it really is smaller.

A unit is a hidden neuron of an MLP head or of RealMLP, an output channel of a convolution in
the picture encoder, or one number of the token vectors (every word's vector loses it). Each
unit owns slices of several tensors: its incoming weights and bias (a convolution's channel
also its batch norm), a RealMLP neuron its activation's α, and the next layer's weights that
read it. Those slices are cut out of the state dict, and a network of the narrower shape is
built from the updated description and loaded strictly, so description and weights cannot
disagree.

Units are ranked by what they carry: on a sample of training rows, the spread of each unit's
output times the norm of the weights that read it (without rows, the norm of its incoming
weights times that of its outgoing ones). ``sparsity`` of each layer's units go, the weakest
first, and the mean a removed unit gave is folded into the bias of the layer that read it, so
the network's outputs move as little as they can before the fine-tune. Layers are cut one at a
time in forward order, each measured with the earlier ones already cut. Input features and
output units are never removed.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from studio.core.compress.network import build
from studio.core.errors import InputError

Sample = Sequence[Sequence[torch.Tensor]]  # batches of a network's input tensors


@dataclass
class Group:
    """One layer's units: ``members`` are (state-dict name, dimension, positions), the
    positions an ``[units, k]`` tensor of the indices each unit owns along that dimension;
    the last member is the weight of the layer that reads the units."""

    layer: str
    what: str  # "neurons", "channels" or "vector numbers"
    score: torch.Tensor  # [units], larger matters more
    members: list[tuple[str, int, torch.Tensor]]

    @property
    def units(self) -> int:
        return len(self.score)

    @property
    def reader(self) -> tuple[str, torch.Tensor]:
        """The reading layer's module name, and the positions of its input each unit fills."""
        name, _, positions = self.members[-1]
        return name.removesuffix(".weight"), positions


def _own(n: int, offset: int = 0) -> torch.Tensor:
    return (offset + torch.arange(n)).reshape(n, 1)


def _studionet_groups(model: nn.Module, config: Mapping[str, Any],
                      state: Mapping[str, torch.Tensor]) -> list[Group]:
    linears = [i for i, m in enumerate(model.net) if isinstance(m, nn.Linear)]
    head = f"net.{linears[0]}.weight"
    widths = {i["name"]: int(i["shape"][1]) for i in config["args"]["inputs"]}
    out, offset = [], 0
    for name in model.names:  # the branches' vectors are joined in this order
        if name == "tokens":
            out.append(_text_group(model, state, head, offset))
            offset += model.text.width
        elif name == "image":
            out += _image_groups(model, state, head, offset)
            offset += model.image.width
        else:
            offset += widths[name]
    assert offset == state[head].shape[1], "the branches' widths do not add up to the head's"
    for a, b in itertools.pairwise(linears):
        wa, wb = state[f"net.{a}.weight"], state[f"net.{b}.weight"]
        own = _own(wa.shape[0])
        out.append(Group(f"net.{a}", "neurons", wa.norm(dim=1) * wb.norm(dim=0),
                         [(f"net.{a}.weight", 0, own), (f"net.{a}.bias", 0, own),
                          (f"net.{b}.weight", 1, own)]))
    return out


def _text_group(model: nn.Module, state: Mapping[str, torch.Tensor], head: str,
                offset: int) -> Group:
    emb = state["text.embed.weight"]  # [vocabulary, dim]
    dim, segments = emb.shape[1], len(model.text.bounds)
    # number d of the vector sits at offset + s·dim + d for each text column s
    cols = offset + torch.arange(segments)[None, :] * dim + torch.arange(dim)[:, None]
    read = state[head][:, cols].pow(2).sum(dim=(0, 2)).sqrt()
    return Group("text.embed", "vector numbers", emb.norm(dim=0) * read,
                 [("text.embed.weight", 1, _own(dim)), (head, 1, cols)])


def _image_groups(model: nn.Module, state: Mapping[str, torch.Tensor], head: str,
                  offset: int) -> list[Group]:
    layers = model.image.net
    convs = [i for i, m in enumerate(layers) if isinstance(m, nn.Conv2d)]
    out = []
    for k, ci in enumerate(convs):
        conv, bn = f"image.net.{ci}", f"image.net.{ci + 1}"
        w = state[f"{conv}.weight"]
        n = w.shape[0]
        own = _own(n)
        # batch norm rescales each channel: a small weight norm times a large gain still
        # carries signal
        gain = state[f"{bn}.weight"].abs() / torch.sqrt(state[f"{bn}.running_var"]
                                                       + layers[ci + 1].eps)
        members = [(f"{conv}.weight", 0, own)] + [
            (f"{bn}.{t}", 0, own) for t in ("weight", "bias", "running_mean", "running_var")]
        if k + 1 < len(convs):
            nxt = f"image.net.{convs[k + 1]}.weight"
            read = state[nxt].transpose(0, 1).flatten(1).norm(dim=1)
            members.append((nxt, 1, own))
        else:  # the last stage's channels are the pooled vector the head reads
            read = state[head][:, offset:offset + n].norm(dim=0)
            members.append((head, 1, _own(n, offset)))
        out.append(Group(conv, "channels", w.flatten(1).norm(dim=1) * gain * read, members))
    return out


def _realmlp_groups(model: nn.Module, state: Mapping[str, torch.Tensor]) -> list[Group]:
    out = []
    n_layers = len(model.layers)
    for i in range(n_layers):
        w = state[f"layers.{i}.weight"]  # [in, out]: NTK layers keep x @ W
        nxt = f"layers.{i + 1}.weight" if i + 1 < n_layers else "head.weight"
        own = _own(w.shape[1])
        out.append(Group(f"layers.{i}", "neurons", w.norm(dim=0) * state[nxt].norm(dim=1),
                         [(f"layers.{i}.weight", 1, own), (f"layers.{i}.bias", 0, own),
                          (f"acts.{i}.alpha", 0, own), (nxt, 0, own)]))
    return out


def groups(model: nn.Module, config: Mapping[str, Any]) -> list[Group]:
    """Every layer of prunable units in ``model`` (built from ``config``), in the order the
    forward pass meets them."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if config["builder"] == "realmlp":
        return _realmlp_groups(model, state)
    return _studionet_groups(model, config, state)


def _widths(config: Mapping[str, Any], state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """The description of the network ``state`` holds: ``config`` with its layers' widths
    read from the tensors' shapes."""
    new = copy.deepcopy(dict(config))
    args = new["args"]
    if config["builder"] == "realmlp":
        args["hidden"] = [int(state[f"layers.{i}.bias"].shape[0])
                          for i in range(len(args["hidden"]))]
        return new
    linears = sorted(int(k.split(".")[1]) for k in state
                     if k.startswith("net.") and k.endswith(".bias"))
    args["hidden"] = [int(state[f"net.{i}.bias"].shape[0]) for i in linears[:-1]]
    if "text.embed.weight" in state:
        args["text_dim"] = int(state["text.embed.weight"].shape[1])
    if args.get("image"):
        convs = sorted(int(k.split(".")[2]) for k in state
                       if k.startswith("image.net.") and state[k].ndim == 4)
        args["image"] = {**args["image"],
                         "channels": [int(state[f"image.net.{i}.weight"].shape[0])
                                      for i in convs]}
    return new


def _input_stats(model: nn.Module, reader: str, sample: Sample
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """The reading layer's input on ``sample``: mean and variance per feature (per channel
    for a convolution), summed a batch at a time so a picture network's activations are
    never all held at once."""
    sums: list[torch.Tensor] = []
    count = 0

    def hook(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        nonlocal count
        x = args[0].detach().double()
        dims = [0, *range(2, x.ndim)]
        part = [x.sum(dim=dims).cpu(), x.pow(2).sum(dim=dims).cpu()]
        sums[:] = part if not sums else [a + b for a, b in zip(sums, part, strict=True)]
        count += x.numel() // x.shape[1]

    handle = dict(model.named_modules())[reader].register_forward_pre_hook(hook)
    try:
        model.eval()
        with torch.no_grad():
            for tensors in sample:
                model(*tensors)
    finally:
        handle.remove()
    mean = sums[0] / count
    return mean.float(), (sums[1] / count - mean ** 2).clamp_min(0).float()


def _carried(model: nn.Module, state: Mapping[str, torch.Tensor], g: Group,
             variance: torch.Tensor) -> torch.Tensor:
    """Per unit, how much its varying part moves the reading layer's output: the spread of
    each input it fills times the norm of the weights reading that input. Its mean is
    folded into the reader's offset when it goes (:func:`_compensate`), so only the spread
    is lost."""
    from studio.core.training.realmlp import NTKLinear

    reader, positions = g.reader
    w = state[f"{reader}.weight"]
    module = dict(model.named_modules())[reader]
    if isinstance(module, NTKLinear):
        read = w.pow(2).sum(dim=1) * module.gain ** 2  # [in, out]
    else:  # a linear layer's [out, in], or a convolution's [out, in, kh, kw]
        read = w.transpose(0, 1).flatten(1).pow(2).sum(dim=1)
    return (variance[positions] * read[positions]).sum(dim=1).sqrt()


def _compensate(model: nn.Module, state: dict[str, torch.Tensor], reader: str,
                positions: torch.Tensor, mean: torch.Tensor) -> None:
    """Fold the removed inputs' mean contribution into the reading layer's offset: a unit
    that is nearly constant on the data then leaves the network's outputs nearly as they
    were, and the fine-tune starts closer to the source."""
    from studio.core.training.realmlp import NTKLinear

    module = dict(model.named_modules())[reader]
    w, mu = state[f"{reader}.weight"], mean[positions]
    if isinstance(module, NTKLinear):  # [in, out]
        state[f"{reader}.bias"] = state[f"{reader}.bias"] + module.gain * (mu @ w[positions])
    elif isinstance(module, nn.Linear):  # [out, in]
        state[f"{reader}.bias"] = state[f"{reader}.bias"] + w[:, positions] @ mu
    else:
        # a convolution without bias, read by its batch norm: moving the norm's running
        # mean by the missing sum is the same shift (exact away from the padded border)
        bn = reader.rsplit(".", 1)[0] + f".{int(reader.rsplit('.', 1)[1]) + 1}"
        shift = w[:, positions].sum(dim=(2, 3)) @ mu
        state[f"{bn}.running_mean"] = state[f"{bn}.running_mean"] - shift


def narrow(model: nn.Module, config: Mapping[str, Any], sparsity: float,
           sample: Sample | None = None
           ) -> tuple[nn.Module, dict[str, Any], list[dict[str, Any]]]:
    """A copy of ``model`` without the weakest ``sparsity`` of each layer's units: the new
    network (evaluation mode), its description and a row per layer (units before, after).
    ``sample``: batches of training rows (the network's input tensors): units are then
    ranked by what they carry on them, and each removed unit's mean output is folded into
    the layer that read it. Without, units are ranked by their weights' norms.

    Layers are cut one at a time in forward order, each ranked and (with a sample) measured
    on the network with the layers before it already cut, so a compensation is for what
    that layer's units really carry once the earlier ones are gone."""
    layers = len(groups(model, config))
    if not layers:
        raise InputError(f"this {config.get('family')} network has no hidden neurons, "
                         "channels or word vectors to remove: use magnitude pruning "
                         "(kind=magnitude)")
    current, current_config, rows = model, dict(config), []
    for i in range(layers):
        g = groups(current, current_config)[i]
        drop = min(g.units - 1, round(g.units * sparsity))
        rows.append({"layer": g.layer, "what": g.what, "before": g.units,
                     "after": g.units - drop})
        if drop:
            current, current_config = _cut(current, current_config, g, drop, sample)
    if current is model:
        raise InputError(f"every layer is too narrow to remove {sparsity:.0%} of its units: "
                         "ask for a higher sparsity")
    return current.eval(), current_config, rows


def _cut(model: nn.Module, config: Mapping[str, Any], g: Group, drop: int,
         sample: Sample | None) -> tuple[nn.Module, dict[str, Any]]:
    """A new network without group ``g``'s ``drop`` weakest units, and its description."""
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    if sample is None:
        gone = torch.argsort(g.score, stable=True)[:drop]
    else:
        reader, positions = g.reader
        mean, variance = _input_stats(model, reader, sample)
        gone = torch.argsort(_carried(model, state, g, variance), stable=True)[:drop]
        _compensate(model, state, reader, positions[gone].reshape(-1), mean)
    before = {name: t.shape for name, t in state.items()}
    for name, dim, owned in g.members:
        mask = torch.ones(state[name].shape[dim], dtype=torch.bool)
        mask[owned[gone].reshape(-1)] = False
        state[name] = state[name].index_select(dim, torch.nonzero(mask).reshape(-1))
    if config["builder"] == "realmlp":
        _keep_ntk_scale(state, before, len(config["args"]["hidden"]))
    new_config = _widths(config, state)
    narrowed = build(new_config)
    narrowed.load_state_dict(state, strict=True)
    device = next(model.parameters()).device
    return narrowed.to(device).eval(), new_config


def _keep_ntk_scale(state: dict[str, torch.Tensor], before: Mapping[str, torch.Size],
                    n_layers: int) -> None:
    """An NTK layer divides its product by √fan-in: with fewer inputs the divisor shrinks,
    so the kept inputs' weights are scaled down to contribute as much as before."""
    for i in range(1, n_layers + 1):
        name = f"layers.{i}.weight" if i < n_layers else "head.weight"
        old, new = before[name][0], state[name].shape[0]
        if new != old:
            state[name] = state[name] * math.sqrt(new / old)
