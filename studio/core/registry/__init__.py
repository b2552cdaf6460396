"""The model registry: versions (a typed manifest plus verified blobs), references to them
(``NAME``, ``NAME:N``, ``NAME@ALIAS``), aliases, tags, lineage, and moving models in and
out (``transfer``). Nothing here imports the dataset stack: a server looks a model up
without pandas."""

from studio.core.registry.manifest import Manifest
from studio.core.registry.refs import Ref, parse_ref
from studio.core.registry.versions import (
    MANIFEST_FORMAT,
    Version,
    get_version,
    latest_version,
    list_versions,
    propose_model_name,
    read_file,
    register_version,
    resolve,
    same_question,
    task_head,
)

__all__ = ["MANIFEST_FORMAT", "Manifest", "Ref", "Version", "get_version", "latest_version",
           "list_versions", "parse_ref", "propose_model_name", "read_file", "register_version",
           "resolve", "same_question", "task_head"]
