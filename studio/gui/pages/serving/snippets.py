"""Code a person copies to call a served version: curl, Python ``requests`` and
``tritonclient.http``, written from the version's input schema (plain Python, no Qt).

A version with a recipe takes raw rows on the records route, so curl and ``requests`` send
one example row; tritonclient speaks V2 tensors, so it sends the model's own input tensors
(for a recipe model those are the preprocessed features, which the records route computes
for you). A version made elsewhere takes tensors everywhere.
"""

from __future__ import annotations

import builtins
import json
import keyword
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

NUMPY_TYPES = {"FP32": "float32", "FP64": "float64", "FP16": "float16", "INT64": "int64",
               "INT32": "int32", "INT16": "int16", "INT8": "int8", "UINT8": "uint8",
               "UINT16": "uint16", "UINT32": "uint32", "UINT64": "uint64", "BOOL": "bool_"}
PICTURE = "picture.png"  # the file an image example reads


@dataclass(frozen=True)
class Tensor:
    name: str
    datatype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Target:
    """What the snippets call: a served version and what it takes."""

    url: str
    name: str
    version: int
    inputs: tuple[Tensor, ...]
    outputs: tuple[str, ...]
    columns: tuple[Mapping[str, Any], ...] | None  # the raw columns; None: tensors only


def example_row(columns: Sequence[Mapping[str, Any]],
                means: Mapping[str, float] | None = None) -> dict[str, Any]:
    """One row a person can send as is: the training mean of a number, a category's first
    value, a sentence of text; pictures are read from a file by the code around it."""
    row: dict[str, Any] = {}
    for col in columns:
        kind = col.get("kind")
        if kind == "numeric":
            mean = (means or {}).get(col["name"])
            row[col["name"]] = round(mean, 4) if isinstance(mean, int | float) else 0.0
        elif kind == "categorical":
            categories = col.get("categories") or []
            row[col["name"]] = categories[0] if categories else None
        elif kind == "text":
            row[col["name"]] = "some text to classify"
        else:
            row[col["name"]] = PICTURE
    return row


def snippets(target: Target, row: Mapping[str, Any] | None = None) -> dict[str, str]:
    """{"curl": …, "Python": …, "tritonclient": …} for ``target``; ``row``: the raw row the
    records examples send (the try-it form's), else an example from the schema."""
    if target.columns is not None:
        row = dict(row) if row is not None else example_row(target.columns)
        pictures = [c["name"] for c in target.columns if c.get("kind") == "image"]
        return {"curl": _curl_records(target, row, pictures),
                "Python": _requests_records(target, row, pictures),
                "tritonclient": _triton(target)}
    return {"curl": _curl_tensors(target), "Python": _requests_tensors(target),
            "tritonclient": _triton(target)}


def _records_url(t: Target) -> str:
    return f"{t.url}/v1/models/{t.name}/versions/{t.version}:predict"


def _infer_url(t: Target) -> str:
    return f"{t.url}/v2/models/{t.name}/versions/{t.version}/infer"


def _curl(url: str, body: str) -> str:
    return f"curl -s -X POST '{url}' \\\n  -H 'Content-Type: application/json' \\\n  -d {body}\n"


def _curl_records(t: Target, row: dict[str, Any], pictures: list[str]) -> str:
    if not pictures:
        return _curl(_records_url(t), _shell_quote(json.dumps({"instances": [row]},
                                                              indent=2)))
    # the JSON comes from a here-document, where the shell puts each picture's base64 in;
    # what else it holds is escaped so that the shell expands nothing there
    marker = "@@PICTURE@@"
    text = json.dumps({"instances": [{k: marker if k in pictures else v
                                      for k, v in row.items()}]}, indent=2)
    text = text.replace("\\", "\\\\").replace("$", "\\$").replace("`", "\\`")
    text = text.replace(json.dumps(marker), f'"$(base64 < {PICTURE} | tr -d \'\\n\')"')
    return (f"curl -s -X POST '{_records_url(t)}' \\\n"
            f"  -H 'Content-Type: application/json' -d @- <<EOF\n{text}\nEOF\n")


