"""A model's named tensors, in the words of the Open Inference Protocol (V2)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str  # V2 names: FP32, FP16, FP64, INT64, INT32, INT8, UINT8, BOOL, BYTES, ...
    shape: tuple[int, ...]  # -1 for a dynamic axis (batch first when there is one)

    def to_dict(self) -> dict:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}
