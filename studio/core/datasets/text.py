"""The text step: long text → a fixed-length row of token ids over a fitted vocabulary.

Words are runs of letters and digits (any script), lower-cased. Id 0 pads; known words start
at 2. A word outside the vocabulary is left out like padding (id 1 is reserved and never
written: an embedding for it would never be trained). The vocabulary and the length are
fitted on the training split and kept in the recipe, so serving tokenizes the same way.

Recipes fitted since word bigrams came (``"bigrams"`` in the feature) add two things, both
fitted on the training rows like the vocabulary:

- an unknown word is written as its *shape* when that shape is in the vocabulary: digits
  become ``0`` one for one, each run of other characters one ``a``, in angle brackets
  (``09065394514`` → ``<00000000000>``, ``150p`` → ``<000a>``, ``zyzzyva`` → ``<a>``). A
  phone number, a price or a code never seen in training still says what it is. The
  brackets cannot occur in a word, so a shape never collides with one.
- after the ``max_tokens`` word slots come ``bigram_tokens`` slots for the known pairs of
  adjacent words (each word as it was written above: itself, or its shape), in order, with
  ids after the vocabulary's. "not good" then means something "good" alone does not.

A recipe without ``"bigrams"`` encodes exactly as it always did.
"""

from __future__ import annotations

import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping
from functools import lru_cache
from itertools import pairwise
from typing import Any

import numpy as np

WORD = re.compile(r"\w+")
DIGIT = re.compile(r"\d")
NOT_DIGITS = re.compile(r"[^0]+")
LONG_DIGITS = re.compile("0{17,}")
PAD, FIRST_WORD = 0, 2
DEFAULT_VOCAB = 20_000
MAX_VOCAB = 200_000
DEFAULT_BIGRAMS = 50_000
MAX_BIGRAMS = 500_000
MIN_TOKENS, MAX_TOKENS = 4, 512
EMBEDDING_DIM = 64  # width of a word's vector in the model (training/model.py)
MAX_CHARS = 100_000  # a longer value is cut before tokenizing: bounded work per row
MAX_SHAPE_DIGITS = 16  # a longer run of digits has the shape of a 16-digit one
MAX_SHAPES = 1_000


def tokens(text: str | None) -> list[str]:
    if not text:
        return []
    return WORD.findall(text[:MAX_CHARS].lower())


@lru_cache(maxsize=1 << 16)
def shape(word: str) -> str:
    """``<…>``: digits as ``0`` (at most 16 in a run), each run of anything else as ``a``."""
    digits = DIGIT.sub("0", word)
    return "<" + LONG_DIGITS.sub("0" * MAX_SHAPE_DIGITS, NOT_DIGITS.sub("a", digits)) + ">"


def fit_text(name: str, values: Iterable[str | None], choice: Mapping[str, Any]) -> dict[str, Any]:
    """Vocabulary (words seen in two or more rows, most frequent first; then the shapes of
    the other words, seen in two or more rows), the bigrams seen in two or more rows (most
    frequent first), and the row length.

    ``choice``: ``vocabulary`` and ``bigrams`` cap the two lists (``bigrams`` 0: none, the
    step as it was before bigrams came), ``max_tokens`` fixes the row length. Each pass
    tokenizes the rows again rather than keeping every word of every row in memory.
    """
    values = list(values)
    docs = Counter()
    lengths = []
    for text in values:
        words = tokens(text)
        lengths.append(len(words))
        docs.update(set(words))
    size = int(choice.get("vocabulary", DEFAULT_VOCAB))
    n_bigrams = int(choice.get("bigrams", DEFAULT_BIGRAMS))
    vocabulary = _ranked(docs, size)
    if "max_tokens" in choice:
        length = int(choice["max_tokens"])
    else:  # long enough for 95 % of training rows, no longer
        length = int(np.percentile(lengths, 95)) if lengths else MIN_TOKENS
    length = min(MAX_TOKENS, max(MIN_TOKENS, length))
    feature: dict[str, Any] = {"name": name, "kind": "text", "vocabulary": vocabulary,
                               "max_tokens": length}
    if n_bigrams <= 0:
        return feature
    known = set(vocabulary)
    shapes = Counter()
    for text in values:
        shapes.update({shape(w) for w in tokens(text) if w not in known})
    vocabulary += _ranked(shapes, MAX_SHAPES)
    pairs = Counter()
    for text in values:
        written = [w if w in known else shape(w) for w in tokens(text)]
        pairs.update({f"{a} {b}" for a, b in pairwise(written)})
    feature["bigrams"] = _ranked(pairs, n_bigrams)
    feature["bigram_tokens"] = length - 1
    return feature


