"""Knowledge distillation: a small StudioNet student trained on a teacher's outputs.

Any teacher works, boosted trees included: only its ONNX graph is asked, once, for its
outputs on the training rows. A classifier's student learns the teacher's probabilities
softened by a temperature beside the true labels (Hinton et al. 2015): ``alpha · T² ·
KL(teacher_T ‖ student_T) + (1 − alpha) · CE(student, labels)``, the teacher's logits taken
as the log of its (clipped) probabilities. A regressor's student learns ``alpha · MSE(student,
teacher) + (1 − alpha) · MSE(student, truth)`` on the normalized target the loop uses.

The student's architecture is a JSON-able config (``{"builder": "studionet", "family",
"args"}``, ``args`` being :func:`~studio.core.training.model.build_model`'s), sized to at most
a fraction of the teacher's parameters: a plain MLP for tables (no periodic embeddings: a few
matrix products are quick at batch 1), a narrower word-vector model for text, a narrower CNN
for pictures.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from studio.core.compress.network import build
from studio.core.errors import InputError
from studio.core.events import Log
from studio.core.training.families.base import Exported, FitContext, TrainData

MAX_WIDTH = 256  # a wider hidden layer buys little on the tables the studio meets
TWO_LAYERS_FROM = 16  # narrower than this, one hidden layer of the whole budget is better
DEFAULT_HIDDEN = [64, 64]  # for a teacher that stores no numbers at all
TEXT_DEFAULT_DIM = 16
TEXT_HIDDEN = [32]  # a layer after the pooled word vectors: it learns a mix of table
#                     columns and text that a linear read-out of a narrow vector misses
TEXT_MIN_DIM = 4  # narrower word vectors than this: drop the hidden layer for width
IMAGE_DEFAULT_WIDTH = 8
MAX_IMAGE_WIDTH = 64
PROBABILITY_FLOOR = 1e-7  # a teacher's 0 would be a logit of minus infinity
FAMILIES = {"tabular": "mlp", "text": "embedding", "image": "cnn"}


@dataclass
class Distilled:
    model: Any  # the trained torch StudioNet, in evaluation mode
    config: dict[str, Any]  # rebuilds the network (see student_config)
    exported: Exported
    details: dict[str, Any]


def teacher_outputs(onnx: bytes, data: TrainData, rows: np.ndarray,
                    threads: int = 0) -> np.ndarray:
    """The teacher's probabilities ``[n, classes]`` (or values ``[n]``) on ``rows`` of
    ``data``, through its graph with the recipe's tensors."""
    from studio.core.training.evaluate import onnx_runner, predict_rows

    try:
        run = onnx_runner(onnx, threads)
    except Exception as e:  # ONNX Runtime raises its own Fail/InvalidGraph types
        raise InputError(f"ONNX Runtime cannot load the teacher: {e}") from None
    ids = data.rows[rows] if data.rows is not None else rows
    out = np.asarray(predict_rows(run, data.recipe, data.frame.iloc[rows], True, None, ids),
                     dtype=np.float32)
    if data.task == "regression":
        if out.size != len(rows):
            raise InputError(f"the teacher gives {out.size // max(1, len(rows))} values a "
                             "row; a regression teacher gives one")
        return out.reshape(-1)
    out = out.reshape(len(rows), -1)
    if out.shape[1] != data.n_classes:
        raise InputError(f"the teacher gives {out.shape[1]} outputs a row, but its recipe "
                         f"has {data.n_classes} classes")
    return out


def teacher_parameters(onnx: bytes) -> int:
    """The teacher's size as a student is measured against it: its learnt numbers (weight
    tensors, or a tree ensemble's thresholds and leaf values)."""
    from studio.core.compress.measure import parameters

    return parameters(onnx)


