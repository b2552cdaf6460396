"""The Serving page with a real server process: live charts get points, the request table
fills from the workspace, Add…/Remove change what is served without a restart, the code it
offers runs, and a killed server is reported within 2 s and can be restarted."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import penguins_workspace

from studio.core.workspace import Workspace

ROW = {"island": "Biscoe", "bill_length_mm": 50.0, "bill_depth_mm": 15.0,
       "flipper_length_mm": 220, "body_mass_g": 5500, "sex": "male", "year": 2008}
SHOTS = os.environ.get("STUDIO_SCREENSHOTS")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return penguins_workspace(tmp_path_factory.mktemp("gui-monitor") / "ws",
                              ("linear", "linear"))


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


def post(url: str, path: str, rows: list[dict]) -> int:
    return httpx.post(url + path, json={"instances": rows}, trust_env=False,
                      timeout=10).status_code


def served_rows(page) -> list[str]:
    t = page.served.table
    return [t.item(i, 0).text() for i in range(t.rowCount())]


def run_python(code: str) -> str:
    """Run a snippet as a person would paste it (``requests`` played by httpx here)."""
    shim = types.ModuleType("requests")
    shim.post = lambda url, **kw: httpx.post(url, trust_env=False, **kw)  # type: ignore
    out = io.StringIO()
    saved = sys.modules.get("requests")
    sys.modules["requests"] = shim
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, "<snippet>", "exec"), {})  # the page's own snippet
    finally:
        if saved is None:
            sys.modules.pop("requests", None)
        else:
            sys.modules["requests"] = saved
    return out.getvalue()


@pytest.mark.timeout(180)
def test_live_page_with_a_real_server(page, qtbot, monkeypatch) -> None:
    page.start()
    qtbot.waitUntil(lambda: page.url is not None, timeout=60_000)
    url = page.url
    assert url in page.status.text()
    for _ in range(10):
        assert post(url, "/v1/models/penguins:predict", [ROW, ROW]) == 200
    for _ in range(2):
        assert post(url, "/v1/models/penguins:predict", []) == 400

    # the charts draw the server's window once the traffic's seconds are complete
    qtbot.waitUntil(lambda: sum(page.charts.values("throughput")) == 12, timeout=5_000)
    assert len(page.charts.values("throughput")) == 60  # a quiet second is a 0, not a gap
    assert 0 < len(page.charts.values("p95_ms")) <= 3  # only seconds that had requests
    assert max(page.charts.values("error_rate")) > 0
    assert set(page.charts.values("mean_batch_rows")) == {2.0}
    counts = {m["model"] + ":" + m["version"]: m for m in page.stats["models"]}
    assert (counts["penguins:1"]["requests"], counts["penguins:1"]["errors"],
            counts["penguins:1"]["rows"]) == (12, 2, 20)
    assert served_rows(page) == ["penguins:1"]
    # the table is read from the workspace, written by the server about once a second
    qtbot.waitUntil(lambda: page.requests.rowCount() >= 12, timeout=5_000)
    statuses = [page.requests.item(i, 3).text() for i in range(page.requests.rowCount())]
    assert statuses.count("400") == 2 and statuses.count("200") == 10
    assert page.requests.item(0, 1).text() == "penguins:1"

    monkeypatch.setattr("studio.gui.pages.serving.view.QInputDialog.getItem",
                        lambda *a, **k: ("penguins:2", True))
    page.served.add_btn.click()
    qtbot.waitUntil(lambda: served_rows(page) == ["penguins:1", "penguins:2"], timeout=30_000)
    assert post(url, "/v1/models/penguins/versions/2:predict", [ROW]) == 200
    page.served.table.selectRow(1)
    page.served.remove_btn.click()
    qtbot.waitUntil(lambda: served_rows(page) == ["penguins:1"], timeout=30_000)
    assert post(url, "/v1/models/penguins/versions/2:predict", [ROW]) == 404
    assert post(url, "/v1/models/penguins:predict", [ROW]) == 200  # never interrupted

    # the code offered calls the selected version, and runs as pasted
    page.served.table.selectRow(0)
    page.tabs.setCurrentWidget(page.code)
    page.code.tabs.setCurrentIndex(1)
    assert f"{url}/v1/models/penguins/versions/1:predict" in page.code.code()
    assert run_python(page.code.code()).strip() in ("Adelie", "Chinstrap", "Gentoo")
    page.code.tabs.setCurrentIndex(2)
    assert "probabilities [[" in run_python(page.code.code())
    page.code.tabs.setCurrentIndex(0)
    if shutil.which("curl") and shutil.which("bash"):
        answer = subprocess.run(["bash", "-c", page.code.code()], capture_output=True,
                                text=True, timeout=30)
        assert '"predictions"' in answer.stdout, answer.stderr
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.tabs.setCurrentIndex(0)
        page.grab().save(str(Path(SHOTS) / "serving-monitor.png"))

    # killed from outside: said within 2 s, and Restart serves it again
    pid = page.server.proc.processId()
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    qtbot.waitUntil(lambda: "stopped unexpectedly" in page.status.text(), timeout=2_000)
    assert time.monotonic() - killed < 2.0
    assert page.restart_btn.isEnabled() and not page.running
    page.restart_btn.click()
    qtbot.waitUntil(lambda: page.url is not None, timeout=60_000)
    assert post(page.url, "/v1/models/penguins:predict", [ROW]) == 200
    qtbot.waitUntil(lambda: served_rows(page) == ["penguins:1"], timeout=5_000)


def test_a_server_that_cannot_start_says_why(page, qtbot, monkeypatch) -> None:
    shown: list[str] = []
    page.message.connect(shown.append)
    page.refresh(select="penguins:1")
    page.start(refs=["penguins:9"])  # no such version: the process exits with a reason
    qtbot.waitUntil(lambda: bool(shown), timeout=60_000)
    assert "could not start" in shown[0] and "penguins:9" in shown[0]
    assert not page.running and "could not start" in page.status.text()
