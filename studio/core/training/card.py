"""The model card: a Markdown page written from the manifest."""

from __future__ import annotations

from typing import Any


def model_card(manifest: dict[str, Any]) -> str:
    """Markdown with a ``{ref}`` placeholder the registry fills with ``name:version``."""
    task = manifest["task"]
    test = manifest["metrics"]["test"]
    rows = "\n".join(
        f"| {k} | {v:.4f} |" for k, v in test.items() if isinstance(v, float)
    )
    training = manifest["training"]
    features = ", ".join(f["name"] for f in manifest["recipe"]["features"])
    dropped = ", ".join(d["name"] for d in manifest["recipe"]["dropped"]) or "none"
    labels = manifest.get("labels")
    return f"""# {{ref}}

A {task} model of `{manifest['target']}` trained by Model Studio on the dataset
`{manifest['dataset']['name']}` ({manifest['dataset']['rows']} rows with a target).

## Inputs

Columns used: {features}. Columns not used: {dropped}.
{f"Classes: {', '.join(labels)}." if labels else ""}

## Test metrics (held-out split, {test.get('n', '?')} rows)

| metric | value |
| --- | --- |
{rows}

## Training

A multilayer perceptron (hidden layers {training['hidden']}), {training['epochs_run']} epochs
on {training['device']}, best epoch {training['best_epoch']}, seed {training['seed']}, split
{training['split']}.

## Limitations

Trained on one dataset; it knows nothing outside the ranges and categories seen there.
Unknown categories are encoded as all-zero, missing numbers as the training median.
"""
