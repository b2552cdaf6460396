"""What people attach to versions: aliases that move, tags, descriptions and edited cards.
None of it is in the manifest (which never changes); all of it is in the database."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from studio.core.errors import InputError, NotFoundError
from studio.core.registry.refs import LATEST, check_alias
from studio.core.registry.versions import Version, get_version, resolve
from studio.core.store import now
from studio.core.workspace import Workspace

MAX_TAG_KEY = 64
MAX_TAG_VALUE = 500
MAX_CARD_BYTES = 1_000_000
MAX_DESCRIPTION = 500


@dataclass(frozen=True)
class Alias:
    name: str
    alias: str
    version: int
    previous: int | None  # where it pointed before this move (None: it is new)


def set_alias(ws: Workspace, name: str, alias: str, ref: str) -> Alias:
    """Point ``name@alias`` at the version ``ref`` means (``N`` alone is ``name:N``), in one
    transaction: a reader sees the old version or the new, never none."""
    check_alias(alias)
    if alias == LATEST:
        raise InputError("'latest' always means the newest version; pick another alias name")
    target = f"{name}:{ref}" if ref.isdigit() else ref
    with ws.db.immediate() as conn:
        tname, number = resolve(ws, target)
        if tname != name:
            raise InputError(f"{target} is a version of {tname!r}, not of {name!r}: an alias "
                             "points within one model")
        row = conn.execute("SELECT version FROM aliases WHERE name = ? AND alias = ?",
                           [name, alias]).fetchone()
        conn.execute(
            "INSERT INTO aliases (name, alias, version, updated) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version,"
            " updated = excluded.updated", [name, alias, number, now()])
    return Alias(name, alias, number, row[0] if row else None)


def remove_alias(ws: Workspace, name: str, alias: str) -> int:
    """Remove ``name@alias``; returns the version it pointed at."""
    with ws.db.immediate() as conn:
        row = conn.execute("SELECT version FROM aliases WHERE name = ? AND alias = ?",
                           [name, alias]).fetchone()
        if row is None:
            raise NotFoundError(f"model {name!r} has no alias {alias!r}")
        conn.execute("DELETE FROM aliases WHERE name = ? AND alias = ?", [name, alias])
    return int(row[0])


def aliases(ws: Workspace, name: str | None = None) -> dict[tuple[str, int], list[str]]:
    """(name, version) → its aliases, sorted."""
    sql = "SELECT name, version, alias FROM aliases"
    rows = ws.db.conn.execute(sql + (" WHERE name = ?" if name else "") + " ORDER BY alias",
                              [name] if name else [])
    out: dict[tuple[str, int], list[str]] = {}
    for n, v, a in rows:
        out.setdefault((n, v), []).append(a)
    return out


def set_tags(ws: Workspace, ref: str, tags: dict[str, str | None]) -> dict[str, str]:
    """Set (a value) or remove (None) tags on a version; returns all its tags."""
    for key, value in tags.items():
        if not key or len(key) > MAX_TAG_KEY or not key.isprintable() or "=" in key:
            raise InputError(f"invalid tag key {key!r}: 1-{MAX_TAG_KEY} printable "
                             "characters, no '='")
        if value is not None and (len(value) > MAX_TAG_VALUE or not value.isprintable()):
            raise InputError(f"tag {key!r}: the value must be printable text of at most "
                             f"{MAX_TAG_VALUE} characters")
    with ws.db.immediate() as conn:
        name, number = resolve(ws, ref)
        for key, value in tags.items():
            if value is None:
                conn.execute("DELETE FROM tags WHERE name = ? AND version = ? AND key = ?",
                             [name, number, key])
            else:
                conn.execute(
                    "INSERT INTO tags VALUES (?, ?, ?, ?) ON CONFLICT (name, version, key)"
                    " DO UPDATE SET value = excluded.value", [name, number, key, value])
    return tags_of(ws, name, number)


def tags_of(ws: Workspace, name: str, number: int) -> dict[str, str]:
    rows = ws.db.conn.execute("SELECT key, value FROM tags WHERE name = ? AND version = ?"
                              " ORDER BY key", [name, number])
    return dict(rows.fetchall())


def parse_tags(items: Sequence[str], remove: Sequence[str] = ()) -> dict[str, str | None]:
    """``KEY=VALUE`` sets a tag (the value may be empty); each of ``remove`` removes one."""
    out: dict[str, str | None] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise InputError(f"tag {item!r}: write KEY=VALUE (and --remove KEY to remove one)")
        out[key.strip()] = value
    for key in remove:
        out[key.strip()] = None
    return out


def set_description(ws: Workspace, ref: str, text: str) -> None:
    text = text.strip()
    if len(text) > MAX_DESCRIPTION or not text.isprintable():
        raise InputError(f"a description is one line of printable text, at most "
                         f"{MAX_DESCRIPTION} characters")
    with ws.db.immediate() as conn:
        name, number = resolve(ws, ref)
        conn.execute("UPDATE versions SET description = ? WHERE name = ? AND version = ?",
                     [text or None, name, number])


def card_text(ws: Workspace, version: Version) -> str:
    """The model card as last edited, else as written when the version was made."""
    row = ws.db.conn.execute(
        "SELECT card_digest FROM versions WHERE name = ? AND version = ?",
        [version.name, version.version]).fetchone()
    digest = row[0] if row and row[0] else version.manifest.files.get("card.md")
    if digest is None:
        return f"# {version.ref}\n\n(no card)\n"
    return ws.blobs.read_bytes(digest).decode("utf-8", errors="replace")


def set_card(ws: Workspace, ref: str, markdown: str) -> Version:
    """Replace the card a person reads (the original stays in the manifest's files)."""
    data = markdown.encode("utf-8")
    if len(data) > MAX_CARD_BYTES:
        raise InputError(f"the card is {len(data):,} bytes; the limit is {MAX_CARD_BYTES:,}")
    with ws.db.immediate() as conn:
        # stored under the lock: a gc cannot remove it before the row refers to it
        digest = ws.blobs.put_bytes(data)
        name, number = resolve(ws, ref)
        conn.execute("UPDATE versions SET card_digest = ? WHERE name = ? AND version = ?",
                     [digest, name, number])
    return get_version(ws, f"{name}:{number}")
