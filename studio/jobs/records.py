"""The jobs table: what ran, where, and how it ended. Metric rows hang off it."""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

from studio.core import job_rows
from studio.core.events import Metric
from studio.core.store import now, sweep_scratch
from studio.core.workspace import Workspace


def create_job(ws: Workspace, kind: str, spec: dict[str, Any]) -> str:
    """A queued row; its pid is this process's until the job's own process takes over, so a
    starter killed before that leaves a row any reader can tell is dead."""
    job_id = uuid.uuid4().hex[:12]
    ws.db.db["jobs"].insert({
        "id": job_id, "kind": kind, "spec": json.dumps(spec), "status": "queued",
        "pid": os.getpid(), "device": None, "created": now(), "started": None, "ended": None,
        "error": None, "result": None,
    })
    return job_id


def mark_running(ws: Workspace, job_id: str, pid: int, device: str | None = None) -> bool:
    """The job's own process takes its row; False when the row was already ended (reaped
    while it started): the job must then not run."""
    return ws.db.conn.execute(
        "UPDATE jobs SET status = 'running', pid = ?, device = ?, started = ? "
        "WHERE id = ? AND status = 'queued'", [pid, device, now(), job_id]).rowcount == 1


def set_device(ws: Workspace, job_id: str, device: str) -> None:
    ws.db.db["jobs"].update(job_id, {"device": device})


def finish(ws: Workspace, job_id: str, status: str, error: str | None = None,
           result: dict[str, Any] | None = None) -> None:
    """Record the end once: a job already ended keeps its first verdict."""
    ws.db.conn.execute(
        "UPDATE jobs SET status = ?, error = ?, result = ?, ended = ? "
        "WHERE id = ? AND status IN ('queued', 'running')",
        [status, error, json.dumps(result) if result is not None else None, now(), job_id],
    )


def add_metrics(ws: Workspace, job_id: str, metrics: list[Metric]) -> None:
    if metrics:
        ws.db.db["metrics"].insert_all(
            {"job_id": job_id, "epoch": m.epoch, "step": m.step, "name": m.name,
             "value": m.value, "series": m.series} for m in metrics
        )


def get_job(ws: Workspace, job_id: str) -> dict[str, Any]:
    return dict(ws.db.db["jobs"].get(job_id))


def reap_stale(ws: Workspace) -> int:
    """Mark failed every job whose process no longer exists, and sweep the scratch files
    that dead processes left behind."""
    reaped = job_rows.reap(ws)
    sweep_scratch(ws.tmp)
    return reaped


def unnoticed_interruptions(ws: Workspace) -> list[dict[str, Any]]:
    """Jobs abandoned by the process that started them that nobody has been told about yet;
    they are marked told."""
    # A profile is computed again when next wanted: nobody lost anything worth telling.
    rows = list(ws.db.db["jobs"].rows_where(
        "status = 'interrupted' AND noticed IS NULL AND kind != 'profile'", order_by="created"))
    for row in rows:
        ws.db.db["jobs"].update(row["id"], {"noticed": now()})
    return rows


def interruption_message(row: dict[str, Any]) -> str:
    spec = json.loads(row["spec"] or "{}")
    what = {"train": f"training on {spec.get('dataset')!r}",
            "import": f"import of {spec.get('path')!r}",
            "model-import": f"model import of {spec.get('path')!r}",
            "model-pull": f"pull of {spec.get('repo_id')!r} from the Hub",
            "compress": f"compression of {spec.get('source')!r}"}.get(
        row["kind"], f"{row['kind']} job")
    return f"the {what} (job {row['id']}) was interrupted: {row['error']}"


class TrialBook:
    """A tuning trial's run, recorded as a training job of the calling process (the tuning
    job): killed with it, a reader marks it failed (``tune.RunBook``)."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def start(self, spec: dict[str, Any]) -> str:
        run_id = create_job(self.ws, "train", spec)
        mark_running(self.ws, run_id, os.getpid())
        return run_id

    def metrics(self, run_id: str, metrics: list[Metric]) -> None:
        add_metrics(self.ws, run_id, metrics)

    def finish(self, run_id: str, status: str, error: str | None = None,
               result: dict[str, Any] | None = None) -> None:
        finish(self.ws, run_id, status, error=error, result=result)
