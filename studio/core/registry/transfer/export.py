"""A version out of the registry: a self-contained bundle (zip of manifest, files and
card, importable elsewhere with its lineage), the plain ONNX file, or entries of a Triton /
KServe model repository. Every file written appears whole or not at all."""

from __future__ import annotations

import json
import os
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from studio.core.errors import InputError
from studio.core.registry.labels import card_text
from studio.core.registry.listing import version_rows
from studio.core.registry.versions import Version, get_version, library_versions
from studio.core.workspace import Workspace

BUNDLE_FORMAT = "model-studio-bundle"
BUNDLE_VERSION = 1
MANIFEST = "manifest.json"
BUNDLE = "bundle.json"
CARD = "README.md"  # the card as last edited; the manifest's own card.md is kept as well


def export_bundle(ws: Workspace, ref: str, dest: Path,
                  should_stop: Callable[[], bool] = lambda: False) -> Path:
    """``dest``: a .zip path, or a folder to write ``NAME-N.zip`` into."""
    version = get_version(ws, ref)
    dest = _target(Path(dest), f"{version.name}-{version.version}.zip")
    row = next(r for r in version_rows(ws, version.name, archived=True)
               if r.version == version.version)
    about = {"format": BUNDLE_FORMAT, "version": BUNDLE_VERSION, "ref": version.ref,
             "exported": time.time(), "libraries": library_versions(),
             "files": version.manifest.files, "description": row.description,
             "tags": row.tags, "aliases": list(row.aliases)}
    with _atomic(dest) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(BUNDLE, json.dumps(about, indent=2, sort_keys=True))
        z.writestr(MANIFEST, json.dumps(shareable(version.manifest.raw), indent=2,
                                        sort_keys=True))
        z.writestr(CARD, card_text(ws, version))
        for fname, digest in version.manifest.files.items():
            if should_stop():
                raise InputError("export stopped")
            # verified while copied: a damaged blob never leaves the workspace unnoticed
            path = ws.blobs.verified_path(digest)
            z.write(path, f"files/{fname}")
    return dest


def export_onnx(ws: Workspace, ref: str, dest: Path) -> Path:
    """The model file alone (``dest``: a .onnx path, or a folder for ``NAME-N.onnx``)."""
    version = get_version(ws, ref)
    dest = _target(Path(dest), f"{version.name}-{version.version}.onnx")
    path = ws.blobs.verified_path(version.file_digest("model.onnx"))
    with _atomic(dest) as tmp, open(path, "rb") as src, open(tmp, "wb") as out:
        while chunk := src.read(1 << 20):
            out.write(chunk)
    return dest


def export_triton(ws: Workspace, refs: list[str], root: Path,
                  max_batch_size: int = 64) -> list[Path]:
    """``root/NAME/config.pbtxt`` and ``root/NAME/N/model.onnx`` for each version, as Triton
    Inference Server and KServe read a model repository. The versions' V2 tensors are the
    ones this app's server takes, so the same V2 clients work there."""
    from studio.core.registry.transfer.triton import write_model_repository

    root = Path(root)
    if root.exists() and not root.is_dir():
        raise InputError(f"{root} is a file, not a folder")
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for ref in refs:
        version = get_version(ws, ref)
        m = version.manifest
        if not m.inputs or not m.outputs:
            raise InputError(f"{version.ref} does not list its tensors; it cannot be "
                             "described to Triton")
        onnx = ws.blobs.read_bytes(version.file_digest("model.onnx"))
        out.append(write_model_repository(root, version.name, version.version, onnx,
                                          list(m.inputs), list(m.outputs),
                                          max_batch_size=_batch(m, max_batch_size)))
    return out


def shareable(raw: dict[str, Any]) -> dict[str, Any]:
    """The manifest as it may leave this machine: a local path it was imported from is cut
    to the file's name."""
    imported = raw.get("imported")
    if not isinstance(imported, dict) or str(imported.get("source", "")).startswith("hf://"):
        return raw
    return {**raw, "imported": {**imported, "source": Path(str(imported["source"])).name}}


def _batch(m: Any, wanted: int) -> int:
    """Triton batches only tensors whose first axis is the batch: 0 when any is fixed."""
    return wanted if all(t.shape and t.shape[0] == -1 for t in (*m.inputs, *m.outputs)) else 0


def _target(dest: Path, default_name: str) -> Path:
    if dest.is_dir():
        return dest / default_name
    if not dest.parent.is_dir():
        raise InputError(f"{dest.parent}: no such folder")
    return dest


@contextmanager
def _atomic(dest: Path) -> Iterator[Path]:
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def hub_files(ws: Workspace, version: Version) -> dict[str, bytes | Path]:
    """What a push sends: the ONNX graph, the weights, the card as README.md (with the
    Hub's metadata block) and the manifest, from which a pull rebuilds the version."""
    files: dict[str, bytes | Path] = {}
    for fname, digest in version.manifest.files.items():
        if fname == "card.md":
            continue
        files[fname] = ws.blobs.verified_path(digest)
    card = card_text(ws, version)
    meta = ["---", "library_name: onnx", "tags:", "- model-studio", "- onnx"]
    if version.task:
        meta.append(f"- {version.task}")
    files[CARD] = ("\n".join([*meta, "---", "", card])).encode("utf-8")
    files["studio_manifest.json"] = json.dumps(shareable(version.manifest.raw), indent=2,
                                               sort_keys=True).encode()
    return files
