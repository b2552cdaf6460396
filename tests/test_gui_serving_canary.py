"""Drift and canary on the Serving page, against a real `studio serve` process: a canary
started from the Served list sends its share to the candidate and the page compares the
two versions live until End canary; rows far from the training data make the page name the
moved column and raise one notification."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from conftest import PENGUINS, penguins_workspace

from studio.core.workspace import Workspace

SHOTS = os.environ.get("STUDIO_SCREENSHOTS")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return penguins_workspace(tmp_path_factory.mktemp("gui-canary") / "ws",
                              ("linear", "linear"))


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    frame = pd.read_csv(PENGUINS).drop(columns=["species"]).dropna()
    return frame.to_dict("records")


@pytest.fixture
def page(qtbot, home: Path) -> Iterator:
    from studio.gui.pages.serving import ServingPage

    ws = Workspace.open(home)
    p = ServingPage(ws)
    qtbot.addWidget(p)
    p.resize(1100, 720)
    p.show()
    p.port.setValue(0)
    p.refresh(select="penguins:1")
    yield p
    p.stop(wait=True)
    ws.db.close()


def predict(url: str, instances: list[dict]) -> str:
    """The version that answered."""
    r = httpx.post(url + "/v1/models/penguins:predict", json={"instances": instances},
                   trust_env=False, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["model_version"]


def started(page, qtbot) -> str:
    page.start()
    # answering, and its first stats read (the Served list knows what it serves)
    qtbot.waitUntil(lambda: page.url is not None and page.served.canary_btn.isEnabled(),
                    timeout=60_000)
    return page.url


@pytest.mark.timeout(180)
def test_a_canary_from_the_page_is_compared_live_until_ended(page, qtbot, monkeypatch,
                                                            rows: list[dict]) -> None:
    from PySide6.QtWidgets import QDialog

    from studio.gui.pages.serving.canary_dialog import CanaryDialog

    url = started(page, qtbot)
    shown: list[str] = []
    page.message.connect(shown.append)

    # the server's refusal is said in its own words, as one readable sentence
    page.canary.start("penguins", "penguins:9", 10)
    qtbot.waitUntil(lambda: bool(shown), timeout=10_000)
    assert shown[0].startswith("Could not start the canary on penguins: ")
    assert "penguins:9" in shown[0] or "version 9" in shown[0]
    assert "Traceback" not in shown[0] and "HTTP" not in shown[0]
    assert page.canary.isHidden()

    asked: dict = {}

    def pick(dialog: CanaryDialog) -> int:
        asked["offered"] = [dialog.candidate.itemData(i)
                            for i in range(dialog.candidate.count())]
        asked["title"] = dialog.windowTitle()
        dialog.percent.setValue(50)
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(CanaryDialog, "exec", pick)
    page.served.table.selectRow(0)  # penguins:1: the canary shares plain `penguins`
    page.served.canary_btn.click()
    assert asked == {"offered": ["penguins:2"], "title": "Canary on penguins"}
    qtbot.waitUntil(lambda: "penguins" in page.canary.cards, timeout=30_000)
    assert not page.canary.isHidden()
    card = page.canary.cards["penguins"]
    assert card.title.text() == ("Canary on <b>penguins</b>: penguins:2 answers 50 %, "
                                 "penguins:1 the rest")

    answered = Counter(predict(url, [rows[i % len(rows)]]) for i in range(120))
    assert answered["1"] + answered["2"] == 120 and answered["1"] > 0 and answered["2"] > 0

    def compared() -> bool:
        report = (page.stats or {}).get("canary", {}).get("penguins", {})
        lines = card.latencies()
        return (report.get("routed") == answered["2"] and report.get("compared_rows", 0) > 0
                and lines[0][1] == f"{answered['1']:,} requests"
                and lines[1][1] == f"{answered['2']:,} requests")

    qtbot.waitUntil(compared, timeout=5_000)
    report = page.stats["canary"]["penguins"]
    assert card.summary.text() == (
        f"{answered['2']} requests routed · the two agree on {report['agreement']:.1%} of "
        f"{report['compared_rows']} rows compared")
    assert report["agreement"] >= 0.8  # two linear models trained alike mostly agree
    primary, candidate = card.latencies()
    assert primary[0] == "penguins:1 (primary)" and candidate[0] == "penguins:2 (candidate)"
    for line in (primary, candidate):  # p50 and p95 of each version, from its own window
        assert line[2].startswith("p50 ") and line[3].startswith("p95 "), line
        assert float(line[2][4:-3]) <= float(line[3][4:-3]), line
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.grab().save(str(Path(SHOTS) / "serving-canary.png"))

    card.end_btn.click()
    qtbot.waitUntil(lambda: page.canary.isHidden() and page.stats["canary"] == {},
                    timeout=30_000)
    assert page.stats["served"] == ["penguins:1"]  # the candidate was let go
    assert {predict(url, [rows[i]]) for i in range(20)} == {"1"}
    assert shown == shown[:1]  # nothing went wrong after the refusal


@pytest.mark.timeout(180)
def test_drift_names_the_moved_column_and_notifies_once(page, qtbot,
                                                       rows: list[dict]) -> None:
    told: list[tuple[str, str]] = []
    page.notifier.notified.connect(lambda title, text: told.append((title, text)))
    status_lines: list[str] = []
    page.notice.connect(status_lines.append)
    url = started(page, qtbot)
    shifted = [{**r, "bill_length_mm": r["bill_length_mm"] + 25} for r in rows]

    predict(url, shifted[:50])
    qtbot.waitUntil(lambda: "not enough rows yet" in _tree_text(page), timeout=5_000)
    assert told == [] and page.drift.banner.isHidden()

    for start in range(0, 300, 25):  # 350 shifted rows in all
        predict(url, [shifted[(start + 50 + i) % len(shifted)] for i in range(25)])
    qtbot.waitUntil(lambda: not page.drift.banner.isHidden(), timeout=5_000)
    assert page.drift.moved() == {"penguins:1": ["bill_length_mm"]}
    assert "penguins:1" in page.drift.banner.text()
    assert "bill_length_mm" in page.drift.banner.text()
    assert page.tabs.tabText(page.tabs.indexOf(page.drift)) == "Drift ⚠"
    states = _column_states(page)["penguins:1"]
    assert states["bill_length_mm"][1] == "moved" and float(states["bill_length_mm"][0]) > 0.25
    assert {s for c, (_p, s) in states.items() if c != "bill_length_mm"} == {"stable"}

    # more rows that moved: the report changes, the person's view of it does not
    page.drift.tree.topLevelItem(0).setExpanded(False)
    predict(url, shifted[:25])
    qtbot.waitUntil(lambda: "375 rows" in _tree_text(page), timeout=5_000)
    polls = page.client.polls
    qtbot.waitUntil(lambda: page.client.polls >= polls + 2, timeout=5_000)
    assert not page.drift.tree.topLevelItem(0).isExpanded()
    assert len(told) == 1  # the same column, still moved: told once
    title, text = told[0]
    assert title == "Input drift on penguins:1" and text.startswith("bill_length_mm (PSI ")
    # offscreen there is no tray: the main window's status bar gets the line instead
    assert status_lines == [f"{title}: {text}"]

    page.drift.banner.linkActivated.emit("#drift")
    assert page.tabs.currentWidget() is page.drift


def _tree_text(page) -> str:
    tree = page.drift.tree
    return " ".join(tree.topLevelItem(i).text(0) for i in range(tree.topLevelItemCount()))


def _column_states(page) -> dict[str, dict[str, tuple[str, str]]]:
    """Per version, each column's (PSI, state) as the Drift tab shows them."""
    tree, out = page.drift.tree, {}
    for i in range(tree.topLevelItemCount()):
        top = tree.topLevelItem(i)
        out[top.text(0).split(" ")[0]] = {
            top.child(j).text(0): (top.child(j).text(1), top.child(j).text(2))
            for j in range(top.childCount())}
    return out


