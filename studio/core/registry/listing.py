"""Versions as rows for lists (the Models page, ``studio models ls``): read from the
database's own columns, never from manifests, so ten thousand versions list in a blink."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from studio.core.workspace import Workspace


# slots, not frozen: a frozen dataclass sets each field through object.__setattr__, which
# made building 10,000 rows cost ~3x the query that reads them
@dataclass(slots=True)
class VersionRow:
    name: str
    version: int
    task: str | None
    kind: str | None
    family: str | None
    dataset: str | None
    metric: str | None  # the headline metric's name (accuracy, r2), when measured
    score: float | None
    size_bytes: int | None  # model.onnx
    total_bytes: int | None  # every file of the version
    source: str | None  # training, compression, import
    parent: str | None
    created: float
    archived: float | None
    description: str | None
    metrics_json: str | None
    aliases: tuple[str, ...]
    tags: dict[str, str]

    @property
    def test_metrics(self) -> dict[str, float]:
        return json.loads(self.metrics_json) if self.metrics_json else {}

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    def to_dict(self) -> dict[str, Any]:
        # by hand: dataclasses.asdict deep-copies every value, ~70 µs a row, which was half
        # of `studio models ls --json` on 10,000 versions
        out: dict[str, Any] = {"ref": self.ref}
        for field in self.__slots__:
            if field != "metrics_json":
                out[field] = getattr(self, field)
        out["aliases"], out["tags"] = list(self.aliases), dict(self.tags)
        out["test_metrics"] = self.test_metrics
        return out


def version_rows(ws: Workspace, name: str | None = None,
                 archived: bool = False) -> list[VersionRow]:
    """Every version (of ``name``), by name then number; archived ones only when asked."""
    where, args = [], []
    if name is not None:
        where.append("v.name = ?")
        args.append(name)
    if not archived:
        where.append("v.archived IS NULL")
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    conn = ws.db.conn
    aliases: dict[tuple[str, int], list[str]] = {}
    for n, v, a in conn.execute("SELECT name, version, alias FROM aliases ORDER BY alias"):
        aliases.setdefault((n, v), []).append(a)
    tags: dict[tuple[str, int], dict[str, str]] = {}
    for n, v, k, val in conn.execute("SELECT name, version, key, value FROM tags ORDER BY key"):
        tags.setdefault((n, v), {})[k] = val
    rows = conn.execute(
        "SELECT v.name, v.version, v.task, v.kind, v.family, v.dataset, v.metric, v.score,"
        " v.size_bytes, v.total_bytes, v.source, v.parent, v.created, v.archived,"
        f" v.description, v.metrics FROM versions v {clause} ORDER BY v.name, v.version", args)
    return [VersionRow(*r, aliases=tuple(aliases.get((r[0], r[1]), ())),
                       tags=tags.get((r[0], r[1]), {})) for r in rows]


def lineage_edges(ws: Workspace, name: str,
                  number: int) -> dict[str, list[tuple[str, str, str]]]:
    """What a version came from ("from": relation, kind, ref) and what was made from it
    ("to": relation, "version", NAME:N)."""
    conn = ws.db.conn
    up = conn.execute("SELECT relation, kind, ref FROM lineage WHERE name = ? AND version = ?"
                      " ORDER BY relation", [name, number]).fetchall()
    down = conn.execute(
        "SELECT relation, 'version', name || ':' || version FROM lineage WHERE kind ="
        " 'version' AND ref = ? ORDER BY name, version", [f"{name}:{number}"]).fetchall()
    return {"from": [tuple(r) for r in up], "to": [tuple(r) for r in down]}
