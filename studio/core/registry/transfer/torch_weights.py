"""A PyTorch checkpoint made elsewhere, turned into safetensors without running its code.

A ``.pt`` file is a pickle, and unpickling may call any function the file names
(``os.system``, ``eval``): opening an untrusted one the ordinary way runs its author's code.
It is opened here only with ``torch.load(weights_only=True)``, whose unpickler builds tensors
and plain containers and refuses every other name, and only in a child process (with a
timeout and a minimal environment) so that a hostile or broken file can crash nothing else.
Nothing here ever retries a refused file without ``weights_only``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from studio.core.errors import InputError
from studio.core.registry.transfer.safetensors_file import read_header

_CHILD = Path(__file__).with_name("_torch_child.py")
# what the child may inherit: enough to find its libraries, none of the user's tokens
_PASSED_ON = ("PATH", "SYSTEMROOT", "TMPDIR", "TEMP", "TMP", "LD_LIBRARY_PATH",
              "DYLD_LIBRARY_PATH")


def torch_to_safetensors(src: Path, dest: Path, timeout_s: float = 120) -> list[str]:
    """Write the tensors of the checkpoint ``src`` to ``dest`` (safetensors) under dotted
    names, which are returned. InputError (and no ``dest``) when the file is refused."""
    name = src.name
    if not src.is_file():
        raise InputError(f"{name}: no such file")
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    try:
        names = _convert(src, partial, timeout_s)
        written = read_header(partial)
        if set(written) != set(names):
            raise InputError(f"{name}: the converted file does not hold the tensors read")
        os.replace(partial, dest)
    finally:
        partial.unlink(missing_ok=True)
    return names


def _convert(src: Path, dest: Path, timeout_s: float) -> list[str]:
    name = src.name
    env = {k: os.environ[k] for k in _PASSED_ON if k in os.environ}
    env.update(CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1", PYTHONIOENCODING="utf-8",
               PYTHONDONTWRITEBYTECODE="1")
    try:
        # -I: no PYTHON* variables, no user site, no script folder on the path
        result = subprocess.run(
            [sys.executable, "-I", str(_CHILD), os.fspath(src.absolute()),
             os.fspath(dest.absolute())],
            capture_output=True, text=True, encoding="utf-8", errors="replace", env=env,
            timeout=timeout_s, stdin=subprocess.DEVNULL, cwd=dest.parent,
            preexec_fn=_limit_memory(src) if os.name == "posix" else None)
    except subprocess.TimeoutExpired:
        raise InputError(f"{name}: opening it took longer than {timeout_s:g} s; it was "
                         "stopped") from None
    answer = _answer(result.stdout)
    if answer is None:
        raise InputError(f"{name}: reading it failed: {_condensed(result)}")
    if "names" in answer:
        return [str(n) for n in answer["names"]]
    raise InputError(_refusal(name, answer))


def _limit_memory(src: Path) -> Callable[[], None]:
    """The child may take what torch needs for the file, and a margin: a checkpoint built
    to exhaust memory ends the child, not the machine."""
    limit = 4 * src.stat().st_size + (4 << 30)

    def apply() -> None:
        import resource

        # DATA, not AS: a CUDA build of torch maps gigabytes of libraries it never fills
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))

    return apply


def _answer(stdout: str) -> dict | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                return None
            return value if isinstance(value, dict) else None
    return None


def _refusal(name: str, answer: dict) -> str:
    reason = answer.get("refused")
    detail = str(answer.get("detail", ""))
    if reason == "global":
        return (f"{name}: refused: opening it would run code (it calls {answer.get('global')},"
                " which plain weights never need), and Model Studio never opens a file that "
                "way; save the model's state_dict alone, or as safetensors")
    if reason == "pickle":
        return (f"{name}: refused: not a plain weights checkpoint (PyTorch's weights-only "
                f"reader says: {detail}); Model Studio opens PyTorch files only that way")
    if reason == "torchscript":
        return (f"{name}: refused: a TorchScript program, not weights; loading it would run "
                "its code. Export it to ONNX, or save its state_dict")
    if reason == "empty":
        return f"{name}: holds no tensors (it holds a {detail})"
    if reason == "clash":
        return f"{name}: two of its tensors have the same dotted name {detail!r}"
    if reason == "unwritable":
        return f"{name}: its tensors cannot be stored as safetensors: {detail}"
    return f"{name}: not a readable PyTorch checkpoint: {detail}"


def _condensed(result: subprocess.CompletedProcess[str]) -> str:
    """The child's stderr in one line: its last line is the exception, or the signal."""
    lines = [line.strip() for line in (result.stderr or "").splitlines() if line.strip()]
    if lines:
        return lines[-1][:300]
    if result.returncode < 0:
        return f"the reader was killed by signal {-result.returncode}"
    return f"the reader stopped with status {result.returncode}"
