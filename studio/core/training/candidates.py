"""The leaderboard of a run: every family it trained, and the files of those that lost, so
any of them can still become a version with one click (``studio models add-candidate``)."""

from __future__ import annotations

import json
from typing import Any

from studio.core import registry
from studio.core.errors import InputError, NotFoundError
from studio.core.training.card import model_card
from studio.core.workspace import Workspace


def keep(ws: Workspace, job_id: str, model: str,
         entries: list[tuple[str, str, dict[str, bytes], dict[str, Any], dict[str, Any]]],
         registered: str | None = None) -> None:
    """Store each (family, title, files, manifest, leaderboard row): files as blobs first,
    then the rows, so a crash leaves no row pointing at a missing file."""
    rows = []
    for family, title, files, manifest, row in entries:
        digests = {name: ws.blobs.put_bytes(data) for name, data in files.items()}
        rows.append({
            "job_id": job_id, "family": family, "title": title, "model": model,
            "row": json.dumps(row, allow_nan=False),
            "manifest": json.dumps(manifest, allow_nan=False) if manifest else None,
            "files": json.dumps(digests), "version": registered,
        })
    with ws.db.immediate():
        ws.db.db["candidates"].upsert_all(rows, pk=("job_id", "family"))


def board(ws: Workspace, job_id: str | None = None) -> tuple[str, list[dict[str, Any]]]:
    """The job's leaderboard (the latest training job's when ``job_id`` is None), best
    first on validation, each row with ``version`` where it was registered."""
    if job_id is None:
        row = ws.db.conn.execute(
            "SELECT c.job_id FROM candidates c JOIN jobs j ON j.id = c.job_id "
            "ORDER BY j.created DESC LIMIT 1").fetchone()
        if row is None:
            raise NotFoundError("no training run has a leaderboard yet: train with "
                                "`studio train DATASET`")
        job_id = row[0]
    rows = list(ws.db.db["candidates"].rows_where("job_id = ?", [job_id]))
    if not rows:
        raise NotFoundError(f"no leaderboard for job {job_id!r}")
    out = [{**json.loads(r["row"]), "version": r["version"], "model": r["model"]}
           for r in rows]
    # best first; among equal scores the one the run chose
    out.sort(key=lambda r: (-(r["validation"] if r["validation"] is not None else -1e300),
                            not r.get("chosen")))
    return job_id, out


def register(ws: Workspace, job_id: str, family: str) -> registry.Version:
    """The candidate ``family`` of ``job_id`` as a new version of the run's model."""
    row = ws.db.conn.execute(
        "SELECT model, manifest, files, version FROM candidates WHERE job_id = ? AND "
        "family = ?", [job_id, family]).fetchone()
    if row is None:
        families = [r[0] for r in ws.db.conn.execute(
            "SELECT family FROM candidates WHERE job_id = ?", [job_id])]
        raise NotFoundError(f"job {job_id!r} has no candidate {family!r}"
                            + (f"; it has: {', '.join(families)}" if families else ""))
    model, manifest_text, files_text, version = row
    if version:
        raise InputError(f"the {family} candidate of this run is already {version}")
    manifest = json.loads(manifest_text)
    files = {name: ws.blobs.read_bytes(digest) for name, digest in json.loads(files_text).items()}
    new = registry.register_version(ws, model, files, manifest, model_card(manifest),
                                    job_id=job_id)
    with ws.db.immediate() as conn:
        conn.execute("UPDATE candidates SET version = ? WHERE job_id = ? AND family = ?",
                     [new.ref, job_id, family])
    return new
