"""Hyperparameter search with Optuna: the TPE sampler proposes each trial's family and
parameters, the median pruner ends a trial whose validation curve falls behind the median of
earlier trials at the same epoch, and the study lives in the workspace (a journal file under
``studies/``), so a search can be continued later under its name.

Each trial is a run of its own (a record with its spec, curves and leaderboard, see
:mod:`studio.core.runs`), trained by :func:`pipeline.run` without registering: its model
waits among the run's candidates, and the best trial becomes a version with one click
(:func:`register_best`). The trials share the data, loaded and split once.
"""

from __future__ import annotations

import math
import re
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from studio.core import checkpoints, runs
from studio.core.errors import Abandoned, Cancelled, InputError, NotFoundError
from studio.core.events import Emit, Event, Log, Metric, Progress, Trial
from studio.core.training import families
from studio.core.training.spec import TrainSpec
from studio.core.training.tune_spec import DEFAULT_TRIALS, TuneSpec, check_study_name

__all__ = ["DEFAULT_TRIALS", "TuneSpec", "register_best", "run", "trials"]
from studio.core.workspace import Workspace

STUDIES_DIR = "studies"
SCORES = ("val_accuracy", "val_r2")


class Pruned(Exception):
    """Raised out of a trial's training when the pruner ends it."""


class RunBook(Protocol):
    """Where a trial's run is recorded (the jobs layer keeps the table)."""

    def start(self, spec: dict[str, Any]) -> str: ...
    def metrics(self, run_id: str, metrics: list[Metric]) -> None: ...
    def finish(self, run_id: str, status: str, error: str | None = None,
               result: dict[str, Any] | None = None) -> None: ...


# What is searched, per parameter a family may have: (kind, low, high); "cat" lists choices.
SPACE: dict[str, tuple[Any, ...]] = {
    "learning_rate": ("lograte",),  # a decade below to five times above the family default
    "weight_decay": ("log", 1e-6, 0.1),
    "dropout": ("float", 0.0, 0.5),
    "batch_size": ("cat", 32, 64, 128, 256, 512),
    "label_smoothing": ("float", 0.0, 0.2),
    "leaves": ("logint", 7, 255),
    "min_child_samples": ("logint", 3, 100),
    "feature_fraction": ("float", 0.5, 1.0),
    "subsample": ("float", 0.5, 1.0),
    "channels": ("cat", 8, 16, 32),
    "width": ("cat", 32, 64, 128),
}
HIDDEN_WIDTHS = (64, 128, 256, 512)


def suggest(trial: Any, family: families.Family) -> dict[str, Any]:
    """The trial's parameters for ``family``: each searchable one it has (names carry the
    family, so TPE keeps the families' spaces apart)."""
    out: dict[str, Any] = {}
    own = {p.name: p for p in family.params}
    for name, how in SPACE.items():
        if name not in own:
            continue
        key = f"{family.name}.{name}"
        kind = how[0]
        if kind == "lograte":
            base = float(own[name].default)
            out[name] = trial.suggest_float(key, base / 10, min(base * 5, 1.0), log=True)
        elif kind == "log":
            out[name] = trial.suggest_float(key, how[1], how[2], log=True)
        elif kind == "float":
            out[name] = trial.suggest_float(key, how[1], how[2])
        elif kind == "logint":
            out[name] = trial.suggest_int(key, how[1], how[2], log=True)
        else:
            out[name] = trial.suggest_categorical(key, list(how[1:]))
    if "hidden" in own and own["hidden"].default:
        depth = trial.suggest_int(f"{family.name}.depth", 1, 4)
        width = trial.suggest_categorical(f"{family.name}.width_hidden", list(HIDDEN_WIDTHS))
        out["hidden"] = [width] * depth
    return out


def study_path(ws: Workspace, name: str) -> Path:
    return ws.root / STUDIES_DIR / f"{name}.journal"


def open_study(ws: Workspace, name: str, seed: int, create: bool) -> Any:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    check_study_name(name)
    path = study_path(ws, name)
    if not create and not path.is_file():
        raise NotFoundError(f"no study {name!r} in this workspace (studio runs ls shows "
                            "its trials; studies live in studies/)")
    path.parent.mkdir(parents=True, exist_ok=True)
    storage = JournalStorage(JournalFileBackend(str(path)))
    if not create:
        try:
            return optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            raise NotFoundError(f"no study {name!r} in this workspace") from None
    return optuna.create_study(
        study_name=name, storage=storage, direction="maximize", load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=5),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2))


