"""OpenAPI descriptions of the raw inference routes, which FastAPI cannot see by itself."""

from __future__ import annotations

from typing import Any

_TENSOR = {
    "type": "object",
    "required": ["name", "shape", "datatype"],
    "properties": {
        "name": {"type": "string", "example": "input"},
        "shape": {"type": "array", "items": {"type": "integer"}, "example": [1, 10]},
        "datatype": {"type": "string", "enum": [
            "FP32", "FP64", "FP16", "INT64", "INT32", "INT16", "INT8", "UINT64", "UINT32",
            "UINT16", "UINT8", "BOOL", "BYTES"]},
        "data": {"type": "array", "items": {}, "description": "numbers; strings for BYTES"},
        "parameters": {"type": "object", "description": (
            "binary_data_size: the tensor's bytes after the JSON header instead of 'data' "
            "(binary tensor data extension; send Inference-Header-Content-Length)")},
    },
}
_INFER_REQUEST = {
    "type": "object", "required": ["inputs"],
    "properties": {
        "id": {"type": "string"},
        "inputs": {"type": "array", "items": _TENSOR},
        "outputs": {"type": "array", "items": {"type": "object",
                                               "properties": {"name": {"type": "string"}}}},
    },
}
_INFER_RESPONSE = {
    "type": "object",
    "properties": {"model_name": {"type": "string"}, "model_version": {"type": "string"},
                   "id": {"type": "string"}, "outputs": {"type": "array", "items": _TENSOR}},
}
_ROWS = {"type": "array", "items": {"type": "object"},
         "example": [{"island": "Biscoe", "bill_length_mm": 45.1}]}
_IMAGE_NOTE = ('An image column takes base64 text of the picture\'s file (a data: URL too) or '
               '{"b64": "..."}. ')
_PREDICT_REQUEST = {
    "description": (
        "Raw rows, in any of these forms: KServe V1 / TF Serving instances, MLflow "
        "dataframe_split (index optional, ignored), MLflow dataframe_records, or MLflow / "
        "TF Serving column-wise inputs; or a CSV body (Content-Type: text/csv, header row "
        "first). " + _IMAGE_NOTE + "A missing value is null (in CSV: an empty cell or NA); a "
        "number spelled as infinite or NaN is refused."),
    "oneOf": [
        {"title": "instances", "type": "object", "required": ["instances"],
         "properties": {"instances": _ROWS}},
        {"title": "dataframe_split", "type": "object", "required": ["dataframe_split"],
         "properties": {"dataframe_split": {
             "type": "object", "required": ["columns", "data"],
             "properties": {"columns": {"type": "array", "items": {"type": "string"}},
                            "data": {"type": "array", "items": {"type": "array"}},
                            "index": {"type": "array"}},
             "example": {"columns": ["island", "bill_length_mm"], "data": [["Biscoe", 45.1]]},
         }}},
        {"title": "dataframe_records", "type": "object", "required": ["dataframe_records"],
         "properties": {"dataframe_records": _ROWS}},
        {"title": "inputs (column-wise)", "type": "object", "required": ["inputs"],
         "properties": {"inputs": {"type": "object", "additionalProperties": {"type": "array"},
                                   "example": {"island": ["Biscoe"],
                                               "bill_length_mm": [45.1]}}}},
    ],
}
_PREDICT_CSV = {"type": "string", "example": "island,bill_length_mm\nBiscoe,45.1\n"}
_PREDICT_RESPONSE = {
    "type": "object",
    "properties": {
        "model_name": {"type": "string"}, "model_version": {"type": "string"},
        "predictions": {"type": "array", "items": {}},
        "probabilities": {"type": "array", "items": {"type": "array",
                                                     "items": {"type": "number"}}},
        "labels": {"type": "array", "items": {"type": "string"}},
    },
}
_ERROR = {"type": "object", "properties": {"error": {"type": "string"}}}


def _param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _op(summary: str, params: list[str], request: dict[str, Any] | None,
        response: dict[str, Any], method: str, csv: dict[str, Any] | None = None
        ) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary, "tags": ["inference"],
        "parameters": [_param(p) for p in params],
        "responses": {"200": {"description": "OK", **_json(response)},
                      "400": {"description": "Bad request", **_json(_ERROR)},
                      "404": {"description": "Unknown model or version", **_json(_ERROR)}},
    }
    if request is not None:
        op["requestBody"] = {"required": True, **_json(request)}
        if csv is not None:
            op["requestBody"]["content"]["text/csv"] = {"schema": csv}
    return {method: op}


_OBJ: dict[str, Any] = {"type": "object"}

INFER_PATHS: dict[str, Any] = {
    "/v2/health/live": _op("Server is live", [], None, _OBJ, "get"),
    "/v2/health/ready": _op("Server is ready", [], None, _OBJ, "get"),
    "/v2": _op("Server metadata", [], None, _OBJ, "get"),
    "/v2/models/{name}": _op("Model metadata (V2)", ["name"], None, _OBJ, "get"),
    "/v2/models/{name}/versions/{version}": _op(
        "Model version metadata (V2)", ["name", "version"], None, _OBJ, "get"),
    "/v2/models/{name}/ready": _op("Model is ready", ["name"], None, _OBJ, "get"),
    "/v2/models/{name}/infer": _op(
        "Infer on preprocessed tensors (Open Inference Protocol)", ["name"], _INFER_REQUEST,
        _INFER_RESPONSE, "post"),
    "/v2/models/{name}/versions/{version}/infer": _op(
        "Infer with a given version", ["name", "version"], _INFER_REQUEST, _INFER_RESPONSE,
        "post"),
    "/v1/models": _op("Models served here", [], None, _OBJ, "get"),
    "/v1/models/{name}:predict": _op(
        "Predict from raw rows (JSON rows or CSV); the saved preprocessing is applied",
        ["name"], _PREDICT_REQUEST, _PREDICT_RESPONSE, "post", _PREDICT_CSV),
    "/v1/models/{name}/versions/{version}:predict": _op(
        "Predict from raw rows with a given version", ["name", "version"], _PREDICT_REQUEST,
        _PREDICT_RESPONSE, "post", _PREDICT_CSV),
}
