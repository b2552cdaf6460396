"""The torch training loop every neural family shares.

It owns what each network would otherwise repeat: shuffling, the optimizer and its
learning-rate schedule, the loss (label smoothing and class weights for classes, a
normalized target for values), per-step and per-epoch events, early stopping on the
validation metric with the best weights restored, a time budget, a Stop from the user, and a
loss that turns into NaN (training ends there and keeps its last good epoch).

A model here has ``raw(*tensors)`` (logits, or the normalized value: what the loss sees) and
``forward(*tensors)`` (probabilities or the value in the target's units: what is exported).
It may also have ``param_groups()``: the optimizer's parameter groups, each of which may
carry ``lr_factor`` and ``wd_factor`` (multiplying the knobs), ``wd_schedule`` (a schedule
name for its weight decay) and any option of the optimizer itself (``betas``); and
``set_progress(t)``, told the training progress in [0, 1] before each step (a dropout that
follows a schedule).

``fit``'s ``loss``, when given, replaces the training loss (distillation's blend of a
teacher's outputs and the true labels): it is called with the model's raw output for a batch
and the batch's row indices (a LongTensor on the model's device) and returns the scalar loss.
Validation, early stopping and the best epoch stay on the true labels.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from studio.core.events import Log, Metric, Progress
from studio.core.training.families.base import Exported, FitContext, TrainData

STEP_EVENT_INTERVAL_S = 0.1
PROJECT_AFTER_STEPS = 3
TIME_SCHEDULE_MARGIN = 0.9  # a run projected to take 90 % of its budget follows the clock
EVAL_BATCH = 1024

@dataclass
class LoopResult:
    best_epoch: int
    epochs_run: int
    stopped: str | None  # "user", "time", "early stopping", "diverged" or None
    best_score: float | None
    history: list[dict[str, float]] = field(default_factory=list)


def fit(model: torch.nn.Module, data: TrainData, batch: Callable[[np.ndarray], list[Any]],
        params: Mapping[str, Any], ctx: FitContext, family: str,
        augment: Callable[[list[Any], torch.Generator], list[Any]] | None = None,
        loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        keep_start: bool = False) -> LoopResult:
    """Train ``model`` in place on ``data``'s training rows; on return it holds the best
    epoch's weights (by validation score, then loss), in evaluation mode.

    ``keep_start``: the starting weights compete as epoch 0, so a fine-tune that makes a
    model worse on the validation split gives it back as it was (``best_epoch`` 0); a Stop
    or a divergence before the first epoch then returns them too, instead of raising."""
    device = next(model.parameters()).device
    task = data.task
    tr, va = data.train, data.validation
    y_all = torch.from_numpy(data.y).to(device)
    y_mean, y_std = 0.0, 1.0
    if task == "regression":
        y_mean, y_std = float(data.y[tr].mean()), float(data.y[tr].std()) or 1.0
        y_all = (y_all - y_mean) / y_std
    loss_fn = _loss(task, data, params, device)
    opt = _optimizer(model, params)
    group = Group.current()
    amp = Precision(device, group)
    step_model = group.wrap(model, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)  # this family's own peak
    epochs, size = int(params["epochs"]), int(params["batch_size"])
    gen = torch.Generator(device="cpu").manual_seed(ctx.seed)
    # Shuffling draws from the generator every process shares, so all cut the same batches;
    # augmenting their shares (of unequal sizes) draws from one of each process's own.
    aug_gen = gen if group.size == 1 else \
        torch.Generator(device="cpu").manual_seed(ctx.seed + 7919 * (group.rank + 1))
    n_batches = max(1, -(-len(tr) // size))
    started = time.monotonic()
    budget = ctx.left_s()
    base_lr = float(params["learning_rate"])
    base_wd = float(params.get("weight_decay", 0.0))
    set_progress = getattr(model, "set_progress", None)

    by_time_too = False

    def progress_fraction(epoch_done: float) -> float:
        """How far training is: by epochs, or by time once the budget looks like ending it
        first. A budget that is never near leaves the clock out, so the same seed trains the
        same weights."""
        nonlocal by_time_too
        by_epochs = min(1.0, epoch_done / epochs)
        if not math.isfinite(budget):
            return by_epochs
        if budget <= 0:
            return 1.0
        elapsed = time.monotonic() - started
        # projected once a few steps have run (the first is slow); from then on the clock is
        # followed as well
        if not by_time_too and epoch_done >= min(1.0, PROJECT_AFTER_STEPS / n_batches):
            by_time_too = elapsed / epoch_done * epochs > TIME_SCHEDULE_MARGIN * budget
        return min(1.0, max(by_epochs, elapsed / budget)) if by_time_too else by_epochs

    best_key: tuple[float, float] = (-math.inf, -math.inf)
    best_state: dict[str, torch.Tensor] | None = None
    result = LoopResult(0, 0, None, None)
    if keep_start:
        v_loss, v_score = _validate(model, batch, va, y_all, task, loss_fn)
        if math.isfinite(v_loss):
            best_key = (round(v_score, 9), -v_loss)
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            result.best_score = v_score
    since_best, step, last_emit = 0, 0, 0.0
    plan = ctx.checkpoint
    first_epoch, last_saved = 1, time.monotonic()
    pending: Any = None  # the last epoch's end, not yet written
    if plan is not None and plan.resume_from is not None:
        from studio.core.training import resume

        saved, best_state = resume.load(plan.resume_from, model, opt, gen, amp.scaler)
        first_epoch = int(saved["epoch"]) + 1
        step, since_best = int(saved["step"]), int(saved["since_best"])
        best_key = (float(saved["best_key"][0]), float(saved["best_key"][1]))
        result.best_epoch, result.best_score = int(saved["best_epoch"]), saved["best_score"]
        result.epochs_run, result.history = int(saved["epoch"]), list(saved["history"])
        if saved.get("ended") in ("early stopping", "diverged"):
            result.stopped, first_epoch = saved["ended"], epochs + 1  # it had ended: as it was
        ctx.emit(Log(f"{family}: resuming after epoch {first_epoch - 1} of {epochs} (best so "
                     f"far: epoch {result.best_epoch})"))
    for epoch in range(first_epoch, epochs + 1):
        model.train()
        order = tr[torch.randperm(len(tr), generator=gen).numpy()]
        total = torch.zeros((), device=device)
        seen, whole = 0, False
        for b in range(n_batches):
            # the time budget ends training between steps, but never before one whole
            # epoch: a model that saw every row once is worth more than none
            user = ctx.should_stop()
            ending = user or bool(result.epochs_run and ctx.out_of_time())
            t = progress_fraction(epoch - 1 + b / n_batches)
            if group.size > 1:
                # every process stops at the same step, and follows the first one's clock:
                # a learning rate taken from each one's own would pull the copies apart
                user, ending, t = group.agree(user, ending, t)
            if ending:
                result.stopped = "user" if user else "time"
                break
            _set_hyper(opt, base_lr * _schedule(params["schedule"], t), base_wd, t)
            if set_progress is not None:
                set_progress(t)
            idx = order[b * size:(b + 1) * size]
            if group.size > 1:
                if len(idx) < group.size:
                    continue  # a last batch too small to share: skipped by every process
                idx = idx[group.rank::group.size]  # this process's share of the batch
            xs = batch(idx)
            if augment is not None:
                xs = augment(xs, aug_gen)
            index = torch.from_numpy(idx).to(device, non_blocking=True)
            with amp.autocast():
                out = step_model(*xs)
                if loss is not None:
                    step_loss = loss(out, index)
                else:
                    step_loss = loss_fn(out if task == "classification" else out.reshape(-1),
                                        y_all[index])
            opt.zero_grad(set_to_none=True)
            amp.step(step_loss, opt)
            step += 1
            total += step_loss.detach() * len(idx)  # summed on the device: no sync per step
            seen += len(idx)
            if time.monotonic() - last_emit >= STEP_EVENT_INTERVAL_S:
                last_emit = time.monotonic()
                value = step_loss.item()
                if math.isfinite(value):
                    ctx.emit(Metric("batch_loss", value, epoch, step))
        else:
            whole = True  # every batch of the epoch ran
        # A budget that ends mid-epoch still has these weights judged: the schedule has run
        # its course (the learning rate is down), and they are often the best of the run.
        if result.stopped and (result.stopped != "time" or not seen):
            break
        v_loss, v_score = _validate(model, batch, va, y_all, task, loss_fn)
        if group.size > 1:
            # one set of numbers decides divergence, the best epoch and early stopping for
            # all: the first process's validation, and the training loss summed over all
            v_loss, v_score, total_sum, seen_sum = group.first_and_sums(
                v_loss, v_score, float(total.item()), float(seen))
            total, seen = torch.tensor(total_sum), int(seen_sum)
        train_loss = total.item() / max(seen, 1)
        if not (math.isfinite(train_loss) and math.isfinite(v_loss)):
            result.stopped = "diverged"
            ctx.emit(Log(f"{family}: the loss became NaN or infinite at epoch {epoch}; "
                         "stopping and keeping "
                         + (f"epoch {result.best_epoch}" if result.best_epoch else
                            "the starting weights" if best_state is not None else "none")
                         + " (a lower "
                         "learning rate may help)", "warning"))
            break
        result.epochs_run = epoch
        if device.type == "cuda":  # what the run holds on the GPU, for the log and the GUI
            peak = torch.cuda.max_memory_allocated(device) / 2**30
            ctx.emit(Metric("device_memory_gb", round(peak, 3), epoch, step))
        ctx.emit(Metric("train_loss", train_loss, epoch, step))
        ctx.emit(Metric("val_loss", v_loss, epoch, step))
        ctx.emit(Metric("val_accuracy" if task == "classification" else "val_r2", v_score,
                        epoch, step))
        result.history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": v_loss,
                               "val_score": v_score})
        key = (round(v_score, 9), -v_loss)
        if key > best_key:
            best_key, since_best = key, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            result.best_epoch, result.best_score = epoch, v_score
        else:
            since_best += 1
        ctx.emit(Progress("train", epoch, epochs, f"{family}: epoch {epoch}/{epochs}"))
        patient = bool(params.get("patience")) and since_best >= int(params["patience"])
        if plan is not None and plan.write_to is not None and whole:
            # a budget that ended mid-epoch judged these weights, but they are no epoch's
            # end: a resumed run goes on from the last whole one
            from studio.core.training import resume

            loop = {"epoch": epoch, "step": step, "since_best": since_best,
                    "best_key": list(best_key), "best_epoch": result.best_epoch,
                    "best_score": result.best_score, "history": list(result.history),
                    "ended": "early stopping" if patient else None}
            pending = resume.Captured(epoch, family, model, opt, gen, loop,
                                      best_state if result.best_epoch != epoch else None,
                                      amp.scaler)
            if (result.stopped or patient or epoch == epochs
                    or time.monotonic() - last_saved >= plan.every_s):
                pending = _write(pending, plan.write_to, ctx)
                last_saved = time.monotonic()
        if result.stopped:
            break
        if patient:
            result.stopped = "early stopping"
            ctx.emit(Log(f"{family}: no better validation score for {since_best} epochs; "
                         f"stopped at epoch {epoch}, keeping epoch {result.best_epoch}"))
            break
    if pending is not None and plan is not None and plan.write_to is not None:
        _write(pending, plan.write_to, ctx)  # a Stop or a divergence mid-epoch: the last whole
    if best_state is None:
        from studio.core.errors import Cancelled, InputError

        if result.stopped == "diverged":
            raise InputError(f"{family}: training diverged in its first epoch (the loss is "
                             "not a finite number): try a lower learning rate or check the "
                             "data")
        raise Cancelled("training stopped before the first epoch ended")
    model.load_state_dict(best_state)
    model.eval()
    return result


class _Raw(torch.nn.Module):
    """``raw`` as a module's forward: DistributedDataParallel syncs the gradients of what
    runs through its forward, and the loss needs the raw output."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *xs: Any) -> Any:
        return self.model.raw(*xs)


