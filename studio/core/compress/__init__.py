"""Compression lab: smaller and faster versions of a model, measured on this machine.

``quantize`` turns an ONNX graph into an int8 or fp16 one; ``measure`` times a graph (and a
source against its candidate in one interleaved run). Neither imports torch.
"""
