"""Moving models in and out of the registry: files made elsewhere, bundles, Triton/KServe
model repositories and the Hugging Face Hub. Every reader here checks before it trusts."""
