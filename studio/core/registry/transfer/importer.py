"""A model made elsewhere into the registry, after every check says it is safe to keep:
an ONNX graph (served on V2 with its own tensors), safetensors weights, a Hugging Face-format
folder, a PyTorch checkpoint (weights only, opened in a child process), or a Model Studio
bundle (registered with its lineage). The format is told by content, never by name."""

from __future__ import annotations

import contextlib
import hashlib
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from studio.core.errors import InputError
from studio.core.events import Emit, Log, Progress
from studio.core.names import NAME_RE, as_name
from studio.core.registry.manifest import FILE_RE
from studio.core.registry.versions import Version, register_version
from studio.core.store import scratch_prefix
from studio.core.workspace import Workspace

ONNX_INLINE_LIMIT = 2_000_000_000 - (16 << 20)  # one ONNX protobuf, with room to spare
HF_EXTRA = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
            "special_tokens_map.json", "vocab.txt", "merges.txt", "tokenizer.model",
            "preprocessor_config.json", "model.safetensors.index.json")


def import_model(ws: Workspace, path: Path, name: str | None = None,
                 emit: Emit = lambda _e: None,
                 should_stop: Callable[[], bool] = lambda: False,
                 source: str | None = None, revision: str | None = None) -> Version:
    """Register the model at ``path`` (a file or a folder) as a new version of ``name``
    (default: a bundle's own model name, else from the file's name). ``source``: what to
    record as its origin (default: the path; a Hub pull passes hf://REPO)."""
    from studio.core.registry.transfer.sniff import detect

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    kind = detect(path)
    if name is None and kind == "bundle":
        name = ""  # the bundle's own model name, read from its manifest
    name = default_name(path) if name is None else name
    if name and not NAME_RE.match(name):
        raise InputError(f"invalid model name {name!r}: use 1-64 letters, digits, '.', '_' "
                         "or '-', starting with a letter or digit (give one with --name)")
    origin = source or str(path.resolve())
    emit(Progress("import", 0, 0, f"checking {path.name} ({kind})"))
    with tempfile.TemporaryDirectory(dir=ws.tmp, prefix=scratch_prefix("model")) as scratch:
        work = Path(scratch)
        if kind == "bundle":
            return _bundle(ws, path, name or None, work, origin, emit)
        if kind == "onnx":
            files, manifest, card = _onnx(path)
        elif kind == "safetensors":
            files, manifest, card = _weights(path, path.name)
        elif kind == "hf-folder":
            files, manifest, card = _hf_folder(path)
        elif kind == "torch":
            from studio.core.registry.transfer.torch_weights import torch_to_safetensors

            emit(Log(f"opening {path.name} weights-only in a separate process"))
            converted = work / "weights.safetensors"
            torch_to_safetensors(path, converted)
            files, manifest, card = _weights(converted, path.name)
        else:  # detect() refuses what it does not know; this is a new kind it learned
            raise InputError(f"{path.name}: {kind} models cannot be imported yet")
        if should_stop():
            raise InputError("import stopped")
        manifest["imported"] = {"source": origin, "format": kind, "revision": revision,
                                "original": {f: _sha256(p) for f, p in files.items()}}
        emit(Progress("import", 0, 0, "storing"))
        version = register_version(ws, name, files, manifest, card.replace("{name}", name))
    emit(Log(f"imported {path.name} as {version.ref}"))
    return version


def check_servable(info: Any, what: str) -> None:
    """V2 carries tensors: a graph with a sequence or map input or output (scikit-learn's
    ZipMap, say) would fail on every request, so it is refused at the door."""
    for direction, tensors in (("input", info.inputs), ("output", info.outputs)):
        for t in tensors:
            if not t.shape and ("(" in t.datatype):
                raise InputError(f"{what}: {direction} {t.name!r} is {t.datatype}, not a "
                                 "tensor; V2 serves tensors only (export it without ZipMap, "
                                 "e.g. skl2onnx's options={'zipmap': False})")


def default_name(path: Path) -> str:
    return as_name(path.name if path.is_dir() else path.name.split(".")[0])


def _onnx(path: Path) -> tuple[dict[str, Any], dict[str, Any], str]:
    from studio.core.registry.transfer.onnx_graph import read_onnx

    info = read_onnx(path)
    check_servable(info, info.path.name)
    if info.external_data:
        if info.total_bytes > ONNX_INLINE_LIMIT:
            raise InputError(f"{info.path.name}: {info.total_bytes:,} bytes with its external "
                             "data; models over 2 GB cannot be imported yet")
        import onnx

        # the checks above passed: its external data lies inside its folder
        model = onnx.load_model(str(info.path), load_external_data=True)
        graph: bytes | Path = model.SerializeToString()
    else:
        graph = info.path
    manifest = {"task": None, "onnx": {
        "inputs": [t.to_dict() for t in info.inputs],
        "outputs": [t.to_dict() for t in info.outputs],
        "opsets": info.opsets, "producer": f"{info.producer_name} {info.producer_version}"
        .strip()}}
    card = (f"# {{name}}\n\nAn ONNX model imported into Model Studio from "
            f"`{info.path.name}`" + (f", made by {info.producer_name}" if info.producer_name
                                     else "") + ".\n\n" + _tensor_table(info.inputs,
                                                                        info.outputs)
            + "\nIt is served on V2 with these tensors. Its task, training data and intended "
              "use are not known to Model Studio: edit this card to record them.\n")
    return {"model.onnx": graph}, manifest, card


