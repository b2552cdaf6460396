"""The binary tensor data extension: the official Triton HTTP client, with its default
settings (binary inputs and outputs), against a real `studio serve`; and every malformed
binary body refused with a 400 that says why, the next good request still answered."""

from __future__ import annotations

import json
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
import tritonclient.http as triton
from onnx import TensorProto, helper
from starlette.testclient import TestClient
from synthetic import reviews
from test_cli import Server, start_server, stop_server
from tritonclient.utils import InferenceServerException

from studio.core import registry
from studio.core.datasets import catalog
from studio.core.datasets.recipe import transform, transform_inputs
from studio.core.predict import Predictor
from studio.core.registry.transfer.importer import import_model
from studio.core.training.pipeline import run
from studio.core.training.spec import TrainSpec
from studio.core.workspace import Workspace
from studio.serving.app import create_app
from studio.serving.dataplane import ModelRepository

PENGUINS = Path(__file__).resolve().parents[1] / "resources/samples/penguins.csv"
ROWS = [0, 1, 3, 160, 250, 300]
TEXTS = ["héllo wörld ✓", "plain", ""]


def words_onnx(path: Path) -> Path:
    """A graph with text in and out, plus BOOL and UINT8: upper-cases its strings
    (ASCII letters), passes them through unchanged, and negates its flags."""
    n = ["n"]
    graph = helper.make_graph(
        [helper.make_node("StringNormalizer", ["text"], ["upper"],
                          case_change_action="UPPER", locale="C"),
         helper.make_node("Identity", ["text"], ["same"]),
         helper.make_node("Not", ["flag"], ["negated"]),
         helper.make_node("Identity", ["count"], ["counted"])],
        "words",
        [helper.make_tensor_value_info("text", TensorProto.STRING, n),
         helper.make_tensor_value_info("flag", TensorProto.BOOL, n),
         helper.make_tensor_value_info("count", TensorProto.UINT8, n)],
        [helper.make_tensor_value_info("upper", TensorProto.STRING, n),
         helper.make_tensor_value_info("same", TensorProto.STRING, n),
         helper.make_tensor_value_info("negated", TensorProto.BOOL, n),
         helper.make_tensor_value_info("counted", TensorProto.UINT8, n)])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


