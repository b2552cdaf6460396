"""The text step: long text → a fixed-length row of token ids over a fitted vocabulary.

Words are runs of letters and digits (any script), lower-cased. Id 0 pads; known words start
at 2. A word outside the vocabulary is left out like padding (id 1 is reserved and never
written: an embedding for it would never be trained). The vocabulary and the length are
fitted on the training split and kept in the recipe, so serving tokenizes the same way.
"""

from __future__ import annotations

import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

WORD = re.compile(r"\w+")
PAD, FIRST_WORD = 0, 2
DEFAULT_VOCAB = 20_000
MAX_VOCAB = 200_000
MIN_TOKENS, MAX_TOKENS = 4, 512
EMBEDDING_DIM = 64  # width of a word's vector in the model (training/model.py)
MAX_CHARS = 100_000  # a longer value is cut before tokenizing: bounded work per row


def tokens(text: str | None) -> list[str]:
    if not text:
        return []
    return WORD.findall(text[:MAX_CHARS].lower())


def fit_text(name: str, values: Iterable[str | None], choice: Mapping[str, Any]) -> dict[str, Any]:
    """Vocabulary (words seen in two or more rows, most frequent first) and row length."""
    docs = Counter()
    lengths = []
    for text in values:
        words = tokens(text)
        lengths.append(len(words))
        docs.update(set(words))
    size = int(choice.get("vocabulary", DEFAULT_VOCAB))
    min_rows = 2 if sum(1 for c in docs.values() if c >= 2) >= 10 else 1
    ranked = sorted((w for w, c in docs.items() if c >= min_rows), key=lambda w: (-docs[w], w))
    if "max_tokens" in choice:
        length = int(choice["max_tokens"])
    else:  # long enough for 95 % of training rows, no longer
        length = int(np.percentile(lengths, 95)) if lengths else MIN_TOKENS
    return {"name": name, "kind": "text", "vocabulary": ranked[:size],
            "max_tokens": min(MAX_TOKENS, max(MIN_TOKENS, length))}


def width(feature: Mapping[str, Any]) -> int:
    """Ids this feature can produce, padding and unknown included."""
    return FIRST_WORD + len(feature["vocabulary"])


_INDEXES: OrderedDict[int, tuple[list[str], dict[str, int]]] = OrderedDict()
CACHED_INDEXES = 4
_LOCK = threading.Lock()


_PINNED: dict[int, tuple[list[str], dict[str, int]]] = {}


def pin(vocabulary: list[str]) -> None:
    """Keep this vocabulary's index for good: a served model's, asked for on every request."""
    index = _index(vocabulary)
    with _LOCK:
        _PINNED[id(vocabulary)] = (vocabulary, index)


def _index(vocabulary: list[str]) -> dict[str, int]:
    """word → id, built once per vocabulary; pinned ones stay, of the others the few most
    recent are kept, each with its list so its id cannot be reused meanwhile."""
    with _LOCK:
        pinned = _PINNED.get(id(vocabulary))
        if pinned is not None and pinned[0] is vocabulary:
            return pinned[1]
        cached = _INDEXES.get(id(vocabulary))
        if cached is not None and cached[0] is vocabulary:
            _INDEXES.move_to_end(id(vocabulary))
            return cached[1]
    index = {w: i + FIRST_WORD for i, w in enumerate(vocabulary)}
    with _LOCK:
        _INDEXES[id(vocabulary)] = (vocabulary, index)
        while len(_INDEXES) > CACHED_INDEXES:
            _INDEXES.popitem(last=False)
    return index


def encode(feature: Mapping[str, Any], values: list[str | None], offset: int) -> np.ndarray:
    """int64 [rows, max_tokens] of the known words in order; ids are shifted by ``offset``
    (padding stays 0)."""
    index = _index(feature["vocabulary"])
    length = int(feature["max_tokens"])
    out = np.zeros((len(values), length), dtype=np.int64)
    for r, text in enumerate(values):
        ids = [i for i in (index.get(w) for w in tokens(text)) if i is not None][:length]
        if ids:
            out[r, :len(ids)] = np.asarray(ids, dtype=np.int64) + offset
    return out
