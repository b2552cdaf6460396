"""A process that writes to the registry as fast as it can: registers small versions, moves
an alias and sets tags, ``n`` times. Exits 0 only if every write succeeded."""

from __future__ import annotations

import os
import sys

from studio.core.registry import labels, register_version
from studio.core.workspace import Workspace


def main(root: str, name: str, n: int) -> int:
    ws = Workspace.open(root)
    manifest = {"task": None, "onnx": {"inputs": [], "outputs": []}}
    for i in range(n):
        v = register_version(ws, name, {"model.onnx": os.urandom(2048)}, manifest, f"# {i}")
        labels.set_alias(ws, name, "production", str(v.version))
        labels.set_tags(ws, v.ref, {"writer": str(os.getpid()), "i": str(i)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
