"""The terminal summary of an evaluation document (``studio evaluate``)."""

from __future__ import annotations

from typing import Any

MAX_CONFUSION = 12
TOP_FEATURES = 10
WORST_SHOWN = 5
HEADLINE = {
    "classification": ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc", "log_loss"),
    "regression": ("mae", "rmse", "r2", "mape"),
}


def _f(value: Any, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _g(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _values(values: dict[str, str], each: int = 40, width: int = 160) -> str:
    text = ", ".join(f"{k}={v if len(v) <= each else v[:each - 1] + '…'}"
                     for k, v in values.items())
    return text if len(text) <= width else text[:width - 1] + "…"


def summary(doc: dict[str, Any]) -> str:
    m = doc["metrics"]
    if doc.get("split") == "test":
        head = f"{doc['model']} on {doc['dataset']}: test split of the training data: " \
               f"{doc['n']:,} rows"
    else:
        head = f"{doc['model']} on {doc['dataset']}: {doc['n']:,} rows with a " \
               f"{doc['target']!r}" + (f" ({doc['rows_without_target']:,} without one "
                                       "skipped)" if doc.get("rows_without_target") else "")
    lines = [head,
             "  ".join(f"{k} {_f(m.get(k))}" for k in HEADLINE[doc["task"]])]
    unseen = doc.get("unseen")
    if unseen:
        classes = ", ".join(f"{c} {k:,}" for c, k in unseen.get("classes", {}).items())
        lines.append(f"note: {unseen['rows']:,} rows are of classes the model never saw "
                     f"({classes}); they are scored as wrong")
    if doc["task"] == "classification":
        lines += _classes(doc)
    lines += _importance(doc.get("importance"))
    lines += _worst(doc)
    return "\n".join(lines)


def _classes(doc: dict[str, Any]) -> list[str]:
    width = max(8, *(len(c["label"]) for c in doc["per_class"]))
    width = min(width, 24)
    lines = ["", f"{'CLASS':<{width}} {'PRECISION':>9} {'RECALL':>7} {'F1':>7} "
             f"{'SUPPORT':>8} {'ROC-AUC':>8}"]
    lines += [f"{c['label'][:width]:<{width}} {_f(c['precision'], 3):>9} "
              f"{_f(c['recall'], 3):>7} {_f(c['f1'], 3):>7} {c['support']:>8,} "
              f"{_f(c['roc_auc'], 3):>8}" for c in doc["per_class"]]
    labels, confusion = doc["labels"], doc["confusion"]
    if len(labels) <= MAX_CONFUSION:
        cell = max(6, min(12, max(len(label) for label in labels)),
                   *(len(str(v)) for row in confusion for v in row)) + 1
        names = [label[:cell - 1] for label in labels]
        lines += ["", "confusion (rows: actual, columns: predicted)",
                  " " * width + "".join(f"{n:>{cell}}" for n in names)]
        lines += [f"{label[:width]:<{width}}" + "".join(f"{v:>{cell}}" for v in row)
                  for label, row in zip(labels, confusion, strict=True)]
    return lines


def _importance(imp: dict[str, Any] | None) -> list[str]:
    if not imp or not imp["features"]:
        return []
    features = imp["features"][:TOP_FEATURES]
    width = min(24, max(len(f["feature"]) for f in features))
    return ["", f"importance ({imp['metric']} drop when a column is shuffled; "
            f"{imp['repeats']} shuffles on {imp['rows']:,} rows"
            + (f"; partial: {imp['columns']:,} of {imp['of']:,} columns scored"
               if imp.get("partial") else "") + ")"] + [
        f"  {f['feature'][:width]:<{width}} "
        + ("-" if f["mean"] is None else f"{f['mean']:+.4f} ± {_f(f['std'])}")
        for f in features]


def _worst(doc: dict[str, Any]) -> list[str]:
    worst = doc["worst"][:WORST_SHOWN]
    if not worst:
        return ["", "no wrong predictions"] if doc["task"] == "classification" else []
    lines = ["", "worst errors"]
    for w in worst:
        if doc["task"] == "classification":
            head = (f"row {w['row']}: {w['actual']} predicted as {w['predicted']} "
                    f"({_f(w['confidence'], 3)})")
        else:
            head = (f"row {w['row']}: actual {_g(w['actual'])}, predicted "
                    f"{_g(w['predicted'])} (error {_g(w['error'])})")
        lines += [f"  {head}", f"    {_values(w['values'])}"]
    return lines
