"""One training run, thin: prepare → each family → pick on validation → export → evaluate →
register.

With ``family="auto"`` every family that fits the task trains in turn within the time budget
(quick baselines first, so a tight budget still ends with a model); the best on the
validation split becomes the new version and the others wait in the run's leaderboard, from
which any can still be registered (:mod:`studio.core.training.candidates`).
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import time
import traceback
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from studio.core import checkpoints, devices, drift, registry, runs
from studio.core.datasets import catalog
from studio.core.datasets.prepare import prepare
from studio.core.datasets.recipe import encode_target, input_schema, model_inputs, n_features
from studio.core.errors import Abandoned, Cancelled, InputError
from studio.core.events import Candidate, Emit, Event, Log, Metric, Progress, Started
from studio.core.training import candidates, families
from studio.core.training.budget import default_budget
from studio.core.training.card import model_card
from studio.core.training.evaluation_step import evaluate_exported
from studio.core.training.families.base import Family, FitContext, Fitted, TrainData
from studio.core.training.metrics import baseline, baseline_warning
from studio.core.training.spec import TrainSpec, default_threads
from studio.core.workspace import Workspace

# How one family's share of the remaining time compares with another's: the networks get
# the most, they use it; a linear model rarely needs its share and passes it on.
WEIGHTS = {"linear": 1.0, "boosted-trees": 3.0}
HEAVY_WEIGHT = 6.0
HEADLINE = {"classification": "accuracy", "regression": "r2"}


def run(ws: Workspace, spec: TrainSpec, emit: Emit,
        should_stop: Callable[[], bool] = lambda: False,
        job_id: str | None = None, register: bool = True,
        loaded: Loaded | None = None) -> dict[str, Any]:
    """``register=False`` (a tuning trial): every family trained, the winner too, waits in
    the run's leaderboard (candidates), from which one click makes it a version.
    ``loaded``: the data as :func:`load` made it for a spec of the same dataset, target,
    split, seed and preprocessing (trials of a study share it)."""
    started = time.perf_counter()
    if not register and not job_id:
        raise ValueError("a run that registers nothing keeps its models under its record")
    spec.validate()
    threads = spec.threads or default_threads(leave_one_free=False)
    device = choose_device(spec.device, threads)
    emit(Started(job_id or "", "train", device))

    info, prepared, data = loaded or load(ws, spec, emit, should_stop)
    recipe, task = prepared.recipe, prepared.task
    for d in recipe["dropped"]:
        emit(Log(f"column {d['name']!r} not used: {d['reason']}"))
    tr, va, te = data.parts
    emit(Log(f"{task} of {spec.target!r}: {len(tr)} train / {len(va)} validation / "
             f"{len(te)} test rows; inputs "
             + ", ".join(f"{i['name']} {i['shape'][1:]}" for i in data.inputs)
             + f"; device {devices.describe(device)}, {threads} threads"))

    chosen = _families(spec, task, data.modality)
    runs.note_facts(ws, job_id, {"digest": info.digest, "task": task, "rows": len(data.frame),
                                 "split": [len(tr), len(va), len(te)], "device": device,
                                 "threads": threads, "families": [f.name for f in chosen],
                                 **({"family": chosen[0].name} if len(chosen) == 1 else {}),
                                 **({"resumed_from": spec.resume} if spec.resume else {})})
    budget = spec.time_budget_s or default_budget(len(data.frame), len(recipe["features"]),
                                                  data.modality)
    if spec.family == "auto":
        emit(Log(f"trying {', '.join(f.name for f in chosen)} within {budget:.0f} s"))
    board = _train_all(chosen, spec, data, device, threads, budget, emit, should_stop,
                       _checkpoint_plans(ws, spec, job_id, info.digest, emit))

    if _rank() != 0:
        return {"rank": _rank()}  # the first process of a distributed run does the rest
    metric = HEADLINE[task]
    # Asked before the long tail of export and evaluation: a job whose starter has gone
    # raises Abandoned here (a Stop returns True: the models trained so far are kept).
    should_stop()
    dataset = {"name": info.name, "digest": info.digest, "rows": len(prepared.frame)}
    ranked = sorted(board, key=lambda c: (-c.validation, c.val_loss, board.index(c)))
    winner, manifests = _finish(ranked, spec, data, dataset, device, threads, started,
                                job_id, emit, should_stop)
    board = [c for c in ranked if c.family.name in manifests]
    if len(board) > 1:
        emit(Log(f"{winner.family.name} is best on the validation split ({metric} "
                 f"{winner.validation:.4f})"))
    should_stop()  # once more, just before the version is written
    name = spec.model or registry.propose_model_name(ws, info.name, spec.target, task)
    manifest = manifests[winner.family.name]
    test = manifest["metrics"]["test"]
    common = {"name": name, "task": task, "family": winner.family.name, "metrics": test,
              "device": device, "dataset_digest": info.digest,
              "params": manifest["training"]["params"],
              "stopped_early": manifest["training"]["stopped"] is not None,
              "stopped": manifest["training"]["stopped"],
              "warnings": manifest["warnings"], "validation": winner.validation,
              "leaderboard": [c.row(metric, chosen=c is winner) for c in board]}
    ended_well = manifest["training"]["stopped"] not in ("user", "time")
    if not register:
        assert job_id is not None
        candidates.keep(ws, job_id, name, [
            (c.family.name, c.family.title, c.files(), manifests[c.family.name],
             c.row(metric, chosen=c is winner)) for c in board])
        emit(Candidate(winner.family.name, winner.family.title, "done", metric,
                       winner.validation, winner.test, winner.fit_s, winner.size, chosen=True))
        emit(Progress("done", 1, 1, f"kept {winner.family.name} as a candidate"))
        _drop_checkpoints(ws, job_id, ended_well)
        return {**common, "version": None, "number": None,
                "candidate": winner.family.name}
    version = registry.register_version(ws, name, winner.files(), manifest,
                                        model_card(manifest), job_id=job_id)
    emit(Candidate(winner.family.name, winner.family.title, "done", metric,
                   winner.validation, winner.test, winner.fit_s, winner.size, chosen=True))
    if job_id and len(board) > 1:
        # after the version: a run that failed to register leaves no leaderboard behind
        candidates.keep(ws, job_id, name, [
            (c.family.name, c.family.title, {} if c is winner else c.files(),
             {} if c is winner else manifests[c.family.name],
             c.row(metric, chosen=c is winner) | ({"version": version.ref}
                                                 if c is winner else {}))
            for c in board])
    emit(Progress("done", 1, 1, f"registered {version.ref}"))
    _drop_checkpoints(ws, job_id, ended_well)
    return {**common, "version": version.ref, "name": version.name,
            "number": version.version}


class Loaded(NamedTuple):
    info: Any  # catalog.DatasetInfo
    prepared: Any  # datasets.prepare.Prepared
    data: TrainData


def load(ws: Workspace, spec: TrainSpec, emit: Emit,
         should_stop: Callable[[], bool] = lambda: False) -> Loaded:
    """The dataset read, its recipe fitted and split: what every family trains on."""
    info = catalog.get_dataset(ws, spec.dataset)
    emit(Progress("prepare", 0, 0, f"loading {info.name}"))
    profile = catalog.cached_profile(ws, info)
    stored = catalog.load_frame(ws, info)
    catalog.check_pictures(ws, info, stored, emit, should_stop)
    prepared = prepare(stored, spec.dataset, spec.target, spec.task, spec.split, spec.seed,
                       spec.preprocessing, blob_path=ws.blobs.path,
                       kinds={c["name"]: c["kind"] for c in profile} if profile else None)
    recipe = prepared.recipe
    data = TrainData(recipe, prepared.task, prepared.frame,
                     encode_target(recipe, prepared.frame[spec.target]), prepared.parts,
                     scratch=ws.blobs.tmp, rows=prepared.rows)
    return Loaded(info, prepared, data)


def _finish(ranked: list[_Entry], spec: TrainSpec, data: TrainData, dataset: dict[str, Any],
            device: str, threads: int, started: float, job_id: str | None, emit: Emit,
            should_stop: Callable[[], bool]) -> tuple[_Entry, dict[str, dict[str, Any]]]:
    """Export and evaluate each candidate, best first. One that fails to is dropped from
    the board (the next best wins if it was the best); the run fails only when none is left."""
    metric = HEADLINE[data.task]
    winner: _Entry | None = None
    manifests: dict[str, dict[str, Any]] = {}
    emit(Progress("export", 0, len(ranked), "exporting the models"))
    for c in ranked:
        try:
            c.export()
            manifests[c.family.name] = _manifest(
                c, spec, data, dataset, device, threads, ranked, started, job_id, emit,
                is_winner=winner is None, should_stop=should_stop)
        except Abandoned:
            raise
        except Exception as exc:
            if len(ranked) == 1:
                raise
            _failed(emit, c.family, metric, exc, "could not be exported or evaluated")
            continue
        winner = winner or c
    if winner is None:
        raise InputError("no trained model could be exported; see the log")
    for m in manifests.values():  # which family the run chose, once it is known
        for row in m["leaderboard"]:
            row["chosen"] = row["family"] == winner.family.name
        m["leaderboard"] = [r for r in m["leaderboard"] if r["family"] in manifests]
    return winner, manifests


class _Entry:
    """A trained candidate: its scores, and its files once exported."""

    def __init__(self, family: Family, fitted: Fitted, data: TrainData, fit_s: float) -> None:
        self.family, self.fitted, self.fit_s = family, fitted, fit_s
        va_scores = fitted.predict(data.validation)
        self.validation, self.val_loss = _score(data, data.validation, va_scores)
        self.test, _ = _score(data, data.test, fitted.predict(data.test))
        self.exported: Any = None
        self.size = 0

    def export(self) -> None:
        if self.exported is None:
            self.exported = self.fitted.export()
            self.size = len(self.exported.onnx) + sum(map(len, self.exported.files.values()))

    def files(self) -> dict[str, bytes]:
        assert self.exported is not None
        return {"model.onnx": self.exported.onnx, **self.exported.files}

    def row(self, metric: str, chosen: bool = False) -> dict[str, Any]:
        return {"family": self.family.name, "title": self.family.title, "metric": metric,
                "validation": self.validation, "test": self.test,
                "fit_s": round(self.fit_s, 3), "size_bytes": self.size, "chosen": chosen}


def _families(spec: TrainSpec, task: str, modality: str) -> list[Family]:
    if spec.family != "auto":
        family = families.get(spec.family)
        reason = family.unfit_reason(task, modality)
        if reason:
            raise InputError(f"family {family.name} does not fit this {modality} {task}: "
                             f"{reason}")
        return [family]
    return [f for f, reason in families.fitting(task, modality) if reason is None]


def _checkpoint_plans(ws: Workspace, spec: TrainSpec, job_id: str | None, digest: str,
                      emit: Emit) -> Callable[[str], checkpoints.Plan | None]:
    """Each family's checkpoints: written under this run (when it has a record), and, when
    it resumes another run, read from that run's last one of the family. A resumed run
    must see the same data, or its epochs would continue on other rows."""
    resumed: dict[str, int] = {}
    if spec.resume:
        source = runs.get_run(ws, spec.resume, history=False)
        if source.run.digest and source.run.digest != digest:
            raise InputError(f"run {source.run.id} trained on another snapshot of "
                             f"{spec.dataset!r} (the dataset has changed since); it cannot "
                             "be resumed on this one: start a new run")
        resumed = checkpoints.resumable(ws, source.run.id)
        if not resumed:
            raise InputError(f"run {source.run.id} has no checkpoint to resume from (only the "
                             "neural families keep them, once an epoch has ended)")
        emit(Log(f"resuming run {source.run.id}: "
                 + ", ".join(f"{f} from epoch {e}" for f, e in resumed.items())))

    def plan(family: str) -> checkpoints.Plan | None:
        write_to = checkpoints.family_dir(ws, job_id, family) if job_id else None
        start = (checkpoints.latest(ws, runs.resolve(ws, spec.resume), family)
                 if spec.resume and family in resumed else None)
        return checkpoints.Plan(write_to, start) if write_to or start else None

    return plan


def _train_all(chosen: list[Family], spec: TrainSpec, data: TrainData, device: str,
               threads: int, budget: float, emit: Emit,
               should_stop: Callable[[], bool],
               plans: Callable[[str], checkpoints.Plan | None] = lambda _f: None
               ) -> list[_Entry]:
    board: list[_Entry] = []
    end = time.monotonic() + budget
    metric = HEADLINE[data.task]
    for i, family in enumerate(chosen):
        if board and should_stop():
            break
        weights = [WEIGHTS.get(f.name, HEAVY_WEIGHT) for f in chosen[i:]]
        share = (end - time.monotonic()) * weights[0] / sum(weights)
        if board and share <= 0:
            emit(Candidate(family.name, family.title, "skipped", metric,
                           message="the time budget was spent before its turn"))
            continue
        # a single family asked for by name has the whole budget; in a search each has its
        # share, and at least a few seconds so a late one still trains at all
        deadline = time.monotonic() + max(share, 3.0) if len(chosen) > 1 else end
        emit(Candidate(family.name, family.title, "training", metric,
                       message=f"{max(share, 3.0):.0f} s" if len(chosen) > 1 else ""))
        emit(Progress("family", i, len(chosen), f"training {family.title.lower()} "
                      f"({i + 1} of {len(chosen)})"))
        ctx = FitContext(_tagged(emit, family.name), should_stop, deadline, device, threads,
                         spec.seed, plans(family.name))
        t0 = time.perf_counter()
        try:
            fitted = _fit_family(family, data, spec.params_for(family), ctx, emit)
            entry = _Entry(family, fitted, data, time.perf_counter() - t0)
        except Abandoned:
            raise
        except Cancelled:
            if not board or len(chosen) == 1:
                raise
            emit(Candidate(family.name, family.title, "skipped", metric,
                           message="stopped before its first epoch"))
            break
        except Exception as exc:
            if len(chosen) == 1:
                raise
            _failed(emit, family, metric, exc, "failed")
            continue
        board.append(entry)
        emit(Candidate(family.name, family.title, "done", metric, entry.validation,
                       entry.test, entry.fit_s, message=_stopped(fitted.details)))
    if not board:
        raise InputError("no model family could be trained on this data; see the log")
    return board


def _fit_family(family: Family, data: TrainData, params: dict[str, Any], ctx: FitContext,
                emit: Emit) -> Fitted:
    """``family.train``; when the device runs out of memory, once more at half the batch
    size (from the start: what the first try wrote is dropped), then a clear error."""
    try:
        return family.train(data, params, ctx)
    except Exception as exc:
        if not _out_of_memory(exc) or "batch_size" not in params:
            raise
        if _world() > 1:
            # the other processes wait in a collective: a retry here alone would hang them
            raise InputError(f"{family.name}: the {ctx.device} device ran out of memory at "
                             f"batch size {params['batch_size']} in a distributed run: choose "
                             "a smaller batch size or model") from None
        smaller = max(1, int(params["batch_size"]) // 2)
    _free_device_memory()
    emit(Log(f"{family.name}: the device ran out of memory at batch size "
             f"{params['batch_size']}; trying once more at {smaller}", "warning"))
    if ctx.checkpoint is not None and ctx.checkpoint.write_to is not None:
        # what the first try wrote is dropped; a resumed run goes on from where it was
        # (the optimizer's state does not depend on the batch size)
        shutil.rmtree(ctx.checkpoint.write_to, ignore_errors=True)
    try:
        return family.train(data, {**params, "batch_size": smaller}, ctx)
    except Exception as exc:
        if not _out_of_memory(exc):
            raise
        _free_device_memory()
        raise InputError(f"{family.name}: the {ctx.device} device ran out of memory even at "
                         f"batch size {smaller}: choose a smaller batch size or model "
                         "(hidden sizes, image size), or train on the cpu") from None


def _drop_checkpoints(ws: Workspace, job_id: str | None, ended_well: bool) -> None:
    """Once its model is kept: a run that ended on its own terms (every epoch, early
    stopping) has nothing to resume, and a small network's checkpoints are megabytes."""
    if job_id and ended_well:
        checkpoints.remove_run(ws, job_id)


