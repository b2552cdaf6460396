"""A version's manifest as a type: what every version has (name, number, files, tensors),
and the sections only some have: how a run trained it, how it was compressed from another
version, where it was imported from.

The stored JSON stays the record (``raw``); this is the one reading of it that generic
callers (the Models page, ``studio models``, the server) use, so a version that no run made
cannot crash them. A manifest is checked when read: names are registry names and file names
are plain names, so nothing in one can point outside the workspace.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from studio.core.errors import IntegrityError
from studio.core.names import NAME_RE
from studio.core.registry.transfer.tensors import TensorSpec

DIGEST_RE = re.compile(r"^[0-9a-f]{64}\Z")
FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")  # no folders, no "..", no NUL
HEADLINE = {"classification": "accuracy", "regression": "r2"}


@dataclass(frozen=True)
class Training:
    """How a run of Model Studio made it."""

    family: str
    target: str
    dataset: str
    params: dict[str, Any]
    job: str | None
    spec: dict[str, Any]  # the whole training section as stored (split, seed, timings …)


@dataclass(frozen=True)
class Compression:
    """How it was made from another version (its parent)."""

    method: str
    parent: str
    details: dict[str, Any]


@dataclass(frozen=True)
class Imported:
    """Where a model made elsewhere came from."""

    source: str  # a path, or hf://REPO@REVISION
    format: str  # onnx, safetensors, hf-folder, torch, bundle
    revision: str | None
    original: dict[str, str]  # the files as they came: name → SHA-256


@dataclass(frozen=True)
class Lineage:
    dataset: str | None  # NAME@DIGEST12 of the data it learned from
    dataset_digest: str | None
    job: str | None
    parent: str | None  # NAME:N of the version it was made from
    libraries: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    name: str
    version: int
    created: float
    task: str | None  # classification, regression; None: a model made elsewhere
    modality: str | None  # tabular, text, image; None: tensors only
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    files: dict[str, str]  # file name → blob digest
    labels: list[str] | None
    target: str | None
    recipe: dict[str, Any] | None  # raw rows → tensors; None: the model takes tensors only
    metrics: dict[str, Any]  # test metrics; {} when never evaluated
    training: Training | None
    compression: Compression | None
    imported: Imported | None
    lineage: Lineage
    raw: dict[str, Any]

    @property
    def source(self) -> str:
        """training, compression or import: what made it."""
        if self.compression is not None:
            return "compression"
        if self.imported is not None:
            return "import"
        return "training" if self.training is not None else "unknown"

    @property
    def kind(self) -> str:
        """What a person calls it: classification, text regression, imported ONNX …"""
        if self.task is None:
            what = self.imported.format if self.imported else "model"
            return f"imported {what}" if self.imported else what
        return self.task if self.modality in (None, "tabular") else f"{self.modality} {self.task}"

    @property
    def headline(self) -> tuple[str, float] | None:
        """The metric a person compares first, when it was measured."""
        name = HEADLINE.get(self.task or "")
        value = self.metrics.get(name) if name else None
        return (name, float(value)) if isinstance(value, int | float) else None

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> Manifest:
        """Read a stored manifest (any format so far); IntegrityError when it is not one."""
        try:
            return _parse(dict(raw))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise IntegrityError(f"not a valid manifest ({type(e).__name__}: {e})") from None


def _parse(raw: dict[str, Any]) -> Manifest:
    name, number = raw["name"], raw["version"]
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ValueError(f"model name {name!r}")
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        raise ValueError(f"version number {number!r}")
    files = raw.get("files") or {}
    for fname, digest in files.items():
        if not FILE_RE.match(fname) or not isinstance(digest, str) or not DIGEST_RE.match(digest):
            raise ValueError(f"file entry {fname!r}")
    onnx = raw.get("onnx") or {}
    inputs = tuple(_tensor(t) for t in onnx.get("inputs") or [])
    outputs = tuple(_tensor(t) for t in onnx.get("outputs") or [])
    for tensors in (inputs, outputs):
        if len({t.name for t in tensors}) != len(tensors):
            raise ValueError("two tensors with one name")
    if not outputs and onnx.get("output"):  # versions trained before outputs were listed
        width = len(raw.get("labels") or []) or 1
        outputs = (TensorSpec(str(onnx["output"]), "FP32", (-1, width)),)
    recipe = raw.get("recipe")
    task = raw.get("task")
    dataset = raw.get("dataset") or {}
    lineage = raw.get("lineage") or {}
    training = _training(raw, dataset, lineage)
    compression = _compression(raw.get("compression"))
    imported = _imported(raw.get("imported"))
    parent = lineage.get("parent") or (compression.parent if compression else None)
    return Manifest(
        name=name, version=number, created=float(raw.get("created") or 0.0),
        task=task if task in HEADLINE else None,
        modality=recipe.get("modality", "tabular") if isinstance(recipe, dict) else None,
        inputs=inputs, outputs=outputs, files=dict(files),
        labels=[str(x) for x in raw["labels"]] if raw.get("labels") else None,
        target=str(raw["target"]) if raw.get("target") is not None else None,
        recipe=recipe if isinstance(recipe, dict) else None,
        metrics=dict((raw.get("metrics") or {}).get("test") or {}),
        training=training, compression=compression, imported=imported,
        lineage=Lineage(
            dataset=lineage.get("dataset"), dataset_digest=dataset.get("digest"),
            job=lineage.get("job"), parent=str(parent) if parent else None,
            libraries=dict(lineage.get("libraries") or {})),
        raw=raw)


def _tensor(t: Mapping[str, Any]) -> TensorSpec:
    shape = t["shape"]
    if (not isinstance(shape, list) or len(shape) > 32
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= -1
                       for d in shape)):
        raise ValueError(f"tensor shape {str(shape)[:60]}")
    if not isinstance(t["name"], str) or not isinstance(t["datatype"], str):
        raise ValueError("tensor name or datatype")
    return TensorSpec(t["name"], t["datatype"], tuple(shape))


def _training(raw: dict[str, Any], dataset: dict[str, Any],
              lineage: dict[str, Any]) -> Training | None:
    section = raw.get("training")
    if not isinstance(section, dict):
        return None
    return Training(family=str(raw.get("family") or section.get("family") or "mlp"),
                    target=str(raw.get("target", "")), dataset=str(dataset.get("name", "")),
                    params=dict(section.get("params") or {}), job=lineage.get("job"),
                    spec=section)


def _compression(section: Any) -> Compression | None:
    if not isinstance(section, dict):
        return None
    return Compression(str(section["method"]), str(section["parent"]),
                       {k: v for k, v in section.items() if k not in ("method", "parent")})


def _imported(section: Any) -> Imported | None:
    if not isinstance(section, dict):
        return None
    return Imported(str(section["source"]), str(section["format"]), section.get("revision"),
                    {str(k): str(v) for k, v in (section.get("original") or {}).items()})
