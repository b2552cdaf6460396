"""The inference app in process: routes, the API key, limits and error bodies."""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

from studio.core import registry
from studio.core.datasets.recipe import transform
from studio.core.predict import Predictor
from studio.core.workspace import Workspace
from studio.serving.app import create_app
from studio.serving.dataplane import ModelRepository
from studio.serving.limits import ServeLimits

KEY = "s3cret-key"
ROWS = [0, 1, 3, 160, 250, 300]  # row 3 has every feature missing


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
def keyed(repo: ModelRepository) -> Iterator[TestClient]:
    with TestClient(create_app(repo, api_key=KEY)) as c:
        yield c


@pytest.fixture(scope="module")
def expected(trained_ws: Workspace, penguins: pd.DataFrame) -> dict:
    predictor = Predictor(trained_ws, registry.get_version(trained_ws, "penguins:1"), threads=1)
    frame = penguins.iloc[ROWS].drop(columns=["species"])
    x = transform(predictor.recipe, frame)
    return {"x": x, "probs": predictor.infer({"input": x}), "frame": frame,
            "records": predictor.predict_frame(frame)}


@pytest.fixture(scope="module")
def penguins() -> pd.DataFrame:
    return pd.read_csv(Path(__file__).resolve().parents[1] / "resources/samples/penguins.csv")


def v2_request(x: np.ndarray, **extra: object) -> dict:
    tensor = {"name": "input", "datatype": "FP32", "shape": list(x.shape),
              "data": x.reshape(-1).tolist()}
    return {"inputs": [tensor], **extra}


def assert_error(response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"]
    return body["error"]


def test_health_and_server_metadata(client: TestClient) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    meta = client.get("/v2").json()
    assert meta["name"] == "model-studio" and "version" in meta
    assert client.get("/v2/models/penguins/ready").json()["ready"] is True
    assert client.get("/v2/models/penguins/versions/1/ready").status_code == 200
    models = client.get("/v1/models").json()["models"]
    assert models == [{"name": "penguins", "versions": [1], "latest": 1}]


def test_model_metadata(client: TestClient, expected: dict) -> None:
    for path in ("/v2/models/penguins", "/v2/models/penguins/versions/1"):
        meta = client.get(path).json()
        assert meta["name"] == "penguins" and meta["versions"] == ["1"]
        assert meta["inputs"] == [{"name": "input", "datatype": "FP32",
                                   "shape": [-1, expected["x"].shape[1]]}]
        assert meta["outputs"][0]["name"] == "probabilities"
        assert meta["parameters"]["labels"] == ["Adelie", "Chinstrap", "Gentoo"]
        columns = {c["name"] for c in meta["parameters"]["raw_columns"]}
        assert "species" not in columns and "bill_length_mm" in columns


@pytest.mark.parametrize("path", ["/v2/models/penguins/infer",
                                  "/v2/models/penguins/versions/1/infer"])
def test_infer_matches_in_process_predictor(client: TestClient, expected: dict,
                                            path: str) -> None:
    response = client.post(path, json=v2_request(expected["x"]))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_name"] == "penguins" and body["model_version"] == "1"
    [out] = body["outputs"]
    assert out["name"] == "probabilities" and out["datatype"] == "FP32"
    assert out["shape"] == list(expected["probs"].shape)
    got = np.asarray(out["data"], dtype=np.float32).reshape(out["shape"])
    np.testing.assert_allclose(got, expected["probs"], atol=1e-5)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-4)


def test_infer_accepts_a_single_flat_row(client: TestClient, expected: dict) -> None:
    row = expected["x"][:1].reshape(-1)
    response = client.post("/v2/models/penguins/infer", json=v2_request(row))
    assert response.status_code == 200, response.text
    out = response.json()["outputs"][0]
    assert out["shape"] == [1, 3]
    np.testing.assert_allclose(out["data"], expected["probs"][0], atol=1e-5)


def test_infer_fp64_input_is_accepted(client: TestClient, expected: dict) -> None:
    request = v2_request(expected["x"].astype(np.float64))
    request["inputs"][0]["datatype"] = "FP64"
    response = client.post("/v2/models/penguins/infer", json=request)
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(response.json()["outputs"][0]["data"],
                               expected["probs"].reshape(-1), atol=1e-5)


