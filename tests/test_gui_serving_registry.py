"""The Serving page and the registry: aliases are offered beside versions, and a model made
elsewhere (tensors only) gets a note instead of a form."""

from __future__ import annotations

from pathlib import Path

from conftest import PENGUINS
from test_registry_transfer import two_headed_onnx

from studio.core.datasets import catalog
from studio.core.registry import labels
from studio.core.registry.transfer.importer import import_model
from studio.core.workspace import Workspace


def test_aliases_are_offered_and_an_imported_model_gets_a_note(qtbot, tmp_path: Path) -> None:
    from studio.core.training.pipeline import run
    from studio.core.training.spec import TrainSpec
    from studio.gui.pages.serving import ServingPage

    ws = Workspace.open(tmp_path / "ws")
    catalog.import_dataset(ws, PENGUINS)
    run(ws, TrainSpec(dataset="penguins", target="species", family="linear", threads=1),
        lambda _e: None)
    labels.set_alias(ws, "penguins", "production", "1")
    import_model(ws, two_headed_onnx(tmp_path / "m.onnx"), "outside")

    page = ServingPage(ws)
    qtbot.addWidget(page)
    page.refresh()
    offered = [page.version.itemText(i) for i in range(page.version.count())]
    assert offered[0] == "penguins@production"
    assert {"penguins:1", "outside:1"} <= set(offered)

    page.version.setCurrentText("penguins@production")
    assert "island" in page.fields
    page.version.setCurrentText("outside:1")
    assert page.fields == {} and page.schema == []
    note = page.form.itemAt(0).widget().text()
    assert "features FP32 [-1, 3]" in note and "/v2/models/outside/infer" in note
