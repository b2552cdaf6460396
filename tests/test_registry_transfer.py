"""Models in and out through the real CLI: an ONNX model made elsewhere served on V2 with its
own tensors, a bundle that round-trips with its lineage, a Triton repository, Hub push then
pull into another workspace, and hostile files refused with nothing left behind."""

from __future__ import annotations

import json
import pickle
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import PENGUINS, copied_workspace, penguins_workspace, run_studio
from fake_hub import FakeHub, isolate, serve
from huggingface_hub import constants
from starlette.testclient import TestClient

from studio.core import registry
from studio.core.errors import InputError
from studio.core.registry.transfer import export
from studio.core.registry.transfer.hub_models import pull_model, push_model
from studio.core.workspace import Workspace
from studio.serving.app import create_app
from studio.serving.dataplane import ModelRepository

ROW = {"island": "Biscoe", "bill_length_mm": 50.0, "bill_depth_mm": 15.0,
       "flipper_length_mm": 220, "body_mass_g": 5500, "sex": "male", "year": 2008}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return penguins_workspace(tmp_path_factory.mktemp("transfer") / "ws", ("linear",))


@pytest.fixture
def tws(template: Path, tmp_path: Path) -> Iterator[Workspace]:
    with copied_workspace(template, tmp_path / "ws") as ws:
        yield ws


def two_headed_onnx(path: Path) -> Path:
    """A model as another tool would export it: two named inputs of different types, two
    outputs, a symbolic batch axis."""
    import onnx
    from onnx import TensorProto, helper

    w = helper.make_tensor("w", TensorProto.FLOAT, [3, 2], [1, 0, 0, 1, 1, 1])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["features", "w"], ["scores"]),
         helper.make_node("ReduceSum", ["token_ids", "axes"], ["id_sum"], keepdims=0)],
        "outside",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 3]),
         helper.make_tensor_value_info("token_ids", TensorProto.INT64, ["batch", 4])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 2]),
         helper.make_tensor_value_info("id_sum", TensorProto.INT64, ["batch"])],
        initializer=[w, axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="elsewhere")
    onnx.save_model(model, path)
    return path


def test_an_onnx_model_made_elsewhere_is_served_with_its_own_tensors(
        tws: Workspace, tmp_path: Path) -> None:
    r = run_studio(tws.root, "models", "import", str(two_headed_onnx(tmp_path / "m.onnx")),
                   "--name", "outside", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["version"] == "outside:1"
    version = registry.get_version(tws, "outside")
    assert version.task is None and version.manifest.imported.format == "onnx"
    assert "outside:1" in run_studio(tws.root, "models", "ls").stdout
    for args, words in ((("predict", "outside", "--input", str(PENGUINS)), "takes tensors"),
                        (("evaluate", "outside", "penguins"), "no recipe")):
        r = run_studio(tws.root, *args)
        assert r.returncode == 2 and words in r.stderr, r.stderr

    repo = ModelRepository(tws, ["outside"], threads=1)
    with TestClient(create_app(repo)) as client:
        meta = client.get("/v2/models/outside").json()
        assert meta["inputs"] == [
            {"name": "features", "datatype": "FP32", "shape": [-1, 3]},
            {"name": "token_ids", "datatype": "INT64", "shape": [-1, 4]}]
        assert [o["name"] for o in meta["outputs"]] == ["scores", "id_sum"]
        body = {"inputs": [
            {"name": "features", "datatype": "FP32", "shape": [2, 3],
             "data": [1, 2, 3, 4, 5, 6]},
            {"name": "token_ids", "datatype": "INT64", "shape": [2, 4],
             "data": [1, 2, 3, 4, 10, 20, 30, 40]}]}
        out = client.post("/v2/models/outside/infer", json=body)
        assert out.status_code == 200, out.text
        got = {o["name"]: o for o in out.json()["outputs"]}
        assert got["scores"]["data"] == [4.0, 5.0, 10.0, 11.0]
        assert got["id_sum"] == {"name": "id_sum", "datatype": "INT64", "shape": [2],
                                 "data": [10, 100]}
        wrong = client.post("/v2/models/outside/infer", json={"inputs": [
            body["inputs"][0], {**body["inputs"][1], "datatype": "FP32"}]})
        assert wrong.status_code == 400 and "INT64" in wrong.json()["error"]
        rows = client.post("/v1/models/outside:predict", json={"instances": [ROW]})
        assert rows.status_code == 400 and "/v2/models/outside/infer" in rows.json()["error"]


def test_a_graph_with_a_non_tensor_output_is_refused(tws: Workspace, tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("SequenceConstruct", ["x"], ["seq"])], "zipmap-like",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 2])],
        [helper.make_tensor_sequence_value_info("seq", TensorProto.FLOAT, None)])
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]),
                    tmp_path / "seq.onnx")
    r = run_studio(tws.root, "models", "import", str(tmp_path / "seq.onnx"))
    assert r.returncode == 2 and "not a tensor" in r.stderr, r.stderr
    assert [v.ref for v in registry.list_versions(tws)] == ["penguins:1"]