@dataclass
class Group:
    """The processes training together (torch.distributed, started by torchrun): each
    takes a share of every batch, DistributedDataParallel averages the gradients, and they
    agree on when to stop. One process alone is a group of one."""

    rank: int = 0
    size: int = 1
    on: str = "cpu"  # where the collectives' tensors live: NCCL takes only CUDA ones

    @classmethod
    def current(cls) -> Group:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            on = f"cuda:{torch.cuda.current_device()}" if dist.get_backend() == "nccl" \
                else "cpu"
            return cls(dist.get_rank(), dist.get_world_size(), on)
        return cls()

    def wrap(self, model: torch.nn.Module, device: torch.device) -> Callable[..., Any]:
        if self.size == 1:
            return model.raw  # type: ignore[no-any-return]
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index or 0] if device.type == "cuda" else None
        return DistributedDataParallel(_Raw(model), device_ids=ids)

    def agree(self, user: bool, ending: bool, t: float) -> tuple[bool, bool, float]:
        """One collective a step: whether any process stops (a Stop, the budget), and the
        first process's training progress ``t`` (the others send 0: the maximum is its)."""
        import torch.distributed as dist

        mine = t if self.rank == 0 else 0.0
        v = torch.tensor([float(user), float(ending), mine], dtype=torch.float64,
                         device=self.on)
        dist.all_reduce(v, op=dist.ReduceOp.MAX)
        out = v.tolist()
        return out[0] > 0, out[1] > 0, float(out[2])

    def least(self, value: int) -> int:
        import torch.distributed as dist

        t = torch.tensor([float(value)], dtype=torch.float64, device=self.on)
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
        return int(t.item())

    def first_and_sums(self, v_loss: float, v_score: float, total: float,
                       seen: float) -> tuple[float, float, float, float]:
        """The first process's validation loss and score, and the sums over all of the
        training loss and rows, in one collective."""
        import torch.distributed as dist

        first = (v_loss, v_score) if self.rank == 0 else (0.0, 0.0)
        if self.rank == 0 and not (math.isfinite(v_loss) and math.isfinite(v_score)):
            first = (math.inf, 0.0)  # a NaN would poison the sum: infinity still diverges
        v = torch.tensor([*first, total, seen], dtype=torch.float64, device=self.on)
        dist.all_reduce(v)
        a, b, c, d = v.tolist()
        return float(a), float(b), float(c), float(d)


