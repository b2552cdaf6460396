"""Training runs as records: a read API over the ``jobs`` rows of kind ``train``, their
metric history and leaderboard, for listing, comparing and deleting.

A run is the job that trained: its spec (what was asked), its facts (what the data turned
out to be, written when training starts), its result (the version it produced and the test
metrics) and the metric rows it emitted. Listing reads only the jobs table, through one
query (a thousand runs in a few milliseconds); the history is read per run when asked for.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from studio.core.errors import InputError, NotFoundError
from studio.core.store import now
from studio.core.workspace import Workspace

STATUSES = ("queued", "running", "done", "failed", "cancelled", "interrupted")
PRUNED = "pruned at epoch"  # how a pruned trial's error begins (core/training/tune.py)
ACTIVE = ("queued", "running")
SHORTEST_PREFIX = 4
# the per-step loss is kept for the live curve; the record's history is per epoch
STEP_METRICS = ("batch_loss",)

# One json_extract per JSON column, with several paths: SQLite parses each document once
# per call, and a call per field parsed the result (leaderboard and all) eleven times a row.
_COLUMNS = """
    id, status, created, started, ended, error, device,
    json_extract(spec, '$.dataset', '$.family', '$.target', '$.seed', '$.resume',
                 '$.tune.study', '$.tune.trial'),
    json_extract(result, '$.version', '$.family', '$.task', '$.metrics', '$.stopped_early',
                 '$.stopped'),
    json_extract(facts, '$.task', '$.digest', '$.family', '$.device')
"""
HEADLINE = {"classification": "accuracy", "regression": "r2"}


@dataclass
class Run:
    """One row of the runs table: what a list shows."""

    id: str
    status: str
    created: float
    started: float | None
    ended: float | None
    dataset: str
    target: str
    family: str  # the family that won, or the one asked for ("auto" before one won)
    task: str | None
    device: str | None
    version: str | None  # NAME:N it registered
    metric: str | None  # accuracy or r2 (test split)
    score: float | None
    error: str | None
    digest: str | None
    seed: int | None
    stopped_early: bool = False  # ended by a person's Stop (kept, and resumable)
    resumed_from: str | None = None
    trial: str | None = None  # STUDY#N: a trial of a tuning study
    ended_by: str | None = None  # "user", "time", "early stopping", "diverged" or None

    @property
    def resumable(self) -> bool:
        """Whether going on could train more: it did not end on its own terms (all its
        epochs, early stopping). Whether it kept a checkpoint is asked of the folder."""
        if self.status in ("failed", "interrupted", "cancelled"):
            return True
        return self.status == "done" and (self.stopped_early or self.ended_by == "time")

    @property
    def duration_s(self) -> float | None:
        if self.started is None:
            return None
        end = self.ended if self.ended is not None else now()
        return max(0.0, end - self.started)

    @property
    def state(self) -> str:
        """The status as a person reads it: a run stopped by its user still made a
        version, and says so; a tuning trial the pruner ended says that."""
        if self.status == "done" and self.stopped_early:
            return "stopped"
        if self.status == "cancelled" and self.trial and (self.error or "").startswith(
                PRUNED):
            return "pruned"
        return self.status

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"duration_s": self.duration_s, "state": self.state}


@dataclass
class RunDetail:
    """A run with everything the record holds: the spec, the facts, the result, and each
    series' per-epoch metrics (``history[series][metric] = [(epoch, value), ...]``)."""

    run: Run
    spec: dict[str, Any]
    facts: dict[str, Any]
    result: dict[str, Any]
    history: dict[str, dict[str, list[tuple[int, float]]]] = field(default_factory=dict)

    @property
    def params(self) -> dict[str, Any]:
        """The parameters the run trained with: the spec's choices, then the winning
        family's resolved parameters (every default included) where it has one."""
        spec = {k: v for k, v in self.spec.items()
                if k not in ("params", "preprocessing", "dataset", "target", "model")
                and v not in (None, "", [], {})}
        own = f"{self.run.family}."  # "mlp.hidden" is the mlp's hidden, for an mlp run
        chosen = {k.removeprefix(own): v for k, v in (self.spec.get("params") or {}).items()}
        resolved = self.result.get("params") or self.facts.get("params") or {}
        return {**spec, **chosen, **resolved}

    def to_dict(self) -> dict[str, Any]:
        return {**self.run.to_dict(), "spec": self.spec, "facts": self.facts,
                "result": self.result, "params": self.params,
                "history": {s: {m: [list(p) for p in pts] for m, pts in by.items()}
                            for s, by in self.history.items()}}