@pytest.fixture(scope="module")
def home(trained_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the trained workspace (penguins:1) with words:1, an ONNX graph on text,
    imported, and reviews:1, a recipe model on a text column and a number, trained."""
    root = tmp_path_factory.mktemp("binary")
    shutil.copytree(trained_home, root / "home")
    ws = Workspace.open(root / "home")
    try:
        import_model(ws, words_onnx(root / "words.onnx"), "words")
        reviews(120).to_csv(root / "reviews.csv", index=False)
        catalog.import_dataset(ws, root / "reviews.csv")
        run(ws, TrainSpec(dataset="reviews", target="sentiment", family="linear", threads=1),
            lambda _e: None)
    finally:
        ws.db.close()
    return root / "home"


@pytest.fixture(scope="module")
def expected(home: Path) -> dict:
    ws = Workspace.open(home)
    try:
        predictor = Predictor(ws, registry.get_version(ws, "penguins:1"), threads=1)
        frame = pd.read_csv(PENGUINS).iloc[ROWS].drop(columns=["species"])
        x = transform(predictor.recipe, frame)
        texts = Predictor(ws, registry.get_version(ws, "reviews:1"), threads=1)
        rows = reviews(5, seed=1).drop(columns=["sentiment"])
        tensors = transform_inputs(texts.recipe, rows)
        return {"x": x, "probs": predictor.infer({"input": x}), "reviews": rows,
                "number": tensors["input"], "text_probs": texts.infer(tensors)}
    finally:
        ws.db.close()


@pytest.fixture(scope="module")
def server(home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(home, tmp_path_factory.mktemp("serve") / "stderr.log",
                       refs=("penguins:1", "words:1", "reviews:1"))
    try:
        yield srv
    finally:
        stop_server(srv.proc)


@pytest.fixture(scope="module")
def triton_client(server: Server) -> Iterator[triton.InferenceServerClient]:
    client = triton.InferenceServerClient(server.url.removeprefix("http://"),
                                          network_timeout=30)
    yield client
    client.close()


@pytest.fixture(scope="module")
def client(home: Path) -> Iterator[TestClient]:
    ws = Workspace.open(home)
    try:
        repo = ModelRepository(ws, ["penguins:1", "words:1", "reviews:1"], threads=1)
        with TestClient(create_app(repo)) as c:
            yield c
    finally:
        ws.db.close()


def penguin_input(x: np.ndarray, binary: bool = True) -> triton.InferInput:
    tensor = triton.InferInput("input", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x, binary_data=binary)
    return tensor


# -- the Triton client against a real server -----------------------------------------------


def test_triton_client_defaults_binary_in_and_out(triton_client, expected: dict) -> None:
    result = triton_client.infer("penguins", [penguin_input(expected["x"])],
                                 request_id="req-7")
    out = result.get_output("probabilities")
    assert "data" not in out and out["parameters"]["binary_data_size"] == expected[
        "probs"].nbytes  # it came back binary, as the client asked by default
    assert result.get_response()["id"] == "req-7"
    got = result.as_numpy("probabilities")
    assert got.dtype == np.float32 and got.shape == expected["probs"].shape
    np.testing.assert_allclose(got, expected["probs"], atol=1e-6)


def test_triton_client_json_inputs_still_get_binary_outputs(triton_client,
                                                            expected: dict) -> None:
    # No binary input, so no Inference-Header-Content-Length, yet binary_data_output is on.
    result = triton_client.infer("penguins", [penguin_input(expected["x"], binary=False)])
    assert "data" not in result.get_output("probabilities")
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected["probs"], atol=1e-6)


@pytest.mark.parametrize("binary_out", [False, True])
@pytest.mark.parametrize("binary_in", [False, True])
def test_triton_client_requested_outputs(triton_client, expected: dict, binary_in: bool,
                                         binary_out: bool) -> None:
    result = triton_client.infer(
        "penguins", [penguin_input(expected["x"], binary_in)], model_version="1",
        outputs=[triton.InferRequestedOutput("probabilities", binary_data=binary_out)])
    out = result.get_output("probabilities")
    assert ("data" in out) is not binary_out
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected["probs"], atol=1e-6)


def test_triton_client_empty_batch(triton_client) -> None:
    result = triton_client.infer("penguins", [penguin_input(np.zeros((0, 10), np.float32))])
    assert result.get_output("probabilities")["parameters"] == {"binary_data_size": 0}
    assert result.as_numpy("probabilities").shape == (0, 3)


def test_triton_client_metadata_and_health(triton_client) -> None:
    assert triton_client.is_server_live() and triton_client.is_server_ready()
    assert triton_client.is_model_ready("penguins")
    assert triton_client.is_model_ready("words", "1")
    assert not triton_client.is_model_ready("nope")
    assert "binary_tensor_data" in triton_client.get_server_metadata()["extensions"]
    meta = triton_client.get_model_metadata("words")
    assert [(t["name"], t["datatype"]) for t in meta["inputs"]] == [
        ("text", "BYTES"), ("flag", "BOOL"), ("count", "UINT8")]
    assert [(t["name"], t["datatype"]) for t in meta["outputs"]] == [
        ("upper", "BYTES"), ("same", "BYTES"), ("negated", "BOOL"), ("counted", "UINT8")]


@pytest.mark.parametrize("binary", [True, False])
def test_triton_client_text_model_built_from_metadata(triton_client, binary: bool) -> None:
    values = {"text": np.array(TEXTS, dtype=object),
              "flag": np.array([True, False, True]), "count": np.array([0, 7, 255], np.uint8)}
    inputs = []
    for spec in triton_client.get_model_metadata("words")["inputs"]:
        tensor = triton.InferInput(spec["name"], [len(TEXTS)], spec["datatype"])
        tensor.set_data_from_numpy(values[spec["name"]], binary_data=binary)
        inputs.append(tensor)
    result = triton_client.infer("words", inputs)
    assert [t.decode("utf-8") for t in result.as_numpy("same")] == TEXTS
    assert [t.decode("utf-8") for t in result.as_numpy("upper")] == [
        "HéLLO WöRLD ✓", "PLAIN", ""]
    assert result.as_numpy("negated").tolist() == [False, True, False]
    assert result.as_numpy("counted").tolist() == [0, 7, 255]


@pytest.mark.parametrize("binary", [True, False])
def test_a_recipe_model_takes_its_text_column_as_text(triton_client, expected: dict,
                                                      binary: bool) -> None:
    rows = expected["reviews"]
    meta = triton_client.get_model_metadata("reviews")
    assert meta["parameters"]["text_inputs"] == [
        {"name": "review", "datatype": "BYTES", "shape": [-1, 1]}]
    text = triton.InferInput("review", [len(rows), 1], "BYTES")
    text.set_data_from_numpy(rows[["review"]].to_numpy(dtype=object), binary_data=binary)
    number = triton.InferInput("input", list(expected["number"].shape), "FP32")
    number.set_data_from_numpy(expected["number"], binary_data=binary)
    result = triton_client.infer("reviews", [number, text])
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected["text_probs"],
                               atol=1e-6)


def test_raw_text_and_tokens_are_not_mixed(client: TestClient, expected: dict) -> None:
    number = expected["number"]
    request = {"inputs": [
        {"name": "input", "datatype": "FP32", "shape": list(number.shape),
         "data": number.reshape(-1).tolist()},
        {"name": "review", "datatype": "BYTES", "shape": [len(number)],
         "data": expected["reviews"]["review"].tolist()}]}
    ok = client.post("/v2/models/reviews/infer", json=request)
    assert ok.status_code == 200, ok.text  # one string per row, without the [rows, 1]
    np.testing.assert_allclose(ok.json()["outputs"][0]["data"],
                               expected["text_probs"].reshape(-1), atol=1e-6)
    request["inputs"].append({"name": "tokens", "datatype": "INT64", "shape": [1, 1],
                              "data": [1]})
    bad = client.post("/v2/models/reviews/infer", json=request)
    assert bad.status_code == 400 and "'review'" in bad.json()["error"]


def test_triton_client_sees_our_error_and_the_server_goes_on(triton_client,
                                                            expected: dict) -> None:
    with pytest.raises(InferenceServerException) as info:
        triton_client.infer("nope", [penguin_input(expected["x"])])
    assert "'nope' is not served here" in info.value.message()
    wrong = triton.InferInput("input", [2, 3], "FP32")
    wrong.set_data_from_numpy(np.zeros((2, 3), np.float32))
    with pytest.raises(InferenceServerException) as info:
        triton_client.infer("penguins", [wrong])
    assert "shape" in info.value.message()
    result = triton_client.infer("penguins", [penguin_input(expected["x"])])
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected["probs"], atol=1e-6)


# -- the wire format, byte by byte ---------------------------------------------------------


def strings(*texts: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(t)) + t for t in texts)


def body(inputs: list[dict], tail: bytes, **extra: object) -> tuple[bytes, dict[str, str]]:
    head = json.dumps({"inputs": inputs, **extra}).encode()
    return head + tail, {"Inference-Header-Content-Length": str(len(head))}


def fp32(x: np.ndarray, size: int | None = None) -> dict:
    return {"name": "input", "datatype": "FP32", "shape": list(x.shape),
            "parameters": {"binary_data_size": x.nbytes if size is None else size}}


def words(text: bytes, flag: bytes = b"\x01", count: bytes = b"\x05", n: int = 1,
          text_size: int | None = None) -> tuple[list[dict], bytes]:
    return [{"name": "text", "datatype": "BYTES", "shape": [n],
             "parameters": {"binary_data_size": len(text) if text_size is None else text_size}},
            {"name": "flag", "datatype": "BOOL", "shape": [n],
             "parameters": {"binary_data_size": len(flag)}},
            {"name": "count", "datatype": "UINT8", "shape": [n],
             "parameters": {"binary_data_size": len(count)}}], text + flag + count


def split(response) -> tuple[dict, bytes]:
    """A binary response's JSON header and the bytes after it."""
    n = int(response.headers["inference-header-content-length"])
    return json.loads(response.content[:n]), response.content[n:]


def test_a_binary_response_is_framed_as_the_extension_says(client: TestClient,
                                                           expected: dict) -> None:
    x = expected["x"]
    content, headers = body([fp32(x)], x.tobytes(), outputs=[
        {"name": "probabilities", "parameters": {"binary_data": True}}])
    response = client.post("/v2/models/penguins/infer", content=content, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    assert len(response.headers.get_list("inference-header-content-length")) == 1
    head, tail = split(response)
    [out] = head["outputs"]
    assert out["parameters"] == {"binary_data_size": len(tail)} and "data" not in out
    got = np.frombuffer(tail, "<f4").reshape(out["shape"])
    np.testing.assert_allclose(got, expected["probs"], atol=1e-6)


def test_a_header_length_of_the_whole_body_is_all_json(client: TestClient,
                                                      expected: dict) -> None:
    x = expected["x"]
    content = json.dumps({"inputs": [{"name": "input", "datatype": "FP32",
                                      "shape": list(x.shape),
                                      "data": x.reshape(-1).tolist()}]}).encode()
    response = client.post("/v2/models/penguins/infer", content=content,
                           headers={"Inference-Header-Content-Length": str(len(content))})
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(response.json()["outputs"][0]["data"],
                               expected["probs"].reshape(-1), atol=1e-6)


def test_outputs_follow_the_default_unless_they_say_otherwise(client: TestClient) -> None:
    inputs, tail = words(strings(b"ab", b"c"), b"\x00\x01", b"\x02\x03", n=2)
    content, headers = body(inputs, tail, parameters={"binary_data_output": True},
                            outputs=[{"name": "upper"}, {"name": "negated"},
                                     {"name": "counted", "parameters": {"binary_data": False}}])
    response = client.post("/v2/models/words/infer", content=content, headers=headers)
    head, rest = split(response)
    upper, _, counted = head["outputs"]
    assert counted["data"] == [2, 3] and "parameters" not in counted
    assert upper["parameters"]["binary_data_size"] == len(strings(b"AB", b"C"))
    assert rest == strings(b"AB", b"C") + b"\x01\x00"  # in the order the outputs are listed


def test_plain_json_when_no_binary_output_has_bytes(client: TestClient) -> None:
    # An empty batch: binary asked for, but nothing to send after the JSON.
    request = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [0, 10], "data": []}],
               "parameters": {"binary_data_output": True}}
    response = client.post("/v2/models/penguins/infer", json=request)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "inference-header-content-length" not in response.headers
    [out] = response.json()["outputs"]
    assert out["parameters"] == {"binary_data_size": 0} and out["shape"][0] == 0