def run(ws: Workspace, spec: TuneSpec, emit: Emit, should_stop: Callable[[], bool],
        book: RunBook, job_id: str | None = None) -> dict[str, Any]:
    """Run the search; the best trial (its run, score, family and parameters)."""
    from studio.core.training import pipeline

    spec.validate()
    name = spec.study or f"{_slug(spec.dataset)}-{_slug(spec.target)}-" \
        f"{time.strftime('%Y%m%d-%H%M%S')}"
    study = open_study(ws, name, spec.seed, create=True)
    first = spec.trial_spec({}, spec.family if spec.family != "auto" else "mlp")
    loaded = pipeline.load(ws, first, emit, should_stop)
    task, modality = loaded.data.task, loaded.data.modality
    if spec.family == "auto":
        choices = [f.name for f, why in families.fitting(task, modality) if why is None]
    else:
        family = families.get(spec.family)
        why = family.unfit_reason(task, modality)
        if why:
            raise InputError(f"family {family.name} does not fit this {modality} {task}: {why}")
        choices = [family.name]
    metric = "accuracy" if task == "classification" else "r2"
    limit = spec.trials or (0 if spec.time_budget_s else DEFAULT_TRIALS)
    emit(Log(f"study {name}: {len(study.trials)} earlier trials; searching "
             + (f"{limit} trials" if limit else "") + (" within " if limit and
                                                        spec.time_budget_s else "")
             + (f"{spec.time_budget_s:.0f} s" if spec.time_budget_s else "")
             + f" over {', '.join(choices)} (validation {metric}, higher is better)"))
    end = time.monotonic() + spec.time_budget_s if spec.time_budget_s else math.inf
    done = 0
    while (not limit or done < limit) and time.monotonic() < end and not should_stop():
        trial = study.ask()
        family = families.get(choices[0] if len(choices) == 1 else
                              trial.suggest_categorical("family", choices))
        params = suggest(trial, family)
        emit(Progress("tune", done, limit or 0, f"trial {trial.number} ({family.name})"))
        budget = spec.trial_budget_s or 0.0
        if math.isfinite(end):
            left = end - time.monotonic()
            budget = min(budget or left, max(left, 3.0))
        trial_spec = spec.trial_spec(params, family.name)
        trial_spec.time_budget_s = budget
        import optuna

        try:
            state, value, run_id, message = _one_trial(ws, trial, trial_spec, family.name,
                                                       loaded, emit, should_stop, book, name)
        except BaseException:
            # abandoned or broken: the study must not keep a trial running for ever
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            raise
        # a trial is not resumed (a new one is cheaper): its checkpoints go at once
        checkpoints.remove_run(ws, run_id)

        if state == "complete":
            study.tell(trial, value)
        elif state == "pruned":
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        done += 1
        best = _best(study)
        emit(Trial(trial.number, state, run_id, family.name, params, value, metric,
                   best.number if best else None, best.value if best else None, message))
    best = _best(study)
    if best is None:
        raise InputError(f"no trial of study {name} ended with a score; see the log")
    return {"study": name, "trials": len(study.trials), "ran": done, "metric": metric,
            "best": {"number": best.number, "value": best.value,
                     "run": best.user_attrs.get("run_id"), "family": best.user_attrs.get(
                         "family"), "params": best.params}}


def _one_trial(ws: Workspace, trial: Any, spec: TrainSpec, family: str, loaded: Any,
               emit: Emit, should_stop: Callable[[], bool], book: RunBook,
               study: str) -> tuple[str, float | None, str, str]:
    from studio.core.training import pipeline

    record = {**spec.to_dict(), "tune": {"study": study, "trial": trial.number}}
    run_id = book.start(record)
    trial.set_user_attr("run_id", run_id)
    trial.set_user_attr("family", family)
    emit(Trial(trial.number, "running", run_id, family, dict(trial.params)))
    pending: list[Metric] = []

    def trial_emit(event: Event) -> None:
        if isinstance(event, Metric):
            pending.append(event)
            if event.name in SCORES:
                trial.report(event.value, event.epoch)
                if trial.should_prune():
                    raise Pruned(f"{runs.PRUNED} {event.epoch}: its validation score "
                                 f"{event.value:.4f} is below the median of earlier trials")
        elif isinstance(event, Log) and event.level == "warning":
            emit(event)

    try:
        result = pipeline.run(ws, spec, trial_emit, should_stop, job_id=run_id,
                              register=False, loaded=loaded)
    except Pruned as exc:
        book.metrics(run_id, pending)
        book.finish(run_id, "cancelled", error=str(exc))
        return "pruned", None, run_id, str(exc)
    except Abandoned:
        book.metrics(run_id, pending)
        book.finish(run_id, "interrupted", error="the tuning job was abandoned")
        raise
    except Cancelled as exc:
        book.metrics(run_id, pending)
        book.finish(run_id, "cancelled", error=str(exc))
        return "failed", None, run_id, str(exc)
    except Exception as exc:
        message = str(exc) if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, InputError):
            emit(Log(traceback.format_exc(), "debug"))
        emit(Log(f"trial {trial.number} failed: {message}", "warning"))
        book.metrics(run_id, pending)
        book.finish(run_id, "failed", error=message)
        return "failed", None, run_id, message
    book.metrics(run_id, pending)
    book.finish(run_id, "done", result=result)
    return "complete", float(result["validation"]), run_id, ""


def _best(study: Any) -> Any:
    import optuna

    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    return max(done, key=lambda t: t.value) if done else None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:30] or "data"


def register_best(ws: Workspace, study: str) -> Any:
    """The study's best trial as a new version (from the candidates its run kept)."""
    from studio.core.training import candidates

    best = _best(open_study(ws, study, 0, create=False))
    if best is None:
        raise InputError(f"study {study!r} has no finished trial yet")
    return candidates.register(ws, best.user_attrs["run_id"], best.user_attrs["family"])


def trials(ws: Workspace, study: str) -> list[dict[str, Any]]:
    """Every trial of a study: number, state, value, family, parameters, run."""
    s = open_study(ws, study, 0, create=False)
    return [{"number": t.number, "state": t.state.name.lower(), "value": t.value,
             "family": t.user_attrs.get("family"), "run": t.user_attrs.get("run_id"),
             "params": t.params} for t in s.trials]
