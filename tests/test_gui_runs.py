"""The Runs page: every run listed, filtered and searched; selected runs' curves overlaid and
their differences highlighted; deleting keeps the versions; a run killed with -9 shows as
failed within two seconds while the page stays responsive."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import PENGUINS, studio_cmd
from PySide6.QtCore import Qt
from test_runs import two_runs  # noqa: F401 - the module-scoped workspace fixture

from studio.core.workspace import Workspace
from studio.gui.pages.models import ask
from studio.gui.pages.runs.table import COLUMNS


@pytest.fixture
def runs_window(qtbot, two_runs: Path, tmp_path: Path):  # noqa: F811
    from studio.gui.app import create_window

    home = tmp_path / "home"
    shutil.copytree(two_runs, home)
    w = create_window(home)
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    w.load()
    w.go(w.runs)
    yield w
    w.close()


def test_runs_are_listed_compared_and_filtered(runs_window, qtbot) -> None:
    page = runs_window.runs
    shown = page.runs_shown()
    assert [r["Family"] for r in shown] == ["linear", "mlp"]
    assert [r["Version"] for r in shown] == ["penguins:2", "penguins:1"]
    assert all(r["State"] == "done" and r["Test score"].startswith("accuracy")
               for r in shown)
    assert page.count.text() == "2 runs"

    page.select([r.id for r in page.model.runs])
    drawn = page.curves.drawn()
    by_family = {label.split()[1]: n for label, n in drawn.items()}
    assert by_family["mlp"] == 3 and by_family["linear"] >= 1  # both curves, overlaid
    assert "family" in page.side.differing() and "dataset" not in page.side.differing()
    page.side.only_diff.setChecked(True)
    names = [page.side.table.item(r, 0).text() for r in range(page.side.table.rowCount())]
    assert "family" in names and "dataset" not in names

    mlp = next(r.id for r in page.model.runs if r.family == "mlp")
    page.select([mlp])
    page.view.sortByColumn(COLUMNS.index("Family"), Qt.SortOrder.AscendingOrder)
    assert [r["Family"] for r in page.runs_shown()] == ["linear", "mlp"]
    assert page.selected_ids() == [mlp]  # the selection follows its run, not its row
    page.view.sortByColumn(COLUMNS.index("Family"), Qt.SortOrder.DescendingOrder)
    assert [r["Family"] for r in page.runs_shown()] == ["mlp", "linear"]  # the rows swapped
    assert page.selected_ids() == [mlp]
    page.refresh()  # a refresh keeps the order asked for
    assert [r["Family"] for r in page.runs_shown()] == ["mlp", "linear"]

    page.family.setCurrentIndex(page.family.findData("mlp"))
    assert [r["Family"] for r in page.runs_shown()] == ["mlp"]
    assert page.count.text() == "1 of 2 runs"
    page.family.setCurrentIndex(0)
    page.search.setText("penguins:2")
    assert [r["Version"] for r in page.runs_shown()] == ["penguins:2"]
    page.search.setText("")
    page.state.setCurrentIndex(page.state.findData("failed"))
    assert page.runs_shown() == []


def test_delete_keeps_versions_and_open_version_goes_to_models(runs_window, monkeypatch,
                                                               qtbot) -> None:
    page = runs_window.runs
    mlp = next(r.id for r in page.model.runs if r.family == "mlp")
    page.select([mlp])
    page.open_btn.click()
    assert runs_window.stack.currentWidget() is runs_window.models
    runs_window.go(page)
    page.select([mlp])
    monkeypatch.setattr(ask, "confirm", lambda *_a: True)
    page.delete_btn.click()
    assert [r["Family"] for r in page.runs_shown()] == ["linear"]
    ws = Workspace.open(runs_window.ws.root)
    try:
        assert ws.db.conn.execute("SELECT COUNT(*) FROM versions").fetchone()[0] == 2
    finally:
        ws.db.close()


@pytest.mark.timeout(180)
def test_a_run_killed_with_minus_9_shows_failed_within_two_seconds(runs_window, qtbot) -> None:
    page = runs_window.runs
    home = runs_window.ws.root
    cli = subprocess.Popen(studio_cmd(home, "train", "penguins", "--target", "species",
                                      "--family", "mlp", "--epochs", "5000"),
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        def running() -> bool:
            page.refresh()
            return any(r.status == "running" for r in page.model.runs)

        qtbot.waitUntil(running, timeout=90_000)
        run = next(r for r in page.model.runs if r.status == "running")
        pid = Workspace.open(home).db.conn.execute("SELECT pid FROM jobs WHERE id = ?",
                                                   [run.id]).fetchone()[0]
        # the CLI that started it goes first, so nothing else notices the death but the page
        os.killpg(cli.pid, signal.SIGKILL)
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        beats: list[float] = []
        qtbot.waitUntil(lambda: beats.append(time.monotonic()) or any(
            r.id == run.id and r.state == "failed" for r in page.model.runs), timeout=2_000)
        assert time.monotonic() - killed <= 2.0
        gaps = [b - a for a, b in itertools.pairwise(beats)]
        assert max(gaps, default=0) < 0.5  # the page answered all along
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(cli.pid, signal.SIGKILL)
        cli.wait(10)


@pytest.mark.timeout(240)
def test_resume_goes_on_from_the_checkpoint_on_the_training_page(window, qtbot) -> None:
    from test_resume import _run, _spec

    from studio.core.datasets import catalog

    ws = Workspace.open(window.ws.root)
    try:
        catalog.import_dataset(ws, PENGUINS)
        stopped, _ = _run(ws, _spec(), stop_after=5)
    finally:
        ws.db.close()
    page = window.runs
    window.go(page)
    page.refresh()
    page.select([stopped])
    assert page.model.runs[0].state == "stopped" and page.resume_btn.isEnabled()
    page.resume_btn.click()
    assert window.stack.currentWidget() is window.training
    assert "resuming run" in window.training.heading.text()
    qtbot.waitUntil(lambda: not window.training.running, timeout=180_000)
    window.go(page)
    latest = page.model.runs[0]
    assert latest.resumed_from == stopped and latest.state == "done"
    page.select([latest.id])
    assert not page.resume_btn.isEnabled()  # it ran to its end
