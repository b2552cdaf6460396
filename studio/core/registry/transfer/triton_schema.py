"""The part of Triton's ModelConfig that an ONNX export writes, as a protobuf message.

Field names and numbers follow ``protobuf/model_config.proto`` of triton-inference-server/common
(package ``inference``). The message is built at run time in a private descriptor pool, so
config.pbtxt is written by protobuf's own text printer and an existing one is read back by its
parser: a field this subset does not know makes the read fail instead of being dropped.
"""

from __future__ import annotations

from functools import cache
from typing import Any

DATA_TYPES = ("TYPE_INVALID", "TYPE_BOOL", "TYPE_UINT8", "TYPE_UINT16", "TYPE_UINT32",
              "TYPE_UINT64", "TYPE_INT8", "TYPE_INT16", "TYPE_INT32", "TYPE_INT64", "TYPE_FP16",
              "TYPE_FP32", "TYPE_FP64", "TYPE_STRING", "TYPE_BF16")  # enum DataType, values 0..14

# (message, [(field name, number, type, label, type_name or None, oneof index or None)], oneofs)
_OPT, _REP = "LABEL_OPTIONAL", "LABEL_REPEATED"
_MESSAGES: list[tuple[str, list[tuple[str, int, str, str, str | None, int | None]], list[str]]] = [
    ("ModelTensorReshape", [("shape", 1, "TYPE_INT64", _REP, None, None)], []),
    ("ModelInput", [
        ("name", 1, "TYPE_STRING", _OPT, None, None),
        ("data_type", 2, "TYPE_ENUM", _OPT, ".inference.DataType", None),
        ("dims", 4, "TYPE_INT64", _REP, None, None),
        ("reshape", 5, "TYPE_MESSAGE", _OPT, ".inference.ModelTensorReshape", None),
        ("optional", 8, "TYPE_BOOL", _OPT, None, None),
    ], []),
    ("ModelOutput", [
        ("name", 1, "TYPE_STRING", _OPT, None, None),
        ("data_type", 2, "TYPE_ENUM", _OPT, ".inference.DataType", None),
        ("dims", 3, "TYPE_INT64", _REP, None, None),
        ("label_filename", 4, "TYPE_STRING", _OPT, None, None),
        ("reshape", 5, "TYPE_MESSAGE", _OPT, ".inference.ModelTensorReshape", None),
    ], []),
    ("ModelVersionPolicyLatest", [("num_versions", 1, "TYPE_UINT32", _OPT, None, None)], []),
    ("ModelVersionPolicyAll", [], []),
    ("ModelVersionPolicySpecific", [("versions", 1, "TYPE_INT64", _REP, None, None)], []),
    ("ModelVersionPolicy", [
        ("latest", 1, "TYPE_MESSAGE", _OPT, ".inference.ModelVersionPolicyLatest", 0),
        ("all", 2, "TYPE_MESSAGE", _OPT, ".inference.ModelVersionPolicyAll", 0),
        ("specific", 3, "TYPE_MESSAGE", _OPT, ".inference.ModelVersionPolicySpecific", 0),
    ], ["policy_choice"]),
    ("ModelDynamicBatching", [
        ("preferred_batch_size", 1, "TYPE_INT32", _REP, None, None),
        ("max_queue_delay_microseconds", 2, "TYPE_UINT64", _OPT, None, None),
        ("preserve_ordering", 3, "TYPE_BOOL", _OPT, None, None),
    ], []),
    ("ModelConfig", [
        ("name", 1, "TYPE_STRING", _OPT, None, None),
        ("platform", 2, "TYPE_STRING", _OPT, None, None),
        ("version_policy", 3, "TYPE_MESSAGE", _OPT, ".inference.ModelVersionPolicy", None),
        ("max_batch_size", 4, "TYPE_INT32", _OPT, None, None),
        ("input", 5, "TYPE_MESSAGE", _REP, ".inference.ModelInput", None),
        ("output", 6, "TYPE_MESSAGE", _REP, ".inference.ModelOutput", None),
        ("default_model_filename", 8, "TYPE_STRING", _OPT, None, None),
        ("dynamic_batching", 11, "TYPE_MESSAGE", _OPT, ".inference.ModelDynamicBatching", 0),
        ("backend", 17, "TYPE_STRING", _OPT, None, None),
    ], ["scheduling_choice"]),
]


@cache
def model_config_class() -> Any:
    """The ``inference.ModelConfig`` message class (this subset of it)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    # Triton nests Latest/All/Specific inside ModelVersionPolicy; text format names a field,
    # never its message type, so flat types read and write the same text.
    proto = descriptor_pb2.FileDescriptorProto(
        name="studio/triton_model_config.proto", package="inference", syntax="proto3")
    enum = proto.enum_type.add(name="DataType")
    for number, name in enumerate(DATA_TYPES):
        enum.value.add(name=name, number=number)
    for message_name, fields, oneofs in _MESSAGES:
        message = proto.message_type.add(name=message_name)
        for oneof in oneofs:
            message.oneof_decl.add(name=oneof)
        for name, number, type_, label, type_name, oneof_index in fields:
            field = message.field.add(
                name=name, number=number,
                type=descriptor_pb2.FieldDescriptorProto.Type.Value(type_),
                label=descriptor_pb2.FieldDescriptorProto.Label.Value(label))
            if type_name is not None:
                field.type_name = type_name
            if oneof_index is not None:
                field.oneof_index = oneof_index
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("inference.ModelConfig"))


def to_text(config: Any) -> str:
    from google.protobuf import text_format

    return text_format.MessageToString(config, as_utf8=True)


def parse(text: str) -> Any:
    """Raises google.protobuf.text_format.ParseError on text this subset cannot read."""
    from google.protobuf import text_format

    return text_format.Parse(text, model_config_class()())