def test_infer_output_selection_and_id(client: TestClient, expected: dict) -> None:
    request = v2_request(expected["x"], id="req-42", outputs=[{"name": "probabilities"}])
    body = client.post("/v2/models/penguins/infer", json=request).json()
    assert body["id"] == "req-42"
    assert [o["name"] for o in body["outputs"]] == ["probabilities"]

    no_id = client.post("/v2/models/penguins/infer", json=v2_request(expected["x"])).json()
    assert "id" not in no_id

    bad = client.post("/v2/models/penguins/infer",
                      json=v2_request(expected["x"], outputs=[{"name": "logits"}]))
    assert "logits" in assert_error(bad, 400)
    bad = client.post("/v2/models/penguins/infer",
                      json=v2_request(expected["x"], outputs="probabilities"))
    assert_error(bad, 400)


def test_v1_predict_matches_in_process_predictor(client: TestClient, expected: dict) -> None:
    frame = expected["frame"]
    instances = [{k: (None if pd.isna(v) else v) for k, v in row.items()}
                 for row in frame.to_dict(orient="records")]
    for path in ("/v1/models/penguins:predict", "/v1/models/penguins/versions/1:predict"):
        response = client.post(path, json={"instances": instances})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model_name"] == "penguins" and body["model_version"] == "1"
        assert body["labels"] == expected["records"]["labels"]
        assert body["predictions"] == expected["records"]["predictions"]
        np.testing.assert_allclose(body["probabilities"], expected["probs"], atol=1e-5)


@pytest.mark.parametrize(("path", "body", "status"), [
    ("/v2/models/penguins/infer", b"{not json", 400),
    ("/v2/models/penguins/infer", b"", 400),
    ("/v2/models/penguins/infer", b"[]", 400),
    ("/v2/models/penguins/infer", b'{"inputs": []}', 400),
    ("/v2/models/penguins/infer",
     b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 10], "data": [0]}]}', 400),
    ("/v2/models/penguins/infer",
     b'{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3]}]}',
     400),
    ("/v2/models/penguins/infer",
     b'{"inputs": [{"name": "input", "datatype": "FP32", "shape": [2, 10], "data": [1]}]}', 400),
    ("/v2/models/penguins/infer",
     b'{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 10],'
     b' "data": ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]}]}', 400),
    ("/v2/models/penguins/infer",
     b'{"inputs": [{"name": "input", "datatype": "STRING", "shape": [1], "data": ["a"]}]}', 400),
    ("/v2/models/penguins/infer",
     b'{"inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 10], "data": []}]}', 400),
    ("/v2/models/nope/infer", b'{"inputs": []}', 404),
    ("/v2/models/penguins/versions/2/infer", b'{"inputs": []}', 404),
    ("/v2/models/penguins/versions/x/infer", b'{"inputs": []}', 404),
    ("/v1/models/penguins:predict", b'{"instances": [{"island": "Biscoe"}]}', 400),
    ("/v1/models/penguins:predict", b'{"instances": {"island": "Biscoe"}}', 400),
    ("/v1/models/penguins:predict", b'{"instances": []}', 400),
    ("/v1/models/penguins:predict", b'{"instances": [1, 2]}', 400),
    ("/v1/models/penguins:predict", b'{"rows": []}', 400),
    ("/v1/models/nope:predict", b'{"instances": []}', 404),
])
def test_bad_requests_get_a_json_error(client: TestClient, path: str, body: bytes,
                                       status: int) -> None:
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert_error(response, status)


def test_unknown_routes_and_methods(client: TestClient) -> None:
    assert_error(client.get("/nope"), 404)
    assert_error(client.get("/v2/models/nope"), 404)
    assert_error(client.get("/v2/models/penguins/versions/9"), 404)
    refused = client.get("/v2/models/penguins/infer")
    assert_error(refused, 405)
    assert refused.headers["allow"] == "POST"
    assert client.delete("/v2/health/ready").headers["allow"] == "GET, HEAD"
    probed = client.head("/v2/health/ready")  # what load balancers and `curl -I` send
    assert probed.status_code == 200 and probed.content == b""
    # paths the router would not match are not inference either
    for path in ("/v2/models//infer", "/v2/models/penguins/x/infer",
                 "/v2/models/penguins/versions//infer", "/v2/models/a/b/c/d/infer"):
        assert_error(client.post(path, json={}), 404)