def test_a_column_is_told_again_only_after_it_came_back() -> None:
    from studio.gui.pages.serving.drift_panel import DriftWatch

    def report(moved: list[str], ready: bool = True) -> dict:
        return {"ready": ready, "moved": moved}

    watch = DriftWatch()
    assert watch.news({"m:1": report(["a"], ready=False)}) == {}
    assert watch.news({"m:1": report(["a"])}) == {"m:1": ["a"]}
    assert watch.news({"m:1": report(["a", "b"])}) == {"m:1": ["b"]}
    assert watch.news({"m:1": report(["a", "b"])}) == {}
    assert watch.news({"m:1": report(["b"])}) == {}  # a came back
    assert watch.news({"m:1": report(["a", "b"])}) == {"m:1": ["a"]}  # and moved again
    assert watch.news({}) == {}  # no longer served
    assert watch.news({"m:1": report(["a", "b"])}) == {"m:1": ["a", "b"]}


def test_a_canary_shares_the_ref_a_served_row_is_addressed_by() -> None:
    from studio.gui.pages.serving.canary_dialog import canary_key, primary_of

    refs = [{"ref": "m:1", "serves": "m:1"}, {"ref": "m:3", "serves": "m:3"},
            {"ref": "m@prod", "serves": "m:2"}]
    assert canary_key("m:1") == "m" and canary_key("m@prod") == "m@prod"
    assert primary_of("m", refs) == "m:3"  # plain NAME: the newest version asked for
    assert primary_of("m@prod", refs) == "m:2"
    assert primary_of("other", refs) is None


def test_the_comparison_line_says_what_the_server_measured() -> None:
    from studio.gui.pages.serving.canary_panel import summary

    base = {"serves": "m", "candidate": "m:2", "percent": 10.0}
    assert summary({**base, "routed": 1, "compared_rows": 0}) == \
        "1 request routed · no rows compared yet"
    assert summary({**base, "routed": 1200, "compared_rows": 900,
                    "mean_abs_difference": 0.01234567}) == \
        "1,200 requests routed · mean absolute difference 0.01235 over 900 rows compared"
    assert summary({**base, "routed": 40, "compared_rows": 40, "agreement": 0.975}) == \
        "40 requests routed · the two agree on 97.5% of 40 rows compared"
