"""The model card: a Markdown page written from the manifest."""

from __future__ import annotations

import re
from typing import Any

from studio.core.training.metrics import plain_number

# What makes Markdown of plain text mid-line: emphasis, code, links, HTML, table cells, and the
# braces of the registry's placeholder.
MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|~])")


def md(text: object) -> str:
    """User text (a label, a column name) as Markdown that shows it as it is: its special
    characters escaped, so ``*x*`` is not emphasis, ``a|b`` splits no table cell, and a
    ``{ref}`` in it never meets the registry's placeholder. Never used as a template."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def model_card(manifest: dict[str, Any]) -> str:
    """Markdown with a ``{ref}`` placeholder the registry fills with ``name:version``; all
    user text in it is escaped (see :func:`md`), so the placeholder is the only ``{ref}``."""
    task = manifest["task"]
    test = manifest["metrics"]["test"]
    rows = "\n".join(
        f"| {k} | {v:.4f} |" for k, v in test.items() if isinstance(v, float)
    )
    features = ", ".join(md(f["name"]) for f in manifest["recipe"]["features"])
    dropped = ", ".join(md(d["name"]) for d in manifest["recipe"]["dropped"]) or "none"
    labels = [md(label) for label in manifest.get("labels") or []]
    modality = manifest["recipe"].get("modality", "tabular")
    described = {"image": "image classification", "text": f"text {task}"}.get(modality, task)
    steps = _steps(manifest["recipe"])
    article = "An" if described[0] in "aeiou" else "A"
    digest = str(manifest["dataset"].get("digest", ""))[:12]
    return f"""# {{ref}}

{article} {described} model of **{md(manifest['target'])}** trained by Model Studio on the
dataset **{md(manifest['dataset']['name'])}** ({manifest['dataset']['rows']} rows with a target).

## Inputs

Columns used: {features}. Columns not used: {dropped}.
{f"Classes: {', '.join(labels)}." if labels else ""}

Preprocessing (fitted on the training split, applied again in serving): {steps}.

## Test metrics (held-out split, {test.get('n', '?')} rows)

| metric | value |
| --- | --- |
{rows}

{_baseline(task, test, manifest.get('warnings', []))}
## Training

{_training(manifest)}

## Intended use

Predicting **{md(manifest['target'])}** for new rows shaped like those of
**{md(manifest['dataset']['name'])}** (dataset digest `{digest}`), served by `studio serve` or
exported. Edit this card to say who should use it, for what, and what it must not decide alone.

## Limitations

Trained on one dataset; it knows nothing outside the ranges and categories seen there.
Unknown categories are encoded as all-zero, missing numbers as the training median.
"""


FAMILY_TEXT = {
    "linear": "A linear model (logistic regression for classes, linear regression for values)",
    "boosted-trees": "Gradient-boosted decision trees (LightGBM)",
    "mlp": "A multilayer perceptron on the table features",
    "embedding": ("fastText-style: learned vectors of words and word pairs, summed and "
                  "divided by the square root of their count, into a linear layer or a small "
                  "network"),
    "cnn": "A small convolutional network",
}


def _training(manifest: dict[str, Any]) -> str:
    training = manifest["training"]
    family = manifest.get("family", "mlp")
    unit = "rounds" if family == "boosted-trees" else "epochs"
    text = (f"{FAMILY_TEXT.get(family, family)}; {training['epochs_run']} {unit} on "
            f"{training['device']}, best {unit[:-1]} {training['best_epoch']}, seed "
            f"{training['seed']}, split {training['split']}.")
    if training.get("hidden"):
        text += f" Hidden layers {training['hidden']}."
    board = manifest.get("leaderboard") or []
    if len(board) > 1:
        rows = "\n".join(f"| {md(r['family'])}{' (this model)' if r.get('this') else ''}"
                         f"{' (chosen by the run)' if r.get('chosen') else ''} | "
                         f"{r['validation']:.4f} | {r['test']:.4f} | {r['fit_s']:.1f} s |"
                         for r in sorted(board, key=lambda r: -r["validation"]))
        text += (f"\n\nFamilies tried, best on the validation split first "
                 f"({md(board[0]['metric'])}):\n\n| family | validation | test | fit |\n"
                 f"| --- | --- | --- | --- |\n{rows}")
    return text


def _steps(recipe: dict[str, Any]) -> str:
    out = []
    for f in recipe["features"]:
        if f["kind"] == "text":
            pairs = (f" and {f['bigram_tokens']} over {len(f['bigrams']):,} word pairs"
                     if "bigrams" in f else "")
            out.append(f"{md(f['name'])} → up to {f['max_tokens']} token ids over "
                       f"{len(f['vocabulary']):,} words{pairs}")
        elif f["kind"] == "image":
            out.append(f"{md(f['name'])} resized to {f['size']}×{f['size']} RGB, normalized "
                       "per channel")
        elif f["kind"] == "numeric":
            out.append(f"{md(f['name'])} {f.get('scaling', 'standard')}-scaled")
        else:
            out.append(f"{md(f['name'])} {'ordinal' if f['kind'] == 'ordinal' else 'one-hot'}")
    return "; ".join(out)


def _baseline(task: str, test: dict[str, Any], warnings: list[str]) -> str:
    base = test.get("baseline")
    if not base:
        return ""
    if task == "classification":
        text = (f"Always predicting the most frequent class, {md(base['predicts'])}, would score "
                f"accuracy {base['accuracy']:.4f} on the same rows.")
    else:
        text = (f"Always predicting the training mean, {base['predicts']}, would score MAE "
                f"{plain_number(base['mae'])} (R² {base['r2']:.4f}) on the same rows.")
    return text + "".join(f"\n\n**Warning:** {md(w)}" for w in warnings) + "\n"