def _ranked(docs: Counter, size: int) -> list[str]:
    """The items seen in two or more rows (in one or more when fewer than ten are), most
    frequent first, ties in alphabetical order; at most ``size``."""
    min_rows = 2 if sum(1 for c in docs.values() if c >= 2) >= 10 else 1
    return sorted((w for w, c in docs.items() if c >= min_rows),
                  key=lambda w: (-docs[w], w))[:size]


def width(feature: Mapping[str, Any]) -> int:
    """Ids this feature can produce, padding and unknown included."""
    return FIRST_WORD + len(feature["vocabulary"]) + len(feature.get("bigrams", ()))


def length(feature: Mapping[str, Any]) -> int:
    """Slots of a row: the words', then the bigrams'."""
    return int(feature["max_tokens"]) + int(feature.get("bigram_tokens", 0))


def id_words(feature: Mapping[str, Any]) -> list[str]:
    """What each id from ``FIRST_WORD`` on stands for: the words, then the bigrams."""
    return [*feature["vocabulary"], *feature.get("bigrams", ())]


_INDEXES: OrderedDict[int, tuple[list[str], dict[str, int]]] = OrderedDict()
CACHED_INDEXES = 8
_LOCK = threading.Lock()


_PINNED: dict[int, tuple[list[str], dict[str, int]]] = {}


def pin(vocabulary: list[str]) -> None:
    """Keep this vocabulary's index for good: a served model's, asked for on every request."""
    index = _index(vocabulary)
    with _LOCK:
        _PINNED[id(vocabulary)] = (vocabulary, index)


def pin_feature(feature: Mapping[str, Any]) -> None:
    """Pin the indexes a text feature encodes with (its words, and its bigrams if any)."""
    pin(feature["vocabulary"])
    if "bigrams" in feature:
        pin(feature["bigrams"])


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
    """int64 [rows, length(feature)] of the known words in order, then (with bigrams) the
    known bigrams in order; ids are shifted by ``offset`` (padding stays 0)."""
    if "bigrams" in feature:
        return _encode_with_bigrams(feature, values, offset)
    index = _index(feature["vocabulary"])
    length = int(feature["max_tokens"])
    out = np.zeros((len(values), length), dtype=np.int64)
    for r, text in enumerate(values):
        ids = [i for i in (index.get(w) for w in tokens(text)) if i is not None][:length]
        if ids:
            out[r, :len(ids)] = np.asarray(ids, dtype=np.int64) + offset
    return out


def _encode_with_bigrams(feature: Mapping[str, Any], values: list[str | None],
                         offset: int) -> np.ndarray:
    index = _index(feature["vocabulary"])
    pairs = _index(feature["bigrams"])
    n_words, n_pairs = int(feature["max_tokens"]), int(feature["bigram_tokens"])
    pair_offset = offset + len(feature["vocabulary"])  # a pair's id follows the words'
    out = np.zeros((len(values), n_words + n_pairs), dtype=np.int64)
    for r, text in enumerate(values):
        written = [w if w in index else shape(w) for w in tokens(text)]
        ids = [i for i in map(index.get, written) if i is not None][:n_words]
        if ids:
            out[r, :len(ids)] = np.asarray(ids, dtype=np.int64) + offset
        pair_ids = [i for i in (pairs.get(f"{a} {b}") for a, b in pairwise(written))
                    if i is not None]
        if pair_ids := pair_ids[:n_pairs]:
            out[r, n_words:n_words + len(pair_ids)] = (np.asarray(pair_ids, dtype=np.int64)
                                                       + pair_offset)
    return out