def _requests_records(t: Target, row: dict[str, Any], pictures: list[str]) -> str:
    head = ["import base64", ""] if pictures else []
    lines = [*head, "import requests", "",
             f"row = {_py({k: v for k, v in row.items() if k not in pictures})}"]
    for name in pictures:
        lines += [f"with open({PICTURE!r}, 'rb') as f:",
                  f"    row[{name!r}] = base64.b64encode(f.read()).decode()"]
    lines += [f"url = {_records_url(t)!r}",
              "response = requests.post(url, json={'instances': [row]}, timeout=30)",
              "response.raise_for_status()",
              "print(response.json()['predictions'][0])"]
    return "\n".join(lines) + "\n"


def _zeros(t: Target) -> dict[str, Any]:
    return {"inputs": [{"name": x.name, "datatype": x.datatype, "shape": _one_row(x),
                        "data": [0] * _size(x)} for x in t.inputs]}


def _curl_tensors(t: Target) -> str:
    return _curl(_infer_url(t), _shell_quote(json.dumps(_zeros(t))))


def _requests_tensors(t: Target) -> str:
    lines = ["import requests", "",
             f"request = {_py(_zeros(t))}",
             f"url = {_infer_url(t)!r}",
             "response = requests.post(url, json=request, timeout=30)",
             "response.raise_for_status()",
             "for output in response.json()['outputs']:",
             "    print(output['name'], output['shape'], output['data'][:10])"]
    return "\n".join(lines) + "\n"


def _triton(t: Target) -> str:
    host = t.url.split("://", 1)[-1]
    lines = ["import numpy as np", "import tritonclient.http as httpclient", "",
             f"client = httpclient.InferenceServerClient({host!r})"]
    if t.columns is not None:
        lines.append("# V2 tensors: the preprocessed features (the records route takes raw "
                     "rows)")
    inputs = []
    for x in t.inputs:
        var = _identifier(x.name)
        dtype = NUMPY_TYPES.get(x.datatype, "float32")
        lines += [f"{var}_data = np.zeros({tuple(_one_row(x))}, dtype=np.{dtype})",
                  f"{var} = httpclient.InferInput({x.name!r}, list({var}_data.shape), "
                  f"{x.datatype!r})",
                  f"{var}.set_data_from_numpy({var}_data, binary_data=False)"]
        inputs.append(var)
    lines.append("outputs = [")
    lines += [f"    httpclient.InferRequestedOutput({o!r}, binary_data=False)," for o in t.outputs]
    lines += ["]",
              f"result = client.infer({t.name!r}, [{', '.join(inputs)}], "
              f"model_version={str(t.version)!r}, outputs=outputs)"]
    lines += [f"print({o!r}, result.as_numpy({o!r}))" for o in t.outputs]
    return "\n".join(lines) + "\n"


def _one_row(x: Tensor) -> list[int]:
    """The tensor's shape with one row and each free dimension at 1."""
    return [1, *[d if d > 0 else 1 for d in x.shape[1:]]]


def _size(x: Tensor) -> int:
    n = 1
    for d in _one_row(x):
        n *= d
    return n


def _identifier(name: str) -> str:
    """A Python name for a tensor's variable: never a keyword, a builtin or ours."""
    out = "".join(c if c.isascii() and (c.isalnum() or c == "_") else "_" for c in name)
    return f"tensor_{out}" if not out or out[0].isdigit() or keyword.iskeyword(out) \
        or out in dir(builtins) or out in ("np", "httpclient", "client", "result",
                                           "outputs") else out


def _py(value: Any) -> str:
    """A Python literal; a dict one key a line when it would be long."""
    text = repr(value)
    if not isinstance(value, dict) or len(text) <= 80:
        return text
    return "{\n" + "".join(f"    {k!r}: {v!r},\n" for k, v in value.items()) + "}"


def _shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"