def student_config(data: TrainData, teacher_parameters: int,
                   fraction: float) -> dict[str, Any]:
    """The student's architecture, with at most ``fraction`` × ``teacher_parameters``
    weights where that leaves at least one hidden unit (or one number a word); a teacher of
    0 parameters (a tree ensemble) gets a small default student."""
    if not 0 < fraction <= 1:
        raise InputError(f"fraction must be in (0, 1], got {fraction:g}")
    modality = data.modality
    if modality not in FAMILIES:
        raise InputError(f"cannot distil a model of {modality!r} data")
    budget = int(fraction * teacher_parameters)
    args: dict[str, Any] = {
        "inputs": data.inputs,
        "n_out": data.n_classes if data.task == "classification" else 1,
        "hidden": [], "dropout": 0.0, "y_scale": list(_y_scale(data)), "image": None,
        "text_dim": TEXT_DEFAULT_DIM}

    def config(**changes: Any) -> dict[str, Any]:
        return {"builder": "studionet", "family": FAMILIES[modality], "args": {**args,
                                                                              **changes}}

    if modality == "tabular":
        if budget <= 0:
            return config(hidden=list(DEFAULT_HIDDEN))
        two = _widest(lambda h: config(hidden=[h, h]), budget, MAX_WIDTH)
        if two >= TWO_LAYERS_FROM:
            return config(hidden=[two, two])
        return config(hidden=[max(1, _widest(lambda h: config(hidden=[h]), budget,
                                             MAX_WIDTH))])
    if modality == "text":
        from studio.core.datasets.text import EMBEDDING_DIM

        if budget <= 0:
            return config(text_dim=TEXT_DEFAULT_DIM, hidden=list(TEXT_HIDDEN), dropout=0.3)
        dim = _widest(lambda d: config(text_dim=d, hidden=list(TEXT_HIDDEN)), budget,
                      EMBEDDING_DIM)
        if dim >= TEXT_MIN_DIM:
            return config(text_dim=dim, hidden=list(TEXT_HIDDEN), dropout=0.3)
        dim = _widest(lambda d: config(text_dim=d), budget, EMBEDDING_DIM)
        return config(text_dim=max(1, dim), dropout=0.3)
    from studio.core.training.model import image_stages

    feature = next(f for f in data.recipe["features"] if f["kind"] == "image")

    def picture(width: int) -> dict[str, Any]:
        return config(image={"width": width, "stages": image_stages(int(feature["size"])),
                             "convs": 1})

    if budget <= 0:
        return picture(IMAGE_DEFAULT_WIDTH)
    return picture(max(1, _widest(picture, budget, MAX_IMAGE_WIDTH)))


def _y_scale(data: TrainData) -> tuple[float, float]:
    """The target's mean and spread on the training rows: the loop's normalization, which
    StudioNet undoes in its graph."""
    if data.task != "regression":
        return (0.0, 1.0)
    y = data.y[data.train]
    return (float(y.mean()), float(y.std()) or 1.0)


def _widest(make: Callable[[int], dict[str, Any]], budget: int, most: int) -> int:
    """The largest width in [1, most] whose network has at most ``budget`` weights (0 when
    even width 1 has more); counts only grow with the width, so a bisection finds it."""
    low, high = 0, most
    while low < high:
        mid = (low + high + 1) // 2
        if count(make(mid)) <= budget:
            low = mid
        else:
            high = mid - 1
    return low


def count(config: Mapping[str, Any]) -> int:
    """Weights and buffers of the network ``config`` builds (built on torch's meta device:
    no memory is filled)."""
    import torch

    with torch.device("meta"):
        model = build(config)
    return sum(t.numel() for t in model.state_dict().values())


