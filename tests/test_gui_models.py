"""The Models page on the registry: what the list shows, aliases moved and tags set from the
GUI reaching the registry, a refused delete, the card, the lineage graph, comparing
versions, an imported version, and models in and out (import by drop, export, Hub)."""

from __future__ import annotations

import json
import os
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QApplication, QDialogButtonBox
from test_gui_layout import clipped

from studio.core import registry
from studio.core.registry import labels, lifecycle
from studio.core.registry.listing import version_rows
from studio.core.workspace import Workspace
from studio.gui.pages.models import ask
from studio.gui.pages.models.table import COLUMNS

LABELS = ["Adelie", "Chinstrap", "Gentoo"]


def trained(ws: Workspace, name: str, accuracy: float, family: str = "linear",
            parent: str | None = None, dataset: str = "penguins@afb8587ba7b1",
            payload: bytes | None = None) -> registry.Version:
    """A version as a run (or, with ``parent``, a compression) registers it; its model file
    is a stand-in: the page never runs it."""
    manifest: dict[str, Any] = {
        "task": "classification", "target": "species", "labels": LABELS,
        "recipe": {"modality": "tabular", "labels": LABELS,
                   "features": [{"name": "bill_length_mm", "mean": 44.0}]},
        "input_schema": [{"name": "bill_length_mm", "kind": "numeric"}], "family": family,
        "metrics": {"test": {"accuracy": accuracy, "f1_macro": round(accuracy - 0.02, 4),
                             "n": 52}},
        "dataset": {"name": dataset.partition("@")[0], "digest": dataset.partition("@")[2],
                    "rows": 344},
        "lineage": {"dataset": dataset, "job": f"job-{family}"},
    }
    if parent is None:
        manifest["training"] = {"device": "cpu", "family": family,
                                "params": {"learning_rate": 0.1 if family == "linear" else 0.05}}
    else:
        manifest["compression"] = {"method": "int8", "parent": parent}
        manifest["lineage"]["parent"] = parent
    model = payload or f"{name} {family} {accuracy} {time.time()}".encode()
    return registry.register_version(ws, name, {"model.onnx": model}, manifest, "# {ref}\n")


def imported(ws: Workspace, name: str = "outside") -> registry.Version:
    """As tests/test_registry.py registers a model made elsewhere: no recipe, no training."""
    manifest = {"task": None, "onnx": {
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 10]}],
        "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]}]},
        "imported": {"source": "/somewhere/model.onnx", "format": "onnx",
                     "original": {"model.onnx": "b" * 64}}}
    return registry.register_version(ws, name, {"model.onnx": b"an outside graph"}, manifest,
                                     "# outside\n")


def cell(page: Any, ref: str, column: str) -> str:
    row = page.table.row_of(ref)
    assert row is not None, f"{ref} is not listed"
    return page.table.item(row, COLUMNS.index(column)).text()


def show(window: Any, select: str | None = None) -> Any:
    page = window.models
    window.go(page)
    page.refresh(select=select)
    QApplication.processEvents()
    return page


