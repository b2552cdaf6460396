"""A version another Model Studio made (a bundle, or a Hub repository it pushed), taken in
as carefully as a model from anywhere: its manifest comes from the same hands as its files,
so nothing in it is trusted. The graph goes through the importer's ONNX checks and must hold
its own weights; the recipe must describe that graph's tensors, within the bounds training
keeps to, and apply to a row; what is kept of the rest is rebuilt field by field, plain JSON
of the expected types. Edges into the other workspace (its jobs, its versions) become the
version's origin, never local lineage."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

from studio.core.errors import InputError, IntegrityError
from studio.core.registry.manifest import Manifest
from studio.core.registry.versions import Version, register_version
from studio.core.workspace import Workspace

MAX_LABELS = 10_000
MAX_JSON_ITEMS = 10_000
MAX_DEPTH = 8
NUMBERS = ("epochs", "epochs_run", "best_epoch", "duration_s", "fit_s", "threads", "seed")


def adopt(ws: Workspace, raw: Any, folder: Path, name: str | None, card: str,
          imported: dict[str, Any], what: str, side_files_optional: bool = False) -> Version:
    """Register the version ``raw`` (its manifest) describes, its files in ``folder``;
    ``what`` names the source in messages."""
    try:
        stored = Manifest.parse(raw)
    except IntegrityError as exc:
        raise InputError(f"{what}: its manifest is not valid: {exc}") from None
    files = _checked_files(stored, folder, what, side_files_optional)
    manifest = _rebuilt(stored, folder, what)
    manifest["imported"] = {**imported, "original": dict(stored.files)}
    return register_version(ws, name or stored.name, files, manifest, card)


def _checked_files(stored: Manifest, folder: Path, what: str,
                   optional: bool) -> dict[str, Path]:
    files = {}
    for fname, digest in stored.files.items():
        path = folder / fname  # a plain name: Manifest.parse allows no folders and no ".."
        if path.is_symlink() or not path.is_file():
            if optional and fname != "model.onnx":
                continue  # a side file a pull does not fetch (a booster's text)
            raise InputError(f"{what}: {fname} is listed in its manifest but missing")
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        if h.hexdigest() != digest:
            raise InputError(f"{what}: {fname} does not match its manifest's digest (damaged "
                             "or altered)")
        if fname != "card.md":
            files[fname] = path
    return files


def _rebuilt(stored: Manifest, folder: Path, what: str) -> dict[str, Any]:
    raw = stored.raw
    out: dict[str, Any] = {"task": stored.task}
    if "model.onnx" in stored.files:
        out["onnx"] = _graph(folder / "model.onnx", stored, what)
    if stored.recipe is not None:
        out["recipe"] = stored.recipe
        out["input_schema"] = _schema(stored.recipe, what)
        out["target"] = _text(raw.get("target"), "target", what)
        if stored.task is None:
            raise InputError(f"{what}: a recipe without a task (classification or regression)")
    labels = raw.get("labels")
    if labels is not None:
        if (not isinstance(labels, list) or len(labels) > MAX_LABELS
                or not all(isinstance(x, str | int | float | bool) for x in labels)):
            raise InputError(f"{what}: labels must be a list of at most {MAX_LABELS} values")
        out["labels"] = [str(x) for x in labels]
        widths = [t.shape[-1] for t in stored.outputs if t.shape]
        if stored.task == "classification" and widths and widths[0] not in (-1, len(labels)):
            raise InputError(f"{what}: {len(labels)} labels for {widths[0]} output columns")
    metrics = (raw.get("metrics") or {}).get("test") if isinstance(raw.get("metrics"),
                                                                    dict) else None
    if isinstance(metrics, dict):
        out["metrics"] = {"test": {str(k)[:64]: v for k, v in metrics.items()
                                   if _number(v)}}
    dataset = raw.get("dataset")
    if isinstance(dataset, dict) and isinstance(dataset.get("name"), str):
        digest = dataset.get("digest")
        out["dataset"] = {"name": dataset["name"][:200],
                          "digest": digest if _hex(digest) else None,
                          "rows": dataset.get("rows") if _number(dataset.get("rows")) else None}
    training = raw.get("training")
    if isinstance(training, dict):
        plain = _plain(training, 0)
        for key in NUMBERS:
            if key in plain and not _number(plain[key]):
                del plain[key]
        out["training"] = plain
        if isinstance(raw.get("family"), str):
            out["family"] = raw["family"][:64]
    for key in ("warnings", "leaderboard", "weights"):
        if key in raw:
            out[key] = _plain(raw[key], 0)
    lineage = stored.lineage
    out["lineage"] = {
        "dataset": lineage.dataset if isinstance(lineage.dataset, str) else None,
        "origin": f"{stored.name}:{stored.version}",
        "origin_lineage": {"job": _plain(lineage.job, 0), "parent": lineage.parent}}
    return out


def _graph(path: Path, stored: Manifest, what: str) -> dict[str, Any]:
    """The graph checked as any imported one is, and the tensors read from it; with a
    recipe, the recipe's tensors, which must be the graph's."""
    from studio.core.registry.transfer.importer import check_servable
    from studio.core.registry.transfer.onnx_graph import read_onnx

    info = read_onnx(path)
    check_servable(info, what)
    if info.external_data:
        raise InputError(f"{what}: model.onnx refers to files outside itself; a version's "
                         "graph must hold its weights")
    graph_in = {t.name: t for t in info.inputs}
    section: dict[str, Any] = {"inputs": [t.to_dict() for t in info.inputs],
                               "outputs": [t.to_dict() for t in info.outputs],
                               "output": info.outputs[0].name}
    if stored.recipe is not None:
        from studio.core.datasets.recipe import model_inputs, n_features

        try:
            expected = model_inputs(stored.recipe)
            features = n_features(stored.recipe)
        except (KeyError, TypeError, ValueError, AttributeError, InputError) as exc:
            raise InputError(f"{what}: its recipe is not one Model Studio can apply "
                             f"({type(exc).__name__}: {str(exc)[:120]})") from None
        for spec in expected:
            got = graph_in.get(spec["name"])
            if (got is None or got.datatype != spec["datatype"]
                    or list(got.shape[1:]) != list(spec["shape"][1:])):
                raise InputError(f"{what}: its recipe makes {spec['name']} {spec['datatype']} "
                                 f"{spec['shape']}, which its graph does not take")
        if len(expected) != len(graph_in):
            raise InputError(f"{what}: its graph takes {len(graph_in)} inputs, its recipe "
                             f"makes {len(expected)}")
        section.update(inputs=expected, input=expected[0]["name"], features=features)
    return section


def _schema(recipe: dict[str, Any], what: str) -> list[dict[str, Any]]:
    """The raw columns, from the recipe; and the recipe applied to one empty row, within
    training's bounds, so that serving it cannot fail on its own numbers."""
    from studio.core.datasets import pixels, text
    from studio.core.datasets.recipe import frame_from_records, input_schema, transform_inputs

    try:
        for f in recipe["features"]:
            if f["kind"] == "image" and int(f["size"]) not in pixels.SIZES:
                raise InputError(f"picture size {f['size']} is not one of {pixels.SIZES}")
            if f["kind"] == "text" and not text.MIN_TOKENS <= text.length(f) <= text.MAX_TOKENS:
                raise InputError(f"text length {text.length(f)} is out of bounds")
        schema = input_schema(recipe)
        if not any(c["kind"] == "image" for c in schema):  # a picture cannot be empty
            empty = {c["name"]: None for c in schema}  # every value missing: filled
            transform_inputs(recipe, frame_from_records(recipe, [empty]), False, None)
    except InputError as exc:
        raise InputError(f"{what}: its recipe cannot be used: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise InputError(f"{what}: its recipe is not one Model Studio can apply "
                         f"({type(exc).__name__}: {str(exc)[:120]})") from None
    return schema


def _plain(value: Any, depth: int) -> Any:
    """JSON of plain types only: finite numbers in range, bounded sizes and depth."""
    if depth > MAX_DEPTH:
        return None
    if value is None or isinstance(value, bool | str):
        return value if not isinstance(value, str) else value[:2000]
    if isinstance(value, int | float):
        return value if _number(value) else None
    if isinstance(value, list):
        return [_plain(v, depth + 1) for v in value[:MAX_JSON_ITEMS]]
    if isinstance(value, dict):
        return {str(k)[:200]: _plain(v, depth + 1)
                for k, v in list(value.items())[:MAX_JSON_ITEMS]}
    return None


def _number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return abs(value) < 2**53 if isinstance(value, int) else math.isfinite(value)


def _hex(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(
        c in "0123456789abcdef" for c in value)


def _text(value: Any, field: str, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 500:
        raise InputError(f"{what}: its {field} must be a column name")
    return value

