"""Which job rows still have a process behind them. Every reader that acts on a job's state
(the next job, a delete, the app at start) asks here, so a row left behind by a killed
process never blocks anything."""

from __future__ import annotations

import os
from typing import Any

from studio.core.store import now, process_alive
from studio.core.workspace import Workspace

# Rows from before queued jobs recorded the process that creates them: judged by age.
QUEUED_GRACE_S = 120.0
GONE = "the job's process ended without a result"


def alive(row: dict[str, Any]) -> bool:
    """A running row's pid is the job's own process; a queued row's is the process that is
    starting it (the CLI or the app). Where a pid cannot be checked (not POSIX), a queued
    row is judged by its age."""
    if row["pid"] is None or (row["status"] == "queued" and os.name != "posix"):
        return now() - row["created"] <= QUEUED_GRACE_S
    return process_alive(int(row["pid"]))


def reap(ws: Workspace) -> int:
    """Mark failed every active row whose process is gone; the number marked."""
    reaped = 0
    for row in list(ws.db.db["jobs"].rows_where("status IN ('queued', 'running')")):
        if not alive(row):
            # only the row as it was read: a job that has just started (its own pid in the
            # row now) is alive, whatever the dead starter said
            done = ws.db.conn.execute(
                "UPDATE jobs SET status = 'failed', error = ?, ended = ? "
                "WHERE id = ? AND status = ? AND pid IS ?",
                [GONE, now(), row["id"], row["status"], row["pid"]]).rowcount
            reaped += done
    return reaped
