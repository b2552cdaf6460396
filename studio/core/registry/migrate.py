"""Schema 7: the registry's tables, filled from the versions already there; schema 8: an
index that lists versions without reading their rows."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from studio.core.errors import IntegrityError
from studio.core.registry.manifest import Manifest

VERSION_COLUMNS = {
    "kind": "TEXT", "family": "TEXT", "metric": "TEXT", "score": "REAL",
    "size_bytes": "INTEGER",  # the model file's bytes
    "total_bytes": "INTEGER",  # every file of the version
    "source": "TEXT", "parent": "TEXT", "archived": "REAL",
    "card_digest": "TEXT",  # the card as edited; NULL: the one the manifest lists
    "description": "TEXT",
    "metrics": "TEXT",  # the test metrics' numbers as JSON: a list shows them unread
}

SCHEMA = """
        CREATE TABLE IF NOT EXISTS models (
            name TEXT PRIMARY KEY, description TEXT, created REAL);
        CREATE TABLE IF NOT EXISTS aliases (
            name TEXT NOT NULL, alias TEXT NOT NULL, version INTEGER NOT NULL, updated REAL,
            PRIMARY KEY (name, alias),
            FOREIGN KEY (name, version) REFERENCES versions (name, version));
        CREATE TABLE IF NOT EXISTS tags (
            name TEXT NOT NULL, version INTEGER NOT NULL, key TEXT NOT NULL, value TEXT,
            PRIMARY KEY (name, version, key),
            FOREIGN KEY (name, version) REFERENCES versions (name, version));
        CREATE TABLE IF NOT EXISTS lineage (
            name TEXT NOT NULL, version INTEGER NOT NULL,
            relation TEXT NOT NULL,  -- trained_on, made_by, derived_from, imported_from
            kind TEXT NOT NULL,      -- dataset, job, version, source
            ref TEXT NOT NULL,
            PRIMARY KEY (name, version, relation, ref));
        CREATE INDEX IF NOT EXISTS lineage_ref ON lineage (kind, ref);
        CREATE TABLE IF NOT EXISTS servers (
            pid INTEGER NOT NULL, url TEXT NOT NULL, refs TEXT NOT NULL, started REAL,
            PRIMARY KEY (pid, url));
"""


def registry_v7(conn: sqlite3.Connection, blobs: Path) -> None:
    existing = {r[1] for r in conn.execute("PRAGMA table_info(versions)")}
    for column, kind in VERSION_COLUMNS.items():
        if column not in existing:
            conn.execute(f"ALTER TABLE versions ADD COLUMN {column} {kind}")
    # one statement at a time: executescript would commit the migration's transaction
    for statement in SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    rows = conn.execute("SELECT name, version, manifest, created FROM versions").fetchall()
    for name, number, text, created in rows:
        try:
            manifest = Manifest.parse(json.loads(text))
        except (ValueError, IntegrityError):  # listed plainly; `studio verify` says why
            continue
        conn.execute("INSERT OR IGNORE INTO models (name, created) VALUES (?, ?)",
                     [name, created])
        sizes = {f: _size(blobs, d) for f, d in manifest.files.items()}
        conn.execute(
            "UPDATE versions SET kind = ?, family = ?, metric = ?, score = ?, source = ?,"
            " parent = ?, metrics = ?, size_bytes = ?, total_bytes = ? WHERE name = ? AND"
            " version = ?",
            [*summary(manifest), model_bytes(sizes),
             sum(sizes.values()) + len(text.encode()), name, number])  # as registering counts
        for edge in edges(manifest):
            conn.execute("INSERT OR IGNORE INTO lineage VALUES (?, ?, ?, ?, ?)",
                         [name, number, *edge])


# Every column a listing reads, name and version first: ``version_rows`` then reads this
# index alone. In the table each row holds its manifest (kilobytes, in overflow pages) before
# the columns that schema 7 added, so reading those from the table walks every manifest:
# 10,000 versions listed in ~80 ms from the table, ~30 ms from the index.
LISTING_COLUMNS = ("name", "version", "task", "kind", "family", "dataset", "metric", "score",
                   "size_bytes", "total_bytes", "source", "parent", "created", "archived",
                   "description", "metrics")


def registry_v8(conn: sqlite3.Connection, blobs: Path) -> None:
    existing = {r[1] for r in conn.execute("PRAGMA table_info(versions)")}
    if not set(VERSION_COLUMNS) <= existing:
        # schema 7 as first written lacked ``metrics``: add and fill it (the step repeats
        # harmlessly what it did before)
        registry_v7(conn, blobs)
    conn.execute("CREATE INDEX IF NOT EXISTS versions_listing ON versions"
                 f" ({', '.join(LISTING_COLUMNS)})")


def registry_v9(conn: sqlite3.Connection) -> None:
    """models.last_version: the highest number a model ever had, so a deleted version's
    number is never given to another model (a client, a lineage edge or an export may still
    name it)."""
    if "last_version" not in {r[1] for r in conn.execute("PRAGMA table_info(models)")}:
        conn.execute("ALTER TABLE models ADD COLUMN last_version INTEGER NOT NULL DEFAULT 0")
    conn.execute("UPDATE models SET last_version = MAX(last_version, (SELECT COALESCE("
                 "MAX(version), 0) FROM versions WHERE versions.name = models.name))")


def summary(m: Manifest) -> list[object]:
    """kind, family, metric, score, source, parent, metrics: a version's listing columns."""
    head = m.headline
    numbers = {k: v for k, v in m.metrics.items()
               if isinstance(v, int | float) and not isinstance(v, bool)}
    return [m.kind, m.training.family if m.training else None,
            head[0] if head else None, head[1] if head else None, m.source, m.lineage.parent,
            json.dumps(numbers) if numbers else None]


def edges(m: Manifest) -> list[tuple[str, str, str]]:
    """(relation, kind, ref) for each thing a version came from."""
    out = []
    if m.lineage.dataset:
        out.append(("trained_on", "dataset", m.lineage.dataset))
    if m.lineage.job:
        out.append(("made_by", "job", m.lineage.job))
    if m.lineage.parent:
        out.append(("derived_from", "version", m.lineage.parent))
    if m.imported is not None:
        out.append(("imported_from", "source", m.imported.source))
    return out


def model_bytes(sizes: dict[str, int]) -> int | None:
    """The model's own size: its graph, or for weights without one, the weights."""
    if "model.onnx" in sizes:
        return sizes["model.onnx"]
    weights = [n for f, n in sizes.items() if f.endswith(".safetensors")]
    return sum(weights) if weights else None


def _size(blobs: Path, digest: str) -> int:
    try:
        return (blobs / digest[:2] / digest[2:]).stat().st_size
    except OSError:
        return 0
