"""Write to a workspace's registry until killed: the child that tests/test_registry_crash.py
kills with SIGKILL at a random moment.

    python tests/tools/register_loop.py WORKSPACE SOURCES SEED [--import]

It registers versions whose files are fresh random bytes of sizes spread from 4 KiB to
4 MiB (now and then a file stored before, so the blob is found rather than written), moves
aliases and sets tags between them; with ``--import`` it also imports generated CSV files
as datasets and registers versions trained on them. Source files are written under SOURCES,
never in the workspace. "ready" is printed once everything is imported and the workspace
is open, so the parent's random delay falls on the writes, not on Python starting.
"""

from __future__ import annotations

import math
import random
import sys
import time
from pathlib import Path
from typing import Any

from studio.core.errors import NotFoundError
from studio.core.registry import register_version, resolve
from studio.core.registry.labels import set_alias, set_tags
from studio.core.workspace import Workspace

MODELS = ("alpha", "beta", "gamma")
ALIASES = ("production", "staging")
MAX_RUN_S = 30.0  # a child nobody kills stops by itself


def main() -> None:
    root, sources, seed = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    importing = "--import" in sys.argv[4:]
    rng = random.Random(seed)
    sources.mkdir(parents=True, exist_ok=True)
    ws = Workspace.open(root)
    ws.db  # noqa: B018 - open the database before "ready"
    loop = Loop(ws, sources, rng)
    if importing:
        from studio.core.datasets.catalog import import_dataset

        csv = loop.write_csv()
        ws.db.db  # noqa: B018 - sqlite-utils (pandas) is imported by now, not after "ready"
    print("ready", flush=True)
    start = time.monotonic()
    while time.monotonic() - start < MAX_RUN_S:
        if importing:
            info = import_dataset(ws, csv)
            loop.register(dataset=(info.name, info.digest))
            csv = loop.write_csv()
        op = rng.random()
        if op < 0.6:
            loop.register()
        elif op < 0.8:
            loop.move_alias()
        else:
            loop.tag()
    sys.exit("register_loop: nobody killed me")


class Loop:
    def __init__(self, ws: Workspace, sources: Path, rng: random.Random) -> None:
        self.ws, self.sources, self.rng = ws, sources, rng
        self.written: list[Path] = []
        self.n = 0

    def source(self, suffix: str) -> Path:
        """A file of random bytes, its size log-uniform in 4 KiB–4 MiB; one in seven times
        a file written before, whose blob is already stored."""
        if self.written and self.rng.random() < 1 / 7:
            return self.rng.choice(self.written)
        self.n += 1
        size = int(math.exp(self.rng.uniform(math.log(4 << 10), math.log(4 << 20))))
        path = self.sources / f"{self.n}{suffix}"
        path.write_bytes(self.rng.randbytes(size))
        self.written.append(path)
        return path

    def write_csv(self) -> Path:
        """A table of 2,000–20,000 rows, different each time (so each import stores a new
        snapshot)."""
        self.n += 1
        rows = self.rng.randint(2_000, 20_000)
        r = self.rng
        lines = ["x,y,colour,label"] + [
            f"{r.random():.6f},{r.randint(0, 999)},{r.choice(('red', 'green', 'blue'))},"
            f"{r.choice(('a', 'b'))}" for _ in range(rows)]
        path = self.sources / f"table{self.n}.csv"
        path.write_text("\n".join(lines) + "\n")
        return path

    def latest(self, name: str) -> int | None:
        try:
            return resolve(self.ws, name)[1]
        except NotFoundError:  # not registered yet
            return None

    def register(self, dataset: tuple[str, str] | None = None) -> None:
        name = self.rng.choice(MODELS)
        files: dict[str, bytes | Path] = {
            "model.onnx": self.source(".onnx"),
            "recipe.json": b'{"columns": ["x", "y"], "seed": %d}' % self.rng.randrange(1 << 30),
        }
        if self.rng.random() < 0.3:
            files["weights.safetensors"] = self.source(".safetensors")
        manifest: dict[str, Any] = {
            "task": "classification", "target": "label", "labels": ["a", "b"],
            "onnx": {"inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 2]}],
                     "outputs": [{"name": "probabilities", "datatype": "FP32",
                                  "shape": [-1, 2]}]},
            "metrics": {"test": {"accuracy": round(self.rng.random(), 4)}},
            "training": {"family": "mlp", "params": {"epochs": 3}},
        }
        previous = self.latest(name)
        if dataset is not None:
            manifest["dataset"] = {"name": dataset[0], "digest": dataset[1]}
            manifest["lineage"] = {"dataset": f"{dataset[0]}@{dataset[1][:12]}"}
        elif previous is not None and self.rng.random() < 0.3:
            manifest["compression"] = {"method": "quantize", "parent": f"{name}:{previous}"}
            manifest["lineage"] = {"parent": f"{name}:{previous}"}
        register_version(self.ws, name, files, manifest, "# {ref}\n\nA crash-test model.\n")

    def move_alias(self) -> None:
        name = self.rng.choice(MODELS)
        latest = self.latest(name)
        if latest is not None:
            set_alias(self.ws, name, self.rng.choice(ALIASES), str(self.rng.randint(1, latest)))

    def tag(self) -> None:
        name = self.rng.choice(MODELS)
        latest = self.latest(name)
        if latest is not None:
            value = self.rng.choice(("ana", "bo", None))
            set_tags(self.ws, f"{name}:{self.rng.randint(1, latest)}",
                     {"owner": value, "checked": str(self.rng.randrange(100))})


if __name__ == "__main__":
    main()
