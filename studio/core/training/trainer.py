"""The trainer loop: a tabular MLP in torch, exported to ONNX + safetensors, registered.

Only this module (and :mod:`studio.core.training.export`) imports torch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from studio.core import registry
from studio.core.datasets import catalog
from studio.core.datasets.prepare import prepare
from studio.core.datasets.recipe import (
    encode_target,
    input_schema,
    model_inputs,
    n_features,
)
from studio.core.errors import Cancelled, InputError
from studio.core.events import Emit, Log, Metric, Progress, Started
from studio.core.training.card import model_card
from studio.core.training.metrics import (
    baseline,
    baseline_warning,
    classification_metrics,
    regression_metrics,
)
from studio.core.training.spec import TrainSpec, default_threads
from studio.core.workspace import Workspace

STEP_EVENT_INTERVAL_S = 0.1
EVAL_BATCH = 1024


def train(
    ws: Workspace, spec: TrainSpec, emit: Emit, should_stop: Callable[[], bool] = lambda: False,
    job_id: str | None = None,
) -> dict[str, Any]:
    import torch

    from studio.core.training.data import ModelData
    from studio.core.training.export import onnx_bytes, safetensors_bytes
    from studio.core.training.model import build_model

    started = time.perf_counter()
    spec.validate()
    # until the pipeline takes over: the old single network with today's defaults
    spec.epochs = spec.epochs or 40
    spec.batch_size = spec.batch_size or 32
    spec.learning_rate = spec.learning_rate or 3e-3
    spec.hidden = spec.hidden or [64, 64]
    spec.dropout = 0.1 if spec.dropout is None else spec.dropout
    threads = spec.threads or default_threads(leave_one_free=False)
    torch.set_num_threads(threads)
    torch.manual_seed(spec.seed)
    device = _device(torch, spec.device)
    emit(Started(job_id or "", "train", str(device)))

    info = catalog.get_dataset(ws, spec.dataset)
    emit(Progress("prepare", 0, spec.epochs, f"loading {info.name}"))
    profile = catalog.cached_profile(ws, info)
    stored = catalog.load_frame(ws, info)
    # pictures are read by path below: hashed here, once per run, not once per epoch
    catalog.check_pictures(ws, info, stored, emit, should_stop)
    prepared = prepare(stored, spec.dataset, spec.target, spec.task,
                       spec.split, spec.seed, spec.preprocessing, blob_path=ws.blobs.path,
                       kinds={c["name"]: c["kind"] for c in profile} if profile else None)
    frame, task = prepared.frame, prepared.task
    recipe, (tr, va, te) = prepared.recipe, prepared.parts
    labels = encode_target(recipe, frame[spec.target])
    inputs = model_inputs(recipe)
    data = ModelData(recipe, frame, device, emit, scratch=ws.blobs.tmp)
    for d in recipe["dropped"]:
        emit(Log(f"column {d['name']!r} not used: {d['reason']}"))
    emit(Log(f"{task} of {spec.target!r}: {len(tr)} train / {len(va)} validation / "
             f"{len(te)} test rows; inputs "
             + ", ".join(f"{i['name']} {i['shape'][1:]}" for i in inputs)
             + f"; device {device}, {threads} threads"))

    n_out = len(recipe["labels"]) if task == "classification" else 1
    y_scale = (0.0, 1.0)
    if task == "regression":
        y_tr = labels[tr]
        y_scale = (float(y_tr.mean()), float(y_tr.std()) or 1.0)
        recipe["target_scale"] = {"mean": y_scale[0], "scale": y_scale[1]}
    model = build_model(inputs, n_out, spec.hidden, spec.dropout, y_scale).to(device)
    y_all = torch.from_numpy(labels).to(device)
    if task == "regression":
        y_all = (y_all - y_scale[0]) / y_scale[1]  # the loss sees the normalized target
    loss_fn = torch.nn.CrossEntropyLoss() if task == "classification" else torch.nn.MSELoss()
    opt = torch.optim.AdamW(model.parameters(), lr=spec.learning_rate, weight_decay=1e-4)
    gen = torch.Generator(device="cpu").manual_seed(spec.seed)

    def outputs(rows: np.ndarray, final: bool = False) -> Any:
        """The model on ``rows`` in evaluation mode, a bounded batch at a time."""
        model.eval()
        with torch.no_grad():
            parts = [(model if final else model.raw)(*data.batch(rows[i:i + EVAL_BATCH]))
                     for i in range(0, len(rows), EVAL_BATCH)]
        return torch.cat(parts)

    def val_loss() -> tuple[float, float | None]:
        """The validation loss, and accuracy (classification) or R² (regression)."""
        out, y_va = outputs(va), y_all[torch.from_numpy(va).to(device)]
        if task == "classification":
            return float(loss_fn(out, y_va)), float((out.argmax(1) == y_va).float().mean())
        # R² on the normalized target is R² on the real one: the scale cancels out
        residual = float(((out.squeeze(1) - y_va) ** 2).sum())
        spread = float(((y_va - y_va.mean()) ** 2).sum())
        return float(loss_fn(out.squeeze(1), y_va)), (1 - residual / spread if spread else None)

    best = (float("inf"), None, 0)
    step, last_emit, epochs_done, stopped = 0, 0.0, 0, False
    n_batches = max(1, -(-len(tr) // spec.batch_size))
    for epoch in range(1, spec.epochs + 1):
        model.train()
        order = tr[torch.randperm(len(tr), generator=gen).numpy()]
        total_t = torch.zeros((), device=device)
        for b in range(n_batches):
            if should_stop():
                stopped = True
                break
            idx = order[b * spec.batch_size:(b + 1) * spec.batch_size]
            out = model.raw(*data.batch(idx))
            y = y_all[torch.from_numpy(idx).to(device)]
            loss = loss_fn(out if task == "classification" else out.squeeze(1), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            total_t += loss.detach() * len(idx)  # summed on the device: no sync per step
            if time.monotonic() - last_emit >= STEP_EVENT_INTERVAL_S:
                last_emit = time.monotonic()
                value = loss.item()
                if math.isfinite(value):
                    emit(Metric("batch_loss", value, epoch, step))
        if stopped:
            break
        epochs_done = epoch
        v_loss, v_score = val_loss()
        if not math.isfinite(total_t.item()) or not math.isfinite(v_loss):
            raise InputError(f"training diverged at epoch {epoch} (the loss is not a finite "
                             "number): try a lower learning rate or check the data")
        emit(Metric("train_loss", total_t.item() / len(tr), epoch, step))
        emit(Metric("val_loss", v_loss, epoch, step))
        if v_score is not None:
            emit(Metric("val_accuracy" if task == "classification" else "val_r2", v_score,
                        epoch, step))
        if v_loss < best[0]:
            best = (v_loss, {k: v.detach().clone() for k, v in model.state_dict().items()}, epoch)
        emit(Progress("train", epoch, spec.epochs, f"epoch {epoch}/{spec.epochs}"))
    if epochs_done == 0:
        raise Cancelled("training stopped before the first epoch ended")
    if stopped:
        emit(Log(f"stopped by the user after epoch {epochs_done}; keeping the best epoch"))
    model.load_state_dict(best[1])
    model.eval()

    emit(Progress("evaluate", epochs_done, spec.epochs, "evaluating on the test split"))
    test_out = outputs(te, final=True).cpu().numpy()
    metrics = {
        "test": _evaluate(task, test_out, labels[te], n_out),
        "validation": _evaluate(task, outputs(va, final=True).cpu().numpy(), labels[va], n_out),
    }
    metrics["test"]["baseline"] = baseline(
        task, labels[tr], labels[te], recipe.get("labels"),
        test_out.argmax(1) if task == "classification" else None)
    warnings = [w for w in [baseline_warning(task, spec.target, metrics["test"])] if w]
    for w in warnings:
        emit(Log(w, "warning"))

    emit(Progress("export", epochs_done, spec.epochs, "exporting ONNX"))
    model = model.cpu()
    onnx_model, output_name = onnx_bytes(model, inputs, task)
    weights = safetensors_bytes(model, {"task": task, "hidden": ",".join(map(str, spec.hidden))})
    manifest = {
        "task": task,
        "target": spec.target,
        "labels": recipe.get("labels"),
        "recipe": recipe,
        "input_schema": input_schema(recipe),
        "onnx": {"inputs": inputs, "output": output_name,
                 "input": inputs[0]["name"], "features": n_features(recipe)},
        "metrics": metrics,
        "dataset": {"name": info.name, "digest": info.digest, "rows": len(frame)},
        "training": {
            **spec.to_dict(), "device": str(device), "threads": threads,
            "epochs_run": epochs_done, "best_epoch": best[2], "stopped_early": stopped,
            "duration_s": round(time.perf_counter() - started, 3),
            "torch": torch.__version__,
        },
        "warnings": warnings,
        "lineage": {"dataset": f"{info.name}@{info.digest[:12]}", "parent": None, "job": job_id},
    }
    # Asked once more: a job whose starter has gone raises Abandoned here (a Stop returns
    # True and the best epoch is kept), so a lost terminal never registers a half run.
    should_stop()
    name = spec.model or registry.propose_model_name(ws, info.name, spec.target, task)
    version = registry.register_version(
        ws, name, {"model.onnx": onnx_model, "weights.safetensors": weights}, manifest,
        model_card(manifest), job_id=job_id,
    )
    emit(Progress("done", spec.epochs, spec.epochs, f"registered {version.ref}"))
    return {"version": version.ref, "name": version.name, "number": version.version,
            "task": task, "metrics": metrics["test"], "device": str(device),
            "stopped_early": stopped, "warnings": warnings}


def _evaluate(task: str, out: np.ndarray, y: np.ndarray, n_out: int) -> dict[str, Any]:
    if task == "classification":
        return classification_metrics(y, out.argmax(1), n_out)
    return regression_metrics(y, out.reshape(-1))


def _device(torch: Any, wanted: str) -> Any:
    if wanted == "cuda" and not torch.cuda.is_available():
        raise InputError("device cuda was asked for, but no CUDA GPU is available")
    if wanted in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")
