"""Whether a version's training data is still in the workspace.

Apart from :mod:`source` because the GUI asks it before a run, and ``source`` reaches the
training data stack (torch): this module reads only the catalog.
"""

from __future__ import annotations

from studio.core import registry
from studio.core.errors import NotFoundError
from studio.core.workspace import Workspace


def missing_data_reason(ws: Workspace, version: registry.Version) -> str | None:
    """None when the version's training data is in the workspace; else a sentence asking
    for a dataset."""
    from studio.core.datasets import catalog

    manifest = version.manifest
    if manifest.recipe is None or manifest.target is None:
        return f"{version.ref} has no recipe: it takes tensors only, not a dataset's rows"
    digest = (manifest.raw.get("dataset") or {}).get("digest")
    if digest:
        try:
            catalog.dataset_by_digest(ws, str(digest))
            return None
        except NotFoundError:
            pass
    name = (manifest.raw.get("dataset") or {}).get("name") or "its training data"
    return (f"{version.ref} was trained on {name!r}, which is not in this workspace any "
            "more: choose a dataset with the same columns (--dataset)")