def test_the_list_shows_aliases_tags_size_source_and_disk_use(window, qtbot):
    ws = window.ws
    trained(ws, "penguins", 0.97)
    big = trained(ws, "penguins", 0.98, "boosted-trees", payload=b"x" * 5000)
    trained(ws, "penguins", 0.96, parent="penguins:2")
    imported(ws)
    labels.set_alias(ws, "penguins", "production", "2")
    labels.set_alias(ws, "penguins", "staging", "2")
    labels.set_tags(ws, "penguins:2", {"team": "ecology"})
    page = show(window, "penguins:2")

    assert page.table.rowCount() == 4
    assert cell(page, "penguins:2", "Aliases") == "production, staging"
    assert cell(page, "penguins:2", "Tags") == "team=ecology"
    assert cell(page, "penguins:2", "Size") == "4.9 KiB" and big.ref == "penguins:2"
    assert cell(page, "penguins:2", "Test score") == "accuracy 0.980"
    assert cell(page, "penguins:3", "Source") == "compressed"
    assert cell(page, "outside:1", "Source") == "imported"
    assert cell(page, "outside:1", "Test score") == "—"
    assert page.details.aliases.chips == ["production", "staging"]
    use = lifecycle.disk_use(ws)
    qtbot.waitUntil(lambda: page.disk.use == use, timeout=10_000)
    assert "penguins" in page.disk.label.text() and "outside" in page.disk.label.text()
    assert "on disk" in page.details.origin.text()

    lifecycle.archive(ws, "penguins:1")
    page.refresh()
    assert page.table.row_of("penguins:1") is None
    page.show_archived.setChecked(True)
    assert page.table.row_of("penguins:1") is not None
    window.resize(1024, 700)
    QApplication.processEvents()
    assert clipped(window) == []


def test_moving_an_alias_in_the_gui_moves_it_in_the_registry(window, monkeypatch):
    ws = window.ws
    for accuracy in (0.95, 0.97):
        trained(ws, "penguins", accuracy)
    labels.set_alias(ws, "penguins", "production", "1")
    page = show(window, "penguins:2")
    details = page.details

    details.alias_name.setEditText("production")
    assert details.alias_target.currentData() == 2
    assert details.alias_btn.text() == "Move" and "from version 1 to 2" in \
        details.alias_hint.text()
    details.alias_btn.click()
    assert registry.resolve(ws, "penguins@production") == ("penguins", 2)
    assert cell(page, "penguins:2", "Aliases") == "production"
    assert cell(page, "penguins:1", "Aliases") == ""

    details.tag_edit.setText("reviewed=yes")
    details.tag_btn.click()
    details.tag_edit.setText("no equals sign")
    details.tag_btn.click()
    assert "KEY=VALUE" in details.error.text()
    assert labels.tags_of(ws, "penguins", 2) == {"reviewed": "yes"}
    assert cell(page, "penguins:2", "Tags") == "reviewed=yes"

    details.description.setText("the one the field app uses")
    details.description.setModified(True)
    details.description.editingFinished.emit()
    assert version_rows(ws, "penguins")[1].description == "the one the field app uses"

    monkeypatch.setattr(ask, "confirm", lambda *_a: True)
    from PySide6.QtTest import QTest

    QTest.mouseClick(details.aliases, Qt.MouseButton.LeftButton,
                     pos=details.aliases.close_point("production"))
    assert labels.aliases(ws, "penguins") == {}
    assert details.aliases.chips == []


def test_a_refused_delete_shows_why_and_deletes_nothing(window, qtbot, monkeypatch):
    ws = window.ws
    for accuracy in (0.95, 0.97):
        trained(ws, "penguins", accuracy)
    labels.set_alias(ws, "penguins", "production", "1")
    page = show(window, "penguins:1")
    asked: list[str] = []
    monkeypatch.setattr(ask, "confirm", lambda _p, _t, text: asked.append(text) or True)

    assert not page.delete()
    assert asked and "penguins:1" in asked[0]
    assert page.dialog is not None and page.dialog.isVisible()
    assert "penguins@production" in page.dialog.text() and "move or remove" in \
        page.dialog.text()
    assert registry.resolve(ws, "penguins:1") == ("penguins", 1)
    assert page.table.row_of("penguins:1") is not None

    monkeypatch.setattr(ask, "confirm", lambda *_a: False)
    assert not page.delete("penguins:2")  # the person said no
    assert page.table.row_of("penguins:2") is not None
    monkeypatch.setattr(ask, "confirm", lambda *_a: True)
    page.table.select(["penguins:2"], "penguins:2")
    page.table.setFocus()
    qtbot.keyClick(page.table, Qt.Key.Key_Delete)  # the Delete key asks, then deletes
    assert page.table.row_of("penguins:2") is None
    assert [r.ref for r in version_rows(ws, archived=True)] == ["penguins:1"]