def _rank() -> int:
    """This process's rank in a distributed run (torchrun), 0 when alone."""
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def _world() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _out_of_memory(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _free_device_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _failed(emit: Emit, family: Family, metric: str, exc: Exception, what: str) -> None:
    """A family that failed in a search: said in the log and on its leaderboard row (a
    program fault with its traceback, for the log's detail level)."""
    message = str(exc) if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}"
    if not isinstance(exc, InputError):
        emit(Log(traceback.format_exc(), "debug"))
    emit(Log(f"{family.name} {what}: {message}", "warning"))
    emit(Candidate(family.name, family.title, "failed", metric, message=message))


def _tagged(emit: Emit, family: str) -> Emit:
    """Metric events carry the family, so curves and stored rows of one run stay apart."""
    def tagged(event: Event) -> None:
        emit(dataclasses.replace(event, series=family) if isinstance(event, Metric) else event)
    return tagged


def _stopped(details: dict[str, Any]) -> str:
    why = details.get("stopped")
    best = details.get("best_epoch") or details.get("best_round")
    unit = "epoch" if "best_epoch" in details else "round"
    return f"{why}; best {unit} {best}" if why else f"best {unit} {best}"


def _score(data: TrainData, rows: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """Accuracy or R² (higher is better), and the loss that breaks ties (lower is better)."""
    y = data.y[rows]
    if len(rows) == 0:
        return 0.0, 0.0
    if data.task == "classification":
        p = np.clip(scores[np.arange(len(y)), y], 1e-15, 1.0)
        return float((scores.argmax(1) == y).mean()), float(-np.log(p).mean())
    err = scores.reshape(-1).astype(np.float64) - y
    spread = float(((y - y.mean()) ** 2).sum())
    mse = float((err ** 2).mean())
    return (1 - float((err ** 2).sum()) / spread if spread else 0.0), mse


def _manifest(c: _Entry, spec: TrainSpec, data: TrainData, dataset: dict[str, Any],
              device: str, threads: int, board: list[_Entry], started: float,
              job_id: str | None, emit: Emit, is_winner: bool,
              should_stop: Callable[[], bool] = lambda: False) -> dict[str, Any]:
    """The candidate's manifest, with its test evaluation run through its own ONNX graph:
    the numbers a person reads are those of the file that serving runs."""
    recipe, task = data.recipe, data.task
    if is_winner:
        emit(Progress("evaluate", 0, 0, "evaluating on the test split"))
    evaluation = evaluate_exported(
        c.exported.onnx, data, importance=is_winner, emit=emit, dataset=dataset["name"],
        row_ids=None if data.rows is None else data.rows[data.test], should_stop=should_stop)
    test = evaluation["metrics"]
    scores = evaluation["scores"]
    test["baseline"] = baseline(task, data.y[data.train], data.y[data.test],
                                recipe.get("labels"),
                                scores.argmax(1) if task == "classification" else None)
    warnings = [w for w in [baseline_warning(task, spec.target, test)] if w]
    if is_winner:
        for w in warnings:
            emit(Log(w, "warning"))
    c.exported.files["evaluation.json"] = evaluation["document"]
    details = c.fitted.details
    return {
        "task": task, "family": c.family.name, "target": spec.target,
        "labels": recipe.get("labels"), "recipe": recipe, "input_schema": input_schema(recipe),
        "onnx": {"inputs": model_inputs(recipe), "output": c.exported.output,
                 "input": model_inputs(recipe)[0]["name"], "features": n_features(recipe)},
        "metrics": {"test": test, "validation": {HEADLINE[task]: c.validation}},
        # what a server compares the rows it sees with (input drift)
        "drift": _drift_reference(data),
        "dataset": dataset,
        "training": {
            **spec.to_dict(), "family": c.family.name, "params": details.get("params", {}),
            "device": device, "threads": threads, "hidden": details.get("hidden"),
            "epochs_run": details.get("epochs_run", details.get("rounds_run")),
            "best_epoch": details.get("best_epoch", details.get("best_round")),
            "stopped": details.get("stopped"),
            "stopped_early": details.get("stopped") is not None, "details": _plain(details),
            "fit_s": round(c.fit_s, 3), "duration_s": round(time.perf_counter() - started, 3),
        },
        # "this" marks the version's own row; "chosen" (set by _finish) the run's winner
        "leaderboard": [e.row(HEADLINE[task]) | {"this": e is c} for e in board],
        "warnings": warnings,
        "lineage": {"dataset": f"{dataset['name']}@{dataset['digest'][:12]}", "parent": None,
                    "job": job_id},
    }


def _drift_reference(data: TrainData) -> dict[str, Any] | None:
    if not any(f["kind"] in ("numeric", "categorical", "ordinal")
               for f in data.recipe["features"]):
        return None
    return drift.reference(data.recipe, data.matrix()[data.train])


def _plain(details: dict[str, Any]) -> dict[str, Any]:
    """What of a family's details JSON can hold (numbers that are finite, text, lists)."""
    out = {}
    for k, v in details.items():
        if k == "params":
            continue
        if isinstance(v, float) and not math.isfinite(v):
            v = None
        if isinstance(v, str | int | float | bool | list | dict | type(None)):
            out[k] = v
    return out


def choose_device(wanted: str, threads: int) -> str:
    """The device a run trains on (the best there is for "auto": a CUDA GPU, then Apple's
    MPS, then the CPU), torch set to ``threads`` threads."""
    import torch

    torch.set_num_threads(threads)
    # The first optimizer a process makes imports torch._dynamo (seconds on a busy machine):
    # paid here, before any family's share of the time budget starts.
    torch.optim.AdamW([torch.zeros(1, requires_grad=True)])
    mps = getattr(torch.backends, "mps", None)
    has_mps = mps is not None and mps.is_available()
    if wanted.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(f"device {wanted} was asked for, but no CUDA GPU is available "
                             "(studio devices lists what there is)")
        index = int(wanted.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise InputError(f"device {wanted}: there are {torch.cuda.device_count()} CUDA "
                             "GPUs (cuda:0 and up)")
        return wanted
    if wanted == "mps" and not has_mps:
        raise InputError("device mps was asked for, but Apple's MPS is not available here")
    if wanted == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    return wanted