def _row_to_run(r: Sequence[Any]) -> Run:
    rid, status, created, started, ended, error, device, spec, result, facts = r
    dataset, spec_family, target, seed, resume, study, trial = _parts(spec, 7)
    version, won, task, metrics, stopped_early, why = _parts(result, 6)
    if why is not None or stopped_early is None:
        stopped_early = why == "user"  # early stopping or a spent budget is no Stop
    fact_task, digest, fact_family, fact_device = _parts(facts, 4)
    device = device or fact_device  # a tuning trial's device is known from its facts
    task = task or fact_task
    metric = HEADLINE.get(task or "")
    score = None
    if isinstance(metrics, dict) and metric:
        value = metrics.get(metric)
        score = float(value) if isinstance(value, int | float) else None
    return Run(rid, status, created, started, ended, dataset or "", target or "",
               won or fact_family or spec_family or "auto", task, device, version, metric,
               score, error, digest, seed, bool(stopped_early), resume,
               f"{study}#{trial}" if study else None, why)


def _parts(extracted: str | None, n: int) -> list[Any]:
    return orjson.loads(extracted) if extracted else [None] * n


def list_runs(ws: Workspace, dataset: str | None = None, status: str | None = None,
              family: str | None = None, search: str | None = None,
              limit: int | None = None) -> list[Run]:
    """Runs, newest first. ``status`` also takes "stopped" (ended by its user, kept) and
    "active" (queued or running); ``search`` matches id, dataset, target, version, family
    and error text, case-insensitively."""
    where, args = ["kind = 'train'"], []
    if dataset:
        where.append("json_extract(spec, '$.dataset') = ?")
        args.append(dataset)
    if status == "active":
        where.append("status IN ('queued', 'running')")
    elif status == "pruned":
        where.append("status = 'cancelled' AND error LIKE 'pruned at epoch%'")
    elif status == "stopped":
        where.append("status = 'done' AND coalesce(json_extract(result, '$.stopped') = "
                     "'user', json_extract(result, '$.stopped_early'))")
    elif status:
        if status not in STATUSES:
            raise InputError(f"status must be one of "
                             f"{', '.join((*STATUSES, 'stopped', 'pruned'))}, "
                             f"got {status!r}")
        where.append("status = ?")
        args.append(status)
    sql = (f"SELECT {_COLUMNS} FROM jobs WHERE {' AND '.join(where)} "
           "ORDER BY created DESC, rowid DESC")
    runs = [_row_to_run(r) for r in ws.db.conn.execute(sql, args)]
    if family:
        runs = [r for r in runs if r.family == family]
    if search:
        needle = search.casefold()
        runs = [r for r in runs if any(needle in str(v).casefold() for v in (
            r.id, r.dataset, r.target, r.version or "", r.family, r.error or "", r.state,
            r.trial or ""))]
    return runs[:limit] if limit else runs


def resolve(ws: Workspace, ref: str) -> str:
    """A run's id from its id or a unique prefix of at least four characters (as git
    takes commits); an unknown or ambiguous one is an input error that says which."""
    ref = ref.strip()
    if not ref:
        raise InputError("a run id is needed (see studio runs ls)")
    exact = ws.db.conn.execute("SELECT id FROM jobs WHERE kind = 'train' AND id = ?",
                               [ref]).fetchone()
    if exact:
        return str(exact[0])
    if len(ref) < SHORTEST_PREFIX:
        raise NotFoundError(f"no run {ref!r} (give at least {SHORTEST_PREFIX} characters "
                            "of its id; see studio runs ls)")
    escaped = ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    ids = [r[0] for r in ws.db.conn.execute(
        "SELECT id FROM jobs WHERE kind = 'train' AND id LIKE ? ESCAPE '\\' LIMIT 6",
        [escaped + "%"])]
    if not ids:
        raise NotFoundError(f"no run {ref!r} (see studio runs ls)")
    if len(ids) > 1:
        raise InputError(f"run {ref!r} is ambiguous: it begins {', '.join(ids[:5])}"
                         + (", ..." if len(ids) > 5 else ""))
    return str(ids[0])


def get_run(ws: Workspace, ref: str, history: bool = True) -> RunDetail:
    run_id = resolve(ws, ref)
    row = ws.db.conn.execute(f"SELECT {_COLUMNS}, spec, facts, result FROM jobs WHERE id = ?",
                             [run_id]).fetchone()
    run = _row_to_run(row[:-3])
    spec, facts, result = (json.loads(x) if x else {} for x in row[-3:])
    detail = RunDetail(run, spec, facts, result)
    if history:
        detail.history = metric_history(ws, [run_id])[run_id]
    return detail


def metric_history(ws: Workspace, run_ids: Iterable[str]
                   ) -> dict[str, dict[str, dict[str, list[tuple[int, float]]]]]:
    """Each run's per-epoch metrics, by series (the family) and metric name, in the order
    they were emitted (a resumed run's epochs continue its parent's numbering)."""
    ids = list(run_ids)
    out: dict[str, dict[str, dict[str, list[tuple[int, float]]]]] = {i: {} for i in ids}
    if not ids:
        return out
    marks = ",".join("?" * len(ids))
    skip = ",".join("?" * len(STEP_METRICS))
    for job_id, series, name, epoch, value in ws.db.conn.execute(
            f"SELECT job_id, series, name, epoch, value FROM metrics WHERE job_id IN ({marks})"
            f" AND name NOT IN ({skip}) ORDER BY rowid", [*ids, *STEP_METRICS]):
        if value is None or not math.isfinite(value):
            continue
        out[job_id].setdefault(series or "", {}).setdefault(name, []).append(
            (int(epoch or 0), float(value)))
    return out


