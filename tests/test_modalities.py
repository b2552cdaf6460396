"""Text and pictures: the recipe's token and image steps, training, and serving raw rows."""

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import run_studio
from starlette.testclient import TestClient
from synthetic import reviews, shapes

from studio.core import registry
from studio.core.datasets import catalog
from studio.core.datasets.prepare import prepare
from studio.core.errors import InputError
from studio.core.workspace import Workspace
from studio.serving.app import create_app
from studio.serving.dataplane import ModelRepository

FAST = {"epochs": 6, "hidden": [32], "batch_size": 16, "threads": 1}


def train(ws: Workspace, dataset: str, target: str, **kw) -> dict:
    from studio.core.training.pipeline import run
    from studio.core.training.spec import TrainSpec

    spec = TrainSpec(dataset=dataset, target=target, **{**FAST, **kw})
    return run(ws, spec, lambda _e: None)


@pytest.fixture(scope="module")
def mws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    ws = Workspace.open(tmp_path_factory.mktemp("modalities"))
    yield ws
    ws.db.close()


@pytest.fixture(scope="module")
def text_model(mws: Workspace, tmp_path_factory: pytest.TempPathFactory) -> dict:
    path = tmp_path_factory.mktemp("text") / "reviews.csv"
    reviews(400).to_csv(path, index=False)
    catalog.import_dataset(mws, path)
    return train(mws, "reviews", "sentiment", learning_rate=1e-2)


