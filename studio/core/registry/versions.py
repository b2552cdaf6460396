"""Models and their versions: a manifest plus files, every file a verified blob.

A version is written in this order: its files become blobs, then one transaction takes the
next version number, writes the manifest blob and inserts the row with its lineage edges.
A crash before the row leaves only unreferenced blobs, never a half-registered version.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from studio.core.errors import InputError, NotFoundError
from studio.core.names import NAME_RE, as_name, check_name
from studio.core.registry.manifest import Manifest
from studio.core.registry.migrate import edges, model_bytes, summary
from studio.core.registry.refs import Ref, parse_ref
from studio.core.store import now
from studio.core.workspace import Workspace

MANIFEST_FORMAT = 2  # 2: outputs listed, lineage carries library versions
LIBRARIES = ("model-studio", "torch", "onnx", "onnxruntime", "lightgbm")


@dataclass(frozen=True)
class Version:
    name: str
    version: int
    raw: dict[str, Any]

    @cached_property
    def manifest(self) -> Manifest:
        return Manifest.parse(self.raw)

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def task(self) -> str | None:
        """The head: classification, regression, or None for a model made elsewhere."""
        return self.manifest.task

    @property
    def kind(self) -> str:
        """What a person calls it: image classification, text regression, classification…"""
        return self.manifest.kind

    @property
    def test_metrics(self) -> dict[str, Any]:
        return dict(self.manifest.metrics)

    def file_digest(self, filename: str) -> str:
        try:
            return self.manifest.files[filename]
        except KeyError:
            raise NotFoundError(f"{self.ref} has no file {filename!r}") from None


def register_version(
    ws: Workspace, name: str, files: dict[str, bytes | Path], manifest: dict[str, Any],
    card: str, job_id: str | None = None,
) -> Version:
    check_name(name, "model")
    digests = {
        fname: ws.blobs.put_bytes(src) if isinstance(src, bytes) else ws.blobs.put_file(src)
        for fname, src in files.items()
    }
    lineage = {**(manifest.get("lineage") or {}), "libraries": library_versions()}
    with ws.db.immediate() as conn:
        # A gc that judged one of these files unused by a look taken before it was found
        # stored here may have removed it since; gc removes only under this lock, so what
        # is there now stays until the row that uses it is written.
        for fname, digest in digests.items():
            if not ws.blobs.exists(digest):
                src = files[fname]
                again = (ws.blobs.put_bytes(src) if isinstance(src, bytes)
                         else ws.blobs.put_file(src))
                if again != digest:
                    raise InputError(f"{fname} changed while it was being registered; "
                                     "register it again")
        # read under the lock, after the files are surely there
        sizes = {fname: ws.blobs.path(d).stat().st_size for fname, d in digests.items()}
        conn.execute("INSERT OR IGNORE INTO models (name, created) VALUES (?, ?)",
                     [name, now()])
        number = conn.execute(
            "SELECT MAX(last_version, (SELECT COALESCE(MAX(version), 0) FROM versions WHERE"
            " name = ?)) + 1 FROM models WHERE name = ?", [name, name]).fetchone()[0]
        conn.execute("UPDATE models SET last_version = ? WHERE name = ?", [number, name])
        full = {
            **manifest, "format": MANIFEST_FORMAT, "name": name, "version": number,
            "created": now(), "lineage": lineage,
        }
        card_bytes = card.replace("{ref}", f"{name}:{number}").encode()
        digests["card.md"] = ws.blobs.put_bytes(card_bytes)
        sizes["card.md"] = len(card_bytes)
        full["files"] = dict(sorted(digests.items()))
        typed = Manifest.parse(full)  # refuses, before anything is stored, what reads fail
        text = json.dumps(full, indent=2, sort_keys=True, allow_nan=False)
        manifest_digest = ws.blobs.put_bytes(text.encode())
        conn.execute(
            "INSERT INTO versions (name, version, task, dataset, manifest_digest, manifest,"
            " job_id, created, kind, family, metric, score, source, parent, metrics,"
            " size_bytes, total_bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
            " ?)",
            [name, number, typed.task, (full.get("dataset") or {}).get("name"),
             manifest_digest, text, job_id, full["created"], *summary(typed),
             model_bytes(sizes), sum(sizes.values()) + len(text)],
        )
        for edge in edges(typed):
            conn.execute("INSERT OR IGNORE INTO lineage VALUES (?, ?, ?, ?, ?)",
                         [name, number, *edge])
    return Version(name, number, full)


@functools.cache  # package metadata is read from disk: once a process is enough
def library_versions() -> dict[str, str]:
    """The versions of what made and runs a model, without importing any of them."""
    from importlib import metadata

    out = {}
    for package in LIBRARIES:
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return out


def resolve(ws: Workspace, ref: str | Ref) -> tuple[str, int]:
    """(name, number) of the version ``ref`` means, reading no manifest."""
    r = parse_ref(ref) if isinstance(ref, str) else ref
    conn = ws.db.conn
    if r.version is not None:
        row = conn.execute("SELECT version FROM versions WHERE name = ? AND version = ?",
                           [r.name, r.version]).fetchone()
        what = f"version {r.name}:{r.version}"
    elif r.alias is not None:
        row = conn.execute("SELECT version FROM aliases WHERE name = ? AND alias = ?",
                           [r.name, r.alias]).fetchone()
        what = f"alias {r.name}@{r.alias}"
        if row is None and _exists(ws, r.name):
            names = [a for (a,) in conn.execute(
                "SELECT alias FROM aliases WHERE name = ? ORDER BY alias", [r.name])]
            raise NotFoundError(f"model {r.name!r} has no alias {r.alias!r} (its aliases: "
                                f"{', '.join(names) or 'none'}; set one with `studio models "
                                f"alias {r.name} {r.alias} N`)")
    else:
        row = conn.execute(
            # a compression's result is never promoted on its own: NAME means what was
            # trained or imported, until an alias (or NAME:N) chooses a compressed version
            "SELECT version FROM versions WHERE name = ? AND source IS NOT 'compression'"
            " ORDER BY archived IS NOT NULL, version DESC LIMIT 1", [r.name]).fetchone()
        what = f"model {r.name!r}"
        if row is None and _exists(ws, r.name):
            raise NotFoundError(f"model {r.name!r} has only compressed versions left, and a "
                                "bare name never means one: choose it by number "
                                f"({r.name}:N) or by an alias")
    if row is None:
        raise NotFoundError(f"no {what} in the registry (see `studio models ls`)")
    return r.name, int(row[0])


def _exists(ws: Workspace, name: str) -> bool:
    return ws.db.conn.execute("SELECT 1 FROM versions WHERE name = ? LIMIT 1",
                              [name]).fetchone() is not None


def get_version(ws: Workspace, ref: str | Ref) -> Version:
    """The version ``ref`` means, its manifest read from the verified blob."""
    name, number = resolve(ws, ref)
    row = ws.db.conn.execute(
        "SELECT manifest_digest FROM versions WHERE name = ? AND version = ?",
        [name, number]).fetchone()
    if row is None:  # removed between the two reads
        raise NotFoundError(f"no version {name}:{number} in the registry")
    return Version(name, number, json.loads(ws.blobs.read_bytes(row[0])))


def list_versions(ws: Workspace, name: str | None = None,
                  archived: bool = True) -> list[Version]:
    """Every version (of ``name``), oldest first, from the rows' copies of the manifests."""
    where = ["1 = 1"]
    args: list[Any] = []
    if name:
        where.append("name = ?")
        args.append(name)
    if not archived:
        where.append("archived IS NULL")
    rows = ws.db.conn.execute(
        f"SELECT name, version, manifest FROM versions WHERE {' AND '.join(where)}"
        " ORDER BY name, version", args)
    return [Version(n, v, json.loads(text)) for n, v, text in rows]


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
    return version.manifest.target == target and head in (None, version.task)


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
    base = as_name(f"{dataset}-{target}")
    for n in range(1, 1000):
        name = base if n == 1 else f"{base[:60]}-{n}"
        if free(name):
            return name
    raise InputError(f"no free model name for {dataset!r} → {target!r}: give one")
