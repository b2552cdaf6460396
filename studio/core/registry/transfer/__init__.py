"""Moving models in and out of the registry: ONNX and safetensors files, the Hugging Face Hub,
a Triton/KServe model repository. Pure functions on files and folders; the registry wires them."""
