"""Models and their versions: a manifest plus files, every file a verified blob.

A version is written in this order: its files become blobs, then one transaction takes the
next version number, writes the manifest blob and inserts the row. A crash before the row
leaves only unreferenced blobs, never a half-registered version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.core.datasets.catalog import NAME_RE, check_name
from studio.core.errors import InputError, NotFoundError
from studio.core.store import now
from studio.core.workspace import Workspace

MANIFEST_FORMAT = 1


@dataclass(frozen=True)
class Version:
    name: str
    version: int
    manifest: dict[str, Any]

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def task(self) -> str:
        """The head: classification or regression."""
        return str(self.manifest["task"])

    @property
    def kind(self) -> str:
        """What a person calls it: image classification, text regression, classification…"""
        modality = self.manifest.get("recipe", {}).get("modality", "tabular")
        return self.task if modality == "tabular" else f"{modality} {self.task}"

    @property
    def test_metrics(self) -> dict[str, Any]:
        return dict(self.manifest.get("metrics", {}).get("test", {}))

    def file_digest(self, filename: str) -> str:
        try:
            return str(self.manifest["files"][filename])
        except KeyError:
            raise NotFoundError(f"{self.ref} has no file {filename!r}") from None


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``name`` or ``name:version`` → (name, version or None for the latest)."""
    name, sep, version = ref.partition(":")
    check_name(name, "model")
    if not sep:
        return name, None
    if not version.isdigit() or int(version) < 1:
        raise InputError(f"invalid version in {ref!r}: expected a positive number")
    return name, int(version)


def register_version(
    ws: Workspace, name: str, files: dict[str, bytes | Path], manifest: dict[str, Any],
    card: str, job_id: str | None = None,
) -> Version:
    check_name(name, "model")
    digests = {
        fname: ws.blobs.put_bytes(src) if isinstance(src, bytes) else ws.blobs.put_file(src)
        for fname, src in files.items()
    }
    with ws.db.immediate() as conn:
        number = conn.execute(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM versions WHERE name = ?", [name]
        ).fetchone()[0]
        full = {
            **manifest, "format": MANIFEST_FORMAT, "name": name, "version": number,
            "created": now(),
        }
        digests["card.md"] = ws.blobs.put_bytes(card.replace("{ref}", f"{name}:{number}").encode())
        full["files"] = dict(sorted(digests.items()))
        text = json.dumps(full, indent=2, sort_keys=True, allow_nan=False)
        manifest_digest = ws.blobs.put_bytes(text.encode())
        conn.execute(
            "INSERT INTO versions (name, version, task, dataset, manifest_digest, manifest,"
            " job_id, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [name, number, full["task"], full.get("dataset", {}).get("name"), manifest_digest,
             text, job_id, full["created"]],
        )
    return Version(name, number, full)


def list_versions(ws: Workspace, name: str | None = None) -> list[Version]:
    where, args = ("name = ?", [name]) if name else (None, [])
    rows = ws.db.db["versions"].rows_where(where, args, order_by="name, version")
    return [Version(r["name"], r["version"], json.loads(r["manifest"])) for r in rows]


def get_version(ws: Workspace, ref: str) -> Version:
    name, number = parse_ref(ref)
    if number is None:
        row = ws.db.conn.execute(
            "SELECT name, version, manifest_digest FROM versions WHERE name = ?"
            " ORDER BY version DESC LIMIT 1", [name]).fetchone()
    else:
        row = ws.db.conn.execute(
            "SELECT name, version, manifest_digest FROM versions WHERE name = ? AND version = ?",
            [name, number]).fetchone()
    if row is None:
        what = f"model {name!r}" if number is None else f"version {name}:{number}"
        raise NotFoundError(f"no {what} in the registry (see `studio models ls`)")
    manifest = json.loads(ws.blobs.read_bytes(row[2]))
    return Version(row[0], row[1], manifest)


def read_file(ws: Workspace, version: Version, filename: str) -> bytes:
    return ws.blobs.read_bytes(version.file_digest(filename))


def latest_version(ws: Workspace, name: str) -> Version | None:
    """The newest version of the model ``name``; None when there is none (or ``name`` is no
    valid model name, as a half-typed one is)."""
    if not NAME_RE.match(name):
        return None
    try:
        return get_version(ws, name)
    except NotFoundError:
        return None


def task_head(task: str) -> str | None:
    """What a model's output is: classification or regression (None: not decided yet)."""
    if task == "auto":
        return None
    return "regression" if task.endswith("regression") else "classification"


def same_question(version: Version, target: str, task: str = "auto") -> bool:
    """Whether a run for ``target`` and ``task`` would answer what ``version`` answers."""
    head = task_head(task)
    return version.manifest.get("target") == target and head in (None, version.task)


def propose_model_name(ws: Workspace, dataset: str, target: str, task: str = "auto"
                       ) -> str:
    """The name a run registers under when none is given: the dataset's, unless the latest
    version there predicts another column or another kind of output. Then ``dataset-target``
    (numbered when that too answers something else): a new version of a model must answer
    the same question, or "latest" would silently change meaning."""
    def free(name: str) -> bool:
        latest = latest_version(ws, name)
        return latest is None or same_question(latest, target, task)

    if free(dataset):
        return dataset
    base = _model_name(f"{dataset}-{target}")
    for n in range(1, 1000):
        name = base if n == 1 else f"{base[:60]}-{n}"
        if free(name):
            return name
    raise InputError(f"no free model name for {dataset!r} → {target!r}: give one")


def _model_name(text: str) -> str:
    import re

    return (re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._") or "model")[:64]