def _params(data: TrainData, epochs: int) -> dict[str, Any]:
    """The loop's knobs for a student: AdamW, a flat-then-cosine schedule, and patience
    long enough to let the schedule's second half happen."""
    n = len(data.train)
    return {"epochs": int(epochs), "batch_size": 32 if n < 1000 else 64 if n < 20000 else 256,
            "learning_rate": 1e-2 if data.modality == "image" else 3e-3,
            "optimizer": "adamw", "weight_decay": 1e-4, "schedule": "flat_cos",
            "patience": max(10, int(epochs) // 2), "class_weights": False,
            "label_smoothing": 0.0}


def _loss(data: TrainData, teacher: np.ndarray, temperature: float, alpha: float,
          device: Any) -> Callable[[Any, Any], Any]:
    """The distillation loss for the loop's hook; ``teacher`` holds the teacher's outputs
    on the training rows, in order."""
    import torch
    import torch.nn.functional as F

    n = len(data.y)
    rows = torch.from_numpy(data.train).to(device)
    y = torch.from_numpy(data.y).to(device)
    if data.task == "classification":
        logits = torch.from_numpy(np.log(np.clip(teacher, PROBABILITY_FLOOR, 1.0)))
        soft = torch.zeros((n, data.n_classes), device=device)
        soft[rows] = F.log_softmax(logits.to(device) / temperature, dim=1)
        scale = alpha * temperature ** 2

        def classify(out: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
            kl = F.kl_div(F.log_softmax(out / temperature, dim=1), soft[index],
                          reduction="batchmean", log_target=True)
            return scale * kl + (1 - alpha) * F.cross_entropy(out, y[index])

        return classify
    mean, std = _y_scale(data)
    target = torch.zeros(n, device=device)
    target[rows] = (torch.from_numpy(teacher).to(device) - mean) / std
    truth = (y.float() - mean) / std

    def regress(out: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        out = out.reshape(-1)
        return (alpha * F.mse_loss(out, target[index])
                + (1 - alpha) * F.mse_loss(out, truth[index]))

    return regress


def _score(data: TrainData, out: np.ndarray, rows: np.ndarray) -> float:
    """Accuracy, or R², on ``rows`` (the loop's validation yardstick)."""
    y = data.y[rows]
    if data.task == "classification":
        return float(np.mean(out.argmax(1) == y))
    y = y.astype(np.float64)
    spread = float(((y - y.mean()) ** 2).sum())
    return 1 - float(((out - y) ** 2).sum()) / spread if spread else 0.0


def distill(teacher_onnx: bytes, data: TrainData, fraction: float, temperature: float,
            alpha: float, epochs: int, ctx: FitContext, seed: int = 0) -> Distilled:
    """A student of at most ``fraction`` of the teacher's parameters trained for up to
    ``epochs`` on the teacher's outputs (weight ``alpha``) and the true labels, kept at its
    best validation epoch. ``seed`` starts the student's weights; the shuffle follows
    ``ctx.seed``."""
    import torch

    from studio.core.compress.measure import parameters
    from studio.core.training.data import ModelData
    from studio.core.training.export import onnx_bytes, safetensors_bytes
    from studio.core.training.families.network import skip_unreadable
    from studio.core.training.loop import fit

    if temperature <= 0:
        raise InputError(f"temperature must be above 0, got {temperature:g}")
    if not 0 <= alpha <= 1:
        raise InputError(f"alpha must be from 0 to 1, got {alpha:g}")
    device = torch.device(ctx.device)
    model_data = ModelData(data.recipe, data.frame, device, ctx.emit, scratch=data.scratch,
                           skip_unreadable=True)
    skip_unreadable("distill", data, model_data.unreadable, ctx)
    asked = np.concatenate([data.train, data.validation])
    outputs = teacher_outputs(teacher_onnx, data, asked, ctx.threads)
    teacher = outputs[:len(data.train)]
    teacher_score = _score(data, outputs[len(data.train):], data.validation)

    size = teacher_parameters(teacher_onnx)
    config = student_config(data, size, fraction)
    torch.manual_seed(seed)
    model = build(config).to(device)
    args = config["args"]
    weights = count(config)
    ctx.emit(Log(f"distill: a student of {weights:,} weights (hidden layers "
                 f"{args['hidden'] or 'none'}) learns from a teacher of "
                 f"{parameters(teacher_onnx):,}"))
    if size and weights > fraction * size:
        raise InputError(f"the teacher is too small to distil: its smallest student "
                         f"({weights:,} weights, one unit a layer) is more than {fraction:g} "
                         f"of its {size:,}")
    augment = None
    if args.get("image"):
        from studio.core.training.augment import Augment, augmenter

        feature = next(f for f in data.recipe["features"] if f["kind"] == "image")
        augment = augmenter(Augment(shift=0.125, jitter=0.1), model_data.names, feature)
    params = _params(data, epochs)
    # what a later pruning of this student fine-tunes with (network.config_from_manifest)
    config = {**config, "task": data.task, "params": params}
    result = fit(model, data, model_data.batch, params, ctx, "distill", augment,
                 loss=_loss(data, teacher, temperature, alpha, device))

    model = model.cpu()
    onnx, output = onnx_bytes(model, data.inputs, data.task)
    meta = {"family": config["family"], "task": data.task, "config": json.dumps(config)}
    exported = Exported(onnx, output, {"weights.safetensors": safetensors_bytes(model, meta)})
    details = {
        "student_parameters": parameters(onnx), "teacher_parameters": parameters(teacher_onnx),
        "hidden": list(args["hidden"]), "temperature": temperature, "alpha": alpha,
        "epochs": int(epochs), "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch, "stopped": result.stopped,
        "teacher_validation": teacher_score, "student_validation": result.best_score,
        "params": params}
    if "tokens" in model_data.names:
        details["text_dim"] = int(args["text_dim"])
    if args.get("image"):
        details["image_encoder"] = dict(args["image"])
    return Distilled(model, config, exported, details)
