"""The embedding family, fastText's model: a learned vector per word and per pair of adjacent
words (the recipe's text step writes both), pooled per text column, then a linear layer (or
a small network when hidden layers are asked for) beside the table columns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from studio.core.datasets.text import EMBEDDING_DIM
from studio.core.training.families.base import FitContext, Fitted, Param, TrainData
from studio.core.training.families.knobs import loop_params


class Embedding:
    name = "embedding"
    title = "Word embeddings"
    description = ("fastText-style: learned vectors of words and word pairs, pooled per text "
                   "column, into a linear layer or a small network.")
    # Defaults measured on three text sets (tests/benchmarks/bench_text.py; SMS spam, movie
    # snippets, TREC questions): no hidden layer matched or beat [64, 64] and [256] on the
    # validation rows, and 64 rows a step trains twice as fast as 32 for the same scores.
    params: tuple[Param, ...] = (
        *loop_params(epochs=40, batch_size=64, learning_rate=3e-3, patience=5),
        Param("width", EMBEDDING_DIM, "int", "Numbers in each word's vector: more can tell "
              "more words apart, and costs memory and time.", 2, 256),
        Param("hidden", [], "ints", "Widths of the hidden layers after the pooled "
              "vectors, comma-separated (0 or empty: none, a linear layer as in fastText).",
              0, 4096),
        Param("dropout", 0.3, "float", "Share of the pooled vector's numbers (and of the "
              "hidden units) silenced at random in training: more of it fights overfitting.",
              0.0, 0.9),
    )

    def unfit_reason(self, task: str, modality: str) -> str | None:
        if modality != "text":
            return "word embeddings need a text column"
        return None

    def train(self, data: TrainData, params: Mapping[str, Any], ctx: FitContext) -> Fitted:
        from studio.core.training.families.network import train_network

        hidden = [h for h in params["hidden"] if h > 0]
        return train_network(self.name, data, params, ctx, hidden=hidden,
                             dropout=float(params["dropout"]), text_dim=int(params["width"]))


FAMILY = Embedding()
