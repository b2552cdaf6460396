"""The knobs of the shared torch loop, importable without torch (the GUI lists them)."""

from __future__ import annotations

from studio.core.training.families.base import Param


def loop_params(epochs: int = 40, batch_size: int = 32, learning_rate: float = 3e-3,
                weight_decay: float = 1e-4, patience: int = 0, schedule: str = "constant",
                label_smoothing: float = 0.0) -> list[Param]:
    """The shared loop's knobs, with a neural family's own defaults."""
    return [
        Param("epochs", epochs, "int", "Passes over the training rows at most; early stopping "
              "and the time budget can end training sooner.", 1, 10_000),
        Param("batch_size", batch_size, "int", "Rows per optimizer step.", 1, 1_000_000),
        Param("learning_rate", learning_rate, "float", "Step size of the optimizer.", 1e-6,
              10.0, log=True),
        Param("optimizer", "adamw", "str", "AdamW adapts the step per weight; SGD (with "
              "momentum 0.9) is plainer.", choices=("adamw", "sgd")),
        Param("weight_decay", weight_decay, "float", "Pulls weights towards zero each step: "
              "more of it fights overfitting.", 0.0, 1.0),
        Param("schedule", schedule, "str", "How the learning rate changes over training: "
              "constant, cosine (down to zero), onecycle (warm up, then down), flat_cos "
              "(constant, then down in the second half) or coslog4 (four warm-up-and-down "
              "cycles, each twice as long as the last).",
              choices=("constant", "cosine", "onecycle", "flat_cos", "coslog4")),
        Param("patience", patience, "int", "Stop after this many epochs without a better "
              "validation score (0: never stop early). The best epoch's weights are kept.",
              0, 10_000),
        Param("class_weights", False, "bool", "Weigh each class by how rare it is in the "
              "training split, so a small class counts as much as a large one."),
        Param("label_smoothing", label_smoothing, "float", "Classification: aim at 1 − ε for "
              "the right class instead of 1; a little helps calibration.", 0.0, 0.5),
    ]
