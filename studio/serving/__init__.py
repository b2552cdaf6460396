"""The inference server: Open Inference Protocol (V2) REST + a records endpoint."""