def _write(pending: Any, folder: Any, ctx: FitContext) -> None:
    """Write a checkpoint; a full disk or a folder gone costs the checkpoint, never the run."""
    try:
        pending.write(folder)
    except OSError as exc:
        ctx.emit(Log(f"could not write a checkpoint ({exc}); training goes on without it",
                     "warning"))


class Precision:
    """Mixed precision on a CUDA GPU: bf16 where the GPU has it (no scaling needed), else
    fp16 with a gradient scaler; full precision elsewhere. The weights stay fp32 (what is
    exported), only the arithmetic of a step is lowered."""

    def __init__(self, device: torch.device, group: Group | None = None) -> None:
        self.dtype: torch.dtype | None = None
        self.scaler: Any = None
        if device.type == "cuda":
            # bf16 where the GPU computes it natively (compute capability 8.0 and up, asked
            # of this device): emulated, it is slower than fp16 with a scaler. Processes on
            # GPUs of two generations agree on the older one's: DDP must average gradients
            # all scaled alike.
            major = torch.cuda.get_device_capability(device)[0]
            if group is not None and group.size > 1:
                major = group.least(major)
            native = major >= 8
            self.dtype = torch.bfloat16 if native else torch.float16
            if self.dtype == torch.float16:
                self.scaler = torch.amp.GradScaler("cuda")

    def autocast(self) -> Any:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=self.dtype)

    def step(self, loss: torch.Tensor, opt: torch.optim.Optimizer) -> None:
        if self.scaler is None:
            loss.backward()
            opt.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(opt)
            self.scaler.update()


