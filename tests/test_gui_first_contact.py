"""The app at first contact: a sample one click away, the target a person would pick, a model
name that keeps its meaning, a status bar that stays one line, and work done in a terminal
showing up without a restart."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import run_studio
from PySide6.QtCore import Qt

from studio.gui.app import create_window


def _houses_csv(folder) -> str:
    rng = np.random.default_rng(0)
    n = 200
    area = rng.uniform(30, 200, n)
    frame = pd.DataFrame({"city": rng.choice(["Lyon", "Nice", "Lille"], n),
                          "area_m2": area.round(1), "rooms": rng.integers(1, 7, n),
                          "price": (area * 7000 + rng.normal(0, 20_000, n)).round()})
    path = folder / "houses.csv"
    frame.to_csv(path, index=False)
    return str(path)


@pytest.mark.timeout(120)
def test_the_sample_is_a_button_and_species_is_suggested(window, qtbot):
    page = window.datasets
    assert page.right.currentWidget() is page.empty
    qtbot.mouseClick(page.empty_sample_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(page.profile), timeout=60_000)
    qtbot.waitUntil(lambda: bool(page.form.model_name.text()), timeout=10_000)
    assert page.form.target.currentText() == "species"
    assert page.form.target_note.text() == "suggested: named like a target"
    assert page.form.task.currentText() == "classification"
    assert page.form.model_name.text() == "penguins"
    assert page.form.model_note.text() == "a new model"


@pytest.mark.timeout(240)
def test_work_from_a_terminal_appears_and_names_keep_their_meaning(window, qtbot, tmp_path):
    home = window.ws.root
    assert run_studio(home, "data", "import", _houses_csv(tmp_path)).returncode == 0
    page = window.datasets
    qtbot.waitUntil(lambda: page.list.count() == 1, timeout=10_000)  # no restart needed
    qtbot.waitUntil(lambda: bool(page.profile), timeout=60_000)
    assert page.form.target.currentText() == "price"
    trained = run_studio(home, "train", "houses", "--target", "city", "--epochs", "2",
                         timeout=240)
    assert trained.returncode == 0, trained.stderr
    qtbot.waitUntil(lambda: window.models.table.rowCount() == 1, timeout=10_000)
    shown = page.data
    # the form on screen is left as it is; the price is no second version of the city model
    assert page.form.target.currentText() == "price"
    qtbot.waitUntil(lambda: page.form.model_name.text() == "houses-price", timeout=10_000)
    assert "houses:1 predicts “city”" in page.form.model_note.text()
    page.form.model_name.setText("houses")
    page.form._on_model_edited("houses")
    assert page.form.model_note.text().startswith("⚠ houses:1 predicts “city”")
    page.form.model_name.setText("my model")
    page.form._on_model_edited("my model")  # half-typed or invalid: said, never an exception
    assert page.form.model_note.text() == "⚠ not a valid name"
    assert page.data is shown  # the open dataset was not read again by the refreshes


def test_the_status_bar_keeps_one_line_and_drops_a_stale_error(window, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: None)
    window.error("Could not import x.csv:\nline 3: expected 4 fields, found 5")
    assert "\n" not in window.status_text.text()
    assert window.status_text.text().startswith("Could not import x.csv:")
    assert "line 3" in window.status_text.toolTip()
    height = window.statusBar().height()
    window.go(window.models)
    assert window.status_text.text() == "Ready"
    assert window.statusBar().height() == height


@pytest.mark.timeout(240)
def test_models_sort_and_offer_serve_card_and_copy(qtbot, trained_home):
    from PySide6.QtGui import QGuiApplication

    w = create_window(trained_home)
    qtbot.addWidget(w)
    w.show()
    w.load()
    models = w.models
    assert models.table.rowCount() == 1
    models.table.sortByColumn(3, Qt.SortOrder.AscendingOrder)  # by test score
    assert models._selected().ref == "penguins:1"
    dialog = models.open_card()
    assert "penguins:1" in dialog.findChild(type(models.card)).toMarkdown()
    dialog.close()
    from studio.gui.pages.models.view import copy_text

    copy_text("penguins:1")
    assert QGuiApplication.clipboard().text() == "penguins:1"
    served: list[str] = []
    models.serve_requested.disconnect()
    models.serve_requested.connect(served.append)
    models._on_serve()
    assert served == ["penguins:1"]
    w.close()


@pytest.mark.timeout(120)
def test_an_import_says_how_it_read_the_file(window, qtbot, tmp_path):
    import json

    from test_gui import drop

    path = tmp_path / "api.json"
    path.write_text(json.dumps({"count": 3, "data": [{"a": i, "b": f"x{i}"} for i in range(3)]}))
    drop(window, [path])
    qtbot.waitUntil(lambda: window.status_text.text().startswith("Imported"), timeout=60_000)
    assert window.status_text.text() == (
        "Imported api.json as api: 3 rows × 2 columns (JSON) — rows from the key 'data'")


def _damaged_workbook(path):
    """A real .xlsx whose first sheet's compressed data is corrupted (a bad download)."""
    import zipfile

    good = path.with_name("good.xlsx")
    with pd.ExcelWriter(good) as writer:
        pd.DataFrame({"a": range(200), "b": ["x"] * 200}).to_excel(
            writer, sheet_name="Data", index=False)
        pd.DataFrame({"c": [1]}).to_excel(writer, sheet_name="Notes", index=False)
    raw = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as z:
        info = z.getinfo("xl/worksheets/sheet1.xml")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for i in range(start + 8, start + 40):
        raw[i] ^= 0x5A
    path.write_bytes(bytes(raw))
    return path


@pytest.mark.timeout(120)
def test_a_damaged_workbook_is_refused_and_the_next_file_still_imports(
        window, qtbot, tmp_path, monkeypatch):
    from test_gui import drop

    shown: list[str] = []
    monkeypatch.setattr(window, "error", shown.append)
    bad = _damaged_workbook(tmp_path / "report.xlsx")
    drop(window, [bad, tmp_path.parent / "nothing-here.csv"])
    drop(window, [__import__("conftest").PENGUINS])
    qtbot.waitUntil(lambda: window.datasets.list.count() == 1, timeout=60_000)
    assert window.datasets.list.item(0).data(Qt.ItemDataRole.UserRole) == "penguins"
    assert any("report.xlsx" in message for message in shown)
    qtbot.waitUntil(lambda: not window._importing, timeout=10_000)  # the queue is not stuck