def _weights(path: Path, shown: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    from studio.core.registry.transfer.safetensors_file import read_header

    tensors = read_header(path)
    params = sum(_numel(t.shape) for t in tensors.values())
    manifest = {"task": None, "weights": {"tensors": len(tensors), "parameters": params}}
    card = (f"# {{name}}\n\nWeights imported into Model Studio from `{shown}`: "
            f"{len(tensors):,} tensors, {params:,} parameters.\n\nThere is no graph, so this "
            "version cannot be served; it is kept, versioned and can be exported or pushed.\n")
    return {"weights.safetensors": path}, manifest, card


def _hf_folder(path: Path) -> tuple[dict[str, Any], dict[str, Any], str]:
    from studio.core.registry.transfer.safetensors_file import read_header

    links = sorted(p.name for p in path.iterdir() if p.is_symlink())
    if links:  # a link could bring in any file on this machine, and push it later
        raise InputError(f"{path.name}: {links[0]} is a link; Model Studio keeps real files "
                         "only (copy the folder with its files first)")
    files: dict[str, Any] = {}
    onnx_files = sorted(p for p in [*path.glob("*.onnx"), *path.glob("onnx/model.onnx")]
                        if p.is_file() and not p.is_symlink())
    if onnx_files:  # a repository that ships its ONNX export: serve that
        files, manifest, card = _onnx(onnx_files[0])
    else:
        manifest, card = {"task": None}, ""
    shards = sorted(p for p in path.glob("*.safetensors") if p.is_file())
    params = 0
    for shard in shards:
        params += sum(_numel(t.shape) for t in read_header(shard).values())
        files[_flat(shard.name)] = shard
    for extra in HF_EXTRA:
        p = path / extra
        if p.is_file() and not p.is_symlink():
            files[_flat(extra)] = p
    config = _json_file(path / "config.json")
    manifest["weights"] = {"tensors_files": len(shards), "parameters": params,
                           "architectures": config.get("architectures"),
                           "model_type": config.get("model_type")}
    about = ", ".join(str(a) for a in config.get("architectures") or []) or "a model"
    card = card or (f"# {{name}}\n\n{about} in Hugging Face format ({params:,} parameters), "
                    "imported into Model Studio. There is no ONNX graph, so this version "
                    "cannot be served here; export or push it.\n")
    return files, manifest, card


def _bundle(ws: Workspace, path: Path, name: str | None, work: Path, origin: str,
            emit: Emit) -> Version:
    from studio.core.registry.transfer.adopt import adopt
    from studio.core.registry.transfer.export import BUNDLE, BUNDLE_FORMAT, CARD, MANIFEST
    from studio.core.registry.transfer.safe_zip import extract

    folder = work / "bundle"
    extract(path, folder)
    about = _json_file(folder / BUNDLE)
    if about.get("format") != BUNDLE_FORMAT:
        raise InputError(f"{path.name}: not a Model Studio bundle (no {BUNDLE})")
    raw = _json_file(folder / MANIFEST)
    stored_ref = f"{raw.get('name')}:{raw.get('version')}"
    card_path = folder / CARD
    card = card_path.read_text(encoding="utf-8", errors="replace") if card_path.is_file() \
        else "# {ref}\n"
    version = adopt(ws, raw, folder / "files", name, retitled(card, stored_ref),
                    {"source": origin, "format": "bundle", "revision": None}, path.name)
    _labels_from(ws, version, about)
    emit(Log(f"imported {path.name} ({stored_ref}) as {version.ref}"))
    return version


def _labels_from(ws: Workspace, version: Version, about: dict[str, Any]) -> None:
    """The description and tags the bundle carried, where they pass the registry's checks."""
    from studio.core.registry import labels

    if isinstance(about.get("description"), str):
        with contextlib.suppress(InputError):
            labels.set_description(ws, version.ref, about["description"])
    tags = about.get("tags")
    if isinstance(tags, dict):
        with contextlib.suppress(InputError):
            labels.set_tags(ws, version.ref, {str(k): str(v) for k, v in tags.items()})


def retitled(card: str, old_ref: str) -> str:
    """The card's ``# NAME:N`` heading made the new version's (the registry fills ``{ref}``);
    where it came from is said below it."""
    lines = card.split("\n", 1)
    if lines[0].strip() == f"# {old_ref}":
        rest = lines[1] if len(lines) > 1 else ""
        return f"# {{ref}}\n\n*Imported; it was {old_ref} where it was made.*\n{rest}"
    return card


def _tensor_table(inputs: Any, outputs: Any) -> str:
    rows = ["| tensor | direction | datatype | shape |", "| --- | --- | --- | --- |"]
    for direction, tensors in (("input", inputs), ("output", outputs)):
        for t in tensors:
            rows.append(f"| `{_md(t.name)}` | {direction} | {t.datatype} | {list(t.shape)} |")
    return "\n".join(rows) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'").replace("\n", " ")


def _flat(fname: str) -> str:
    if not FILE_RE.match(fname):
        raise InputError(f"file name {fname!r} cannot be kept: use letters, digits, '.', "
                         "'_' or '-'")
    return fname


def _json_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise InputError(f"{path.name}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path.name}: expected a JSON object")
    return data


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _sha256(p: Path | bytes) -> str:
    if isinstance(p, bytes):
        return hashlib.sha256(p).hexdigest()
    h = hashlib.sha256()
    with open(p, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()