def _validate(model: torch.nn.Module, batch: Callable[[np.ndarray], list[Any]],
              rows: np.ndarray, y_all: torch.Tensor, task: str,
              loss_fn: Callable[..., torch.Tensor]) -> tuple[float, float]:
    """Validation loss, and accuracy (classes) or R² (values; on the normalized target the
    scale cancels out)."""
    out = raw_outputs(model, batch, rows)
    y = y_all[torch.from_numpy(rows).to(out.device)]
    if task == "classification":
        # plain cross-entropy: smoothing and weights shape training, not the yardstick
        loss = float(torch.nn.functional.cross_entropy(out, y))
        return loss, float((out.argmax(1) == y).float().mean())
    out = out.reshape(-1)
    residual = float(((out - y) ** 2).sum())
    spread = float(((y - y.mean()) ** 2).sum())
    return float(loss_fn(out, y)), (1 - residual / spread if spread else 0.0)


def raw_outputs(model: torch.nn.Module, batch: Callable[[np.ndarray], list[Any]],
                rows: np.ndarray, final: bool = False) -> torch.Tensor:
    """The model on ``rows`` in evaluation mode, a bounded batch at a time."""
    model.eval()
    with torch.no_grad():
        f = model if final else model.raw
        parts = [f(*batch(rows[i:i + EVAL_BATCH])) for i in range(0, len(rows), EVAL_BATCH)]
    return torch.cat(parts)