def test_free_space_removes_what_a_deleted_version_left_off_the_gui_thread(window, qtbot,
                                                                           monkeypatch):
    ws = window.ws
    trained(ws, "penguins", 0.95)
    gone = trained(ws, "penguins", 0.97, payload=b"only this version holds me" * 100)
    blob = ws.blobs.path(gone.manifest.files["model.onnx"])
    page = show(window)
    monkeypatch.setattr(ask, "confirm", lambda *_a: True)
    assert page.delete("penguins:2")
    old = time.time() - 2 * lifecycle.GC_GRACE_S  # written long ago: no work in progress
    for path in ws.blobs.root.glob("??/*"):
        os.utime(path, (old, old))
    page.disk.free_btn.click()
    assert not page.disk.free_btn.isEnabled()
    qtbot.waitUntil(lambda: page.disk.dialog is not None, timeout=15_000)
    assert "freed" in page.disk.dialog.text() and not blob.exists()
    assert page.disk.free_btn.isEnabled()


def test_an_edited_card_persists_and_its_html_stays_text(window):
    ws = window.ws
    v = trained(ws, "penguins", 0.95)
    page = show(window, v.ref)
    assert "penguins:1" in page.card.toPlainText()
    editor = page.edit_card()
    text = "# Field model\n\nUse it <b>on islands</b> only.\n\n<img src='file:///etc/passwd'>\n"
    editor.editor.setPlainText(text)
    editor.save_btn.click()
    assert labels.card_text(ws, registry.get_version(ws, v.ref)) == text
    shown = page.card.toPlainText()
    assert "Field model" in shown and "<b>on islands</b>" in shown and "<img" in shown
    page.refresh()
    assert "<b>on islands</b>" in page.card.toPlainText()


def test_the_lineage_graph_walks_to_a_child_and_opens_the_dataset(window, qtbot, tmp_path):
    from studio.core.datasets.catalog import import_dataset

    ws = window.ws
    csv = tmp_path / "birds.csv"
    csv.write_text("wing,kind\n" + "".join(f"{i},{'ab'[i % 2]}\n" for i in range(40)))
    info = import_dataset(ws, csv)
    window.datasets.refresh()
    trained(ws, "birds", 0.9, dataset=f"{info.name}@{info.digest[:12]}")
    trained(ws, "birds", 0.88, parent="birds:1")
    page = show(window, "birds:1")
    page.tabs.setCurrentIndex(1)
    QApplication.processEvents()
    graph = page.lineage
    kinds = {n.key: n.kind for n in graph.nodes()}
    assert kinds == {f"birds@{info.digest[:12]}": "dataset", "job-linear": "job",
                     "birds:1": "this", "birds:2": "version"}

    qtbot.mouseClick(graph, Qt.MouseButton.LeftButton, pos=graph.node_rect("birds:2").center())
    assert page.table.current_ref() == "birds:2"
    assert page.table.selected_refs() == ["birds:2"]
    assert {n.key for n in graph.nodes() if n.kind == "version"} == {"birds:1"}  # its parent

    qtbot.mouseClick(graph, Qt.MouseButton.LeftButton, pos=graph.node_rect("birds:1").center())
    assert page.table.current_ref() == "birds:1"
    qtbot.mouseClick(graph, Qt.MouseButton.LeftButton,
                     pos=graph.node_rect(f"birds@{info.digest[:12]}").center())
    assert window.stack.currentWidget() is window.datasets


