"""The Compress page on a real workspace (a penguins mlp and boosted trees): what it offers
for each version, a real int8 run filling the table and the chart, Stop leaving no version,
aliases set from a result, and a collapsed result never aliased without a question."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from conftest import copied_workspace, penguins_workspace
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from studio.core import registry
from studio.core.errors import StudioError
from studio.core.registry.listing import version_rows
from studio.core.workspace import Workspace
from studio.gui.pages.compress.view import CompressPage
from studio.gui.pages.models import ask

RUN_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """penguins:1 an mlp, penguins:2 boosted trees; copied by each test that changes it."""
    return penguins_workspace(tmp_path_factory.mktemp("compress") / "ws",
                              ("mlp", "boosted-trees"))


@pytest.fixture
def ws(template: Path, tmp_path: Path) -> Workspace:
    with copied_workspace(template, tmp_path / "ws") as workspace:
        yield workspace


def page_on(qtbot, ws: Workspace, ref: str) -> CompressPage:
    page = CompressPage(ws)
    qtbot.addWidget(page)
    page.resize(1100, 700)
    page.show()
    page.refresh()
    assert page.select(ref)
    return page


def only(page: CompressPage, *names: str) -> None:
    for name, row in page.methods.rows.items():
        row.box.setChecked(name in names)


def test_the_page_lists_versions_and_what_applies_to_each(qtbot, ws):
    page = page_on(qtbot, ws, "penguins:1")
    listed = [page.picker.itemData(i) for i in range(page.picker.count())]
    assert listed == ["penguins:2", "penguins:1"]  # newest first
    assert "accuracy" in page.picker.itemText(1) and "mlp" in page.picker.itemText(1)
    rows = page.methods.rows
    assert rows["int8-dynamic"].box.isEnabled() and rows["int8-dynamic"].box.isChecked()
    assert page.run_btn.isEnabled()
    assert page.table.refs() == ["penguins:1"]  # the source first, nothing made from it yet

    page.select("penguins:2")  # boosted trees: no weight matrices
    for name in ("int8-dynamic", "int8-static", "fp16", "prune"):
        assert not rows[name].box.isEnabled(), name
        assert not rows[name].box.isChecked(), name
        assert rows[name].reason.isVisible()
        assert "boosted-tree" in rows[name].reason.text()
        assert "boosted-tree" in rows[name].box.toolTip()
    assert rows["distill"].box.isEnabled()
    assert not page.run_btn.isEnabled()  # nothing that applies is ticked
    assert "Tick" in page.run_btn.toolTip()
    assert not page.select("penguins:9")


def test_a_chain_after_distillation_opens_every_method_to_boosted_trees(qtbot, ws):
    from studio.gui.pages.compress import plan

    page = page_on(qtbot, ws, "penguins:2")
    rows, methods = page.methods.rows, page.methods
    methods.chain.setChecked(True)
    assert not rows["prune"].box.isEnabled()
    rows["distill"].box.setChecked(True)  # the student is a network: it can be pruned
    assert rows["prune"].box.isEnabled() and rows["int8-dynamic"].box.isEnabled()
    rows["prune"].box.setChecked(True)
    rows["int8-dynamic"].box.setChecked(True)
    assert page.run_btn.isEnabled()
    spec = plan.spec("penguins:2", methods.steps(), True, None)
    assert [s["method"] for s in spec["steps"]] == ["distill", "prune", "int8-dynamic"]
    rows["fp16"].box.setChecked(True)  # two quantizations: a chain quantizes once
    assert not page.run_btn.isEnabled() and "quantizes once" in page.run_btn.toolTip()
    rows["distill"].box.setChecked(False)  # back to trees: nothing else applies
    assert methods.ticked() == []
    assert not rows["prune"].box.isEnabled()


def test_a_version_whose_data_is_gone_asks_for_a_dataset(qtbot, ws, tmp_path, penguins_csv):
    from studio.core.datasets import catalog

    catalog.delete_dataset(ws, "penguins")
    lines = penguins_csv.read_text().splitlines()
    (tmp_path / "later.csv").write_text("\n".join(lines[:-1]) + "\n")  # other content
    catalog.import_dataset(ws, tmp_path / "later.csv", name="later")
    page = page_on(qtbot, ws, "penguins:1")
    methods = page.methods
    assert methods.data_box.isVisible() and methods.dataset_row.isVisible()
    assert "not in this workspace" in methods.data_note.text()
    assert "--dataset" not in methods.data_note.text()  # the CLI's words are not the page's
    assert page.run_btn.isEnabled()  # int8 (dynamic) needs no data: it is measured only
    only(page, "int8-static")
    assert not page.run_btn.isEnabled()
    assert "choose a dataset" in page.run_btn.toolTip()
    methods.dataset.setCurrentIndex(methods.dataset.findData("later"))
    assert page.run_btn.isEnabled()
    assert methods.chosen_dataset() == "later"


def test_int8_runs_fills_the_table_and_the_chart_and_sets_an_alias(qtbot, ws, monkeypatch):
    page = page_on(qtbot, ws, "penguins:1")
    only(page, "int8-dynamic")
    assert page.run()
    assert page.bar.stop_btn.isVisible() and not page.run_btn.isEnabled()
    qtbot.waitUntil(lambda: not page.running, timeout=RUN_TIMEOUT_MS)

    assert len(page.table.rows) == 2, page.bar.text.text()
    row = page.table.rows[1]
    assert row["status"] == "done" and row["method"] == "int8-dynamic"
    made = registry.get_version(ws, row["version"])  # the result is a registered version
    assert made.manifest.compression.method == "int8-dynamic"
    assert made.manifest.compression.parent == "penguins:1"
    assert page.table.item(1, 0).text() == row["version"]
    assert page.table.item(1, 4).text().endswith("×") and row["size_ratio"] < 0.5
    assert page.table.item(0, 8).text() != "—"  # the source's p50, from the run's measure
    assert "registered" in page.bar.text.text()

    chart = page.chart
    assert [i for i, _, _ in chart.points] == [0, 1]
    assert chart.points[0][1] == 1.0 and chart.points[1][1] == pytest.approx(row["size_ratio"])
    page.table.select_index(0)
    spot = chart.point_position(1)
    qtbot.mouseClick(chart.plot.viewport(), Qt.MouseButton.LeftButton, pos=spot.toPoint())
    qtbot.waitUntil(lambda: page.table.selected_index() == 1, timeout=5_000)
    chart.set_axis("latency")
    assert chart.points[1][1] == pytest.approx(row["latency_ratio"])

    assert page.alias_btn.isEnabled()
    dialog = page.ask_alias()
    assert dialog.alias() == "production"
    dialog.accept()
    assert registry.get_version(ws, "penguins@production").ref == row["version"]
    assert "production" in page.bar.text.text()


def test_stop_during_a_run_ends_it_cancelled_with_no_new_version(qtbot, ws):
    before = [r.ref for r in version_rows(ws)]
    page = page_on(qtbot, ws, "penguins:1")
    only(page, "int8-dynamic", "fp16")
    seen: list[object] = []
    assert page.run()
    page.job.events.connect(lambda batch: seen.extend(batch))
    qtbot.waitUntil(lambda: bool(seen), timeout=RUN_TIMEOUT_MS)  # the child is at work
    page.stop()
    assert not page.bar.stop_btn.isEnabled()
    with qtbot.waitSignal(page.job.finished, timeout=RUN_TIMEOUT_MS) as ended:
        pass
    assert ended.args[0].cancelled
    qtbot.waitUntil(lambda: not page.running, timeout=5_000)
    assert [r.ref for r in version_rows(ws)] == before
    assert "no half-made version" in page.bar.text.text()
    assert page.table.refs() == ["penguins:1"]
    assert page.run_btn.isEnabled()


def collapsed_result(ws: Workspace) -> registry.Version:
    """A result as the lab registers one that lost 12.3 points (its model the source's)."""
    source = registry.get_version(ws, "penguins:1")
    manifest = {k: copy.deepcopy(v) for k, v in source.manifest.raw.items()
                if k not in ("format", "name", "version", "created", "files", "lineage")}
    measure = {"file_bytes": 1000, "parameters": 10, "latency_p50_ms": 0.03,
               "latency_p99_ms": 0.05, "throughput_rows_s": 1e5, "peak_memory_bytes": 1,
               "threads": 1}
    manifest["compression"] = {
        "method": "prune", "parent": "penguins:1", "root": "penguins:1",
        "settings": {"kind": "structured", "sparsity": 0.9, "epochs": 10}, "details": {},
        "metric": "accuracy", "value": 0.858, "source_value": 0.981, "delta_points": -12.3,
        "flags": ["collapsed"], "measurement": measure, "source_measurement": measure,
        "ratios": {"size_ratio": 0.2, "latency_ratio": 0.7, "throughput_ratio": 1.4}}
    manifest["lineage"] = {"parent": "penguins:1"}
    onnx = registry.read_file(ws, source, "model.onnx")
    return registry.register_version(ws, "penguins", {"model.onnx": onnx}, manifest, "# x\n")


def test_a_collapsed_result_is_flagged_and_aliased_only_after_a_question(qtbot, ws,
                                                                         monkeypatch):
    made = collapsed_result(ws)
    page = page_on(qtbot, ws, "penguins:1")
    assert page.table.refs() == ["penguins:1", made.ref]  # an earlier result, from its record
    delta = page.table.item(1, 3)
    assert delta.text().startswith("−12.3")
    assert delta.foreground().color().name() == "#d93025"
    assert "lost 12.3 points of accuracy" in delta.toolTip()
    assert [i for i, _, _ in page.chart.points] == [0, 1]

    asked: list[str] = []
    monkeypatch.setattr(ask, "confirm", lambda _p, _t, text: asked.append(text) or False)
    page.table.select_index(1)
    dialog = page.ask_alias()
    dialog.accept()
    assert asked and "12.3 points" in asked[0] and "penguins@production" in asked[0]
    with pytest.raises(StudioError, match="production"):
        registry.get_version(ws, "penguins@production")  # said no: nothing moved

    monkeypatch.setattr(ask, "confirm", lambda *_a: True)
    assert page.set_alias(made.ref, "staging", page.table.rows[1])
    assert registry.get_version(ws, "penguins@staging").ref == made.ref
    QApplication.processEvents()


def test_a_failed_result_shows_why_and_cannot_be_aliased(qtbot, ws):
    page = page_on(qtbot, ws, "penguins:1")
    # as the lab reports a step that failed (lab._failed_row): no version, a message
    i = page.table.add({"method": "prune", "settings": {"sparsity": 0.95}, "parent": "penguins:1",
                        "version": None, "status": "failed", "metric": "accuracy",
                        "message": "pruning left no neuron in layer 2: lower the sparsity",
                        "value": None, "source_value": None, "delta_points": None,
                        "collapsed": False, "size_ratio": None, "latency_ratio": None,
                        "throughput_ratio": None, "measurement": None,
                        "source_measurement": None, "details": {}})
    assert page.table.item(i, 0).text() == "failed"
    assert "lower the sparsity" in page.table.item(i, 2).text()
    assert page.table.columnSpan(i, 2) == page.table.columnCount() - 2  # the message spans
    page.table.select_index(i)
    assert not page.alias_btn.isEnabled()
    assert [p for p, _, _ in page.chart.points] == [0]  # nothing to draw for it


def test_the_pareto_front_keeps_what_nothing_beats_and_steps_between():
    from studio.gui.pages.compress import pareto

    # source, int8 (smaller, as good), a collapsed prune (smallest, worse), fp16 (dominated)
    points = [(1.0, 0.98), (0.28, 0.98), (0.2, 0.858), (0.51, 0.98), (0.28, 0.97)]
    assert pareto.front(points) == [2, 1]
    assert pareto.steps(points) == ([0.2, 0.28, 0.28], [0.858, 0.858, 0.98])
    assert pareto.front([(1.0, 0.9)]) == [0]


def test_the_models_page_opens_a_version_here(qtbot, template: Path, tmp_path: Path) -> None:
    import shutil

    from studio.gui.app import create_window

    shutil.copytree(template, tmp_path / "home")
    window = create_window(tmp_path / "home")
    qtbot.addWidget(window)
    window.resize(1280, 800)
    window.show()
    window.load()
    window.go(window.models)
    qtbot.waitUntil(lambda: "penguins:2" in window.models.table.rows, timeout=10_000)
    window.models.table.select(["penguins:2"], "penguins:2")
    qtbot.waitUntil(window.models.compress_btn.isEnabled, timeout=10_000)
    qtbot.mouseClick(window.models.compress_btn, Qt.MouseButton.LeftButton)
    assert window.stack.currentWidget() is window.compress
    assert window.compress.picker.current_ref() == "penguins:2"
    window.close()


def test_an_empty_registry_says_what_to_do_first(qtbot, tmp_path: Path) -> None:
    with copied_workspace_empty(tmp_path) as ws:
        page = CompressPage(ws)
        qtbot.addWidget(page)
        page.show()
        page.refresh()
        assert page.bar.text.text().startswith("No model to compress yet: train one")
        assert not page.run_btn.isEnabled()
        assert all(not row.reason.isVisible() for row in page.methods.rows.values())


def copied_workspace_empty(tmp_path: Path):
    import contextlib

    @contextlib.contextmanager
    def opened():
        ws = Workspace.open(tmp_path / "empty")
        try:
            yield ws
        finally:
            ws.db.close()
    return opened()
