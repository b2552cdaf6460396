"""Word bigrams and word shapes in the recipe's text step: ids fitted deterministically and
kept in bounds, the same tensors in training and in serving, old recipes untouched, and a
label carried only by word order learned with bigrams and not without."""

import json
import os
import random
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from studio.core.datasets import text
from studio.core.datasets.prepare import prepare
from studio.core.datasets.recipe import (
    check_options,
    column_slices,
    encode_target,
    frame_from_records,
    id_words,
    model_inputs,
    text_tokens,
    transform_inputs,
    vocabulary_size,
)
from studio.core.errors import InputError
from studio.core.training.families import get
from studio.core.training.families.base import FitContext, TrainData, resolve_params

FILLER = [f"w{i}" for i in range(30)]


def order_task(n: int, seed: int = 0) -> pd.DataFrame:
    """Every row holds the words "cat" and "dog" among filler; only which comes first (a
    bigram) tells the label: the bag of words is the same for both classes."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = rng.choice(["cat first", "dog first"])
        words = [rng.choice(FILLER) for _ in range(6)]
        at = rng.randrange(len(words) + 1)
        words[at:at] = ["cat", "dog"] if label == "cat first" else ["dog", "cat"]
        rows.append({"note": " ".join(words), "label": label})
    return pd.DataFrame(rows)


def messages(n: int = 300, seed: int = 1) -> pd.DataFrame:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        spam = i % 3 == 0
        words = [rng.choice(FILLER) for _ in range(rng.randint(3, 12))]
        if spam:
            words += ["call", "0906" + "".join(rng.choice("0123456789") for _ in range(7))]
        title = " ".join(rng.choice(FILLER) for _ in range(rng.randint(2, 5)))
        rows.append({"title": None if i % 10 == 1 else title.capitalize(),
                     "body": " ".join(words), "label": "spam" if spam else "ham"})
    return pd.DataFrame(rows)


def test_bigram_ids_are_deterministic_and_within_bounds() -> None:
    frame = messages()
    recipe = prepare(frame, "m", "label").recipe
    assert [f["name"] for f in recipe["features"] if f["kind"] == "text"] == ["title", "body"]
    title, body = (f for f in recipe["features"] if f["kind"] == "text")
    assert "call <00000000000>" in body["bigrams"]
    assert body["bigram_tokens"] == body["max_tokens"] - 1

    ids = text_tokens(recipe, frame)
    spec = model_inputs(recipe)[0]
    assert spec["name"] == "tokens" and spec["datatype"] == "INT64"
    assert spec["segments"] == [text.length(title), text.length(body)]
    assert ids.shape == (len(frame), sum(spec["segments"]))
    assert ids.min() >= 0 and ids.max() < spec["vocabulary_size"] == vocabulary_size(recipe)
    # body's slots: its words (ids after title's), then its bigrams (ids after its words)
    start = text.width(title) - 1
    words = ids[:, text.length(title):text.length(title) + body["max_tokens"]]
    pairs = ids[:, text.length(title) + body["max_tokens"]:]
    first_pair = start + text.FIRST_WORD + len(body["vocabulary"])
    assert ((words == 0) | ((words >= start + text.FIRST_WORD) & (words < first_pair))).all()
    assert ((pairs == 0) | (pairs >= first_pair)).all() and (pairs > 0).any()
    # permutation importance shuffles each column's whole slice, bigrams included
    assert column_slices(recipe) == {
        "title": ("tokens", 0, text.length(title)),
        "body": ("tokens", text.length(title), ids.shape[1])}
    names = id_words(recipe)
    spam_row = int(np.nonzero(frame["label"].to_numpy() == "spam")[0][0])
    assert "call <00000000000>" in {names[i] for i in ids[spam_row] if i}

    # the same recipe in another process, whatever its string hashing: nothing is salted
    script = ("import json, sys, pandas as pd; sys.path.insert(0, 'tests');"
              "from test_text_bigrams import messages;"
              "from studio.core.datasets.prepare import prepare;"
              "print(json.dumps(prepare(messages(), 'm', 'label').recipe, sort_keys=True))")
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             check=True, env={**os.environ, "PYTHONHASHSEED": seed})
        assert json.loads(out.stdout) == json.loads(json.dumps(recipe, sort_keys=True))


def test_an_old_recipe_without_bigrams_encodes_exactly_as_before() -> None:
    old = {"features": [{"name": "body", "kind": "text", "vocabulary": ["call", "now", "free"],
                         "max_tokens": 4}]}
    frame = pd.DataFrame({"body": ["Call 09061234567 now!", "free free free free free",
                                   None, "nothing known"]})
    # unknown words (the number too) are left out; no shapes, no bigram slots
    assert text_tokens(old, frame).tolist() == [[2, 3, 0, 0], [4, 4, 4, 4], [0, 0, 0, 0],
                                                [0, 0, 0, 0]]
    assert model_inputs(old)[0]["shape"] == [-1, 4]
    assert model_inputs(old)[0]["segments"] == [4] and vocabulary_size(old) == 5
    # choosing no bigrams fits the step as it was: the same keys, the same ids
    fitted = text.fit_text("body", ["call now", "call me now", "free call"] * 5,
                           {"bigrams": 0})
    assert set(fitted) == {"name", "kind", "vocabulary", "max_tokens"}
    assert fitted["vocabulary"] == ["call", "now", "free", "me"]


def test_an_unseen_number_is_written_as_its_shape() -> None:
    rows = [f"call 0906{i:07d} now, only {100 + i}p {FILLER[i % 12]} {FILLER[(i + 1) % 12]}"
            for i in range(24)] + ["call now"] * 3
    feature = text.fit_text("body", rows, {})
    assert "<00000000000>" in feature["vocabulary"] and "<000a>" in feature["vocabulary"]
    ids = text.encode(feature, ["Call 09065550000 now", "call now"], 0)
    index = {w: i + text.FIRST_WORD for i, w in enumerate(text.id_words(feature))}
    n = feature["max_tokens"]
    assert ids[0, :3].tolist() == [index["call"], index["<00000000000>"], index["now"]]
    assert index["call <00000000000>"] in ids[0, n:] and index["call now"] in ids[1, n:]
    assert index["call now"] not in ids[0, n:]  # a number between them: not adjacent
    assert text.shape("x" + "7" * 40) == "<a" + "0" * text.MAX_SHAPE_DIGITS + ">"


def test_bigrams_option_is_checked() -> None:
    assert check_options({"columns": {"t": {"bigrams": 0}}}, ["t"])
    for bad in (-1, text.MAX_BIGRAMS + 1, "many", True):
        with pytest.raises(InputError, match="bigrams"):
            check_options({"columns": {"t": {"bigrams": bad}}}, ["t"])


def _train(frame: pd.DataFrame, family: str, options: dict | None = None,
           **params: object) -> tuple[TrainData, object]:
    p = prepare(frame, "t", "label", options=options, seed=0)
    data = TrainData(p.recipe, p.task, p.frame, encode_target(p.recipe, p.frame["label"]),
                     p.parts)
    fam = get(family)
    fitted = fam.train(data, resolve_params(fam, params), FitContext(lambda _e: None, seed=0))
    return data, fitted


def test_served_records_get_the_training_tensors_and_probabilities(tmp_path) -> None:
    from studio.core import registry
    from studio.core.predict import Predictor
    from studio.core.training.data import ModelData
    from studio.core.workspace import Workspace

    data, fitted = _train(messages(), "linear", epochs=3)
    rows = data.test
    exported = fitted.export()
    assert exported.output == "probabilities"
    ws = Workspace.open(tmp_path)
    try:
        recipe = json.loads(json.dumps(data.recipe))  # as a manifest keeps it
        version = registry.register_version(
            ws, "bigrams", {"model.onnx": exported.onnx, **exported.files},
            {"task": "classification", "recipe": recipe, "labels": recipe["labels"],
             "onnx": {"inputs": data.inputs, "output": exported.output}}, "card")
        predictor = Predictor(ws, version, threads=1)
        records = [{k: (None if v is None or v != v else v) for k, v in r.items()}
                   for r in data.frame.iloc[rows].drop(columns=["label"]).to_dict("records")]
        served = transform_inputs(recipe, frame_from_records(recipe, records))["tokens"]
        model_data = ModelData(data.recipe, data.frame, "cpu", lambda _e: None)
        trained = model_data.batch(rows)[model_data.names.index("tokens")]
        assert np.array_equal(served, trained.numpy())
        result = predictor.predict_records(records)
        np.testing.assert_allclose(np.array(result["probabilities"]), fitted.predict(rows),
                                   atol=1e-5)
    finally:
        ws.db.close()


def test_word_order_is_learned_with_bigrams_and_not_without() -> None:
    frame = order_task(600)
    scores = {}
    for name, options in (("bigrams", None),
                          ("words only", {"columns": {"note": {"bigrams": 0}}})):
        data, fitted = _train(frame, "embedding", options, epochs=12, patience=0)
        guess = fitted.predict(data.test).argmax(axis=1)
        scores[name] = float((guess == data.y[data.test]).mean())
    assert scores["bigrams"] >= 0.95, scores
    assert scores["words only"] <= 0.7, scores
