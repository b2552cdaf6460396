"""Which versions running servers serve: a server adds a row when it starts and removes it
when it stops; rows of processes that died are ignored (and pruned)."""

from __future__ import annotations

import json
import os

from studio.core.store import now, process_alive
from studio.core.workspace import Workspace


def announce(ws: Workspace, url: str, versions: list[str]) -> None:
    """This process serves ``versions`` (NAME:N) at ``url``."""
    with ws.db.immediate() as conn:
        conn.execute("INSERT OR REPLACE INTO servers VALUES (?, ?, ?, ?)",
                     [os.getpid(), url, json.dumps(sorted(versions)), now()])


def withdraw(ws: Workspace, url: str) -> None:
    ws.db.conn.execute("DELETE FROM servers WHERE pid = ? AND url = ?", [os.getpid(), url])


def serving(ws: Workspace) -> dict[str, list[str]]:
    """NAME:N → the URLs of live servers serving it."""
    out: dict[str, list[str]] = {}
    dead = []
    for pid, url, refs in ws.db.conn.execute("SELECT pid, url, refs FROM servers"):
        if not process_alive(pid):
            dead.append((pid, url))
            continue
        for ref in json.loads(refs):
            out.setdefault(ref, []).append(url)
    for pid, url in dead:
        ws.db.conn.execute("DELETE FROM servers WHERE pid = ? AND url = ?", [pid, url])
    return out


def url_of(ws: Workspace, pid: int) -> str | None:
    """Where the server process ``pid`` listens, once it has bound its port (None before;
    the GUI finds the server it started here rather than in the process's output)."""
    row = ws.db.conn.execute("SELECT url FROM servers WHERE pid = ? AND url NOT LIKE "
                             "'starting-%' ORDER BY started DESC LIMIT 1", [pid]).fetchone()
    return row[0] if row else None
