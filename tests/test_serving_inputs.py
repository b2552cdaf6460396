"""Hostile and unusual inputs to the inference routes: each is a 4xx naming what is wrong,
never a 500 or a silently changed number, and the records route's other body formats
(MLflow, CSV) answer exactly as ``{"instances": [...]}`` does."""

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

from studio.core import registry
from studio.core.casting import checked_cast
from studio.core.datasets import pixels
from studio.core.datasets.recipe import frame_from_records
from studio.core.errors import InputError, NotFoundError
from studio.core.predict import Predictor
from studio.core.workspace import Workspace
from studio.serving.app import create_app
from studio.serving.dataplane import V2_DTYPES, ModelRepository

ROWS = [0, 1, 3, 160, 250, 300]  # row 3 has every feature missing
INFER = "/v2/models/penguins/infer"
PREDICT = "/v1/models/penguins:predict"


@pytest.fixture(scope="module")
def trained_ws(trained_home: Path) -> Iterator[Workspace]:
    ws = Workspace.open(trained_home)
    yield ws
    ws.db.close()


@pytest.fixture(scope="module")
def repo(trained_ws: Workspace) -> ModelRepository:
    return ModelRepository(trained_ws, ["penguins:1"], threads=1)


@pytest.fixture(scope="module")
def client(repo: ModelRepository) -> Iterator[TestClient]:
    with TestClient(create_app(repo)) as c:
        yield c


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    path = Path(__file__).resolve().parents[1] / "resources/samples/penguins.csv"
    return pd.read_csv(path).iloc[ROWS].drop(columns=["species"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def instances(frame: pd.DataFrame) -> list[dict]:
    return [{k: (None if pd.isna(v) else v) for k, v in row.items()}
            for row in frame.to_dict(orient="records")]


@pytest.fixture(scope="module")
def answer(client: TestClient, instances: list[dict]) -> dict:
    """Today's answer to ``{"instances": [...]}``, which every other format must equal."""
    response = client.post(PREDICT, json={"instances": instances})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def x(trained_ws: Workspace, frame: pd.DataFrame) -> np.ndarray:
    from studio.core.datasets.recipe import transform

    predictor = Predictor(trained_ws, registry.get_version(trained_ws, "penguins:1"), threads=1)
    return transform(predictor.recipe, frame)


def tensor(x: np.ndarray, datatype: str = "FP32", **fields: object) -> dict:
    return {"name": "input", "datatype": datatype, "shape": list(x.shape),
            "data": x.reshape(-1).tolist(), **fields}


def assert_error(response, *statuses: int) -> str:
    assert response.status_code in (statuses or (400,)), response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"]
    assert "Traceback" not in body["error"] and ".py" not in body["error"]
    return body["error"]


def good_requests_still_work(client: TestClient, x: np.ndarray, answer: dict,
                             instances: list[dict]) -> None:
    response = client.post(INFER, json={"inputs": [tensor(x)]})
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(response.json()["outputs"][0]["data"],
                               np.asarray(answer["probabilities"]).reshape(-1), atol=1e-5)
    assert client.post(PREDICT, json={"instances": instances}).json() == answer


# -- A: what used to be a 500 ----------------------------------------------------------------

@pytest.mark.parametrize("field", ["name", "datatype"])
@pytest.mark.parametrize("value", [["input"], {"name": "input"}, [], {}])
def test_name_or_datatype_of_another_type_is_a_400(client: TestClient, x: np.ndarray,
                                                   answer: dict, instances: list[dict],
                                                   field: str, value: object) -> None:
    message = assert_error(client.post(INFER, json={"inputs": [tensor(x, **{field: value})]}))
    assert ("unknown input" if field == "name" else "unsupported datatype") in message
    good_requests_still_work(client, x, answer, instances)


def test_a_shape_of_more_than_64_dimensions_is_a_400(client: TestClient, x: np.ndarray,
                                                     answer: dict, instances: list[dict]
                                                     ) -> None:
    deep = tensor(x[:1])
    deep["shape"] = [1] * 64 + [x.shape[1]]  # the right number of values, 65 dimensions
    assert "65 dimensions" in assert_error(client.post(INFER, json={"inputs": [deep]}))
    good_requests_still_work(client, x, answer, instances)


@pytest.mark.parametrize("version", ["%C2%B2", "%EF%BC%91", "1" * 5000, "0", "-1", "1.0"])
def test_a_version_that_is_no_number_is_a_404_with_a_sentence(
        client: TestClient, x: np.ndarray, answer: dict, instances: list[dict],
        version: str) -> None:
    base = f"/v2/models/penguins/versions/{version}"
    for response in (client.post(f"{base}/infer", json={"inputs": [tensor(x)]}),
                     client.post(f"/v1/models/penguins/versions/{version}:predict",
                                 json={"instances": instances}),
                     client.get(base), client.get(f"{base}/ready")):
        message = assert_error(response, 404)
        assert "not served here" in message and len(message) < 300
    good_requests_still_work(client, x, answer, instances)


@pytest.mark.parametrize("ref", ["penguins:²", "penguins:" + "1" * 5000,
                                 "penguins:" + "9" * 30, "penguins:0"])
def test_registry_refs_with_odd_numbers_are_input_errors(trained_ws: Workspace,
                                                         ref: str) -> None:
    with pytest.raises(InputError, match="invalid version"):
        registry.resolve(trained_ws, ref)
    with pytest.raises(NotFoundError):  # the largest plain number is a lookup, not an error
        registry.resolve(trained_ws, "penguins:" + "9" * 18)
    assert registry.resolve(trained_ws, "penguins:1") == ("penguins", 1)


@pytest.mark.parametrize("build", [
    lambda t: {"inputs": [t], "outputs": "probabilities"},
    lambda t: {"inputs": [t], "outputs": ["probabilities"]},
    lambda t: {"inputs": [t], "outputs": [{"name": ["probabilities"]}]},
    lambda t: {"inputs": [t], "outputs": [{"name": {"a": 1}}]},
    lambda t: {"inputs": [t], "outputs": [{"name": "probabilities", "parameters": [1]}]},
    lambda t: {"inputs": [t], "id": {"a": 1}},
    lambda t: {"inputs": [t], "id": 42},
    lambda t: {"inputs": [t], "parameters": [1, 2]},
    lambda t: {"inputs": [t], "parameters": "binary"},
    lambda t: {"inputs": [{**t, "parameters": []}]},
    lambda t: {"inputs": [t, t]},
    lambda t: {"inputs": [{**t, "shape": None}]},
    lambda t: {"inputs": [{**t, "shape": [True, 10]}]},
    lambda t: {"inputs": [{**t, "shape": [10**400, 10]}]},
    lambda t: {"inputs": [{**t, "shape": [1, -0.0]}]},
    lambda t: {"inputs": [{**t, "shape": [2**64, 2**64]}]},
    lambda t: {"inputs": [{**t, "data": None}]},
    lambda t: {"inputs": [{**t, "data": [[None] * 10]}]},
    lambda t: {"inputs": [{**t, "data": [["NaN"] * 10]}]},
    lambda t: {"inputs": [{**t, "data": [[True] * 10]}]},
    lambda t: {"inputs": [{**t, "data": [[{"a": 1}] * 10]}]},
    lambda t: {"inputs": [{**t, "data": [[1] * 9, [1]]}]},
    lambda t: {"inputs": [{**t, "data": [1e308] * 10}]},
    lambda t: {"inputs": [{**t, "datatype": "BYTES"}]},
    lambda t: {"inputs": [{**t, "datatype": None}]},
    lambda t: {"inputs": None},
    lambda t: {"inputs": "input"},
    lambda t: {"inputs": [None]},
    lambda t: {"inputs": [[t]]},
])
def test_odd_json_types_in_a_v2_request_are_4xx(client: TestClient, x: np.ndarray,
                                                answer: dict, instances: list[dict],
                                                build) -> None:
    one = tensor(x[:1])
    one["shape"] = [1, x.shape[1]]
    assert_error(client.post(INFER, json=build(one)), 400)
    good_requests_still_work(client, x, answer, instances)


@pytest.mark.parametrize("body", [
    b"null", b"1", b'"instances"', b"[]", b"{}", b'{"instances": null}',
    b'{"instances": [null]}', b'{"instances": [[1, 2]]}', b'{"instances": [{"island": [1]}]}',
    b'{"instances": [], "dataframe_records": []}', b'{"dataframe_split": []}',
    b'{"dataframe_split": {"columns": "island", "data": [[1]]}}',
    b'{"dataframe_split": {"columns": [1], "data": [[1]]}}',
    b'{"dataframe_split": {"columns": ["island", "island"], "data": [[1, 2]]}}',
    b'{"dataframe_split": {"columns": ["island"], "data": [[1, 2]]}}',
    b'{"dataframe_split": {"columns": ["island"], "data": [["Biscoe"]], "index": [0, 1]}}',
    b'{"dataframe_split": {"columns": ["island"], "data": "x"}}',
    b'{"dataframe_records": {"island": "Biscoe"}}', b'{"inputs": {"island": "Biscoe"}}',
    b'{"inputs": {"island": ["Biscoe"], "sex": ["male", "female"]}}', b'{"inputs": 3}',
    b'{"instances": [{"bill_length_mm": 1e400}]}', b'{"instances": [{"year": {"b64": "AA"}}]}',
])
def test_odd_records_bodies_are_400(client: TestClient, x: np.ndarray, answer: dict,
                                    instances: list[dict], body: bytes) -> None:
    response = client.post(PREDICT, content=body, headers={"content-type": "application/json"})
    assert_error(response, 400)
    good_requests_still_work(client, x, answer, instances)


# -- B: no silent change of a number -----------------------------------------------------------

INTEGER_TYPES = [t for t, d in V2_DTYPES.items() if d.kind in "iu"]


@pytest.mark.parametrize("datatype", INTEGER_TYPES)
def test_integers_out_of_their_types_range_are_refused_by_value(
        client: TestClient, x: np.ndarray, answer: dict, instances: list[dict],
        datatype: str) -> None:
    info = np.iinfo(V2_DTYPES[datatype])
    width = x.shape[1]
    for outside in (int(info.min) - 1, int(info.max) + 1):
        data = [0] * (width - 1) + [outside]
        request = {"inputs": [{"name": "input", "datatype": datatype, "shape": [1, width],
                               "data": data}]}
        message = assert_error(client.post(INFER, json=request))
        # past 64 bits (or beside a zero, past int64) NumPy holds it as a float
        named = (f"{v} is out of range for {datatype}" for v in (outside, float(outside)))
        assert any(n in message for n in named), message
    good_requests_still_work(client, x, answer, instances)


@pytest.mark.parametrize("datatype", INTEGER_TYPES)
def test_integers_in_range_answer_as_the_same_fp32_numbers(client: TestClient,
                                                           datatype: str) -> None:
    info = np.iinfo(V2_DTYPES[datatype])
    values = np.array([info.min, info.max, 0, 1, 2, 3, 4, 5, 6, 7], dtype=np.float64)
    values = np.clip(values, -3e4, 3e4)[None]  # in FP32's exact range for comparison
    ints = {"name": "input", "datatype": datatype, "shape": [1, 10],
            "data": [int(v) for v in values[0]]}
    got = client.post(INFER, json={"inputs": [ints]})
    assert got.status_code == 200, got.text
    want = client.post(INFER, json={"inputs": [tensor(values.astype(np.float32))]})
    assert got.json()["outputs"] == want.json()["outputs"]


def test_floats_past_their_types_range_are_refused(client: TestClient) -> None:
    big = {"name": "input", "datatype": "FP16", "shape": [1, 10], "data": [70000] + [0] * 9}
    assert "70000 is out of range for FP16" in assert_error(
        client.post(INFER, json={"inputs": [big]}))
    fp32 = {**big, "datatype": "FP32", "data": [1e300] + [0.0] * 9}
    assert "out of range for FP32" in assert_error(client.post(INFER, json={"inputs": [fp32]}))
    fp64 = {**big, "datatype": "FP64", "data": [1e300] + [0.0] * 9}  # FP64 fits; the model
    assert "out of range for FP32" in assert_error(  # takes FP32
        client.post(INFER, json={"inputs": [fp64]}))


def test_checked_cast_names_what_it_refuses() -> None:
    assert checked_cast(np.array([1, -2]), np.int8, "x", "INT8").dtype == np.int8
    with pytest.raises(InputError, match=r"1000 is out of range for INT8 \(-128 to 127\)"):
        checked_cast(np.array([1000]), np.int8, "x", "INT8")
    with pytest.raises(InputError, match="-1 is out of range for UINT8"):
        checked_cast(np.array([-1]), np.uint8, "x", "UINT8")
    with pytest.raises(InputError, match=r"must be integers, got 1\.5"):
        checked_cast(np.array([1.5]), np.int32, "x", "INT32")
    with pytest.raises(InputError, match="is not a finite number"):
        checked_cast(np.array([np.inf]), np.float32, "x", "FP32")
    big = np.array([2**63], dtype=np.uint64)  # wraps to a negative INT64 with astype
    with pytest.raises(InputError, match="9223372036854775808 is out of range for INT64"):
        checked_cast(big, np.int64, "x", "INT64")


@pytest.mark.parametrize("value", ["Infinity", "inf", "-Infinity", "NaN", "nan", "1e400"])
def test_non_finite_numbers_in_records_are_refused_by_column_and_value(
        client: TestClient, x: np.ndarray, answer: dict, instances: list[dict],
        value: str) -> None:
    row = {**instances[0], "bill_length_mm": value}
    message = assert_error(client.post(PREDICT, json={"instances": [row]}))
    assert "'bill_length_mm'" in message and repr(value) in message
    good_requests_still_work(client, x, answer, instances)


def test_a_missing_value_is_still_imputed(client: TestClient, instances: list[dict]) -> None:
    row = {**instances[0], "bill_length_mm": None}
    absent = {k: v for k, v in instances[0].items() if k != "bill_length_mm"}
    null = client.post(PREDICT, json={"instances": [row]})
    assert null.status_code == 200, null.text
    assert client.post(PREDICT, json={"instances": [absent, instances[1]]}).json()[
        "probabilities"][0] == null.json()["probabilities"][0]


# -- C: other records formats give today's answer -------------------------------------------

def test_mlflow_dataframe_split_and_records(client: TestClient, frame: pd.DataFrame,
                                            instances: list[dict], answer: dict) -> None:
    columns = list(frame.columns)
    split = {"columns": columns, "data": [[r[c] for c in columns] for r in instances]}
    assert client.post(PREDICT, json={"dataframe_split": split}).json() == answer
    indexed = {**split, "index": list(range(100, 100 + len(instances)))}
    assert client.post(PREDICT, json={"dataframe_split": indexed}).json() == answer
    assert client.post(PREDICT, json={"dataframe_records": instances}).json() == answer
    by_column = {c: [r[c] for r in instances] for c in columns}
    assert client.post(PREDICT, json={"inputs": by_column}).json() == answer
    assert client.post(PREDICT, json={"inputs": instances}).json() == answer
    pandas_split = frame.to_json(orient="split").encode()  # pandas' own writer, NaN as null
    response = client.post(PREDICT, content=b'{"dataframe_split": ' + pandas_split + b"}",
                           headers={"content-type": "application/json"})
    assert response.json() == answer


def test_csv_body(client: TestClient, frame: pd.DataFrame, answer: dict) -> None:
    text = frame.to_csv(index=False)
    for content_type, data in (("text/csv", text.encode()),
                               ("text/csv; charset=utf-8", b"\xef\xbb\xbf" + text.encode()),
                               ("Text/CSV; charset=UTF-16", text.encode("utf-16"))):
        response = client.post(PREDICT, content=data, headers={"content-type": content_type})
        assert response.status_code == 200, (content_type, response.text)
        assert response.json() == answer
    path = "/v1/models/penguins/versions/1:predict"
    assert client.post(path, content=text.encode(),
                       headers={"content-type": "text/csv"}).json() == answer


@pytest.mark.parametrize(("data", "words"), [
    (b"", "empty"),
    (b"island,bill_length_mm\n", "no rows"),
    (b'island,year\n"Biscoe,2007\n', "not a readable CSV"),
    (b"island,island\nBiscoe,Dream\n", "twice"),
    (b"\xff\xfe\xfa,b\n1,2\n", "not a readable CSV"),
    (b"island\nBiscoe\n", "missing columns"),
    (b"a,b\n1,2,3,4\n", "more fields than the header"),
    (b"island,year\nBiscoe,2007,\n", "more fields than the header"),
    (b"island,year\nBiscoe,2007\nDream,2008,1\n", "not a readable CSV"),
])
def test_a_bad_csv_is_a_400(client: TestClient, x: np.ndarray, answer: dict,
                            instances: list[dict], data: bytes, words: str) -> None:
    response = client.post(PREDICT, content=data, headers={"content-type": "text/csv"})
    assert words in assert_error(response)
    good_requests_still_work(client, x, answer, instances)


def test_a_csv_header_past_the_csv_modules_limit_is_a_400(client: TestClient, x: np.ndarray,
                                                          answer: dict, instances: list[dict]
                                                          ) -> None:
    import csv

    raised = csv.field_size_limit(131_072)  # Python's default; the importer raises it
    try:
        response = client.post(PREDICT, content=b"x" * 200_000 + b",island\n1,Biscoe\n",
                               headers={"content-type": "text/csv"})
    finally:
        csv.field_size_limit(raised)
    assert "header row cannot be read" in assert_error(response)
    good_requests_still_work(client, x, answer, instances)


def test_csv_infinity_is_refused_and_an_empty_cell_imputed(
        client: TestClient, frame: pd.DataFrame, instances: list[dict]) -> None:
    one = frame.iloc[:1].copy()
    text = one.to_csv(index=False)
    header, row = text.splitlines()
    cells = row.split(",")
    at = header.split(",").index("bill_length_mm")
    cells[at] = "inf"
    message = assert_error(client.post(PREDICT, content=f"{header}\n{','.join(cells)}\n",
                                       headers={"content-type": "text/csv"}))
    assert "'bill_length_mm'" in message and "inf" in message
    cells[at] = ""
    empty = client.post(PREDICT, content=f"{header}\n{','.join(cells)}\n",
                        headers={"content-type": "text/csv"})
    nulled = {**instances[0], "bill_length_mm": None}
    assert empty.json() == client.post(PREDICT, json={"instances": [nulled]}).json()


def test_every_format_keeps_to_the_models_row_limit(client: TestClient, repo: ModelRepository,
                                                    frame: pd.DataFrame, instances: list[dict],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(repo.get("penguins"), "max_rows", 3)
    columns = list(frame.columns)
    bodies = [{"instances": instances}, {"dataframe_records": instances},
              {"dataframe_split": {"columns": columns,
                                   "data": [[r[c] for c in columns] for r in instances]}},
              {"inputs": {c: [r[c] for r in instances] for c in columns}}]
    for body in bodies:
        assert "limit of 3" in assert_error(client.post(PREDICT, json=body))
    csv = frame.to_csv(index=False).encode()
    assert "limit of 3" in assert_error(client.post(PREDICT, content=csv,
                                                    headers={"content-type": "text/csv"}))
    ok = client.post(PREDICT, content=frame.iloc[:3].to_csv(index=False).encode(),
                     headers={"content-type": "text/csv"})
    assert ok.status_code == 200, ok.text


def _png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def test_b64_objects_decode_as_plain_base64() -> None:
    text = base64.b64encode(_png()).decode()
    plain = pixels.decode(text, 16, allow_paths=False)
    np.testing.assert_array_equal(pixels.decode({"b64": text}, 16, allow_paths=False), plain)
    with pytest.raises(InputError, match="base64"):
        pixels.decode({"b64": "not base64 at all!"}, 16, allow_paths=False)
    with pytest.raises(InputError):
        pixels.decode({"b64": text, "more": 1}, 16, allow_paths=False)


def test_b64_objects_pass_into_image_columns_only() -> None:
    recipe = {"features": [{"name": "image", "kind": "image"},
                           {"name": "size", "kind": "numeric"}]}
    text = base64.b64encode(_png()).decode()
    frame = frame_from_records(recipe, [{"image": {"b64": text}, "size": 1}])
    assert frame["image"].iloc[0] == {"b64": text}
    with pytest.raises(InputError, match="expected a single value"):
        frame_from_records(recipe, [{"image": {"b64": text}, "size": {"b64": "AA=="}}])


def test_openapi_shows_the_accepted_records_bodies(client: TestClient) -> None:
    op = client.get("/openapi.json").json()["paths"]["/v1/models/{name}:predict"]["post"]
    content = op["requestBody"]["content"]
    assert "text/csv" in content
    titles = {s["title"] for s in content["application/json"]["schema"]["oneOf"]}
    assert {"instances", "dataframe_split", "dataframe_records"} <= titles


def _int8_graph(path: Path) -> Path:
    """A graph made elsewhere whose input is INT8 and whose output is that input as floats."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Cast", ["small"], ["wide"], to=TensorProto.FLOAT)], "int8",
        [helper.make_tensor_value_info("small", TensorProto.INT8, ["batch", 2])],
        [helper.make_tensor_value_info("wide", TensorProto.FLOAT, ["batch", 2])])
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]),
                    path)
    return path


def test_a_graph_models_narrow_integers_are_range_checked(ws: Workspace,
                                                          tmp_path: Path) -> None:
    from studio.core.registry.transfer.importer import import_model

    import_model(ws, _int8_graph(tmp_path / "int8.onnx"), "small")
    with TestClient(create_app(ModelRepository(ws, ["small"], threads=1))) as client:
        def send(datatype: str, data: list) -> object:
            return client.post("/v2/models/small/infer", json={"inputs": [
                {"name": "small", "datatype": datatype, "shape": [1, 2], "data": data}]})

        ok = send("INT64", [-128, 127])  # a wider type is fine while its values fit
        assert ok.status_code == 200, ok.text
        assert ok.json()["outputs"][0]["data"] == [-128.0, 127.0]
        assert "1000 is out of range for INT8" in assert_error(send("INT64", [1000, 1]))
        assert "-129 is out of range for INT8" in assert_error(send("INT32", [1, -129]))
        assert send("INT8", [3, 4]).json()["outputs"][0]["data"] == [3.0, 4.0]


@pytest.mark.parametrize("where", ["name", "datatype", "binary name"])
def test_a_huge_value_is_not_sent_back_in_the_error(client: TestClient, x: np.ndarray,
                                                    answer: dict, instances: list[dict],
                                                    where: str) -> None:
    huge = "x" * 1_000_000
    tensor: dict = {"name": "input", "datatype": "FP32", "shape": [1, x.shape[1]],
                    "data": x[0].tolist()}
    if where == "binary name":
        tensor = {"name": huge, "datatype": "FP32", "shape": [1, x.shape[1]],
                  "parameters": {"binary_data_size": 4 * x.shape[1]}}
        head = json.dumps({"inputs": [tensor]}).encode()
        response = client.post(INFER, content=head + x[:1].astype("<f4").tobytes(),
                               headers={"inference-header-content-length": str(len(head)),
                                        "content-type": "application/octet-stream"})
    else:
        tensor[where] = huge
        response = client.post(INFER, json={"inputs": [tensor]})
    assert len(assert_error(response)) < 500
    good_requests_still_work(client, x, answer, instances)