def compare(ws: Workspace, refs: Sequence[str], least: int = 2) -> dict[str, Any]:
    """Runs side by side: their parameters and metrics in rows of one value per run, each
    row marked where the runs differ (``least``: how many must be given; the GUI shows one
    run the same way)."""
    if len(refs) < least:
        raise InputError("compare needs two runs or more" if least == 2
                         else f"compare needs {least} runs or more")
    details = [get_run(ws, r, history=False) for r in refs]
    ids = [d.run.id for d in details]
    if len(set(ids)) != len(ids):
        raise InputError("the same run was given twice")
    hist = metric_history(ws, ids)
    for d in details:
        d.history = hist[d.run.id]

    def rows(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
        keys = sorted({k for v in values for k in v})
        return [{"name": k, "values": [v.get(k) for v in values],
                 "differs": len({json.dumps(v.get(k), sort_keys=True, default=str)
                                 for v in values}) > 1} for k in keys]

    about = [{"dataset": d.run.dataset, "digest": (d.run.digest or "")[:12] or None,
              "target": d.run.target, "family": d.run.family, "device": d.run.device,
              "state": d.run.state, "version": d.run.version,
              "duration_s": None if d.run.duration_s is None else round(d.run.duration_s, 2),
              "epochs": len(_best_series(d).get("val_loss", []))} for d in details]
    metrics = [_numbers(d.result.get("metrics") or {}) | _validation(d) for d in details]
    return {"runs": ids, "about": rows(about), "params": rows([d.params for d in details]),
            "metrics": rows(metrics),
            "curves": {d.run.id: _best_series(d) for d in details}}


def _best_series(d: RunDetail) -> dict[str, list[tuple[int, float]]]:
    """The curves of the family the run is known by (the winner), else its only one."""
    if d.run.family in d.history:
        return d.history[d.run.family]
    if len(d.history) == 1:
        return next(iter(d.history.values()))
    return d.history.get("", {})


def _validation(d: RunDetail) -> dict[str, Any]:
    curves = _best_series(d)
    out = {}
    for name in ("val_accuracy", "val_r2"):
        if curves.get(name):
            out[f"best {name}"] = max(v for _, v in curves[name])
    if curves.get("val_loss"):
        out["best val_loss"] = min(v for _, v in curves["val_loss"])
    return out


def _numbers(metrics: dict[str, Any]) -> dict[str, Any]:
    return {f"test {k}": v for k, v in metrics.items() if isinstance(v, int | float)
            and not isinstance(v, bool)}


def resume_fields(detail: RunDetail) -> dict[str, Any]:
    """The TrainSpec fields that go on with ``detail``'s run: its own, less what belonged
    to it alone (the trial of a study it was, the run it resumed)."""
    fields = {k: v for k, v in detail.spec.items() if k not in ("tune", "threads")}
    return {**fields, "resume": detail.run.id}


def note_facts(ws: Workspace, run_id: str | None, facts: dict[str, Any]) -> None:
    """What a run learned about its data once loaded (the dataset's digest, the task, the
    families it will try): kept on its record even when it fails later."""
    if run_id:
        row = ws.db.conn.execute("SELECT facts FROM jobs WHERE id = ?", [run_id]).fetchone()
        merged = {**(json.loads(row[0]) if row and row[0] else {}), **facts}
        ws.db.conn.execute("UPDATE jobs SET facts = ? WHERE id = ?",
                           [json.dumps(merged, default=str), run_id])


def delete(ws: Workspace, refs: Sequence[str]) -> list[str]:
    """Delete runs' records (metrics, leaderboard, checkpoints); the versions they made
    stay. A run still going is refused: stop it first."""
    ids = [resolve(ws, r) for r in refs]
    from studio.core import job_rows

    for run_id in ids:
        row = ws.db.conn.execute("SELECT status, pid, created FROM jobs WHERE id = ?",
                                 [run_id]).fetchone()
        if row[0] in ACTIVE and job_rows.alive({"status": row[0], "pid": row[1],
                                                "created": row[2]}):
            raise InputError(f"run {run_id} is still {row[0]}: stop it before deleting it")
    with ws.db.immediate() as conn:
        for run_id in ids:
            conn.execute("DELETE FROM metrics WHERE job_id = ?", [run_id])
            conn.execute("DELETE FROM candidates WHERE job_id = ?", [run_id])
            conn.execute("DELETE FROM jobs WHERE id = ?", [run_id])
    from studio.core import checkpoints

    for run_id in ids:
        checkpoints.remove_run(ws, run_id)
    return ids
