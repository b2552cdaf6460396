"""Models in and out of the registry as jobs: import (a file, folder or bundle), export (a
bundle, plain ONNX, Triton/KServe entries), and Hugging Face Hub pull and push. In a child
process, so the GUI never loads onnx, onnxruntime, torch or huggingface_hub.

A Hub token never travels in the spec (the spec is stored with the job): the child reads
``HF_TOKEN`` and ``HF_ENDPOINT`` from its environment, or huggingface_hub's saved login."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from studio.core.errors import InputError
from studio.core.events import Emit, Progress, Started
from studio.core.workspace import Workspace

PROGRESS_EVERY_S = 0.2
EXPORT_FORMATS = ("bundle", "onnx", "triton")


def _new(version: Any) -> dict[str, Any]:
    m = version.manifest
    return {"version": version.ref, "kind": m.kind, "source": m.source}


def model_import(ws: Workspace, spec: dict[str, Any], emit: Emit, stop: Callable[[], bool],
                 job_id: str) -> dict[str, Any]:
    from studio.core.registry.transfer.importer import import_model

    emit(Started(job_id, "model-import", "cpu"))
    return _new(import_model(ws, Path(spec["path"]), spec.get("name") or None, emit, stop))


def model_export(ws: Workspace, spec: dict[str, Any], emit: Emit, stop: Callable[[], bool],
                 job_id: str) -> dict[str, Any]:
    from studio.core.registry.transfer import export

    emit(Started(job_id, "model-export", "cpu"))
    how, refs, dest = spec["format"], list(spec["refs"]), Path(spec["dest"])
    if how not in EXPORT_FORMATS:
        raise InputError(f"unknown export format {how!r}: one of {', '.join(EXPORT_FORMATS)}")
    emit(Progress("export", 0, 0, f"writing {', '.join(refs)}"))
    if how == "triton":
        paths = export.export_triton(ws, refs, dest)
    elif len(refs) != 1:
        raise InputError(f"a {how} export writes one version; {len(refs)} were given")
    elif how == "bundle":
        paths = [export.export_bundle(ws, refs[0], dest, should_stop=stop)]
    else:
        paths = [export.export_onnx(ws, refs[0], dest)]
    return {"refs": refs, "format": how, "paths": [str(p) for p in paths],
            "bytes": sum(_size(p) for p in paths)}


def model_pull(ws: Workspace, spec: dict[str, Any], emit: Emit, stop: Callable[[], bool],
               job_id: str) -> dict[str, Any]:
    from studio.core.registry.transfer.hub_models import pull_model

    emit(Started(job_id, "model-pull", "cpu"))
    emit(Progress("download", 0, 0, f"asking the Hub for {spec['repo_id']}"))
    shown = [0.0]

    def progress(done: int, total: int) -> None:
        if time.monotonic() - shown[0] >= PROGRESS_EVERY_S or done >= total:
            shown[0] = time.monotonic()
            emit(Progress("download", done, max(total, done), "downloading"))

    version = pull_model(ws, spec["repo_id"], spec.get("revision") or None,
                         spec.get("name") or None, progress=progress, cancel=stop,
                         token=os.environ.get("HF_TOKEN") or None,
                         endpoint=os.environ.get("HF_ENDPOINT") or None, emit=emit)
    return _new(version)


def model_push(ws: Workspace, spec: dict[str, Any], emit: Emit, stop: Callable[[], bool],
               job_id: str) -> dict[str, Any]:
    from studio.core.registry.transfer.hub_models import push_model

    emit(Started(job_id, "model-push", "cpu"))
    emit(Progress("upload", 0, 0, f"sending {spec['ref']} to {spec['repo_id']}"))
    url = push_model(ws, spec["ref"], spec["repo_id"], token=os.environ.get("HF_TOKEN") or None,
                     endpoint=os.environ.get("HF_ENDPOINT") or None,
                     private=bool(spec.get("private", True)),
                     revision=spec.get("revision") or None)
    return {"ref": spec["ref"], "repo_id": spec["repo_id"], "url": url}


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


JOBS = {"model-import": model_import, "model-export": model_export, "model-pull": model_pull,
        "model-push": model_push}