def test_a_bundle_round_trips_with_its_lineage(tws: Workspace, tmp_path: Path) -> None:
    from studio.core.registry import labels

    labels.set_card(tws, "penguins:1", "# Penguins\n\nThe linear one.\n")
    zipped = export.export_bundle(tws, "penguins:1", tmp_path)
    assert zipped.name == "penguins-1.zip"
    other = Workspace.open(tmp_path / "other")
    r = run_studio(other.root, "models", "import", str(zipped), "--json")
    assert r.returncode == 0, r.stderr
    mine, theirs = registry.get_version(tws, "penguins:1"), registry.get_version(other,
                                                                                  "penguins")
    assert theirs.manifest.lineage.dataset == mine.manifest.lineage.dataset
    assert theirs.manifest.raw["lineage"]["origin"] == "penguins:1"
    assert theirs.manifest.recipe == mine.manifest.recipe
    assert labels.card_text(other, theirs) == "# Penguins\n\nThe linear one.\n"
    a = run_studio(tws.root, "predict", "penguins:1", "--input", str(PENGUINS), "--json")
    b = run_studio(other.root, "predict", "penguins", "--input", str(PENGUINS), "--json")
    assert a.returncode == b.returncode == 0, a.stderr + b.stderr
    assert json.loads(a.stdout)["predictions"] == json.loads(b.stdout)["predictions"]
    other.db.close()


def test_an_altered_or_hostile_bundle_registers_nothing(tws: Workspace, tmp_path: Path) -> None:
    good = export.export_bundle(tws, "penguins:1", tmp_path / "good.zip")
    altered = tmp_path / "altered.zip"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(altered, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "files/model.onnx":
                data = data[:-1] + bytes([data[-1] ^ 1])
            dst.writestr(item, data)
    lying = tmp_path / "lying.zip"  # its manifest names a file outside the bundle
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(lying, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "manifest.json":
                doc = json.loads(data)
                doc["files"]["../../../etc/passwd"] = doc["files"].pop("model.onnx")
                doc["name"] = "../escape"
                data = json.dumps(doc).encode()
            dst.writestr(item, data)
    escaping = tmp_path / "escaping.zip"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(escaping, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, src.read(item))
        dst.writestr("../../outside.txt", b"x")
    for bad, words in ((altered, "does not match"), (escaping, ".."),
                       (lying, "manifest is not valid")):
        r = run_studio(tws.root, "models", "import", str(bad), "--name", "bad")
        assert r.returncode == 2 and words in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path.parent / "outside.txt").exists()
    assert [v.ref for v in registry.list_versions(tws)] == ["penguins:1"]
    assert not list(tws.tmp.iterdir())


def test_a_pickle_that_would_run_code_is_refused_under_any_name(
        tws: Workspace, tmp_path: Path) -> None:
    canary = tmp_path / "canary"

    class Payload:
        def __reduce__(self) -> tuple:
            import os
            return (os.system, (f"touch {canary}",))

    data = pickle.dumps({"w": Payload()}, protocol=2)
    for name in ("evil.pt", "evil.bin", "evil.onnx", "evil.safetensors"):
        (tmp_path / name).write_bytes(data)
        r = run_studio(tws.root, "models", "import", str(tmp_path / name))
        assert r.returncode == 2 and "run code" in r.stderr, r.stderr
    assert not canary.exists()
    assert [v.ref for v in registry.list_versions(tws)] == ["penguins:1"]


def test_weights_are_kept_but_never_served(tws: Workspace, tmp_path: Path) -> None:
    import torch

    torch.save({"state_dict": {"layer.weight": torch.ones(2, 3)}}, tmp_path / "ck.pt")
    r = run_studio(tws.root, "models", "import", str(tmp_path / "ck.pt"), "--name", "ck")
    assert r.returncode == 0 and "weights only" in r.stdout, r.stderr
    with pytest.raises(InputError, match="weights only"):
        ModelRepository(tws, ["ck"], threads=1)


def test_a_hugging_face_folder_keeps_its_config_and_shards(tws: Workspace,
                                                           tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    folder = tmp_path / "tiny-bert"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(
        {"architectures": ["BertModel"], "model_type": "bert"}))
    save_file({"a.weight": np.ones((4, 8), np.float32)},
              str(folder / "model-00001-of-00002.safetensors"))
    save_file({"b.weight": np.ones((8,), np.float32)},
              str(folder / "model-00002-of-00002.safetensors"))
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        "a.weight": "model-00001-of-00002.safetensors",
        "b.weight": "model-00002-of-00002.safetensors"}}))
    (folder / "pytorch_model.bin").write_bytes(b"not read: weights come from safetensors")
    r = run_studio(tws.root, "models", "import", str(folder), "--json")
    assert r.returncode == 0, r.stderr
    version = registry.get_version(tws, "tiny-bert")
    assert version.manifest.imported.format == "hf-folder"
    assert set(version.manifest.files) == {
        "config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
        "model.safetensors.index.json", "card.md"}
    assert version.manifest.raw["weights"]["parameters"] == 40
    assert "BertModel" in run_studio(tws.root, "models", "card", "tiny-bert").stdout


