"""The model registry: versions (a manifest plus verified blobs), references to them, and
moving models in and out (``transfer``)."""

from studio.core.registry.versions import (
    MANIFEST_FORMAT,
    Version,
    get_version,
    latest_version,
    list_versions,
    parse_ref,
    propose_model_name,
    read_file,
    register_version,
    same_question,
    task_head,
)

__all__ = ["MANIFEST_FORMAT", "Version", "get_version", "latest_version", "list_versions",
           "parse_ref", "propose_model_name", "read_file", "register_version", "same_question",
           "task_head"]
