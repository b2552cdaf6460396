"""What a person sees: a table that opens at its first column with readable numbers, charts
that say something about text and many categories, and a preprocessing dialog whose controls
mean what they show."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QApplication
from synthetic import houses, shapes

SHOTS = os.environ.get("STUDIO_SCREENSHOTS")
SIZES = ((1280, 800), (1024, 700))
PENGUINS = Path(__file__).resolve().parents[1] / "resources" / "samples" / "penguins.csv"


def shot(widget, name: str) -> None:
    """Save ``widget`` at each size in SIZES (only when STUDIO_SCREENSHOTS names a folder)."""
    if not SHOTS:
        return
    from PySide6.QtWidgets import QApplication

    Path(SHOTS).mkdir(parents=True, exist_ok=True)
    for w, h in SIZES:
        widget.resize(w, h)
        QApplication.processEvents()  # relayout first, as a person would see it
        widget.grab().save(str(Path(SHOTS) / f"{name}-{w}x{h}.png"))


def drop(window, paths: list[Path]) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    window.dropEvent(QDropEvent(QPointF(400, 300), Qt.DropAction.CopyAction, mime,
                                Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier))


# -- the datasets page -------------------------------------------------------------------------

def test_a_text_column_is_profiled_by_its_lengths_and_words() -> None:
    from studio.core.datasets.profile import STOP_WORDS, column_profile

    col = column_profile(houses(300)["review"])
    assert col["kind"] == "text" and "top" not in col
    lengths = col["lengths"]
    assert sum(lengths["counts"]) == 300
    assert lengths["edges"][0] < lengths["min"] <= lengths["median"] <= lengths["max"]
    words = [w for w, _ in col["words"]]
    assert len(words) == 12 and "film" in words
    assert not set(words) & STOP_WORDS and all(len(w) > 1 for w in words)
    counts = [n for _, n in col["words"]]
    assert counts == sorted(counts, reverse=True)


def open_houses(window, qtbot, tmp_path):
    houses(300).to_csv(tmp_path / "houses.csv", index=False)
    drop(window, [tmp_path / "houses.csv"])
    qtbot.waitUntil(lambda: bool(window.datasets.profile), timeout=60_000)
    page = window.datasets
    qtbot.waitUntil(lambda: "Seeded split" in page.form.split_label.text(), timeout=10_000)
    return page


@pytest.mark.timeout(120)
def test_datasets_page_opens_at_the_first_column_with_readable_cells(window, qtbot,
                                                                      tmp_path) -> None:
    page = open_houses(window, qtbot, tmp_path)
    assert page.form.target.currentText() == "price"  # named like a target
    page.set_target("sentiment")  # the last column: chosen, not scrolled to
    QApplication.processEvents()
    bar = page.table.horizontalScrollBar()
    assert bar.maximum() > 0 and bar.value() == 0
    assert page.table.columnAt(0) == 0  # the first column is what shows at the left
    names = page.data.column_names
    cell = {n: page.model.data(page.model.index(0, names.index(n)))
            for n in ("id", "year_built", "price", "area_m2")}
    assert cell["price"] == "1,177,710"
    assert "," not in cell["id"] and "," not in cell["year_built"]
    assert cell["area_m2"] in ("12.50", "3.25", "80.75", "120.00")
    long = names.index("distance_to_the_nearest_railway_station_in_kilometres_as_the_crow_flies")
    tip = page.model.headerData(long, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole)
    assert tip.startswith(names[long]) and tip.endswith("numeric")
    shot(window, "datasets-houses")

    # a person's click in the profile does scroll the table to that column
    row = [c["name"] for c in page.columns.profile].index(names[long])
    item = page.columns.table.item(row, 0)
    page.columns.table.scrollToItem(item)
    rect = page.columns.table.visualItemRect(item)
    qtbot.mouseClick(page.columns.table.viewport(), Qt.MouseButton.LeftButton,
                     pos=rect.center())
    assert bar.value() > 0


@pytest.mark.timeout(120)
def test_text_and_many_categories_get_charts_that_read(window, qtbot, tmp_path) -> None:
    page = open_houses(window, qtbot, tmp_path)
    page.columns.select("review")  # text: lengths, and words named on the left
    assert page.columns.chart_kind == "text"
    ticks = page.columns._words.getAxis("left")._tickLevels[0]
    assert len(ticks) == 8 and "film" in {t for _, t in ticks}
    assert "words per value" in page.columns.detail.text()
    shot(window, "datasets-houses-text")
    page.columns.select("city")  # 40 cities: horizontal bars, named on the left
    assert page.columns.chart_kind == "top values"
    assert not page.columns._words.isVisible()
    assert len(page.columns._chart.getAxis("left")._tickLevels[0]) == 10
    assert "(10 of 40)" in page.columns._chart.plotItem.titleLabel.text
    shot(window, "datasets-houses-categories")
    page.columns.select("price")
    assert page.columns.chart_kind == "histogram"
    assert page.columns._chart.getAxis("left")._tickLevels is None


@pytest.mark.timeout(120)
def test_penguins_read_well(window, qtbot) -> None:
    drop(window, [PENGUINS])
    qtbot.waitUntil(lambda: bool(window.datasets.profile), timeout=60_000)
    page = window.datasets
    names = page.data.column_names
    column = {n: page.model.head_texts(names.index(n), 5) for n in names}
    assert column["year"] == ["2007"] * 5
    assert column["bill_length_mm"][:2] == ["39.1", "39.5"]
    assert column["body_mass_g"][0] == "3,750"
    assert page.table.horizontalScrollBar().value() == 0
    shot(window, "datasets-penguins")


@pytest.mark.timeout(120)
def test_an_image_dataset_profiles_its_label_not_its_manifest(window, qtbot, tmp_path) -> None:
    drop(window, [shapes(tmp_path / "shapes", per_class=6, size=32)])
    qtbot.waitUntil(lambda: bool(window.datasets.profile), timeout=60_000)
    columns = window.datasets.columns
    assert [c["name"] for c in columns.profile] == ["label"]
    assert columns.table.rowCount() == 1
    assert columns.note.isVisible() and "12 pictures, all 32×32 px" in columns.note.text()
    assert "constant" not in columns.table.item(0, 0).text()
    qtbot.waitUntil(lambda: "Seeded split" in window.datasets.form.split_label.text(),
                    timeout=10_000)
    shot(window, "datasets-images")


# -- the preprocessing dialog -----------------------------------------------------------------

@pytest.mark.timeout(120)
def test_constant_fill_takes_a_number_and_unused_columns_grey_out(window, qtbot,
                                                                  tmp_path) -> None:
    houses(300).to_csv(tmp_path / "houses.csv", index=False)
    drop(window, [tmp_path / "houses.csv"])
    qtbot.waitUntil(lambda: bool(window.datasets.profile), timeout=60_000)
    window.datasets.set_target("sentiment")  # the price is a column to clean, not to predict
    dialog = window.datasets.form.edit_recipe()
    qtbot.waitUntil(lambda: dialog.preview_model.rowCount() > 0, timeout=30_000)
    price = dialog.rows["price"]
    value = price["fill_value"]
    assert not value.isVisible() and not value.isEnabled()  # the median needs no value
    price["fill"].setCurrentText("constant")
    assert value.isVisible() and value.isEnabled() and value.text() == "0"
    value.setText("")
    qtbot.keyClicks(value, "-1.5")
    assert dialog.options()["columns"]["price"] == {"fill": "constant", "fill_value": -1.5}
    qtbot.waitUntil(lambda: "Fitting" not in dialog.status.text(), timeout=30_000)
    value.setText("")  # no number: nothing can be accepted, the preview says why
    assert not dialog.ok_btn.isEnabled()
    qtbot.waitUntil(lambda: "Type a number" in dialog.status.text(), timeout=5_000)
    qtbot.keyClicks(value, "abc")  # the field takes no letters
    assert value.text() == ""
    qtbot.keyClicks(value, "250000")
    assert dialog.ok_btn.isEnabled()
    qtbot.waitUntil(lambda: "Tensors" in dialog.status.text(), timeout=30_000)

    rooms = dialog.rows["rooms"]
    rooms["use"].setChecked(False)
    assert not any(rooms[k].isEnabled() for k in ("fill", "encode", "clip", "fill_value"))
    rooms["use"].setChecked(True)
    assert all(rooms[k].isEnabled() for k in ("fill", "encode", "clip"))
    assert not rooms["fill_value"].isEnabled()
    review = dialog.rows["review"]
    review["use"].setChecked(False)
    assert not review["encode"].isEnabled()
    review["use"].setChecked(True)
    assert review["encode"].isEnabled() and not review["fill"].isEnabled()
    price["use"].setChecked(False)
    assert not value.isEnabled() and dialog.ok_btn.isEnabled()  # a dropped column's value
    price["use"].setChecked(True)
    qtbot.waitUntil(lambda: not dialog._debounce.isActive() and not dialog._fitting
                    and "Tensors" in dialog.status.text(), timeout=30_000)
    shot(dialog, "preprocessing-table")
    dialog.accept()
    assert window.datasets.form.recipe_options["columns"]["price"] == {
        "fill": "constant", "fill_value": 250000.0}


@pytest.mark.timeout(120)
def test_image_preprocessing_shows_the_pictures_at_the_chosen_size(window, qtbot,
                                                                   tmp_path) -> None:
    drop(window, [shapes(tmp_path / "shapes", per_class=10, size=40)])
    qtbot.waitUntil(lambda: bool(window.datasets.profile), timeout=60_000)
    page = window.datasets
    qtbot.waitUntil(lambda: page.form.task.currentText() == "image-classification", timeout=5_000)
    dialog = page.form.edit_recipe()
    qtbot.waitUntil(lambda: dialog.pictures.count() > 0, timeout=30_000)
    assert dialog.pictures.isVisible()
    assert dialog.pictures.count() == 12
    assert {dialog.pictures.item(i).text() for i in range(12)} == {"circle", "square"}
    assert "64×64 px" in dialog.pictures.item(0).toolTip()
    dialog.rows["image"]["encode"].setCurrentText("32×32 px")
    qtbot.waitUntil(lambda: "32×32 px" in dialog.pictures.item(0).toolTip(), timeout=30_000)
    icon = dialog.pictures.item(0).icon()
    assert not icon.isNull()
    shot(dialog, "preprocessing-images")


def test_a_table_dialog_has_no_picture_strip(window, qtbot) -> None:
    drop(window, [PENGUINS])
    qtbot.waitUntil(lambda: bool(window.datasets.profile), timeout=60_000)
    window.datasets.set_target("sentiment")  # the price is a column to clean, not to predict
    dialog = window.datasets.form.edit_recipe()
    qtbot.waitUntil(lambda: dialog.preview_model.rowCount() > 0, timeout=30_000)
    assert not dialog.pictures.isVisible()
    assert dialog.rows["island"]["fill_value"] is None  # categories: no number to fill