def test_compare_shows_the_versions_side_by_side_and_marks_differences(window, qtbot):
    ws = window.ws
    trained(ws, "penguins", 0.95)
    trained(ws, "penguins", 0.97, "boosted-trees")
    trained(ws, "penguins", 0.96, parent="penguins:2")
    labels.set_alias(ws, "penguins", "production", "2")
    page = show(window)
    page.table.select(["penguins:2", "penguins:1"], "penguins:2")
    assert page.compare_btn.isEnabled()
    dialog = page.open_compare()
    assert dialog.refs == ["penguins:1", "penguins:2"]
    assert dialog.table.horizontalHeaderItem(1).text() == "penguins:1"
    assert dialog.row_values("accuracy") == ["0.9500", "0.9700"]
    assert dialog.row_values("family") == ["linear", "boosted-trees"]
    assert ("metrics", "accuracy") in dialog.different
    assert ("about", "kind") not in dialog.different
    dialog.only_diff.setChecked(True)
    assert dialog.row_values("kind") is None and dialog.row_values("accuracy") is not None

    dialog.tabs.setCurrentIndex(1)
    assert dialog.metric_box.currentText() == "accuracy"
    assert [p["value"] for p in dialog.series] == [0.95, 0.97, 0.96]
    assert dialog.chart_stack.currentWidget() is dialog.plot
    dialog.metric_box.setCurrentText("f1_macro")
    assert [p["value"] for p in dialog.series] == [0.93, 0.95, 0.94]
    dialog.close()

    page.table.select(["penguins:3"], "penguins:3")  # one selected: all its model's versions
    dialog = page.open_compare()
    assert dialog.refs == ["penguins:1", "penguins:2", "penguins:3"]
    assert dialog.row_values("parent") == ["—", "—", "penguins:2"]


def test_an_imported_version_renders_everywhere(window, qtbot):
    ws = window.ws
    trained(ws, "penguins", 0.95)
    v = imported(ws)
    page = show(window, v.ref)
    assert page.table.current_ref() == "outside:1"
    assert cell(page, v.ref, "Kind") == "imported onnx"
    details = page.details
    assert details.title.text() == "outside:1"
    assert "imported onnx from /somewhere/model.onnx" in details.origin.text()
    assert details.metrics.text() == "not tested here"
    assert "input FP32 [-1, 10]" in details.tensors.text()
    assert not page.evaluation_btn.isEnabled()
    assert "imported" in page.evaluation_btn.toolTip()
    assert page.open_evaluation() is None and page.evaluation is None
    assert page.serve_btn.isEnabled()
    assert "outside" in page.card.toPlainText()
    nodes = {n.kind: n for n in page.lineage.nodes()}
    assert nodes["source"].title == "imported from" and nodes["source"].text == "model.onnx"
    menu = page.menu_for(v.ref)
    assert menu.actions()[0].text() == "Evaluation" and not menu.actions()[0].isEnabled()
    assert page.open_card() is not None
    page.table.select(["penguins:1", "outside:1"], "outside:1")
    dialog = page.open_compare()
    assert dialog.refs == ["outside:1", "penguins:1"]  # by model, then version
    assert dialog.row_values("source") == ["import", "training"]
    dialog.tabs.setCurrentIndex(1)
    assert dialog.model_box.count() == 2
    dialog.model_box.setCurrentText("outside")
    assert "outside" in dialog.chart_note.text()  # no version of it has a test metric
    window.resize(1024, 700)
    QApplication.processEvents()
    assert clipped(window) == []