def test_a_triton_repository_holds_every_exported_version(tws: Workspace,
                                                          tmp_path: Path) -> None:
    r = run_studio(tws.root, "models", "export", "--triton", str(tmp_path / "repo"),
                   "penguins:1")
    assert r.returncode == 0, r.stderr
    config = (tmp_path / "repo" / "penguins" / "config.pbtxt").read_text()
    assert 'platform: "onnxruntime_onnx"' in config and "dims: 10" in config
    assert "dynamic_batching" in config
    served = tmp_path / "repo" / "penguins" / "1" / "model.onnx"
    assert served.read_bytes() == registry.read_file(
        tws, registry.get_version(tws, "penguins:1"), "model.onnx")


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeHub]:
    isolate(monkeypatch, tmp_path)
    with serve(FakeHub()) as fake:
        yield fake


def test_a_version_pushed_to_the_hub_pulls_into_another_workspace(
        tws: Workspace, tmp_path: Path, hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    url = push_model(tws, "penguins:1", "me/penguins", token="hf_test", endpoint=hub.url)
    assert "me/penguins" in url
    sent = hub.repos["me/penguins"].commits[hub.repos["me/penguins"].refs["main"]]
    assert {"model.onnx", "README.md", "studio_manifest.json"} <= set(sent)
    assert sent["README.md"].startswith(b"---\nlibrary_name: onnx")

    other = Workspace.open(tmp_path / "other")
    pulled = pull_model(other, "me/penguins", token="hf_test", endpoint=hub.url)
    assert pulled.ref == "penguins:1" and pulled.manifest.imported.format == "hub"
    assert pulled.manifest.recipe == registry.get_version(tws, "penguins:1").manifest.recipe
    repo = ModelRepository(other, ["penguins"], threads=1)
    with TestClient(create_app(repo)) as client:
        r = client.post("/v1/models/penguins:predict", json={"instances": [ROW]})
        assert r.status_code == 200 and r.json()["predictions"] == ["Gentoo"], r.text

    # offline, from the cache alone, and an ONNX-only repository through the importer
    push_model(tws, "penguins:1", "me/plain", token="hf_test", endpoint=hub.url)
    hub.repos["me/plain"].commits[hub.repos["me/plain"].refs["main"]].pop(
        "studio_manifest.json")
    plain = pull_model(other, "me/plain", token="hf_test", endpoint=hub.url)
    assert plain.manifest.imported.format == "onnx" and plain.manifest.recipe is None
    assert plain.manifest.imported.source == "hf://me/plain"
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    again = pull_model(other, "me/penguins", name="again")
    assert np.allclose(again.manifest.metrics["accuracy"], pulled.manifest.metrics["accuracy"])
    from studio.core.registry import labels

    card = labels.card_text(other, again)
    assert card.startswith("# again:1\n") and "it was penguins:1 where it was made" in card
    other.db.close()


def rebundled(good: Path, dest: Path, manifest_change=None,
              files: dict[str, bytes] | None = None) -> Path:
    """``good`` with its manifest changed and files replaced, digests made to match: what
    someone who knows the format can craft."""
    import hashlib

    with zipfile.ZipFile(good) as src:
        members = {i.filename: src.read(i) for i in src.infolist()}
    manifest = json.loads(members["manifest.json"])
    for fname, data in (files or {}).items():
        members[f"files/{fname}"] = data
        manifest["files"][fname] = hashlib.sha256(data).hexdigest()
    if manifest_change is not None:
        manifest_change(manifest)
    members["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(dest, "w") as out:
        for name, data in members.items():
            out.writestr(name, data)
    return dest


def test_a_crafted_bundle_goes_through_every_check(tws: Workspace, tmp_path: Path) -> None:
    from onnx import TensorProto, helper, numpy_helper

    good = export.export_bundle(tws, "penguins:1", tmp_path / "good.zip")
    # a graph whose weights are "outside": a file the server's folder might hold
    w = numpy_helper.from_array(np.zeros((10, 3), np.float32), "w")
    w.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "secret.txt"), ("offset", "0"), ("length", "120")):
        w.external_data.add(key=key, value=value)
    w.ClearField("raw_data")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "w"], ["probabilities"])], "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["b", 10])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["b", 3])],
        initializer=[w])
    leaky = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    cases = {
        "leaky": ({"model.onnx": leaky.SerializeToString(), "secret.txt": b"\0" * 120},
                  None, "outside itself"),
        "garbage": ({"model.onnx": b"not a graph at all"}, None, "ONNX"),
        "no-recipe-kind": ({}, lambda m: m.update(recipe={}), "recipe"),
        "huge-picture": ({}, lambda m: m["recipe"]["features"].append(
            {"name": "img", "kind": "image", "size": 100_000}), "recipe"),
        "wrong-width": ({}, lambda m: m["recipe"]["features"].pop(), "graph does not take"),
        "two-inputs-one-name": ({}, lambda m: m["onnx"]["inputs"].append(
            dict(m["onnx"]["inputs"][0])), "manifest is not valid"),
    }
    for case, (files, change, words) in cases.items():
        bad = rebundled(good, tmp_path / f"{case}.zip", change, files)
        r = run_studio(tws.root, "models", "import", str(bad), "--name", "bad")
        assert r.returncode == 2 and words in r.stderr, (case, r.stderr)
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert [v.ref for v in registry.list_versions(tws)] == ["penguins:1"]


