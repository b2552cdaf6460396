"""A version's torch network built again from its manifest and weights.

A trained version's manifest does not store its network as such: the family, the recipe's
tensors and the training details together fix every layer's shape. ``config_from_manifest``
turns them into one JSON-able description (``{"builder", "family", "args", "params"}``),
``build`` makes a network of that shape, and ``load`` fills it with the version's
``weights.safetensors``. A compressed version written by the lab keeps its own description
under the manifest's ``network`` key: a pruned network's layers are narrower than any
family's defaults would build.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from studio.core.errors import InputError

if TYPE_CHECKING:
    import torch

    from studio.core import registry
    from studio.core.workspace import Workspace

BUILDERS = {"linear": "studionet", "embedding": "studionet", "cnn": "studionet",
            "mlp": "realmlp"}


def config_from_manifest(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The description of the version's network: enough to build it again with the same
    shapes. Raises :class:`InputError` for a version whose network is unknown."""
    if raw.get("network"):
        return dict(raw["network"])
    family = raw.get("family") or (raw.get("training") or {}).get("family")
    if family not in BUILDERS:
        what = f"a {family} model" if family else "this version"
        raise InputError(f"{what} has no network the studio can rebuild: pruning works on "
                         "the mlp, linear, embedding and cnn families' networks")
    recipe, task = raw.get("recipe"), raw.get("task")
    if not recipe or task not in ("classification", "regression"):
        raise InputError("this version has no recipe and task from a studio training run, so "
                         "its network's shape is unknown")
    training = raw.get("training") or {}
    params = dict(training.get("params") or {})
    details = training.get("details") or {}
    classify = task == "classification"
    labels = raw.get("labels") or recipe.get("labels") or []
    if classify and not labels:
        raise InputError("this classification version lists no classes")
    n_out = len(labels) if classify else 1
    from studio.core.datasets.recipe import model_inputs

    inputs = model_inputs(recipe)
    if family == "mlp":
        from studio.core.training.families.mlp import numeric_columns

        if [i["name"] for i in inputs] != ["input"]:
            raise InputError("the mlp family's network takes table columns only")
        activation = str(params.get("activation", "auto"))
        if activation == "auto":
            activation = "selu" if classify else "mish"
        args = {"features": int(inputs[0]["shape"][1]), "numeric": numeric_columns(recipe),
                "n_out": n_out, "hidden": [int(h) for h in params.get("hidden", [])],
                "dropout": float(params.get("dropout", 0.0)), "activation": activation,
                "periodic": bool(params.get("periodic_embeddings", True)),
                "smooth_clip": bool(params.get("smooth_clip", True)),
                "clip_output": not classify}
        if not args["hidden"] and "hidden" not in params:
            raise InputError("the version's training parameters do not say its mlp's hidden "
                             "layers")
    else:
        from studio.core.datasets.text import EMBEDDING_DIM

        hidden = details.get("hidden", training.get("hidden")) or []
        # the linear family on a table has no dropout knob; embedding and cnn do
        args = {"inputs": inputs, "n_out": n_out, "hidden": [int(h) for h in hidden],
                "dropout": float(params.get("dropout", 0.0)),
                "image": dict(details["image_encoder"]) if details.get("image_encoder")
                else None,
                "text_dim": int(details.get("text_dim", EMBEDDING_DIM))}
        if any(i["name"] == "image" for i in inputs) and args["image"] is None:
            raise InputError("the version's training details do not say its picture "
                             "encoder's shape")
    return {"builder": BUILDERS[family], "family": family, "task": task, "args": args,
            "params": params}


def build(config: Mapping[str, Any]) -> torch.nn.Module:
    """A network of the described shape, with fresh weights (in training mode)."""
    builder, args = config.get("builder"), dict(config.get("args") or {})
    try:
        if builder == "studionet":
            from studio.core.training.model import build_model

            return build_model(args["inputs"], int(args["n_out"]), list(args["hidden"]),
                               float(args["dropout"]), image=args.get("image"),
                               text_dim=int(args["text_dim"]))
        if builder == "realmlp":
            import numpy as np

            from studio.core.training.realmlp import RealMLP

            # The constructor fits buffers and a start to rows of data; zeros give the same
            # shapes, and loading the weights overwrites every parameter and buffer.
            zeros = np.zeros((2, int(args["features"])), dtype=np.float32)
            return RealMLP(zeros, list(args["numeric"]), int(args["n_out"]),
                           list(args["hidden"]), float(args["dropout"]),
                           str(args["activation"]), bool(args["periodic"]),
                           bool(args["smooth_clip"]),
                           y_range=(0.0, 0.0) if args.get("clip_output") else None)
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"the network description is incomplete or wrong: {e}") from None
    raise InputError(f"unknown network builder {builder!r}")


def load_weights(model: torch.nn.Module, weights: bytes) -> torch.nn.Module:
    """``weights`` (a safetensors file) loaded strictly: every tensor present, every shape
    equal; the network in evaluation mode."""
    from safetensors.torch import load

    try:
        state = load(weights)
    except Exception as e:  # safetensors raises its own SafetensorError
        raise InputError(f"the weights are not a readable safetensors file: {e}") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise InputError("the weights do not fit the network described by the manifest: "
                         + (first[1].strip() if len(first) > 1 else first[0])) from None
    return model.eval()


def load(ws: Workspace, version: registry.Version) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The version's network with its weights, in evaluation mode, and its description."""
    from studio.core import registry

    config = config_from_manifest(version.manifest.raw)
    if "weights.safetensors" not in version.manifest.files:
        raise InputError(f"{version.ref} has no weights.safetensors to rebuild its network "
                         "from")
    weights = registry.read_file(ws, version, "weights.safetensors")
    return load_weights(build(config), weights), config
