"""Logistic or linear regression: the quick baseline every leaderboard starts with.

On table columns it is the textbook model: L2-regularized multinomial logistic regression
solved to convergence with L-BFGS on the whole training split (ridge regression in closed
form for values), the regularization strength chosen on the validation split. On text it is
logistic regression on the bag of words and word pairs, trained by the shared loop: each
token has one weight per class, summed over the row's tokens and divided by the square root
of their count (as a TF-IDF vector is scaled to unit length).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from studio.core.training.families.base import FitContext, Fitted, Param, TrainData
from studio.core.training.families.knobs import loop_params

# Inverse regularization strengths tried when C is 0 ("choose"), most likely first (1 is
# scikit-learn's default), so a tight time budget still ends with a sensible one.
C_GRID = (1.0, 10.0, 0.1, 100.0, 0.01)


class Linear:
    name = "linear"
    title = "Linear"
    description = ("Logistic regression for classes, linear regression for values: fast, "
                   "and the baseline to beat.")
    params: tuple[Param, ...] = (
        Param("C", 0.0, "float", "Inverse strength of the L2 penalty on table columns: small "
              "values keep weights small. 0 tries 0.01 to 100 and keeps the best on the "
              "validation split.", 0.0, 1e6, log=True),
        Param("max_iter", 200, "int", "L-BFGS iterations at most for each strength tried.",
              1, 10_000),
        *(p for p in loop_params(epochs=100, batch_size=256, learning_rate=1e-2,
                                 weight_decay=1e-4, patience=10, schedule="cosine")),
    )

    def unfit_reason(self, task: str, modality: str) -> str | None:
        if modality == "image":
            return "a linear model on raw pixels is no match for a convolutional network"
        return None

    def train(self, data: TrainData, params: Mapping[str, Any], ctx: FitContext) -> Fitted:
        if data.modality == "tabular":
            from studio.core.training.families.linear_solve import fit_tabular

            return fit_tabular(self.name, data, params, ctx)
        from studio.core.training.families.network import train_network

        # a token's vector is its weight per output: logistic regression on the bag of words
        outputs = data.n_classes if data.task == "classification" else 1
        return train_network(self.name, data, params, ctx, hidden=[], dropout=0.0,
                             text_dim=outputs)


FAMILY = Linear()
