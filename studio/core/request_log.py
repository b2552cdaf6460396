"""The request log: the newest requests servers answered, kept in the workspace database so
that the GUI and ``studio requests`` show them after the server (or the app) restarts.

A server writes rows in batches from a background thread (``studio/serving/reqlog.py``),
never on a request's path; only the newest :data:`KEEP` rows are kept.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from studio.core.workspace import Workspace

KEEP = 10_000

SCHEMA = """
    CREATE TABLE IF NOT EXISTS requests (
        id INTEGER PRIMARY KEY,   -- rowid: the newest rows are the highest ids
        time REAL NOT NULL,       -- when the answer was sent (seconds since the epoch)
        model TEXT NOT NULL,      -- "unknown" for a name the server did not serve
        version TEXT NOT NULL,
        endpoint TEXT NOT NULL,   -- infer (V2) or predict (records)
        status INTEGER NOT NULL,
        latency_ms REAL NOT NULL,
        rows INTEGER NOT NULL     -- rows predicted; 0 when refused
    )
"""


@dataclass(frozen=True)
class Request:
    time: float
    model: str
    version: str
    endpoint: str
    status: int
    latency_ms: float
    rows: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def create_table(conn: sqlite3.Connection) -> None:
    """Schema 10: the request log (inside the caller's migration transaction, which
    ``executescript`` would commit early)."""
    conn.execute(SCHEMA)


def append(ws: Workspace, rows: Sequence[tuple[Any, ...]], keep: int = KEEP) -> None:
    """Write ``rows`` (time, model, version, endpoint, status, latency_ms, rows) in one
    transaction and drop what is older than the newest ``keep``."""
    if not rows:
        return
    with ws.db.immediate() as conn:
        conn.executemany("INSERT INTO requests (time, model, version, endpoint, status, "
                         "latency_ms, rows) VALUES (?, ?, ?, ?, ?, round(?, 3), ?)", rows)
        # ids only grow, so the cut is one index lookup, not a count of the table
        conn.execute("DELETE FROM requests WHERE id <= (SELECT id FROM requests "
                     "ORDER BY id DESC LIMIT 1 OFFSET ?)", [keep])


def recent(ws: Workspace, limit: int = 100, model: str | None = None) -> list[Request]:
    """The newest ``limit`` requests, newest first; ``model``: of that model only."""
    where, args = ("WHERE model = ?", [model]) if model else ("", [])
    rows = ws.db.conn.execute(
        f"SELECT time, model, version, endpoint, status, latency_ms, rows FROM requests "
        f"{where} ORDER BY id DESC LIMIT ?", [*args, max(0, limit)])
    return _requests(rows)


def newest_id(ws: Workspace) -> int:
    """The id of the newest row (0 when none): a cheap way to tell the log has grown."""
    return ws.db.conn.execute("SELECT COALESCE(MAX(id), 0) FROM requests").fetchone()[0]


def _requests(rows: Iterable[tuple[Any, ...]]) -> list[Request]:
    return [Request(*r) for r in rows]
