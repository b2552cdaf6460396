"""The Evaluation view of a model version: what it shows is what evaluation.json says."""

from __future__ import annotations

import numpy as np
import pandas as pd
from evaluation_docs import classification_doc, register, regression_doc
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLabel

from studio.core.datasets.catalog import import_dataset

ODD = "<b>x</b> {y}"  # a class name that must show as typed
LABELS = [ODD, "Ωmega", "plain"]


def zoo(tmp_path, ws):
    """A table of 90 animals, a classifier's test rows (every other one) and its answers."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"size": np.round(rng.normal(5, 2, 90), 3),
                          "legs": rng.integers(0, 9, 90),
                          "note": [f"animal {i} “q” {{}}" for i in range(90)],
                          "kind": [LABELS[i % 3] for i in range(90)]})
    frame.to_csv(tmp_path / "zoo.csv", index=False)
    info = import_dataset(ws, tmp_path / "zoo.csv")
    index = list(range(0, 90, 2))
    actual = np.array([i % 3 for i in index])
    proba = rng.dirichlet([1, 1, 1], len(index))
    proba[np.arange(len(index)), actual] += rng.uniform(0, 1.2, len(index))
    proba /= proba.sum(1, keepdims=True)
    values = [{c: str(frame.at[i, c]) for c in ("size", "legs", "note")} for i in index]
    doc = classification_doc(info.name, LABELS, index, actual, proba, values,
                             [("size", 0.21, 0.03), ("legs", 0.05, 0.01), ("note", -0.01, 0.01)])
    return frame, info, doc


def open_view(window, qtbot, ref: str):
    models = window.models
    models.refresh(select=ref)
    window.go(models)
    assert models.evaluation_btn.isEnabled()
    models.evaluation_btn.click()
    view = models.evaluation
    assert view is not None and models.stack.currentWidget() is view
    QApplication.processEvents()
    return view


def click_cell(qtbot, heatmap, i: int, j: int) -> None:
    qtbot.mouseClick(heatmap, Qt.MouseButton.LeftButton, pos=heatmap.cell_rect(i, j).center())


def test_a_classification_shows_its_numbers_and_a_cell_lists_its_rows(window, qtbot, tmp_path):
    frame, info, doc = zoo(tmp_path, window.ws)
    register(window.ws, "zoo", info, "classification", "kind", LABELS, doc)
    view = open_view(window, qtbot, "zoo:1")
    assert view.cards.values["Accuracy"] == f"{doc['metrics']['accuracy']:.3f}"
    assert view.cards.values["Log loss"] == f"{doc['metrics']['log_loss']:.3f}"
    assert view.cards.values["Rows"] == "45"
    assert view.heatmap.counts == doc["confusion"]
    assert view.per_class.rowCount() == 3 and view.per_class.item(0, 0).text() == ODD
    assert view.curves.legend.rowCount() == 3 and len(view.curves.items[0]) == 2
    assert view.importance.count == 3
    wrong = sum(doc["confusion"][i][j] for i in range(3) for j in range(3) if i != j)
    assert view.worst.rowCount() == min(20, wrong) > 0

    rows = doc["rows"]
    i, j = next((i, j) for i in range(3) for j in range(3)
                if i != j and doc["confusion"][i][j] >= 2)
    expected = {r for r, a, p in zip(rows["index"], rows["actual"], rows["predicted"],
                                     strict=True) if (a, p) == (i, j)}
    click_cell(qtbot, view.heatmap, i, j)
    cell = view.cell_rows
    qtbot.waitUntil(lambda: cell.stack.currentWidget() is cell.table, timeout=10_000)
    model = cell.model
    names = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())]
    assert names[:2] == ["row", "confidence"] and "size" in names and "digest" not in names
    listed = [int(model.index(r, 0).data()) for r in range(model.rowCount())]
    assert sorted(listed) == sorted(expected)
    sizes = [model.index(r, names.index("note")).data() for r in range(model.rowCount())]
    assert sizes == [frame.at[r, "note"] for r in listed]  # the dataset's own rows
    assert cell.count.text().startswith(f"{len(expected)} rows, mistaken")

    click_cell(qtbot, view.heatmap, 1, 1)  # another cell replaces the list
    qtbot.waitUntil(lambda: model.rowCount() == doc["confusion"][1][1], timeout=10_000)


def test_a_200_class_matrix_paints_fast_and_a_cell_still_lists_its_rows(window, qtbot,
                                                                       tmp_path):
    import time

    k = 200
    labels = [f"species {c:03d}" for c in range(k)]
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"size": np.round(rng.normal(5, 2, 4 * k), 3),
                          "kind": [labels[i % k] for i in range(4 * k)]})
    frame.to_csv(tmp_path / "many.csv", index=False)
    info = import_dataset(window.ws, tmp_path / "many.csv")
    index = list(range(0, 4 * k, 2))
    actual = np.array([i % k for i in index])
    proba = rng.dirichlet(np.ones(k), len(index))
    proba[np.arange(len(index)), actual] += rng.uniform(0, 0.05, len(index))
    proba /= proba.sum(1, keepdims=True)
    values = [{"size": str(frame.at[i, "size"])} for i in index]
    doc = classification_doc(info.name, labels, index, actual, proba, values, None)
    register(window.ws, "many", info, "classification", "kind", labels, doc)
    view = open_view(window, qtbot, "many:1")
    heatmap = view.heatmap
    assert heatmap.counts == doc["confusion"]

    start = time.perf_counter()
    picture = heatmap.grab()
    took = time.perf_counter() - start
    assert not picture.isNull() and took < 1.0, f"{took:.2f} s to paint 200 classes"

    rows = doc["rows"]
    i, j = next((a, p) for a, p in zip(rows["actual"], rows["predicted"], strict=True)
                if a != p)
    expected = {r for r, a, p in zip(rows["index"], rows["actual"], rows["predicted"],
                                     strict=True) if (a, p) == (i, j)}
    click_cell(qtbot, heatmap, i, j)
    assert heatmap.selected == (i, j)
    cell = view.cell_rows
    assert cell.title.text() == f"Actual: {labels[i]}"
    qtbot.waitUntil(lambda: cell.stack.currentWidget() is cell.table, timeout=10_000)
    listed = [int(cell.model.index(r, 0).data()) for r in range(cell.model.rowCount())]
    assert sorted(listed) == sorted(expected)


def test_user_text_shows_literally(window, qtbot, tmp_path):
    _frame, info, doc = zoo(tmp_path, window.ws)
    # `studio evaluate` on other data: rows of a class the model never saw have no cell
    doc["unseen"] = {"rows": 2, "classes": {"<i>new</i>": 2}}
    doc["rows"]["actual"][:2] = [-1, -1]
    register(window.ws, "zoo", info, "classification", "kind", LABELS, doc)
    view = open_view(window, qtbot, "zoo:1")
    assert view.unseen.text().startswith("2 rows of classes the model never saw: <i>new</i> (2)")
    assert view.unseen.textFormat() == Qt.TextFormat.PlainText
    click_cell(qtbot, view.heatmap, 0, 0)
    title = view.cell_rows.title
    assert ODD in title.text() and title.textFormat() == Qt.TextFormat.PlainText
    assert "&lt;b&gt;x&lt;/b&gt; {y}" in title.toolTip()  # escaped: the tags show as typed
    legend = view.curves.legend.item(0, 0)
    assert legend.text() == ODD and "&lt;b&gt;" in legend.toolTip()
    showing = [label for label in view.findChildren(QLabel) if ODD in label.text()]
    assert showing and all(label.textFormat() == Qt.TextFormat.PlainText for label in showing)


def houses(tmp_path, ws, target: str):
    rng = np.random.default_rng(1)
    columns = {f"feature {k:02d}": rng.normal(size=120) for k in range(24)}
    frame = pd.DataFrame(columns)
    frame[target] = 200 + 30 * frame["feature 00"] + rng.normal(0, 5, 120)
    frame.to_csv(tmp_path / "houses.csv", index=False)
    info = import_dataset(ws, tmp_path / "houses.csv")
    index = list(range(0, 120, 3))
    actual = frame[target].to_numpy()[index]
    predicted = actual + rng.normal(0, 8, len(index))
    values = [{c: f"{frame.at[i, c]:.3f}" for c in list(columns)[:4]} for i in index]
    importance = [(c, 0.5 / (k + 1), 0.02) for k, c in enumerate(columns)]
    return info, regression_doc(info.name, index, actual, predicted, values, importance)


def test_a_regression_shows_its_errors(window, qtbot, tmp_path):
    target = "price <b>{€}</b>"
    info, doc = houses(tmp_path, window.ws, target)
    register(window.ws, "houses", info, "regression", target, None, doc)
    view = open_view(window, qtbot, "houses:1")
    m = doc["metrics"]
    assert view.cards.values["MAE"] == f"{m['mae']:.3f}"
    assert view.cards.values["R²"] == f"{m['r2']:.3f}"
    assert view.cards.values["MAPE"] == f"{m['mape']:.1%}"
    assert view.plots.points == 40 and view.plots.bars == 30
    assert view.importance.count == 20  # the top 20 of 24 columns
    assert view.worst.rowCount() == 20
    assert view.heatmap is None and view.tabs.count() == 3
    axis = view.plots.scatter.getAxis("bottom").labelText
    assert "&lt;b&gt;{€}&lt;/b&gt;" in axis  # pyqtgraph labels are HTML: escaped


def test_an_image_cell_shows_thumbnails(window, qtbot, tmp_path):
    from synthetic import shapes

    info = import_dataset(window.ws, shapes(tmp_path / "shapes", per_class=8, size=24))
    labels = ["circle", "square"]
    frame = pd.read_parquet(window.ws.blobs.path(info.digest))
    index = list(range(len(frame)))
    actual = np.array([labels.index(v) for v in frame["label"]])
    proba = np.full((len(index), 2), 0.2)
    proba[np.arange(len(index)), actual] = 0.8
    proba[[0, 9]] = proba[[0, 9]][:, ::-1]  # two mistakes, one each way
    values = [{"image": p} for p in frame["path"]]
    doc = classification_doc(info.name, labels, index, actual, proba, values, None)
    register(window.ws, "shapes", info, "classification", "label", labels, doc, "image")
    view = open_view(window, qtbot, "shapes:1")
    assert "single picture" in view.importance.findChild(QLabel).text()
    wrong_cell = (int(actual[0]), 1 - int(actual[0]))
    click_cell(qtbot, view.heatmap, *wrong_cell)
    cell = view.cell_rows
    qtbot.waitUntil(lambda: cell.stack.currentWidget() is cell.pictures, timeout=10_000)
    assert cell.pictures.count() == doc["confusion"][wrong_cell[0]][wrong_cell[1]]
    assert not cell.pictures.item(0).icon().isNull()
    qtbot.waitUntil(lambda: not view.worst.item(0, 0).icon().isNull(), timeout=10_000)


def test_a_version_without_evaluation_shows_its_manifest_metrics_and_the_hint(
        window, qtbot, tmp_path):
    _frame, info, _doc = zoo(tmp_path, window.ws)
    version = register(window.ws, "zoo", info, "classification", "kind", LABELS, None)
    test = version.manifest.raw["metrics"]["test"]
    view = open_view(window, qtbot, "zoo:1")
    assert view.cards.values["Accuracy"] == f"{test['accuracy']:.3f}"
    assert view.heatmap.counts == test["confusion"]
    assert "studio evaluate zoo:1 zoo" in view.hint.text()
    assert view.tabs.count() == 1 and view.worst is None
    click_cell(qtbot, view.heatmap, 0, 1)
    assert view.cell_rows.stack.currentWidget() is view.cell_rows.message
    assert "studio evaluate zoo:1 zoo" in view.cell_rows.message.text()


def test_the_view_opens_by_double_click_and_menu_and_fits_1024_by_700(window, qtbot, tmp_path):
    from test_gui import shot
    from test_gui_layout import clipped

    _frame, info, doc = zoo(tmp_path, window.ws)
    register(window.ws, "zoo", info, "classification", "kind", LABELS, doc)
    register(window.ws, "zoo", info, "classification", "kind", LABELS, None)
    houses_info, houses_doc = houses(tmp_path, window.ws, "price")
    register(window.ws, "houses", houses_info, "regression", "price", None, houses_doc)
    window.resize(1024, 700)
    models = window.models
    window.go(models)
    for ref in ("zoo:1", "zoo:2", "houses:1"):
        models.refresh(select=ref)
        QApplication.processEvents()
        row = next(r for r in range(models.table.rowCount())
                   if models.table.item(r, 0).text() == ref)
        rect = models.table.visualRect(models.table.model().index(row, 0))
        qtbot.mouseClick(models.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        qtbot.mouseDClick(models.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        view = models.evaluation
        assert view is not None and view.version.ref == ref
        assert models.stack.currentWidget() is view
        for k in range(view.tabs.count()):
            view.tabs.setCurrentIndex(k)
            QApplication.processEvents()
            assert clipped(window) == [], f"{ref}: {view.tabs.tabText(k)}"
            shot(window, f"evaluation-{ref.replace(':', '')}-{k}")  # STUDIO_SCREENSHOTS=DIR
        view.back.click()
        assert models.stack.currentWidget() is models.list_panel and models.evaluation is None

    menu = models.menu_for("zoo:1")  # what a right click on the row opens
    assert menu.actions()[0].text() == "Evaluation"
    menu.actions()[0].trigger()
    assert models.stack.currentWidget() is models.evaluation is not None
    assert models.evaluation.version.ref == "zoo:1"  # the row clicked, whatever was selected
    models.refresh(select="zoo:1")  # as a finished training does: its version is listed
    assert models.stack.currentWidget() is models.list_panel


def test_rows_are_taken_in_the_order_asked_across_row_groups(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from studio.core.datasets.lazy_table import LazyTable
    from studio.gui.pages.evaluation.source import take

    pq.write_table(pa.table({"n": list(range(35))}), tmp_path / "t.parquet", row_group_size=10)
    asked = [30, 2, 11, 2, 29, 9, 10]
    for table in (LazyTable(tmp_path / "t.parquet"), pq.read_table(tmp_path / "t.parquet")):
        assert take(table, asked).column("n").to_pylist() == asked
        assert take(table, []).num_rows == 0
