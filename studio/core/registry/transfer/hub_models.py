"""Versions to and from the Hugging Face Hub: a push sends the graph, weights, card and
manifest in one commit; a pull goes through the standard local cache (so it works offline
from it), hash-checks every file, and registers a Model Studio repository with its recipe
and lineage, or anything else through the importer's checks."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from studio.core.errors import InputError
from studio.core.events import Emit
from studio.core.names import as_name
from studio.core.registry.versions import Version, get_version
from studio.core.store import scratch_prefix
from studio.core.workspace import Workspace

STUDIO_MANIFEST = "studio_manifest.json"


def push_model(ws: Workspace, ref: str, repo_id: str, token: str | None = None,
               endpoint: str | None = None, private: bool = True,
               revision: str | None = None) -> str:
    """Commit ``ref`` to ``repo_id`` (created private unless told); the commit's URL."""
    from studio.core.registry.transfer.export import hub_files
    from studio.core.registry.transfer.hub import push

    version = get_version(ws, ref)
    return push(repo_id, hub_files(ws, version), token, endpoint=endpoint, revision=revision,
                private=private, commit_message=f"{version.ref} from Model Studio")


def pull_model(ws: Workspace, repo_id: str, revision: str | None = None,
               name: str | None = None, progress: Callable[[int, int], None] | None = None,
               cancel: Callable[[], bool] | None = None, token: str | None = None,
               endpoint: str | None = None, emit: Emit = lambda _e: None) -> Version:
    from studio.core.registry.transfer.hub import pull
    from studio.core.registry.transfer.importer import import_model

    snapshot = pull(repo_id, revision, progress=progress, cancel=cancel, token=token,
                    endpoint=endpoint)
    source = f"hf://{repo_id}"
    name = name or _name(repo_id)
    folder = snapshot.folder
    if (folder / STUDIO_MANIFEST).is_file() and (folder / "model.onnx").is_file():
        return _studio(ws, snapshot, name, source)
    # The cache's snapshot is links into its blobs; the importer trusts no link, so it reads
    # a plain copy of the checked files.
    with tempfile.TemporaryDirectory(dir=ws.tmp, prefix=scratch_prefix("hub")) as scratch:
        copy = Path(scratch) / _name(repo_id)
        for f in snapshot.files:
            target = copy / f.path
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(folder / f.path, target)
        return import_model(ws, copy, name, emit, source=source, revision=snapshot.commit)


def _studio(ws: Workspace, snapshot: Any, name: str, source: str) -> Version:
    """A repository a Model Studio pushed: the version again, recipe and lineage included,
    through the same checks as a bundle."""
    from studio.core.registry.transfer.adopt import adopt
    from studio.core.registry.transfer.importer import retitled

    folder = snapshot.folder
    try:
        raw = json.loads((folder / STUDIO_MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{snapshot.repo_id}: {STUDIO_MANIFEST} is not valid: {exc}") from None
    readme = folder / "README.md"
    card = _strip_front_matter(readme.read_text(encoding="utf-8", errors="replace")) \
        if readme.is_file() else "# {ref}\n"
    if isinstance(raw, dict):
        card = retitled(card, f"{raw.get('name')}:{raw.get('version')}")
    # the cache's snapshot is links into its blobs: read through a plain copy, as the
    # importer does, so no link is ever followed by a check
    with tempfile.TemporaryDirectory(dir=ws.tmp, prefix=scratch_prefix("hub")) as scratch:
        copy = Path(scratch)
        for f in snapshot.files:
            if "/" not in f.path:
                shutil.copyfile(folder / f.path, copy / f.path)
        return adopt(ws, raw, copy, name, card,
                     {"source": source, "format": "hub", "revision": snapshot.commit},
                     snapshot.repo_id, side_files_optional=True)


def _strip_front_matter(text: str) -> str:
    if text.startswith("---\n"):
        end = text.find("\n---\n", 4)
        if end != -1:
            return text[end + 5:].lstrip("\n")
    return text


def _name(repo_id: str) -> str:
    return as_name(repo_id.rsplit("/", 1)[-1])
