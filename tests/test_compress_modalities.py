"""The lab on every kind of model the product trains (text and pictures beside the tables
of test_compress_lab) and on a graph imported without a recipe or weights."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import train_text_and_pictures

from studio.core import registry
from studio.core.compress import lab, methods
from studio.core.compress.lab import Step
from studio.core.errors import InputError
from studio.core.workspace import Workspace

EVERY = [Step("int8-dynamic"), Step("int8-static", {"calibration_rows": 64}), Step("fp16"),
         Step("prune", {"epochs": 3}), Step("distill", {"epochs": 5})]


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    """reviews:1, word embeddings on text; shapes:1, a cnn on pictures; both small."""
    root = tmp_path_factory.mktemp("modalities")
    ws = Workspace.open(root / "ws")
    train_text_and_pictures(ws, root)
    yield ws
    ws.db.close()


@pytest.mark.parametrize("ref", ["reviews:1", "shapes:1"])
def test_every_method_works_on_text_and_pictures(ws: Workspace, ref: str) -> None:
    result = lab.run(ws, ref, EVERY, lambda _e: None, repeats=1)
    rows = result["results"]
    failed = {r["method"]: r["message"] for r in rows if r["status"] != "done"}
    assert not failed
    for r in rows:
        made = registry.get_version(ws, r["version"])
        assert made.manifest.compression.parent == ref
        assert r["value"] is not None and r["measurement"]["file_bytes"] > 0
    by = {r["method"]: r for r in rows}
    assert by["int8-dynamic"]["size_ratio"] < 0.5
    assert by["prune"]["size_ratio"] < 0.7  # structured: the network really narrower
    assert by["distill"]["measurement"]["parameters"] < by["distill"]["source_measurement"][
        "parameters"]


def test_an_imported_graph_is_measured_and_what_needs_more_is_refused(
        ws: Workspace, tmp_path: Path) -> None:
    from studio.core.registry.transfer.importer import import_model

    graph = tmp_path / "plain.onnx"
    graph.write_bytes(registry.read_file(ws, registry.get_version(ws, "reviews:1"),
                                         "model.onnx"))
    version = import_model(ws, graph, "plain", lambda _e: None)
    reasons = {m.name: r for m, r in methods.applicable(version.manifest)}
    assert reasons["int8-dynamic"] is None and reasons["fp16"] is None
    assert "has none" in reasons["prune"]
    assert "no recipe" in reasons["int8-static"] and "no recipe" in reasons["distill"]
    with pytest.raises(InputError, match="prune does not apply to plain:1"):
        lab.run(ws, version.ref, [Step("prune")], lambda _e: None)
    with pytest.raises(InputError, match=r"takes tensors only .* cannot read the rows"):
        lab.run(ws, version.ref, [Step("int8-dynamic")], lambda _e: None, dataset="reviews")
    result = lab.run(ws, version.ref, [Step("int8-dynamic")], lambda _e: None, repeats=1)
    (row,) = result["results"]
    assert row["version"] == "plain:2" and row["value"] is None  # measured, not evaluated
    assert row["size_ratio"] < 0.5


def test_a_weights_only_version_offers_nothing(ws: Workspace, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    from studio.core.registry.transfer.importer import import_model

    save_file({"w": torch.zeros(4, 4)}, str(tmp_path / "w.safetensors"))
    version = import_model(ws, tmp_path / "w.safetensors", "weights", lambda _e: None)
    reasons = {m.name: r for m, r in methods.applicable(version.manifest)}
    assert all(r and "weights only" in r for r in reasons.values())
