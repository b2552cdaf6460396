"""ONNX models made elsewhere: external data that names a file outside the model's folder is
refused before anything reads it, and a good model is described and proven to run."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from studio.core.errors import InputError
from studio.core.registry.transfer.onnx_graph import read_onnx
from studio.core.registry.transfer.sniff import detect

WEIGHTS = np.arange(12, dtype=np.float32).reshape(3, 4)
SECRET = WEIGHTS.tobytes()  # a file outside the model's folder, the size the tensor wants


def matmul_model(initializer_as_input: bool = False) -> onnx.ModelProto:
    """y = x @ w, with w an initializer; x is [batch, 3]."""
    w = numpy_helper.from_array(WEIGHTS, "w")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    inputs = [x]
    if initializer_as_input:  # older exporters list initializers among the inputs too
        inputs.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, [3, 4]))
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g", inputs,
                              [y], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="tests", producer_version="1.2")
    model.ir_version = 8
    return model


def saved_with_external_data(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    onnx.save_model(matmul_model(), str(path), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
    return path


def pointed_at(path: Path, **entries: str) -> Path:
    """The model at ``path`` with its weights' external data entries changed (or removed,
    given an empty string), written back as is: nothing is read from where they point."""
    model = onnx.load_model(str(path), load_external_data=False)
    tensor = model.graph.initializer[0]
    current = {e.key: e.value for e in tensor.external_data}
    current.update(entries)
    del tensor.external_data[:]
    for key, value in current.items():
        if value != "":
            tensor.external_data.add(key=key, value=value)
    path.write_bytes(model.SerializeToString())
    return path


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = saved_with_external_data(tmp_path / "model")
    (tmp_path / "secret.bin").write_bytes(SECRET)
    return path


def test_a_model_with_external_data_reads_and_runs(model: Path) -> None:
    assert detect(model) == "onnx"
    assert detect(model.parent) == "onnx"
    info = read_onnx(model.parent)
    assert info.path == model
    assert [s.to_dict() for s in info.inputs] == [
        {"name": "x", "datatype": "FP32", "shape": [-1, 3]}]
    assert [s.to_dict() for s in info.outputs] == [
        {"name": "y", "datatype": "FP32", "shape": [-1, 4]}]
    assert info.opsets == {"ai.onnx": 17}
    assert (info.producer_name, info.producer_version) == ("tests", "1.2")
    assert info.external_data == ("weights.bin",)
    assert info.total_bytes == model.stat().st_size + len(SECRET)
    x = np.ones((2, 3), np.float32)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"x": x})[0], x @ WEIGHTS)


def test_initializers_listed_as_inputs_are_not_inputs(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    onnx.save_model(matmul_model(initializer_as_input=True), str(path))
    info = read_onnx(path)
    assert [s.name for s in info.inputs] == ["x"]
    assert info.external_data == ()


def test_an_absolute_location_is_refused(model: Path, tmp_path: Path) -> None:
    pointed_at(model, location=str(tmp_path / "secret.bin"))
    with pytest.raises(InputError, match=r"model\.onnx: refused: tensor 'w' keeps its data in "
                                         r"'/.*secret\.bin', an absolute path"):
        read_onnx(model)


@pytest.mark.parametrize("location", ["../secret.bin", "sub/../../secret.bin"])
def test_a_location_climbing_out_with_dot_dot_is_refused(model: Path, location: str) -> None:
    (model.parent / "sub").mkdir()
    pointed_at(model, location=location)
    with pytest.raises(InputError, match=re.escape("climbs out of the model's folder with '..'")):
        read_onnx(model)


def test_a_symlink_to_a_file_outside_is_refused(model: Path, tmp_path: Path) -> None:
    weights = model.parent / "weights.bin"
    weights.unlink()
    weights.symlink_to(tmp_path / "secret.bin")
    with pytest.raises(InputError, match=re.escape("'weights.bin', which passes through a sym")):
        read_onnx(model)


def test_a_symlinked_folder_on_the_way_is_refused(model: Path, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "weights.bin").write_bytes(SECRET)
    (model.parent / "sub").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    pointed_at(model, location="sub/weights.bin")
    with pytest.raises(InputError, match=re.escape("'sub/weights.bin', which passes through a")):
        read_onnx(model)


def test_a_hard_link_is_refused(model: Path, tmp_path: Path) -> None:
    weights = model.parent / "weights.bin"
    weights.unlink()
    os.link(tmp_path / "secret.bin", weights)
    with pytest.raises(InputError, match=re.escape("'weights.bin', a file with 2 hard links")):
        read_onnx(model)


def test_a_missing_data_file_is_refused(model: Path) -> None:
    (model.parent / "weights.bin").unlink()
    with pytest.raises(InputError, match=re.escape("'weights.bin', which is missing from")):
        read_onnx(model)


def test_an_offset_past_the_end_is_refused(model: Path) -> None:
    pointed_at(model, offset="64")  # the file holds 48 bytes
    with pytest.raises(InputError, match=r"'weights.bin' at bytes 64–112, past the end of that "
                                         "48-byte file"):
        read_onnx(model)


def test_a_length_past_the_end_is_refused(model: Path) -> None:
    pointed_at(model, offset="8", length="48")
    with pytest.raises(InputError, match="at bytes 8–56, past the end"):
        read_onnx(model)


def test_a_length_that_is_not_the_tensors_size_is_refused(model: Path) -> None:
    pointed_at(model, length="40")
    with pytest.raises(InputError, match=r"'weights.bin': \[3, 4\] needs 48 bytes but it "
                                         "names 40"):
        read_onnx(model)


def test_an_offset_that_is_not_a_count_is_refused(model: Path) -> None:
    pointed_at(model, offset="-8")
    with pytest.raises(InputError, match="with offset '-8', not a byte count"):
        read_onnx(model)


def test_external_data_in_a_constant_node_is_checked_too(tmp_path: Path) -> None:
    # not an initializer: the weights are the value attribute of a Constant node
    w = numpy_helper.from_array(WEIGHTS, "c")
    w.data_location = TensorProto.EXTERNAL
    w.ClearField("raw_data")
    w.external_data.add(key="location", value="../secret.bin")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    graph = helper.make_graph([helper.make_node("Constant", [], ["w"], value=w),
                               helper.make_node("MatMul", ["x", "w"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    (tmp_path / "m").mkdir()
    path = tmp_path / "m" / "model.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(InputError, match=re.escape("tensor 'c' keeps its data in '../secret.bin'")):
        read_onnx(path)


def test_a_model_onnx_runtime_cannot_run_is_refused_with_its_first_line(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Mystery", ["x"], ["y"], domain="my.ops")], "g",
                              [x], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("my.ops", 1)])
    path = tmp_path / "custom.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(InputError) as caught:
        read_onnx(path)
    message = str(caught.value)
    assert message.startswith("custom.onnx: ONNX Runtime cannot run it: ")
    assert "Mystery" in message and "\n" not in message


def test_a_file_that_is_not_onnx_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x08\x07\x12\x03abc\xff\xff\xff")
    with pytest.raises(InputError, match=r"model\.onnx: not a"):
        read_onnx(path)
