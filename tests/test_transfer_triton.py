"""Exporting a model as a Triton / KServe model repository entry.

The written config.pbtxt is parsed against Triton's own schema: the vendored
``tests/data/triton_model_config.proto`` (triton-inference-server/common), turned into a
descriptor by a small reader of its proto3 text, so an unknown field, a wrong field name or an
unknown enum value fails here as it would fail in Triton.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format
from onnx import TensorProto, helper, numpy_helper

from studio.core.errors import InputError
from studio.core.registry.transfer import triton
from studio.core.registry.transfer.tensors import TensorSpec
from studio.core.registry.transfer.triton import write_model_repository

PROTO = Path(__file__).parent / "data" / "triton_model_config.proto"
SCALARS = {"double", "float", "int32", "int64", "uint32", "uint64", "sint32", "sint64",
           "fixed32", "fixed64", "sfixed32", "sfixed64", "bool", "string", "bytes"}
ORT_TO_TRITON = {"tensor(float)": "TYPE_FP32", "tensor(int64)": "TYPE_INT64",
                 "tensor(double)": "TYPE_FP64", "tensor(uint8)": "TYPE_UINT8"}


# --- Triton's schema, read from its .proto -------------------------------------------------

class ProtoReader:
    """Just enough of proto3 for model_config.proto: messages, enums, oneofs, maps."""

    TOKEN = re.compile(r'"[^"]*"|[A-Za-z_][\w.]*|-?\d+|[{}=;<>,]')

    def __init__(self, text: str) -> None:
        self.tokens = self.TOKEN.findall(re.sub(r"//[^\n]*", "", text))
        self.pos = 0

    def take(self, expected: str | None = None) -> str:
        token = self.tokens[self.pos]
        self.pos += 1
        if expected is not None and token != expected:
            raise AssertionError(f"expected {expected!r}, got {token!r} at token {self.pos}")
        return token

    def file(self) -> descriptor_pb2.FileDescriptorProto:
        proto = descriptor_pb2.FileDescriptorProto(name="triton/model_config.proto")
        while self.pos < len(self.tokens):
            word = self.take()
            if word == "syntax":
                self.take("=")
                proto.syntax = self.take().strip('"')
                self.take(";")
            elif word == "package":
                proto.package = self.take()
                self.take(";")
            elif word == "message":
                self.message(proto.message_type.add(name=self.take()))
            elif word == "enum":
                self.enum(proto.enum_type.add(name=self.take()))
            else:
                raise AssertionError(f"unexpected {word!r}")
        return proto

    def enum(self, enum: descriptor_pb2.EnumDescriptorProto) -> None:
        self.take("{")
        while (name := self.take()) != "}":
            self.take("=")
            enum.value.add(name=name, number=int(self.take()))
            self.take(";")

    def message(self, message: descriptor_pb2.DescriptorProto,
                oneof: int | None = None) -> None:
        self.take("{")
        while (word := self.take()) != "}":
            if word == "message":
                self.message(message.nested_type.add(name=self.take()))
            elif word == "enum":
                self.enum(message.enum_type.add(name=self.take()))
            elif word == "oneof":
                message.oneof_decl.add(name=self.take())
                self.message(message, oneof=len(message.oneof_decl) - 1)
            else:
                self.field(message, word, oneof)

    def field(self, message: descriptor_pb2.DescriptorProto, word: str,
              oneof: int | None) -> None:
        fdp = descriptor_pb2.FieldDescriptorProto
        label = fdp.LABEL_OPTIONAL
        if word == "repeated":
            label, word = fdp.LABEL_REPEATED, self.take()
        if word == "map":
            self.take("<")
            key = self.take()
            self.take(",")
            value = self.take()
            self.take(">")
            name = self.take()
            entry = message.nested_type.add(
                name="".join(p.title() for p in name.split("_")) + "Entry")
            entry.options.map_entry = True
            self.typed(entry.field.add(name="key", number=1, label=fdp.LABEL_OPTIONAL), key)
            self.typed(entry.field.add(name="value", number=2, label=fdp.LABEL_OPTIONAL), value)
            field = message.field.add(name=name, label=fdp.LABEL_REPEATED,
                                      type_name=entry.name)
        else:
            field = self.typed(message.field.add(name=self.take(), label=label), word)
        self.take("=")
        field.number = int(self.take())
        self.take(";")
        if oneof is not None:
            field.oneof_index = oneof

    @staticmethod
    def typed(field: descriptor_pb2.FieldDescriptorProto,
              type_: str) -> descriptor_pb2.FieldDescriptorProto:
        if type_ in SCALARS:
            field.type = descriptor_pb2.FieldDescriptorProto.Type.Value(f"TYPE_{type_.upper()}")
        else:
            field.type_name = type_  # resolved by the pool, message or enum, in proto scope
        return field


@pytest.fixture(scope="module")
def model_config() -> type:
    proto = ProtoReader(PROTO.read_text(encoding="utf-8")).file()
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("inference.ModelConfig"))


def read_config(model_config: type, model_dir: Path):
    return text_format.Parse((model_dir / "config.pbtxt").read_text(encoding="utf-8"),
                             model_config())


def test_the_schema_reader_knows_triton_fields(model_config: type) -> None:
    fields = model_config.DESCRIPTOR.fields_by_name
    assert fields["max_batch_size"].number == 4
    assert fields["dynamic_batching"].number == 11
    assert fields["dynamic_batching"].containing_oneof.name == "scheduling_choice"
    assert model_config.DESCRIPTOR.file.enum_types_by_name["DataType"] \
        .values_by_name["TYPE_FP32"].number == 11
    with pytest.raises(text_format.ParseError):  # the oracle refuses what Triton refuses
        text_format.Parse('name: "m"\nmax_batchsize: 4\n', model_config())
    with pytest.raises(text_format.ParseError):
        text_format.Parse('input { name: "x" data_type: TYPE_FLOAT32 }', model_config())


# --- models ---------------------------------------------------------------------------------

def linear_model(n_in: int = 4, n_out: int = 3, batch: str | int = "batch",
                 weight: float = 1.0) -> bytes:
    """input FP32 [batch, n_in] → probabilities FP32 [batch, n_out]."""
    w = numpy_helper.from_array(np.full((n_in, n_out), weight, np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "w"], ["logits"]),
         helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1)],
        "linear",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, n_in])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [batch, n_out])],
        [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model.SerializeToString()


def two_input_model() -> bytes:
    """tokens INT64 [batch, 8] and input FP32 [batch, 2] → prediction FP32 [batch]."""
    graph = helper.make_graph(
        [helper.make_node("Cast", ["tokens"], ["t"], to=TensorProto.FLOAT),
         helper.make_node("ReduceSum", ["t", "axes"], ["ts"], keepdims=0),
         helper.make_node("ReduceSum", ["input", "axes"], ["xs"], keepdims=0),
         helper.make_node("Add", ["ts", "xs"], ["prediction"])],
        "two",
        [helper.make_tensor_value_info("tokens", TensorProto.INT64, ["batch", 8]),
         helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 2])],
        [helper.make_tensor_value_info("prediction", TensorProto.FLOAT, ["batch"])],
        [helper.make_tensor("axes", TensorProto.INT64, [1], [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model.SerializeToString()


IN4 = [TensorSpec("input", "FP32", (-1, 4))]
OUT3 = [TensorSpec("probabilities", "FP32", (-1, 3))]


def dims_of(config, role: str) -> dict[str, tuple[str, list[int]]]:
    enum = config.DESCRIPTOR.file.enum_types_by_name["DataType"]
    return {t.name: (enum.values_by_number[t.data_type].name, list(t.dims))
            for t in getattr(config, role)}


# --- tests ----------------------------------------------------------------------------------

def test_written_config_is_a_valid_triton_config_matching_the_graph(
        tmp_path: Path, model_config: type) -> None:
    model_dir = write_model_repository(tmp_path, "penguins", 1, linear_model(), IN4, OUT3,
                                       preferred_batch_sizes=[8, 32], max_queue_delay_us=500)
    assert model_dir == tmp_path / "penguins"
    assert sorted(p.name for p in model_dir.iterdir()) == ["1", "config.pbtxt"]
    config = read_config(model_config, model_dir)
    assert config.name == "penguins"
    assert config.platform == "onnxruntime_onnx"
    assert config.max_batch_size == 64
    assert config.version_policy.WhichOneof("policy_choice") == "all"
    assert config.WhichOneof("scheduling_choice") == "dynamic_batching"
    assert list(config.dynamic_batching.preferred_batch_size) == [8, 32]
    assert config.dynamic_batching.max_queue_delay_microseconds == 500
    assert dims_of(config, "input") == {"input": ("TYPE_FP32", [4])}
    assert dims_of(config, "output") == {"probabilities": ("TYPE_FP32", [3])}

    # What Triton's onnxruntime backend will load: the graph agrees with the config.
    session = ort.InferenceSession(str(model_dir / "1" / "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    for role, declared in (("input", session.get_inputs()), ("output", session.get_outputs())):
        wanted = dims_of(config, role)
        assert {arg.name for arg in declared} == set(wanted)
        for arg in declared:
            assert ORT_TO_TRITON[arg.type] == wanted[arg.name][0]
            assert not isinstance(arg.shape[0], int)  # the batch axis Triton adds is dynamic
            assert arg.shape[1:] == wanted[arg.name][1]
    out = session.run(None, {"input": np.ones((5, 4), np.float32)})[0]
    assert out.shape == (5, 3)


def test_int64_inputs_and_a_batch_only_output_are_reshaped(
        tmp_path: Path, model_config: type) -> None:
    inputs = [TensorSpec("tokens", "INT64", (-1, 8)), TensorSpec("input", "FP32", (-1, 2))]
    outputs = [TensorSpec("prediction", "FP32", (-1,))]
    model_dir = write_model_repository(tmp_path, "reg", 3, two_input_model(), inputs, outputs)
    config = read_config(model_config, model_dir)
    assert dims_of(config, "input") == {"tokens": ("TYPE_INT64", [8]),
                                        "input": ("TYPE_FP32", [2])}
    (prediction,) = config.output
    # Triton's documented form of a tensor that is only the batch axis: dims [1], reshape [].
    assert list(prediction.dims) == [1]
    assert prediction.HasField("reshape") and list(prediction.reshape.shape) == []
    session = ort.InferenceSession(str(model_dir / "3" / "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    assert [(a.name, ORT_TO_TRITON[a.type]) for a in session.get_inputs()] == \
        [("tokens", "TYPE_INT64"), ("input", "TYPE_FP32")]


def test_a_fixed_first_axis_is_refused_when_batching_and_served_unbatched_otherwise(
        tmp_path: Path, model_config: type) -> None:
    fixed_in = [TensorSpec("input", "FP32", (1, 4))]
    fixed_out = [TensorSpec("probabilities", "FP32", (1, 3))]
    model = linear_model(batch=1)
    with pytest.raises(InputError, match=r"'input' has shape \[1, 4\].*must be dynamic"):
        write_model_repository(tmp_path, "fixed", 1, model, fixed_in, fixed_out)
    assert not (tmp_path / "fixed").exists()

    model_dir = write_model_repository(tmp_path, "fixed", 1, model, fixed_in, fixed_out,
                                       max_batch_size=0)
    config = read_config(model_config, model_dir)
    assert config.max_batch_size == 0
    assert config.WhichOneof("scheduling_choice") is None  # Triton batches nothing at 0
    assert dims_of(config, "input") == {"input": ("TYPE_FP32", [1, 4])}
    with pytest.raises(InputError, match="max_batch_size is 0"):
        write_model_repository(tmp_path, "other", 1, model, fixed_in, fixed_out,
                               max_batch_size=0, preferred_batch_sizes=[4])


def test_a_second_version_keeps_the_first(tmp_path: Path, model_config: type) -> None:
    first, second = linear_model(weight=1.0), linear_model(weight=2.0)
    model_dir = write_model_repository(tmp_path, "m", 1, first, IN4, OUT3)
    config_before = (model_dir / "config.pbtxt").read_bytes()
    write_model_repository(tmp_path, "m", 2, second, IN4, OUT3)
    assert sorted(p.name for p in model_dir.iterdir()) == ["1", "2", "config.pbtxt"]
    assert (model_dir / "1" / "model.onnx").read_bytes() == first
    assert (model_dir / "2" / "model.onnx").read_bytes() == second
    assert (model_dir / "config.pbtxt").read_bytes() == config_before

    # Other batching settings fit every version: the config is rewritten.
    write_model_repository(tmp_path, "m", 3, first, IN4, OUT3, max_batch_size=16)
    config = read_config(model_config, model_dir)
    assert config.max_batch_size == 16
    assert config.version_policy.WhichOneof("policy_choice") == "all"

    # The same version again with the same graph changes nothing; another graph is refused.
    write_model_repository(tmp_path, "m", 2, second, IN4, OUT3, max_batch_size=16)
    with pytest.raises(InputError, match="already holds another model"):
        write_model_repository(tmp_path, "m", 2, first, IN4, OUT3, max_batch_size=16)
    assert (model_dir / "2" / "model.onnx").read_bytes() == second


def test_a_version_with_other_tensors_is_refused_and_leaves_the_folder_alone(
        tmp_path: Path) -> None:
    model_dir = write_model_repository(tmp_path, "m", 1, linear_model(), IN4, OUT3)
    before = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    wider = [TensorSpec("input", "FP32", (-1, 5))]
    expected = (r"already serves version\(s\) 1.*input 'input' is TYPE_FP32 dims \[4\] there "
                r"and TYPE_FP32 dims \[5\] here")
    with pytest.raises(InputError, match=expected):
        write_model_repository(tmp_path, "m", 2, linear_model(n_in=5), wider, OUT3)
    with pytest.raises(InputError, match="max_batch_size is 64 there and 0 here"):
        write_model_repository(tmp_path, "m", 2, linear_model(), IN4, OUT3, max_batch_size=0)
    after = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in model_dir.iterdir()) == ["1", "config.pbtxt"]


def test_a_hand_written_config_is_not_overwritten(tmp_path: Path) -> None:
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    (model_dir / "config.pbtxt").write_text(
        'name: "m"\nplatform: "onnxruntime_onnx"\ninstance_group { count: 2 }\n')
    with pytest.raises(InputError, match=r"config\.pbtxt was not written by this export"):
        write_model_repository(tmp_path, "m", 1, linear_model(), IN4, OUT3)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("x")
    with pytest.raises(InputError, match="is not a Triton model folder"):
        write_model_repository(tmp_path, "notes", 1, linear_model(), IN4, OUT3)


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", "..", "with space", "x" * 129, "ünï"])
def test_names_triton_cannot_serve_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(InputError, match="invalid Triton model name"):
        write_model_repository(tmp_path, name, 1, linear_model(), IN4, OUT3)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kwargs, message", [
    ({"version": 0}, "invalid model version"),
    ({"max_batch_size": -1}, "invalid max_batch_size"),
    ({"preferred_batch_sizes": [128]}, "invalid preferred batch size"),
    ({"inputs": [TensorSpec("input", "FLOAT", (-1, 4))]}, "datatype 'FLOAT'"),
    ({"inputs": [TensorSpec("x", "FP32", (-1, 4))]}, r"has inputs \['input'\]"),
    ({"inputs": [TensorSpec("input", "INT64", (-1, 4))]}, "is FLOAT in the graph, not INT64"),
    ({"outputs": [TensorSpec("probabilities", "FP32", (-1, 2))]}, r"shape \[-1, 3\]"),
    ({"onnx": b"not a graph"}, "is not an ONNX model"),
])
def test_bad_arguments_get_one_clear_line(tmp_path: Path, kwargs: dict, message: str) -> None:
    args = {"root": tmp_path, "name": "m", "version": 1, "onnx": linear_model(),
            "inputs": IN4, "outputs": OUT3, **kwargs}
    with pytest.raises(InputError, match=message) as caught:
        write_model_repository(**args)
    assert "\n" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_external_data_files_travel_with_the_graph(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    model = onnx.load_model_from_string(linear_model())
    onnx.save_model(model, str(source / "big.onnx"), save_as_external_data=True,
                    location="big.onnx_data", size_threshold=0)
    repo = tmp_path / "repo"
    repo.mkdir()
    model_dir = write_model_repository(repo, "ext", 1, source / "big.onnx", IN4, OUT3)
    assert sorted(p.name for p in (model_dir / "1").iterdir()) == ["big.onnx_data", "model.onnx"]
    session = ort.InferenceSession(str(model_dir / "1" / "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    assert session.run(None, {"input": np.ones((2, 4), np.float32)})[0].shape == (2, 3)
    with pytest.raises(InputError, match="keeps its weights in external files"):
        write_model_repository(repo, "ext2", 1, (source / "big.onnx").read_bytes(), IN4, OUT3)


def test_a_failed_write_leaves_no_half_written_config(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model_dir = write_model_repository(tmp_path, "m", 1, linear_model(), IN4, OUT3)
    config_before = (model_dir / "config.pbtxt").read_bytes()
    real_fsync = os.fsync
    calls = []

    def failing_fsync(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 2:  # the model file of version 2 went through; its config does not
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(triton.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="No space left"):
        write_model_repository(tmp_path, "m", 2, linear_model(weight=3.0), IN4, OUT3,
                               max_batch_size=8)
    assert (model_dir / "config.pbtxt").read_bytes() == config_before
    assert not [p for p in model_dir.iterdir() if p.name.startswith(".")]

    calls.clear()
    monkeypatch.setattr(triton.os, "fsync", failing_fsync)
    with pytest.raises(OSError):
        write_model_repository(tmp_path, "new", 1, linear_model(), IN4, OUT3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no half model, no temp folder
