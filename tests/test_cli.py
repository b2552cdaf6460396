"""The ``studio`` command end to end, as a user runs it: import, train, serve, predict."""

import contextlib
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from conftest import PENGUINS, run_studio, studio_cmd

from studio.core import registry
from studio.core.datasets.catalog import list_datasets
from studio.core.datasets.recipe import transform
from studio.core.predict import Predictor
from studio.core.workspace import Workspace

ROWS = [0, 1, 3, 40, 160, 220, 250, 300, 343]  # row 3 has every feature missing
ANNOUNCE_TIMEOUT_S = 60
STOP_TIMEOUT_S = 15


def cli_json(home: Path, *args: str) -> dict:
    result = run_studio(home, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# -- the full flow on a fresh home --------------------------------------------------------


@pytest.mark.timeout(180)
def test_import_train_inspect_on_a_fresh_home(tmp_path: Path) -> None:
    home = tmp_path / "home"

    imported = run_studio(home, "data", "import", str(PENGUINS))
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout == "penguins: 344 rows × 8 columns (UTF-8, comma-delimited)\n"

    listed = cli_json(home, "data", "ls")
    [dataset] = listed["datasets"]
    assert dataset["name"] == "penguins" and dataset["rows"] == 344
    assert "species" in [c["name"] for c in dataset["columns"]]

    again = run_studio(home, "data", "import", str(PENGUINS))  # same content: same dataset
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("penguins: 344 rows") and "already imported" in again.stdout
    assert len(cli_json(home, "data", "ls")["datasets"]) == 1

    trained = run_studio(home, "train", "penguins", "--target", "species", "--json",
                         timeout=150)
    assert trained.returncode == 0, trained.stderr
    doc = json.loads(trained.stdout)  # nothing but the document on stdout
    assert doc["version"] == "penguins:1"
    assert doc["task"] == "classification"
    assert doc["metrics"]["accuracy"] >= 0.95
    assert doc["metrics"]["n"] > 0
    assert doc["headline"].startswith("accuracy")

    models = run_studio(home, "models", "ls")
    assert models.returncode == 0 and "penguins:1" in models.stdout
    [version] = cli_json(home, "models", "ls")["versions"]
    assert version["ref"] == "penguins:1" and version["dataset"] == "penguins"
    assert version["test_metrics"]["accuracy"] == pytest.approx(doc["metrics"]["accuracy"])

    manifest = cli_json(home, "models", "show", "penguins:1")
    assert manifest["name"] == "penguins" and manifest["version"] == 1
    assert manifest["target"] == "species"
    assert manifest["labels"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert {"model.onnx", "weights.safetensors", "card.md"} <= set(manifest["files"])
    assert "species" not in [c["name"] for c in manifest["input_schema"]]
    shown = run_studio(home, "models", "show", "penguins")
    assert shown.returncode == 0 and shown.stdout.startswith("penguins:1")


# -- the server ---------------------------------------------------------------------------


@dataclass
class Server:
    proc: subprocess.Popen
    doc: dict
    url: str
    stderr: Path


def start_server(home: Path, log: Path, *extra: str,
                 refs: tuple[str, ...] = ("penguins:1",)) -> Server:
    """``studio serve REFS… --port 0 --json``; returns once the announced URL answers."""
    stderr = open(log, "wb")  # noqa: SIM115 - closed below or by stop_server
    proc = subprocess.Popen(
        studio_cmd(home, "serve", *refs, "--port", "0", "--json", *extra),
        stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, text=True,
    )
    stderr.close()
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    try:
        text, doc = "", None
        deadline = time.monotonic() + ANNOUNCE_TIMEOUT_S
        while doc is None:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if line is None:
                raise AssertionError(f"serve exited ({proc.wait()}): {log.read_text()}")
            text += line
            try:
                doc = json.loads(text)
            except ValueError:
                continue
        server = Server(proc, doc, doc["url"], log)
        while True:
            try:
                if httpx.get(f"{server.url}/v2/health/ready", timeout=2,
                             trust_env=False).status_code == 200:
                    return server
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise AssertionError(f"server never got ready: {log.read_text()}")
            time.sleep(0.1)
    except BaseException:
        stop_server(proc)
        raise


def stop_server(proc: subprocess.Popen) -> int:
    """SIGINT (Ctrl-C), then kill if it has not ended in time; returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)
    if proc.stdout is not None:
        proc.stdout.close()
    return proc.returncode


@pytest.fixture(scope="module")
def server(trained_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("serve") / "stderr.log"
    srv = start_server(trained_home, log)
    try:
        yield srv
    finally:
        stop_server(srv.proc)


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30, trust_env=False) as client:
        yield client


@pytest.fixture(scope="module")
def reference(trained_home: Path) -> Iterator[dict]:
    """What the in-process predictor says about some raw rows."""
    ws = Workspace.open(trained_home)
    try:
        predictor = Predictor(ws, registry.get_version(ws, "penguins:1"), threads=1)
        frame = pd.read_csv(PENGUINS).iloc[ROWS].drop(columns=["species"])
        x = transform(predictor.recipe, frame)
        yield {"frame": frame, "x": x, "probs": predictor.infer({"input": x}),
               "records": predictor.predict_frame(frame)}
    finally:
        ws.db.close()


def assert_error(response: httpx.Response, status: int | None = None) -> str:
    if status is None:
        assert 400 <= response.status_code < 500, response.text
    else:
        assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"]
    return body["error"]


def tensor(x: np.ndarray, name: str = "input", shape: list[int] | None = None) -> dict:
    return {"inputs": [{"name": name, "datatype": "FP32",
                        "shape": list(x.shape) if shape is None else shape,
                        "data": x.reshape(-1).tolist()}]}


@pytest.mark.timeout(120)
def test_serve_announces_a_loopback_url(server: Server) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.url)
    assert int(server.url.rsplit(":", 1)[1]) > 0
    assert server.doc["models"] == ["penguins:1"]
    assert server.doc["api_key_required"] is False
    assert "api_key" not in server.doc


@pytest.mark.timeout(120)
def test_served_metadata(http: httpx.Client, reference: dict) -> None:
    assert http.get("/v2/health/live").json() == {"live": True}
    meta = http.get("/v2/models/penguins").json()
    assert meta["name"] == "penguins"
    assert meta["versions"] == ["1"]
    assert meta["inputs"][0]["name"] == "input"
    assert meta["inputs"][0]["datatype"] == "FP32"
    assert meta["inputs"][0]["shape"] == [-1, reference["x"].shape[1]]
    assert meta["outputs"][0]["shape"] == [-1, 3]
    assert meta["parameters"]["task"] == "classification"


@pytest.mark.timeout(120)
def test_served_v2_infer_matches_in_process(http: httpx.Client, reference: dict) -> None:
    response = http.post("/v2/models/penguins/infer", json=tensor(reference["x"]))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_name"] == "penguins" and body["model_version"] == "1"
    out = body["outputs"][0]
    assert out["shape"] == list(reference["probs"].shape)
    got = np.asarray(out["data"], dtype=np.float32).reshape(out["shape"])
    assert np.allclose(got, reference["probs"], atol=1e-5)


@pytest.mark.timeout(120)
def test_served_v1_predict_matches_in_process(http: httpx.Client, reference: dict) -> None:
    instances = [{k: (None if pd.isna(v) else v) for k, v in row.items()}
                 for row in reference["frame"].to_dict(orient="records")]
    assert any(v is None for row in instances for v in row.values())
    response = http.post("/v1/models/penguins:predict", json={"instances": instances})
    assert response.status_code == 200, response.text
    body = response.json()
    expected = reference["records"]
    assert body["predictions"] == expected["predictions"]
    assert body["labels"] == expected["labels"]
    assert np.allclose(body["probabilities"], expected["probabilities"], atol=1e-5)
    assert np.allclose(body["probabilities"], reference["probs"], atol=1e-5)


@pytest.mark.timeout(120)
def test_served_openapi(http: httpx.Client) -> None:
    paths = http.get("/openapi.json").json()["paths"]
    assert "/v2/models/{name}/infer" in paths
    assert "/v1/models/{name}:predict" in paths


@pytest.mark.timeout(120)
def test_served_bad_requests(http: httpx.Client, reference: dict) -> None:
    x = reference["x"]
    json_headers = {"content-type": "application/json"}
    assert "JSON" in assert_error(
        http.post("/v2/models/penguins/infer", content=b'{"inputs": [', headers=json_headers),
        400)
    assert "input" in assert_error(
        http.post("/v2/models/penguins/infer", json=tensor(x, name="features")), 400)
    assert_error(http.post("/v2/models/penguins/infer",
                           json=tensor(x, shape=[x.shape[0], x.shape[1] + 1])), 400)
    assert_error(http.post("/v2/models/penguins/infer", json=tensor(x[:, :4])), 400)
    assert_error(http.post("/v2/models/nope/infer", json=tensor(x)), 404)
    assert_error(http.post("/v1/models/nope:predict", json={"instances": [{}]}), 404)

    first = reference["frame"].iloc[:1].to_dict(orient="records")[0]
    row = {k: (None if pd.isna(v) else v) for k, v in first.items()}
    missing = {k: v for k, v in row.items() if k != "bill_length_mm"}
    assert "bill_length_mm" in assert_error(
        http.post("/v1/models/penguins:predict", json={"instances": [missing]}), 400)
    text = {**row, "flipper_length_mm": "long"}
    assert "flipper_length_mm" in assert_error(
        http.post("/v1/models/penguins:predict", json={"instances": [text]}), 400)
    assert_error(http.post("/v1/models/penguins:predict", json={"instances": row}), 400)
    assert_error(http.post("/v1/models/penguins:predict", json={"instances": "rows"}), 400)
    assert_error(http.get("/v2/nothing/here"), 404)
    # the server is still fine afterwards
    assert http.post("/v2/models/penguins/infer", json=tensor(x)).status_code == 200


@pytest.mark.timeout(120)
def test_serve_with_an_api_key_and_clean_stop(trained_home: Path, tmp_path: Path,
                                              reference: dict) -> None:
    srv = start_server(trained_home, tmp_path / "stderr.log", "--api-key", "k3y")
    try:
        assert srv.doc["api_key_required"] is True
        assert "api_key" not in srv.doc  # a key the user chose is not echoed
        with httpx.Client(base_url=srv.url, timeout=30, trust_env=False) as http:
            body = tensor(reference["x"])
            assert_error(http.post("/v2/models/penguins/infer", json=body), 401)
            ok = http.post("/v2/models/penguins/infer", json=body,
                           headers={"Authorization": "Bearer k3y"})
            assert ok.status_code == 200, ok.text
            assert http.get("/v2/health/ready").status_code == 200
    finally:
        code = stop_server(srv.proc)
    # Ctrl-C is how a user stops serving: a clean exit
    assert code == 0, srv.stderr.read_text()
    assert "Traceback" not in srv.stderr.read_text()


# -- batch prediction ---------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_predict_writes_a_csv_of_predictions(trained_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    result = run_studio(trained_home, "predict", "penguins:1", "--input", str(PENGUINS),
                        "--output", str(out))
    assert result.returncode == 0, result.stderr
    frame = pd.read_csv(out)
    source = pd.read_csv(PENGUINS)
    assert len(frame) == len(source)
    assert list(frame.columns[: len(source.columns)]) == list(source.columns)
    assert (frame["prediction"] == frame["species"]).mean() >= 0.95
    probs = frame[[f"probability_{s}" for s in ("Adelie", "Chinstrap", "Gentoo")]]
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    assert not list(tmp_path.glob("*.part"))


@pytest.mark.timeout(120)
def test_predict_json_to_stdout(trained_home: Path) -> None:
    doc = cli_json(trained_home, "predict", "penguins", "--input", str(PENGUINS))
    assert doc["model"] == "penguins:1"
    assert len(doc["predictions"]) == 344
    assert set(doc["predictions"]) <= {"Adelie", "Chinstrap", "Gentoo"}


# -- errors -------------------------------------------------------------------------------


ERROR_CASES = {
    "unknown dataset": ["train", "nosuch", "--target", "species"],
    "unknown target": ["train", "penguins", "--target", "nosuch"],
    "zero epochs": ["train", "penguins", "--target", "species", "--epochs", "0"],
    "unknown model": ["predict", "nosuch:1", "--input", str(PENGUINS)],
    "unknown version": ["models", "show", "penguins:7"],
    "serve unknown model": ["serve", "nosuch:1", "--port", "0"],
    "bad ref": ["models", "show", "penguins:zero"],
    "missing input file": ["data", "import", "{tmp}/missing.csv"],
    "missing predict input": ["predict", "penguins:1", "--input", "{tmp}/missing.csv"],
    "empty file": ["data", "import", "{tmp}/empty.csv"],
    "binary csv": ["data", "import", "{tmp}/binary.csv"],
    "predict binary csv": ["predict", "penguins:1", "--input", "{tmp}/binary.csv"],
}


@pytest.fixture(scope="module")
def error_runs(trained_home: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every error command once, with the dataset and model listings before and after."""
    tmp = tmp_path_factory.mktemp("bad-inputs")
    (tmp / "empty.csv").write_bytes(b"")
    (tmp / "binary.csv").write_bytes(bytes(range(256)) * 64)
    ws = Workspace.open(trained_home)
    try:
        before = (cli_json(trained_home, "data", "ls"), cli_json(trained_home, "models", "ls"))
        runs = {}
        for case, args in ERROR_CASES.items():
            counts = (len(list_datasets(ws)), len(registry.list_versions(ws)))
            result = run_studio(trained_home, *(a.format(tmp=tmp) for a in args), timeout=60)
            after = (len(list_datasets(ws)), len(registry.list_versions(ws)))
            runs[case] = (result, counts, after)
        after = (cli_json(trained_home, "data", "ls"), cli_json(trained_home, "models", "ls"))
    finally:
        ws.db.close()
    return {"runs": runs, "before": before, "after": after}


@pytest.mark.timeout(240)
@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_bad_input_exits_2_with_one_error_line(error_runs: dict, case: str) -> None:
    result, counts_before, counts_after = error_runs["runs"][case]
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("studio: error:"), result.stderr
    assert len(lines[0]) > len("studio: error: ")
    assert counts_after == counts_before


@pytest.mark.timeout(240)
def test_bad_input_leaves_datasets_and_models_unchanged(error_runs: dict) -> None:
    assert error_runs["after"] == error_runs["before"]
    assert [d["name"] for d in error_runs["after"][0]["datasets"]] == ["penguins"]
    assert [v["ref"] for v in error_runs["after"][1]["versions"]] == ["penguins:1"]


def interrupted_training(trained_home: Path, tmp_path: Path, model: str, presses: int,
                         sig: int = signal.SIGINT
                         ) -> tuple[subprocess.CompletedProcess, Workspace]:
    """A long `studio train` in its own process group, Ctrl-C pressed once training records
    epochs (``presses`` times, with the job frozen so it cannot end between them)."""
    home = tmp_path / "home"
    shutil.copytree(trained_home, home)
    cmd = studio_cmd(home, "train", "penguins", "--target", "species", "--family", "mlp",
                     "--epochs", "5000", "--time-budget", "600", "--model", model, "--json")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    ws = Workspace.open(home)
    pid = None
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait until epochs are being recorded
            row = ws.db.conn.execute(
                "SELECT count(*) FROM metrics m JOIN jobs j ON j.id = m.job_id "
                "WHERE j.status = 'running' AND m.name = 'train_loss'").fetchone()
            if row[0] >= 2:
                break
            time.sleep(0.2)
        if presses > 1:  # the job must not finish between the presses: it is frozen
            (pid,) = ws.db.conn.execute("SELECT pid FROM jobs WHERE status = 'running' "
                                        "AND kind = 'train'").fetchone()
            os.kill(pid, signal.SIGSTOP)
        for i in range(presses):
            if i:
                time.sleep(0.2)  # a few polls of the CLI's loop: two presses, not one
            os.killpg(proc.pid, sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        if pid is not None:  # never leave a frozen job behind
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err), ws


@pytest.mark.timeout(120)
def test_ctrl_c_stops_training_and_keeps_the_best_epoch(trained_home: Path, tmp_path: Path):
    """Ctrl-C reaches the whole terminal process group; the job must stop, not die."""
    done, ws = interrupted_training(trained_home, tmp_path, "interrupted", presses=1)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["version"] == "interrupted:1"
    manifest = registry.get_version(ws, "interrupted:1").manifest.raw
    assert manifest["training"]["stopped_early"] is True
    assert 2 <= manifest["training"]["epochs_run"] < 5000
    job = ws.db.conn.execute("SELECT status FROM jobs WHERE id = ?",
                             [manifest["lineage"]["job"]]).fetchone()
    assert job == ("done",)
    ws.db.close()


@pytest.mark.timeout(120)
def test_sigterm_stops_training_like_ctrl_c_and_keeps_the_best_epoch(trained_home: Path,
                                                                      tmp_path: Path):
    """kill, timeout and service managers send SIGTERM: a request to stop, not a lost
    terminal, so the best epoch is kept."""
    done, ws = interrupted_training(trained_home, tmp_path, "terminated", presses=1,
                                    sig=signal.SIGTERM)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["version"] == "terminated:1"
    assert registry.get_version(ws, "terminated:1").manifest.raw["training"]["stopped_early"]
    ws.db.close()


@pytest.mark.timeout(120)
def test_ctrl_c_twice_kills_the_job_and_exits_130(trained_home: Path, tmp_path: Path):
    done, ws = interrupted_training(trained_home, tmp_path, "killed", presses=2)
    assert done.returncode == 130, done.stderr
    assert "Ctrl-C again to kill" in done.stderr and done.stderr.count("\n") <= 3, done.stderr
    status = ws.db.conn.execute("SELECT status FROM jobs WHERE kind = 'train' "
                                "ORDER BY created DESC LIMIT 1").fetchone()
    assert status == ("cancelled",)
    assert "killed" not in {v.name for v in registry.list_versions(ws)}
    ws.db.close()


def test_data_show_rename_describe_export_rm(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert run_studio(home, "data", "import", str(PENGUINS)).returncode == 0
    shown = json.loads(run_studio(home, "data", "show", "penguins", "--json").stdout)
    kinds = {c["name"]: c["kind"] for c in shown["profile"]}
    assert kinds["species"] == "categorical" and kinds["body_mass_g"] == "numeric"
    assert run_studio(home, "data", "rename", "penguins", "birds").stdout == "birds\n"
    assert run_studio(home, "data", "describe", "birds", "Palmer penguins").returncode == 0
    listed = json.loads(run_studio(home, "data", "ls", "--json").stdout)["datasets"]
    assert [(d["name"], d["description"]) for d in listed] == [("birds", "Palmer penguins")]
    out = tmp_path / "birds.csv"
    assert run_studio(home, "data", "export", "birds", "--output", str(out)).returncode == 0
    assert pd.read_csv(out).shape == (344, 8)
    taken = run_studio(home, "data", "rename", "birds", "bad name!")
    assert taken.returncode == 2 and taken.stderr.startswith("studio: error:")
    assert run_studio(home, "data", "rm", "birds").returncode == 0
    gone = run_studio(home, "data", "rm", "birds")
    assert gone.returncode == 2 and "no dataset named 'birds'" in gone.stderr
    assert json.loads(run_studio(home, "data", "ls", "--json").stdout)["datasets"] == []