@pytest.fixture(scope="module")
def image_model(mws: Workspace, tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = shapes(tmp_path_factory.mktemp("img") / "shapes", per_class=60)
    catalog.import_dataset(mws, folder)
    return train(mws, "shapes", "label", epochs=10,
                 preprocessing={"columns": {"image": {"size": 32}}})


@pytest.fixture(scope="module")
def client(mws: Workspace, text_model: dict, image_model: dict) -> Iterator[TestClient]:
    repo = ModelRepository(mws, [text_model["version"], image_model["version"]], threads=1)
    with TestClient(create_app(repo)) as c:
        yield c


def torch_probabilities(ws: Workspace, ref: str, frame: pd.DataFrame) -> np.ndarray:
    """Training's own path: the trainer's batches through the torch model it saved."""
    import torch
    from safetensors.torch import load

    from studio.core.events import Log
    from studio.core.training.data import ModelData
    from studio.core.training.model import build_model

    version = registry.get_version(ws, ref)
    m = version.manifest.raw
    model = build_model(m["onnx"]["inputs"], len(m["labels"]), m["training"]["hidden"], 0.0,
                        image=m["training"]["details"].get("image_encoder"),
                        text_dim=m["training"]["details"].get("text_dim", 64))
    model.load_state_dict(load(registry.read_file(ws, version, "weights.safetensors")))
    model.eval()
    data = ModelData(m["recipe"], frame, torch.device("cpu"), lambda _e: Log(""))
    with torch.no_grad():
        return model(*data.batch(np.arange(len(frame)))).numpy()


def png_base64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


# -- text --------------------------------------------------------------------------------


def test_text_model_learns_from_the_words(text_model: dict, mws: Workspace) -> None:
    assert text_model["metrics"]["accuracy"] >= 0.9
    recipe = registry.get_version(mws, text_model["version"]).manifest.raw["recipe"]
    assert recipe["modality"] == "text"
    text = next(f for f in recipe["features"] if f["kind"] == "text")
    assert text["name"] == "review" and "wonderful" in text["vocabulary"]
    assert 4 <= text["max_tokens"] <= 40
    assert registry.get_version(mws, text_model["version"]).kind == "text classification"


def test_vocabulary_is_fitted_on_the_training_rows_only() -> None:
    frame = reviews(200)
    prepared = prepare(frame, "r", "sentiment")
    test_rows = prepared.parts[2]
    marked = frame.copy()
    marked.loc[test_rows[:3], "review"] += " zyzzyva"  # a word only test rows have
    prepared = prepare(marked, "r", "sentiment")
    text = next(f for f in prepared.recipe["features"] if f["kind"] == "text")
    assert "zyzzyva" not in text["vocabulary"]
    assert "superb" in text["vocabulary"]


def test_text_records_equal_training_preprocessing_plus_model(
    client: TestClient, text_model: dict, mws: Workspace,
) -> None:
    raw = pd.DataFrame({"review": ["A wonderful, superb film!", "Dull. Boring. Awful.",
                                   "Ünïcode wörds never seen before", "", None],
                        "length_hint": [0.1, 0.9, 0.5, None, 0.3]})
    expected = torch_probabilities(mws, text_model["version"], raw)
    records = [{k: v for k, v in r.items() if v == v} for r in raw.to_dict("records")]
    r = client.post(f"/v1/models/{text_model['name']}:predict", json={"instances": records})
    assert r.status_code == 200, r.text
    body = r.json()
    np.testing.assert_allclose(np.array(body["probabilities"]), expected, atol=1e-5)
    assert body["predictions"][:2] == ["positive", "negative"]


def test_text_v2_infer_takes_two_named_tensors(client: TestClient, text_model: dict) -> None:
    meta = client.get(f"/v2/models/{text_model['name']}").json()
    inputs = {i["name"]: i for i in meta["inputs"]}
    assert inputs["tokens"]["datatype"] == "INT64" and inputs["input"]["datatype"] == "FP32"
    length, width = inputs["tokens"]["shape"][1], inputs["input"]["shape"][1]
    tokens = {"name": "tokens", "datatype": "INT64", "shape": [1, length],
              "data": [2, 3] + [0] * (length - 2)}
    table = {"name": "input", "datatype": "FP32", "shape": [1, width], "data": [0.0] * width}
    r = client.post(f"/v2/models/{text_model['name']}/infer", json={"inputs": [tokens, table]})
    assert r.status_code == 200, r.text
    assert np.isclose(sum(r.json()["outputs"][0]["data"]), 1.0, atol=1e-5)

    for bad, words in ((dict(tokens, data=[10**9] + [0] * (length - 1)), "token ids"),
                       (dict(tokens, datatype="FP32"), "INT64"),
                       (dict(tokens, shape=[1, length + 1], data=[0] * (length + 1)), "shape")):
        r = client.post(f"/v2/models/{text_model['name']}/infer", json={"inputs": [bad, table]})
        assert r.status_code == 400 and words in r.json()["error"], r.text
    r = client.post(f"/v2/models/{text_model['name']}/infer", json={"inputs": [tokens]})
    assert r.status_code == 400 and "2 tensors: 'input', 'tokens'" in r.json()["error"]


# -- images ------------------------------------------------------------------------------


def test_image_model_learns_shapes(image_model: dict, mws: Workspace) -> None:
    assert image_model["metrics"]["accuracy"] >= 0.8
    version = registry.get_version(mws, image_model["version"])
    image = version.manifest.raw["recipe"]["features"][0]
    assert image["kind"] == "image" and image["size"] == 32
    assert len(image["mean"]) == 3 and all(s > 0 for s in image["std"])
    assert version.manifest.raw["input_schema"] == [
        {"name": "image", "kind": "image", "encoding": "base64"}]
    assert version.kind == "image classification"
    assert "resized to 32×32" in registry.read_file(mws, version, "card.md").decode()


def test_image_records_equal_training_preprocessing_plus_model(
    client: TestClient, image_model: dict, mws: Workspace, tmp_path: Path,
) -> None:
    folder = shapes(tmp_path / "new", per_class=3, size=57, seed=7)  # unseen, odd size
    files = sorted(folder.rglob("*.png"))
    expected = torch_probabilities(mws, image_model["version"],
                                   pd.DataFrame({"image": [str(f) for f in files]}))
    instances = [{"image": png_base64(f)} for f in files]
    instances[0]["image"] = "data:image/png;base64," + instances[0]["image"]
    r = client.post("/v1/models/shapes:predict", json={"instances": instances})
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(np.array(r.json()["probabilities"]), expected, atol=1e-5)


def test_pictures_as_b64_objects_answer_as_plain_base64(
    client: TestClient, image_model: dict, tmp_path: Path,
) -> None:
    folder = shapes(tmp_path / "b64", per_class=2, size=40, seed=3)
    texts = [png_base64(f) for f in sorted(folder.rglob("*.png"))]
    plain = client.post("/v1/models/shapes:predict",
                        json={"instances": [{"image": t} for t in texts]})
    assert plain.status_code == 200, plain.text
    wrapped = [{"image": {"b64": t}} for t in texts]  # KServe V1 / TF Serving bytes
    split = {"columns": ["image"], "data": [[w["image"]] for w in wrapped]}
    for body in ({"instances": wrapped}, {"dataframe_split": split}):
        r = client.post("/v1/models/shapes:predict", json=body)
        assert r.status_code == 200, r.text
        assert r.json() == plain.json()
    for value, words in (({"b64": "not base64 at all!"}, "base64"),
                         ({"b64": str(Path(__file__))}, "base64"),
                         ({"b64": texts[0], "type": "png"}, "b64")):
        r = client.post("/v1/models/shapes:predict", json={"instances": [{"image": value}]})
        assert r.status_code == 400 and words in r.json()["error"], r.text


def test_bad_pictures_get_a_clear_400(client: TestClient, image_model: dict,
                                     tmp_path: Path) -> None:
    from PIL import Image

    bomb = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(bomb, "PNG")  # 400 M pixels, a tiny file
    cases = {
        "not base64 at all!": "base64",
        base64.b64encode(b"just some text").decode(): "not a readable image",
        base64.b64encode(bomb.getvalue()).decode(): "decompression bomb",
        str(Path(__file__)): "file paths are not read here",
    }
    for value, words in cases.items():
        r = client.post("/v1/models/shapes:predict", json={"instances": [{"image": value}]})
        assert r.status_code == 400, r.text
        assert words in r.json()["error"]


def test_image_tasks_need_an_image_dataset(mws: Workspace) -> None:
    frame = reviews(60)
    with pytest.raises(InputError, match="image classification needs an image dataset"):
        prepare(frame, "r", "sentiment", task="image-classification")
    with pytest.raises(InputError, match="needs a column of text"):
        prepare(frame.drop(columns=["review"]), "r", "sentiment", task="text-classification")


def test_cli_trains_and_predicts_an_image_folder(tmp_path: Path) -> None:
    home = tmp_path / "home"
    folder = shapes(tmp_path / "shapes", per_class=12, size=24)
    assert run_studio(home, "data", "import", str(folder)).returncode == 0
    done = run_studio(home, "train", "shapes", "--epochs", "2", "--recipe",
                      str(_write(tmp_path / "r.json", '{"columns": {"image": {"size": 32}}}')))
    assert done.returncode == 0, done.stderr
    assert "target: label (the class folders" in done.stderr
    out = run_studio(home, "predict", "shapes", "--input", str(folder / "circle"))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("image,prediction,probability_circle,probability_square")
    assert len(lines) == 13
    table = _write(tmp_path / "rows.csv", "image\ncircle/circle-0.png\n")
    (tmp_path / "circle").symlink_to(folder / "circle")
    out = run_studio(home, "predict", "shapes", "--input", str(table))
    assert out.returncode == 0 and len(out.stdout.strip().splitlines()) == 2, out.stderr
    bad = run_studio(home, "predict", "shapes", "--input", str(_write(tmp_path / "x.png", "no")))
    assert bad.returncode == 2 and "not a readable image" in bad.stderr


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# -- hand-checked steps and hostile requests ----------------------------------------------


def test_token_ids_of_two_text_columns_are_offset_and_unknown_words_left_out() -> None:
    from studio.core.datasets.recipe import id_words, model_inputs, text_tokens, vocabulary_size

    recipe = {"features": [
        {"name": "title", "kind": "text", "vocabulary": ["a", "b"], "max_tokens": 3},
        {"name": "body", "kind": "text", "vocabulary": ["a", "c"], "max_tokens": 4},
    ]}
    frame = pd.DataFrame({"title": ["A b zz", None, "b b b b"],
                          "body": ["c, A!", "", 5.0]})
    ids = text_tokens(recipe, frame)
    # title: a=2 b=3 (id 1, unknown, is never written); body's ids shifted by 3: a=5 c=6
    assert ids.tolist() == [[2, 3, 0, 6, 5, 0, 0],
                            [0, 0, 0, 0, 0, 0, 0],
                            [3, 3, 3, 0, 0, 0, 0]]
    assert vocabulary_size(recipe) == 7
    assert model_inputs(recipe)[0]["segments"] == [3, 4]
    assert id_words(recipe) == {2: "a", 3: "b", 5: "a", 6: "c"}


def test_a_picture_is_resized_and_normalized_with_the_fitted_statistics() -> None:
    from PIL import Image

    from studio.core.datasets.pixels import decode, normalize

    buf = io.BytesIO()
    Image.new("RGB", (50, 30), (255, 0, 51)).save(buf, "PNG")
    pixels = decode(base64.b64encode(buf.getvalue()).decode(), 8, allow_paths=False)
    assert pixels.shape == (8, 8, 3) and (pixels == [255, 0, 51]).all()
    x = normalize({"mean": [0.5, 0.5, 0.2], "std": [0.25, 0.5, 0.1]}, pixels[None])
    assert x.shape == (1, 3, 8, 8)
    np.testing.assert_allclose(x[0, :, 0, 0], [2.0, -1.0, 0.0], atol=1e-6)


def test_text_is_recognized_in_a_small_dataset() -> None:
    prepared = prepare(reviews(40), "r", "sentiment", task="text-classification")
    assert prepared.recipe["modality"] == "text"
    titles = pd.DataFrame({"title": [f"Day {i} in the park" for i in range(60)],
                           "y": ["a", "b"] * 30})
    kinds = {f["name"]: f["kind"] for f in prepare(titles, "t", "y").recipe["features"]}
    assert kinds == {"title": "text"}  # short unique sentences are not identifiers


def _png(size: tuple[int, int], mode: str = "RGB") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new(mode, size).save(buf, "PNG")
    return buf.getvalue()


def test_hostile_pictures_are_refused_before_they_cost_much(client: TestClient,
                                                            image_model: dict) -> None:
    def post(instances: list) -> dict:
        r = client.post("/v1/models/shapes:predict", json={"instances": instances})
        assert r.status_code == 400, r.text
        return r.json()["error"]

    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    assert "not a readable image" in post([{"image": base64.b64encode(eps).decode()}])
    assert "over the limit of 40 million pixels" in post(
        [{"image": base64.b64encode(_png((7_000, 7_000), "1")).decode()}])  # 49 MP
    assert "no image after its comma" in post([{"image": "data:image/png;base64"}])
    many = base64.b64encode(_png((4000, 4000), "1")).decode()  # 16 MP each, ~8 KB
    assert "too many pixels together" in post([{"image": many}] * 20)
    meta = client.get("/v2/models/shapes").json()
    assert meta["inputs"][0]["shape"] == [-1, 3, 32, 32]
    too_many = [{"image": "x"}] * 100_001
    assert "limit" in post(too_many)


def test_wrapped_and_url_safe_base64_are_read(client: TestClient, image_model: dict) -> None:
    import textwrap

    png = _png((40, 40))
    wrapped = "\n".join(textwrap.wrap(base64.b64encode(png).decode(), 76))
    url_safe = base64.urlsafe_b64encode(png).decode().rstrip("=")
    r = client.post("/v1/models/shapes:predict",
                    json={"instances": [{"image": wrapped}, {"image": url_safe}]})
    assert r.status_code == 200, r.text
    assert r.json()["probabilities"][0] == r.json()["probabilities"][1]


def test_v2_refuses_values_that_overflow_fp32(client: TestClient, text_model: dict) -> None:
    meta = client.get(f"/v2/models/{text_model['name']}").json()
    inputs = {i["name"]: i for i in meta["inputs"]}
    length, width = inputs["tokens"]["shape"][1], inputs["input"]["shape"][1]
    tokens = {"name": "tokens", "datatype": "INT64", "shape": [0, length], "data": []}
    table = {"name": "input", "datatype": "FP64", "shape": [0, width], "data": []}
    r = client.post(f"/v2/models/{text_model['name']}/infer", json={"inputs": [tokens, table]})
    assert r.status_code == 200, r.text  # an empty batch is a valid question
    tokens = dict(tokens, shape=[1, length], data=[0] * length)
    table = dict(table, shape=[1, width], data=[1e300] * width)
    r = client.post(f"/v2/models/{text_model['name']}/infer", json={"inputs": [tokens, table]})
    assert r.status_code == 400 and "1e+300 is out of range for FP32" in r.json()["error"]


def test_many_pictures_decode_onto_disk_with_the_same_batches(tmp_path: Path,
                                                              monkeypatch) -> None:
    import torch

    import studio.core.training.data as data
    from studio.core.datasets.recipe import fit_recipe

    files = sorted(str(f) for f in shapes(tmp_path / "s", per_class=10, size=30).rglob("*.png"))
    frame = pd.DataFrame({"image": files, "label": [Path(f).parent.name for f in files]})
    recipe = fit_recipe(frame, "label", "classification",
                        {"columns": {"image": {"size": 32}}}, image_columns=("image",))
    in_memory = data.ModelData(recipe, frame, torch.device("cpu"), lambda _e: None, tmp_path)
    monkeypatch.setattr(data, "IN_MEMORY_PIXEL_BYTES", 1)
    on_disk = data.ModelData(recipe, frame, torch.device("cpu"), lambda _e: None, tmp_path)
    assert isinstance(on_disk.pixels, np.memmap) and not isinstance(in_memory.pixels, np.memmap)
    rows = np.array([3, 0, 17])
    assert torch.equal(on_disk.batch(rows)[0], in_memory.batch(rows)[0])
    assert not list(tmp_path.glob("pixels-*"))  # an unnamed file: nothing left behind