def _loss(task: str, data: TrainData, params: Mapping[str, Any],
          device: Any) -> Callable[..., torch.Tensor]:
    if task == "regression":
        return torch.nn.MSELoss()
    weight = None
    if params.get("class_weights"):
        counts = np.bincount(data.y[data.train], minlength=data.n_classes).astype(np.float64)
        w = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / data.n_classes, 0.0)
        weight = torch.tensor(w, dtype=torch.float32, device=device)
    return torch.nn.CrossEntropyLoss(weight=weight,
                                     label_smoothing=float(params.get("label_smoothing", 0.0)))


def _optimizer(model: torch.nn.Module, params: Mapping[str, Any]) -> torch.optim.Optimizer:
    lr, wd = float(params["learning_rate"]), float(params.get("weight_decay", 0.0))
    own = getattr(model, "param_groups", None)
    groups = own() if own is not None else [{"params": list(model.parameters())}]
    for group in groups:
        group.setdefault("lr_factor", 1.0)
        group.setdefault("wd_factor", 1.0)
        group["lr"] = lr * group["lr_factor"]
        group["weight_decay"] = wd * group["wd_factor"]
    if params.get("optimizer") == "sgd":
        for group in groups:
            group.pop("betas", None)
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, weight_decay=wd)
    return torch.optim.AdamW(groups, lr=lr, weight_decay=wd)


def _schedule(kind: str, t: float) -> float:
    """A factor at training progress ``t`` in [0, 1] (of the learning rate, or of a group's
    weight decay)."""
    if kind == "cosine":
        return 0.5 * (1 + math.cos(math.pi * t))
    if kind == "onecycle":
        return t / 0.1 if t < 0.1 else 0.5 * (1 + math.cos(math.pi * (t - 0.1) / 0.9))
    if kind == "coslog4":
        # four cosine cycles, each twice as long as the one before, all starting and ending
        # at zero (Holzmüller et al. 2024): several chances to settle in a good minimum
        return 0.5 * (1 - math.cos(2 * math.pi * math.log2(1 + 15 * t)))
    if kind == "flat_cos":
        return 1.0 if t < 0.5 else 0.5 * (1 + math.cos(math.pi * (2 * t - 1)))
    return 1.0


def _set_hyper(opt: torch.optim.Optimizer, lr: float, wd: float, t: float) -> None:
    """Each group's learning rate and weight decay at progress ``t``, with its factors."""
    for group in opt.param_groups:
        group["lr"] = lr * group.get("lr_factor", 1.0)
        group["weight_decay"] = (wd * group.get("wd_factor", 1.0)
                                 * _schedule(group.get("wd_schedule", "constant"), t))


class TorchFitted:
    """A trained torch network as a fitted model: predictions through ``forward``, exported
    to ONNX and safetensors."""

    def __init__(self, family: str, model: torch.nn.Module, data: TrainData,
                 batch: Callable[[np.ndarray], list[Any]], details: dict[str, Any]) -> None:
        self.family, self.model, self.details = family, model, details
        self._batch, self._inputs, self._task = batch, data.inputs, data.task

    def predict(self, rows: np.ndarray) -> np.ndarray:
        out = raw_outputs(self.model, self._batch, rows, final=True).cpu().numpy()
        return out if self._task == "classification" else out.reshape(-1)

    def export(self) -> Exported:
        from studio.core.training.export import onnx_bytes, safetensors_bytes

        model = self.model.cpu()
        onnx, output = onnx_bytes(model, self._inputs, self._task)
        meta = {"family": self.family, "task": self._task}
        return Exported(onnx, output, {"weights.safetensors": safetensors_bytes(model, meta)})


def loop_details(result: LoopResult, params: Mapping[str, Any]) -> dict[str, Any]:
    return {"epochs_run": result.epochs_run, "best_epoch": result.best_epoch,
            "stopped": result.stopped, "params": dict(params)}