def tiny_onnx(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "tiny", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def drop(page: Any, paths: list[Path]) -> None:
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, data,
                       Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    page.dropEvent(event)


@pytest.mark.timeout(120)
def test_a_dropped_model_is_imported_and_exports_as_a_bundle(window, qtbot, tmp_path):
    page = show(window)
    bad = tmp_path / "notes.csv"
    bad.write_text("a,b\n1,2\n")
    drop(page, [tiny_onnx(tmp_path / "relu.onnx"), bad])
    assert page.transfers.running and page.transfers.bar.isVisible()
    qtbot.waitUntil(lambda: not page.transfers.running and not page.transfers.pending
                    and page.dialog is not None, timeout=60_000)
    assert page.table.row_of("relu:1") is not None
    assert "Could not import notes.csv" in page.dialog.text()
    assert "not a model file" in page.dialog.text()
    page.dialog.close()
    page.dialog = None
    page.select_version("relu:1")
    assert cell(page, "relu:1", "Kind") == "imported onnx"
    assert not page.evaluation_btn.isEnabled()

    dest = tmp_path / "relu.zip"
    assert page.transfers.actions["export_bundle"].isEnabled()
    assert page.transfers.export("bundle", dest, ["relu:1"])
    assert not page.transfers.actions["export_bundle"].isEnabled()  # one transfer at a time
    qtbot.waitUntil(lambda: not page.transfers.running, timeout=60_000)
    assert str(dest) in page.dialog.text()
    with zipfile.ZipFile(dest) as z:
        assert json.loads(z.read("manifest.json"))["name"] == "relu"


@pytest.mark.timeout(120)
def test_a_version_pushed_to_the_hub_pulls_back(window, qtbot, tmp_path, monkeypatch):
    from fake_hub import FakeHub, serve

    from studio.core.registry.transfer.importer import import_model
    from studio.gui.pages.models.hub_dialogs import PullDialog, PushDialog

    ws = window.ws
    # a real graph: a pull checks what it takes in as any import does
    v = import_model(ws, tiny_onnx(tmp_path / "relu.onnx"), "penguins")
    page = show(window, v.ref)
    for key, value in {"HF_HUB_DISABLE_XET": "1", "HF_HUB_CACHE": str(tmp_path / "cache"),
                       "HF_TOKEN_PATH": str(tmp_path / "no-token"),
                       "HF_STORED_TOKENS_PATH": str(tmp_path / "no-tokens")}.items():
        monkeypatch.setenv(key, value)  # what the transfer's process reads
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with serve(FakeHub()) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        page.transfers.ask_push()
        push = page.dialog
        assert isinstance(push, PushDialog) and push.isVisible()
        push.repo.setText("not a repo name!")
        push.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
        assert push.isVisible() and "owner/name" in push.error.text()
        push.repo.setText("me/penguins")
        push.token.setText("hf_secret")
        push.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
        assert page.transfers.running and not push.isVisible()
        qtbot.waitUntil(lambda: not page.transfers.running, timeout=60_000)
        assert "me/penguins" in page.dialog.text(), page.dialog.text()
        sent = hub.repos["me/penguins"]
        assert sent.private and "model.onnx" in sent.commits[sent.refs["main"]]
        spec = ws.db.conn.execute("SELECT spec FROM jobs WHERE kind = 'model-push'").fetchone()
        assert "hf_secret" not in spec[0]  # the token never reaches the stored spec

        page.transfers.ask_pull()
        pull = page.dialog
        assert isinstance(pull, PullDialog)
        pull.repo.setText("me/penguins")
        pull.name.setText("pulled")
        pull.token.setText("hf_secret")
        pull.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
        assert page.transfers.bar.isVisible()
        qtbot.waitUntil(lambda: not page.transfers.running, timeout=60_000)
    assert page.table.current_ref() == "pulled:1", page.dialog and page.dialog.text()
    assert "hf://me/penguins" in page.details.origin.text()


def test_an_alias_set_in_a_terminal_appears_without_a_restart(window, qtbot):
    page = show(window)
    terminal = Workspace.open(window.ws.root)  # another process's connection, as `studio` has
    try:
        trained(terminal, "penguins", 0.95)
        qtbot.waitUntil(lambda: page.table.row_of("penguins:1") is not None, timeout=5_000)
        labels.set_alias(terminal, "penguins", "production", "1")
        labels.set_tags(terminal, "penguins:1", {"team": "ecology"})
    finally:
        terminal.db.close()
    qtbot.waitUntil(lambda: cell(page, "penguins:1", "Aliases") == "production", timeout=5_000)
    assert cell(page, "penguins:1", "Tags") == "team=ecology"
    assert page.details.aliases.chips == ["production"]
