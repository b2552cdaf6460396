"""What a model file made elsewhere is, told by its bytes: a name can say ``.safetensors``
over a pickle, so extensions decide nothing here.

A file or folder is sniffed only: nothing in it is unpickled or run. Each kind's reader
(``onnx_graph``, ``safetensors_file``, ``torch_weights``, ``safe_zip``) checks it in full.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

from studio.core.errors import InputError

KINDS = ("onnx", "safetensors", "hf-folder", "torch", "bundle")
ACCEPTED = ("an ONNX model (or a folder with one .onnx file and its external data), a "
            "safetensors file, a Hugging Face folder (config.json and *.safetensors), a "
            "PyTorch checkpoint, or a Model Studio bundle (.zip)")
_PROTOBUF_LIMIT = 2 << 30  # an .onnx file over 2 GiB cannot be parsed; weights go outside it
_PICKLE_PROTO = 0x80


def detect(path: Path) -> str:
    """One of ``KINDS`` for ``path``; InputError naming what was found otherwise."""
    if path.is_dir():
        try:
            return _detect_folder(path)
        except OSError as exc:
            raise InputError(f"{path.name}: cannot read: {exc.strerror or exc}") from None
    if not path.is_file():
        raise InputError(f"{path.name}: no such file or folder" if not path.exists()
                         else f"{path.name}: not a regular file or folder")
    try:
        with open(path, "rb") as f:
            head = f.read(16)
        # a zip starts with a local header; the central directory alone (at the end) could
        # sit inside a safetensors data area by chance
        if head[:2] == b"PK" and zipfile.is_zipfile(path):
            return _detect_zip(path)
    except OSError as exc:
        raise InputError(f"{path.name}: cannot read: {exc.strerror or exc}") from None
    if head[:1] == bytes([_PICKLE_PROTO]):
        return "torch"  # a legacy (pre-zip) torch.save starts with a protocol-2 pickle
    size = path.stat().st_size
    looks_safetensors = len(head) > 8 and head[8:9] == b"{"
    if looks_safetensors and struct.unpack("<Q", head[:8])[0] <= size - 8:
        return "safetensors"
    if _is_onnx(path, size):
        return "onnx"
    if looks_safetensors:
        return "safetensors"  # with a broken length: its reader says what is wrong
    raise InputError(f"{path.name}: not a model file Model Studio can import "
                     f"({_describe(head, size)}); it accepts {ACCEPTED}")


def _detect_zip(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InputError(f"{path.name}: damaged zip file: {exc}") from None
    if "bundle.json" in names and "manifest.json" in names:  # see transfer/export.py
        return "bundle"
    if any(n.count("/") == 1 and n.endswith("/data.pkl") for n in names):
        return "torch"  # torch.save's zip: <archive>/data.pkl beside <archive>/data/<n>
    shown = ", ".join(names[:5]) + (" …" if len(names) > 5 else "")
    raise InputError(f"{path.name}: a zip archive holding {shown or 'nothing'}, neither a Model "
                     "Studio bundle (bundle.json and manifest.json at its root) nor a PyTorch "
                     f"checkpoint; Model Studio accepts {ACCEPTED}")


def _detect_folder(path: Path) -> str:
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.is_symlink())
    names = {p.name for p in files}
    tensors = [p for p in files if p.suffix == ".safetensors"]
    exported = path / "onnx" / "model.onnx"  # transformers.js keeps its export there
    if "config.json" in names and (tensors or (exported.is_file() and
                                               not exported.is_symlink())):
        return "hf-folder"
    models = [p for p in files if p.suffix == ".onnx"]
    if len(models) == 1 and _is_onnx(models[0], models[0].stat().st_size):
        return "onnx"
    if len(models) > 1:
        raise InputError(f"{path.name}: holds {len(models)} ONNX files "
                         f"({', '.join(p.name for p in models[:4])}); import one of them")
    shown = ", ".join(sorted(names)[:6]) + (" …" if len(names) > 6 else "")
    # a Hugging Face cache snapshot is all links: name them, or "no files" would puzzle
    links = sum(1 for p in path.iterdir() if p.is_symlink())
    aside = f" and {links} symbolic links, which are not followed" if links else ""
    raise InputError(f"{path.name}: a folder holding {shown or 'no files'}{aside}, which is no "
                     f"model Model Studio can import; it accepts {ACCEPTED}")


def _is_onnx(path: Path, size: int) -> bool:
    if size == 0 or size > _PROTOBUF_LIMIT:
        return False
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load_model(str(path), load_external_data=False)
    except (DecodeError, RuntimeError, ValueError, OSError):
        return False
    # protobuf parses many byte strings without error: a model states its IR and its graph
    return model.ir_version > 0 and model.HasField("graph") and len(model.graph.output) > 0


def _describe(head: bytes, size: int) -> str:
    if size == 0:
        return "an empty file"
    if head[:1] in (b"{", b"["):
        return "JSON or text"
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return f"text starting {head.decode('ascii')[:12]!r}"
    return f"{size:,} bytes starting {head[:8].hex(' ')}"