def test_text_in_json_and_binary_agree(client: TestClient) -> None:
    json_request = {"inputs": [
        {"name": "text", "datatype": "BYTES", "shape": [3], "data": TEXTS},
        {"name": "flag", "datatype": "BOOL", "shape": [3], "data": [True, False, True]},
        {"name": "count", "datatype": "UINT8", "shape": [3], "data": [1, 2, 3]}]}
    by_json = client.post("/v2/models/words/infer", json=json_request)
    assert by_json.status_code == 200, by_json.text
    assert by_json.json()["outputs"][1]["data"] == TEXTS

    inputs, tail = words(strings(*(t.encode() for t in TEXTS)), b"\x01\x00\x01",
                         b"\x01\x02\x03", n=3)
    content, headers = body(inputs, tail)
    by_binary = client.post("/v2/models/words/infer", content=content, headers=headers)
    assert by_binary.status_code == 200, by_binary.text
    assert by_binary.json() == by_json.json()


GOOD_X = np.zeros((1, 10), np.float32)
BAD = {  # name: (model, body, headers, a phrase the error must hold)
    "header length not a number": ("penguins", b'{"inputs": []}', {
        "Inference-Header-Content-Length": "12abc"}, "whole number"),
    "header length negative": ("penguins", b'{"inputs": []}', {
        "Inference-Header-Content-Length": "-1"}, "whole number"),
    "header length past the body": ("penguins", b'{"inputs": []}', {
        "Inference-Header-Content-Length": "15"}, "more than the whole body"),
    "header length with 5000 digits": ("penguins", b'{"inputs": []}', {
        "Inference-Header-Content-Length": "9" * 5000}, "whole number"),
    "raw binary request": ("penguins", GOOD_X.tobytes(), {
        "Inference-Header-Content-Length": "0"}, "not supported"),
    "header cut inside the JSON": ("penguins", *body([fp32(GOOD_X)], GOOD_X.tobytes())[:1],
                                   {"Inference-Header-Content-Length": "20"}, "not valid JSON"),
    "short binary data": ("penguins", *body([fp32(GOOD_X)], GOOD_X.tobytes()[:-4]),
                          "only 36 follow"),
    "long binary data": ("penguins", *body([fp32(GOOD_X)], GOOD_X.tobytes() + b"\0"),
                         "too long"),
    "binary data without the header": ("penguins", body([fp32(GOOD_X)], b"")[0], {},
                                       "no Inference-Header-Content-Length"),
    "size not the shape's": ("penguins", *body([fp32(GOOD_X, 36)], GOOD_X.tobytes()[:36]),
                             "needs 40 bytes"),
    "size negative": ("penguins", *body([fp32(GOOD_X, -4)], b""), "non-negative"),
    "size not a number": ("penguins", *body([fp32(GOOD_X, "40")], GOOD_X.tobytes()),  # type: ignore[arg-type]
                          "non-negative"),
    "data and binary both": ("penguins", *body([{**fp32(GOOD_X), "data": [0] * 10}],
                                              GOOD_X.tobytes()), "both"),
    "not finite": ("penguins", *body([fp32(GOOD_X)], np.full((1, 10), np.nan,
                                                             np.float32).tobytes()), "finite"),
    "output flag not true or false": ("penguins", *body(
        [fp32(GOOD_X)], GOOD_X.tobytes(), parameters={"binary_data_output": "yes"}),
        "true or false"),
    "classification asked for": ("penguins", *body(
        [fp32(GOOD_X)], GOOD_X.tobytes(),
        outputs=[{"name": "probabilities", "parameters": {"classification": 2}}]),
        "classification extension is not supported"),
    "text length past its data": ("words", *body(*words(struct.pack("<I", 9) + b"abc")),
                                  "says 9 bytes"),
    "text length cut short": ("words", *body(*words(strings(b"ab") + b"\x01\x00",
                                                    n=2)), "no 4-byte length"),
    "bytes after the strings": ("words", *body(*words(strings(b"ab") + b"zz")),
                                "2 bytes after its 1 BYTES"),
    "strings fewer than the shape": ("words", *body(*words(b"", n=1)), "at least 4 bytes"),
    "text not UTF-8": ("words", *body(*words(strings(b"\xff\xfe"))), "not UTF-8"),
    "BOOL byte not 0 or 1": ("words", *body(*words(strings(b"a"), flag=b"\x02")), "0 or 1"),
    "text sent to a number input": ("penguins", *body(
        [{**fp32(GOOD_X, 5), "datatype": "BYTES", "shape": [1]}], strings(b"a")), "takes FP32"),
    "numbers sent to a text input": ("words", *body(
        [{**words(strings(b"a"))[0][0], "datatype": "INT32",
          "parameters": {"binary_data_size": 4}}, *words(b"")[0][1:]], b"\0\0\0\0\x01\x05"),
        "takes BYTES"),
    "JSON text not strings": ("words", json.dumps({"inputs": [
        {"name": "text", "datatype": "BYTES", "shape": [1], "data": [5]},
        {"name": "flag", "datatype": "BOOL", "shape": [1], "data": [True]},
        {"name": "count", "datatype": "UINT8", "shape": [1], "data": [1]}]}).encode(), {},
        "must be strings"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_malformed_binary_bodies_are_400_and_the_next_request_works(
        client: TestClient, expected: dict, case: str) -> None:
    model, content, headers, phrase = BAD[case]
    response = client.post(f"/v2/models/{model}/infer", content=content, headers=headers)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert phrase in error and "Traceback" not in error

    x = expected["x"]
    content, headers = body([fp32(x)], x.tobytes())
    good = client.post("/v2/models/penguins/infer", content=content, headers=headers)
    assert good.status_code == 200, good.text
    np.testing.assert_allclose(good.json()["outputs"][0]["data"],
                               expected["probs"].reshape(-1), atol=1e-6)