def test_odd_values_in_a_bundle_s_manifest_are_kept_plain(tws: Workspace,
                                                         tmp_path: Path) -> None:
    good = export.export_bundle(tws, "penguins:1", tmp_path / "good.zip")

    def odd(m: dict) -> None:
        m["metrics"]["test"].update(nan=float("nan"), huge=2**70, word="high")
        m["training"].update(duration_s="abc", epochs_run=[1])
        m["input_schema"] = ["not", "objects"]
        m["lineage"].update(parent="penguins:1", job="their-job")

    r = run_studio(tws.root, "models", "import", str(rebundled(good, tmp_path / "odd.zip",
                                                               odd)), "--name", "odd")
    assert r.returncode == 0, r.stderr
    for args in (("models", "show", "odd"), ("models", "show", "odd", "--json"),
                 ("models", "compare", "odd", "penguins:1"), ("models", "ls", "--json")):
        shown = run_studio(tws.root, *args)
        assert shown.returncode == 0 and "Traceback" not in shown.stderr, (args, shown.stderr)
    version = registry.get_version(tws, "odd")
    assert "nan" not in version.manifest.metrics and "huge" not in version.manifest.metrics
    assert version.manifest.raw["input_schema"][0]["name"] == "island"  # from the recipe
    # their job and their penguins:1 are not this workspace's: no edge to them here
    assert version.manifest.lineage.parent is None and version.manifest.lineage.job is None
    assert version.manifest.raw["lineage"]["origin_lineage"]["parent"] == "penguins:1"


def test_a_transformers_js_repository_pulls_its_onnx_export_only(
        tws: Workspace, tmp_path: Path, hub: FakeHub) -> None:
    """config.json at the root and the ONNX export under onnx/, beside variants that a
    pull must not fetch."""
    from studio.core.registry.transfer.hub import push

    graph = two_headed_onnx(tmp_path / "m.onnx").read_bytes()
    push("xenova/tiny", {"config.json": b'{"model_type": "tiny"}', "onnx/model.onnx": graph,
                         "onnx/model_quantized.onnx": b"a variant, never fetched",
                         "onnx/model_fp16.onnx": b"another"},
         token="hf_test", endpoint=hub.url)
    version = pull_model(tws, "xenova/tiny", token="hf_test", endpoint=hub.url)
    assert version.manifest.imported.format == "hf-folder"
    assert [t.name for t in version.manifest.inputs] == ["features", "token_ids"]
    fetched = set(hub.downloads)
    assert not any("quantized" in f or "fp16" in f for f in fetched), fetched
