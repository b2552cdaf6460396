"""The GUI flow a person follows: drop → train → live curve → serve → try it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from studio.core.registry import list_versions

SAMPLE = Path(__file__).resolve().parents[1] / "resources" / "samples" / "penguins.csv"
SHOTS = os.environ.get("STUDIO_SCREENSHOTS")


def drop(window, paths: list[Path]) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(QPointF(400, 300), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)


def shot(window, name: str) -> None:
    if SHOTS:
        from PySide6.QtWidgets import QApplication

        QApplication.processEvents()  # pending relayouts first, as a person would see it
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        window.grab().save(str(Path(SHOTS) / f"{name}.png"))


@pytest.mark.timeout(240)
def test_drop_train_serve_try(window, qtbot):
    assert window.datasets.current is None  # the empty state invites a drop
    shot(window, "0-empty")

    drop(window, [SAMPLE])
    qtbot.waitUntil(lambda: bool(window.datasets.profile), timeout=60_000)
    assert window.datasets.current.name == "penguins"
    assert window.datasets.model.rowCount() == 344
    assert window.datasets.model.columnCount() == 8
    window.datasets.set_target("species")
    assert window.datasets.form.task.currentText() == "classification"
    qtbot.waitUntil(lambda: "train 240" in window.datasets.form.split_label.text(), timeout=10_000)
    assert "Adelie 106/23/23" in window.datasets.form.split_label.text()
    shot(window, "1-datasets")

    window.datasets.train_btn.click()  # one click: every family that fits, the best kept
    assert window.stack.currentWidget() is window.training
    assert not window.datasets.train_btn.isEnabled()
    qtbot.waitUntil(lambda: window.training.loss.points("val_loss") >= 3, timeout=90_000)
    qtbot.waitUntil(lambda: not window.training.running, timeout=120_000)
    assert "penguins:1" in window.training.result.text()
    board = window.training.board
    assert set(board.rows) == {"linear", "boosted-trees", "mlp"}  # every family for tables
    assert all(r.status == "done" for r in board.rows.values())
    winner = board.winner()
    assert winner is not None and winner.version == "penguins:1"
    assert window.training.shown == winner.family  # the curves end on the chosen family
    assert window.training.loss.points("val_loss") == len(
        window.training.series[winner.family]["val_loss"])
    shot(window, "2-training")

    versions = list_versions(window.ws)
    assert [v.ref for v in versions] == ["penguins:1"]
    assert versions[0].test_metrics["accuracy"] >= 0.95
    assert window.models.table.rowCount() == 1
    assert window.models.table.item(0, 0).text() == "penguins:1"
    assert window.models.table.item(0, 3).text().startswith("accuracy")
    window.go(window.models)
    shot(window, "3-models")

    window.serving.port.setValue(0)  # a free port: tests never collide with a real server
    window.models.serve_btn.click()
    assert window.stack.currentWidget() is window.serving
    qtbot.waitUntil(lambda: window.serving.predict_btn.isEnabled(), timeout=60_000)
    assert window.serving.url.startswith("http://127.0.0.1:")
    assert window.serving.url in window.serving.status.text()

    window.serving.fields["island"].setCurrentText("Biscoe")
    window.serving.fields["bill_length_mm"].setText("47.5")
    window.serving.fields["bill_depth_mm"].setText("14.8")
    window.serving.fields["flipper_length_mm"].setText("217")
    window.serving.fields["body_mass_g"].setText("5200")
    window.serving.predict_btn.click()
    qtbot.waitUntil(lambda: "Predicted" in window.serving.answer_text(), timeout=20_000)
    assert "Gentoo" in window.serving.answer_text()
    assert window.serving.bars.count() == 3
    shot(window, "4-serving")

    window.serving.stop()
    qtbot.waitUntil(lambda: not window.serving.running, timeout=10_000)


def test_bad_file_shows_a_message_and_imports_nothing(window, qtbot, tmp_path, monkeypatch):
    shown: list[str] = []
    monkeypatch.setattr(window, "error", shown.append)
    bad = tmp_path / "broken.csv"
    bad.write_bytes(b"\x00\x01\x02binary\x00")
    drop(window, [bad])
    qtbot.waitUntil(lambda: bool(shown), timeout=30_000)
    assert shown[0].count("broken.csv") == 1  # named once, not again in the error itself
    assert "binary" in shown[0]
    assert window.datasets.list.count() == 0
    assert window.import_job is None or not window.import_job.running


def test_a_workbook_with_several_sheets_asks_which(window, qtbot, tmp_path, monkeypatch):
    import pandas as pd

    from studio.gui.widgets import sheet_picker

    book = tmp_path / "book.xlsx"
    with pd.ExcelWriter(book, engine="openpyxl") as writer:
        pd.DataFrame({"title": ["Sales 2024"]}).to_excel(writer, sheet_name="Cover", index=False)
        pd.DataFrame({"a": range(50), "b": range(50)}).to_excel(writer, sheet_name="Data",
                                                                index=False)
    asked: list[tuple[list[str], int]] = []
    answers = iter([None, 0])  # Cancel, then the first sheet (not the preselected largest)

    def answer(_parent, _path, labels, current):
        asked.append((labels, current))
        return next(answers)

    monkeypatch.setattr(sheet_picker, "show_dialog", answer)
    drop(window, [book])
    qtbot.waitUntil(lambda: window.import_job is None and len(asked) == 1, timeout=10_000)
    assert asked[0] == (["Cover — 1 row × 1 column", "Data — 50 rows × 2 columns"], 1)
    assert window.datasets.list.count() == 0  # cancelled: skipped
    drop(window, [book])
    qtbot.waitUntil(lambda: bool(window.datasets.profile), timeout=60_000)
    assert window.datasets.current.name == "book"
    assert window.datasets.current.column_names == ["title"]
    assert window.datasets.current.details["sheet"] == "Cover"


def test_train_form_rejects_bad_input_without_starting_a_job(window, qtbot, monkeypatch):
    shown: list[str] = []
    monkeypatch.setattr(window, "error", shown.append)
    window.train({"dataset": "nope", "target": "species", "epochs": 5})
    assert shown and "nope" in shown[0]
    assert not window.training.running


@pytest.mark.timeout(120)
def test_a_training_process_killed_with_sigkill_is_shown_as_failed(window, qtbot):
    import signal

    from studio.jobs.records import get_job

    drop(window, [SAMPLE])
    qtbot.waitUntil(lambda: bool(window.datasets.profile), timeout=60_000)
    window.train({"dataset": "penguins", "target": "species", "family": "mlp",
                  "epochs": 5000})
    qtbot.waitUntil(lambda: window.training.loss.points("train_loss") >= 2, timeout=60_000)
    job = window.training.job
    os.kill(job.runner.proc.pid, signal.SIGKILL)
    qtbot.waitUntil(lambda: not window.training.running, timeout=30_000)
    assert "failed" in window.training.result.text()
    assert "signal 9" in window.training.result.text()
    assert get_job(window.ws, job.runner.job_id)["status"] == "failed"
    assert list_versions(window.ws) == []
    assert window.datasets.train_btn.isEnabled()  # the person can try again


def test_profile_panel_split_preview_rename_and_delete(window, qtbot, tmp_path):
    drop(window, [SAMPLE])
    qtbot.waitUntil(lambda: bool(window.datasets.profile), timeout=60_000)
    page = window.datasets
    page.columns.select("body_mass_g")
    assert page.columns.chart_kind == "histogram"
    assert "mean" in page.columns.detail.text()
    page.columns.select("island")
    assert page.columns.chart_kind == "top values"
    page.set_target("species")
    page.form.ratios[0].setValue(60)  # 60 + 15 + 15: not a whole
    assert "must be 100%" in page.form.split_label.text() and not page.train_btn.isEnabled()
    page.form.ratios[2].setValue(25)
    qtbot.waitUntil(lambda: "test 86" in page.form.split_label.text(), timeout=10_000)
    assert page.train_btn.isEnabled()
    page.rename("penguins", "birds")
    assert [page.list.item(i).text().split("\n")[0] for i in range(page.list.count())] == ["birds"]
    page.export("birds", tmp_path / "birds.csv")
    assert (tmp_path / "birds.csv").read_text().startswith("species,")
    page.delete("birds", confirm=False)
    assert page.list.count() == 0 and page.right.currentWidget() is page.empty


def test_image_folder_drop_shows_thumbnails(window, qtbot, tmp_path):
    from PIL import Image

    for cls, color in (("red", (220, 30, 30)), ("blue", (30, 30, 220))):
        (tmp_path / "colors" / cls).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (40 + i, 30), color).save(tmp_path / "colors" / cls / f"{i}.png")
    drop(window, [tmp_path / "colors"])
    qtbot.waitUntil(lambda: bool(window.datasets.profile), timeout=60_000)
    page = window.datasets
    assert page.view.currentWidget() is page.thumbs
    assert page.thumbs.count() == 6
    assert {page.thumbs.item(i).text() for i in range(6)} == {"red", "blue"}
    assert not page.thumbs.item(0).icon().isNull()
    assert page.form.target.currentText() == "label"
    shot(window, "5-images")


def test_a_damaged_picture_is_marked_not_drawn_as_a_thumbnail(window, qtbot, tmp_path):
    from PIL import Image

    from studio.core.datasets.catalog import import_dataset, load_frame

    for cls, color in (("red", (220, 30, 30)), ("blue", (30, 30, 220))):
        (tmp_path / "colors" / cls).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (40 + i, 30), color).save(tmp_path / "colors" / cls / f"{i}.png")
    page = window.datasets
    frame = load_frame(page.ws, import_dataset(page.ws, tmp_path / "colors"))
    blob = page.ws.blobs.path(frame["digest"].iloc[0])
    blob.write_bytes(blob.read_bytes()[:-1] + b"\0")
    from studio.gui.pages.datasets import _thumbnails

    page._show_thumbnails(_thumbnails(page.ws, frame))  # read in the loader's thread
    texts = [page.thumbs.item(i).text() for i in range(page.thumbs.count())]
    assert len(texts) == 4 and sum(t.endswith("(damaged)") for t in texts) == 1


def test_cancel_an_import_keeps_nothing(window, qtbot, tmp_path):
    import numpy as np
    import pandas as pd

    big = tmp_path / "big.csv"
    pd.DataFrame(np.random.default_rng(0).normal(size=(1_500_000, 4))).to_csv(big, index=False)
    window.import_paths([big])
    qtbot.waitUntil(lambda: window.cancel_btn.isVisible(), timeout=10_000)
    window.cancel_import()
    qtbot.waitUntil(lambda: not window._importing, timeout=60_000)  # the queue is idle
    assert window.datasets.list.count() == 0
    assert "cancelled" in window.status_text.text() or "Imported" in window.status_text.text()


@pytest.mark.timeout(180)
def test_preprocessing_dialog_preview_and_training_use_the_choices(window, qtbot):
    drop(window, [SAMPLE])
    qtbot.waitUntil(lambda: bool(window.datasets.profile), timeout=60_000)
    page = window.datasets
    page.set_target("species")
    dialog = page.form.edit_recipe()
    qtbot.waitUntil(lambda: dialog.preview_model.rowCount() > 0, timeout=30_000)
    assert dialog.preview_model.columnCount() == 10  # 5 numbers + island (3) + sex (2)
    dialog.rows["island"]["encode"].setCurrentText("ordinal")
    dialog.rows["year"]["use"].setChecked(False)
    dialog.rows["body_mass_g"]["encode"].setCurrentText("minmax")
    qtbot.waitUntil(lambda: dialog.preview_model.columnCount() == 7, timeout=30_000)
    shot(dialog, "6-preprocessing")
    dialog.accept()
    assert page.form.recipe_options["columns"]["year"] == {"drop": True}
    page.form.set_knob("epochs", 5)
    page.train_btn.click()
    qtbot.waitUntil(lambda: not window.training.running, timeout=120_000)
    recipe = list_versions(window.ws)[0].manifest.raw["recipe"]
    kinds = {f["name"]: f.get("scaling", f["kind"]) for f in recipe["features"]}
    assert kinds["island"] == "ordinal" and kinds["body_mass_g"] == "minmax"
    assert "year" not in kinds


@pytest.mark.timeout(240)
def test_image_dataset_trains_and_the_server_answers_a_chosen_picture(window, qtbot, tmp_path):
    from synthetic import shapes

    folder = shapes(tmp_path / "shapes", per_class=20, size=32)
    drop(window, [folder])
    qtbot.waitUntil(lambda: bool(window.datasets.profile), timeout=60_000)
    page = window.datasets
    qtbot.waitUntil(lambda: page.form.task.currentText() == "image-classification", timeout=5_000)
    assert [page.form.target.itemText(i) for i in range(page.form.target.count())] == ["label"]
    qtbot.waitUntil(lambda: page.train_btn.isEnabled(), timeout=10_000)
    dialog = page.form.edit_recipe()
    assert list(dialog.rows) == ["image"]
    dialog.rows["image"]["encode"].setCurrentText("32×32 px")
    qtbot.waitUntil(lambda: "3×32×32" in dialog.status.text(), timeout=30_000)
    shot(dialog, "7-image-preprocessing")
    dialog.accept()
    assert page.form.recipe_options == {"columns": {"image": {"size": 32}}}
    page.form.set_knob("epochs", 4)
    page.train_btn.click()
    qtbot.waitUntil(lambda: not window.training.running, timeout=120_000)
    assert "shapes:1" in window.training.result.text()
    shot(window, "8a-image-training")
    assert window.models.table.item(0, 1).text() == "image classification"
    window.go(window.models)
    shot(window, "8b-image-models")

    window.serving.port.setValue(0)
    window.models.serve_btn.click()
    qtbot.waitUntil(lambda: window.serving.predict_btn.isEnabled(), timeout=60_000)
    window.serving.predict_btn.click()  # no picture yet: said inline, nothing sent
    assert "choose an image first" in window.serving.answer_text()
    window.serving.fields["image"].set_path(folder / "circle" / "circle-0.png")
    window.serving.predict_btn.click()
    qtbot.waitUntil(lambda: "Predicted" in window.serving.answer_text(), timeout=20_000)
    assert window.serving.bars.count() == 2
    shot(window, "8-image-serving")
    window.serving.stop()
    qtbot.waitUntil(lambda: not window.serving.running, timeout=10_000)


def test_text_dataset_suggests_text_classification_and_previews_token_ids(
        window, qtbot, tmp_path):
    from synthetic import reviews

    reviews(120).to_csv(tmp_path / "reviews.csv", index=False)
    drop(window, [tmp_path / "reviews.csv"])
    qtbot.waitUntil(lambda: bool(window.datasets.profile), timeout=60_000)
    page = window.datasets
    assert page.form.target.currentText() == "sentiment"
    qtbot.waitUntil(lambda: page.form.task.currentText() == "text-classification", timeout=5_000)
    dialog = page.form.edit_recipe()
    qtbot.waitUntil(lambda: dialog.preview_model.rowCount() > 0, timeout=30_000)
    names = [dialog.preview_model.headerData(c, Qt.Orientation.Horizontal)
             for c in range(dialog.preview_model.columnCount())]
    assert names == ["length_hint", "tokens", "known words"]
    dialog.rows["review"]["encode"].setCurrentText("16 words")
    # 16 word slots, then 15 for the pairs of adjacent words
    qtbot.waitUntil(lambda: "tokens 31" in dialog.status.text(), timeout=30_000)
    assert "review: up to 16 words and 15 word pairs." in dialog.status.text()
    shot(dialog, "9-text-preprocessing")
    dialog.accept()
    assert page.form.recipe_options == {"columns": {"review": {"max_tokens": 16}}}