def test_openapi_lists_the_inference_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "post" in paths["/v2/models/{name}/infer"]
    assert "post" in paths["/v1/models/{name}:predict"]
    assert "post" in paths["/v2/models/{name}/versions/{version}/infer"]


def test_api_key_is_required_except_for_health(keyed: TestClient, expected: dict) -> None:
    request = v2_request(expected["x"])
    assert_error(keyed.post("/v2/models/penguins/infer", json=request), 401)
    assert_error(keyed.get("/v2/models/penguins"), 401)
    assert_error(keyed.get("/openapi.json"), 401)
    assert_error(keyed.post("/v2/models/penguins/infer", json=request,
                            headers={"Authorization": "Bearer wrong"}), 401)
    assert_error(keyed.post("/v2/models/penguins/infer", json=request,
                            headers={"X-API-Key": KEY + "x"}), 401)

    for headers in ({"Authorization": f"Bearer {KEY}"}, {"authorization": f"bearer {KEY}"},
                    {"X-API-Key": KEY}):
        response = keyed.post("/v2/models/penguins/infer", json=request, headers=headers)
        assert response.status_code == 200, (headers, response.text)
        np.testing.assert_allclose(response.json()["outputs"][0]["data"],
                                   expected["probs"].reshape(-1), atol=1e-5)

    assert keyed.get("/v2/health/live").status_code == 200
    assert keyed.get("/v2/health/ready").status_code == 200


def test_body_over_the_limit_is_refused(repo: ModelRepository, expected: dict) -> None:
    with TestClient(create_app(repo, limits=ServeLimits(max_body_bytes=4096))) as client:
        big = v2_request(np.zeros((200, expected["x"].shape[1]), dtype=np.float32))
        response = client.post("/v2/models/penguins/infer", json=big)
        assert "body" in assert_error(response, 413)
        assert response.headers["connection"] == "close"  # the rest is never read

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds on bytes read
            yield b'{"inputs": ['
            for _ in range(100):
                yield b" " * 100
            yield b"]}"

        response = client.post("/v2/models/penguins/infer", content=chunks(),
                               headers={"content-type": "application/json"})
        assert_error(response, 413)

        small = client.post("/v2/models/penguins/infer", json=v2_request(expected["x"][:1]))
        assert small.status_code == 200


def test_a_lying_content_length_is_refused(client: TestClient) -> None:
    response = client.post("/v2/models/penguins/infer", content=b"{}",
                           headers={"content-length": str(10**12),
                                    "content-type": "application/json"})
    assert 400 <= response.status_code < 500


@pytest.mark.parametrize("data,shape", [
    (["nan", "inf", "1"], [1, 3]),  # strings numpy would quietly turn into floats
    ([1e40, 0.0, 0.0], [1, 3]),  # overflows FP32
    ([True, False, True], [1, 3]),
    ([[1, 2], [3]], [1, 3]),  # ragged
    ([], [4611686018427387904, 4]),  # a product that wraps around in int64
])
def test_infer_refuses_values_that_are_not_finite_numbers(client: TestClient, data: list,
                                                           shape: list) -> None:
    body = {"inputs": [{"name": "input", "datatype": "FP32", "shape": shape, "data": data}]}
    assert_error(client.post("/v2/models/penguins/infer", json=body), 400)


def test_records_ignore_unknown_keys_without_materializing_them(
    client: TestClient, expected: dict
) -> None:
    rows = expected["frame"].astype(object).where(expected["frame"].notna(), None)
    base = rows.to_dict(orient="records")
    # every row with its own junk key: must not become a rows × keys table
    junk = [{**base[i % len(base)], f"junk{i}": i} for i in range(3000)]
    response = client.post("/v1/models/penguins:predict", json={"instances": junk})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert len(answer["predictions"]) == 3000
    assert answer["predictions"][:len(base)] == expected["records"]["predictions"]


def test_records_refuse_numbers_out_of_float32_range(client: TestClient, expected: dict) -> None:
    row = expected["frame"].iloc[0].to_dict()
    row["body_mass_g"] = 1e308
    error = assert_error(client.post("/v1/models/penguins:predict", json={"instances": [row]}),
                         400)
    assert "body_mass_g" in error
