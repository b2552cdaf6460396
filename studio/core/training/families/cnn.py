"""The cnn family: a convolutional network for pictures, trained on varied copies of them.

Each training batch's pictures are shifted by a few pixels and given slightly other light at
random (and mirrored when asked), so the network learns what a class looks like rather than
where its pixels sat. Mirroring is off unless asked: a mirrored 2, b or arrow is another
thing (on scikit-learn's digits it costs a point of accuracy), and the family cannot tell
digits and letters from cats and cars.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from studio.core.training.families.base import FitContext, Fitted, Param, TrainData
from studio.core.training.families.knobs import loop_params


class CNN:
    name = "cnn"
    title = "Convolutional network"
    description = ("A convolutional network for pictures, trained on shifted copies of them "
                   "so it learns shapes, not places.")
    params: tuple[Param, ...] = (
        # Measured on scikit-learn's digits (tests/benchmarks/bench_images.py). No early
        # stopping: onecycle's best epochs come last, as the rate anneals, and the time
        # budget already bounds a run (the schedule then anneals by time).
        *loop_params(epochs=30, batch_size=64, learning_rate=1e-2, weight_decay=1e-4,
                     patience=0, schedule="onecycle", label_smoothing=0.1),
        Param("channels", 16, "int", "Channels of the first convolutions; each later stage "
              "doubles them (up to 8×). Wider learns more and takes longer.", 4, 256),
        Param("stages", 0, "int", "Stages of convolutions, each halving the picture; 0 "
              "chooses from the picture size (enough to bring it to about 4×4 pixels).", 0,
              8),
        Param("convs_per_stage", 1, "int", "Convolutions in each stage: two see more "
              "detail, at twice the time.", 1, 4),
        Param("hidden", [], "ints", "Widths of hidden layers between the pooled "
              "convolutions and the classes, comma-separated (none: a linear read-out).", 1,
              4096),
        Param("dropout", 0.1, "float", "Share of the hidden layers' units silenced at random "
              "in training (no effect without hidden layers).", 0.0, 0.9),
        Param("augment_shift", 0.125, "float", "Move each training picture by up to this "
              "share of its side, up/down and left/right (0.125: 4 pixels at 32×32), so the "
              "subject need not sit where it sat in the training pictures. 0: off.", 0.0,
              0.5),
        Param("augment_flip", False, "bool", "Also train on mirror images (left to right). "
              "Helps with photos of things (animals, objects, scenes); leave it off for "
              "digits, letters, text or anything whose mirror image means something else."),
        Param("augment_jitter", 0.1, "float", "Change each training picture's brightness "
              "and contrast by up to this share (0.1: ±10%), as changing light would. "
              "0: off.", 0.0, 0.5),
    )

    def unfit_reason(self, task: str, modality: str) -> str | None:
        if modality != "image":
            return "a convolutional network needs pictures"
        return None

    def train(self, data: TrainData, params: Mapping[str, Any], ctx: FitContext) -> Fitted:
        from studio.core.training.augment import Augment, augmenter
        from studio.core.training.families.network import train_network
        from studio.core.training.model import image_stages

        feature = next(f for f in data.recipe["features"] if f["kind"] == "image")
        size = int(feature["size"])
        image = {"width": int(params["channels"]),
                 "stages": int(params["stages"]) or image_stages(size),
                 "convs": int(params["convs_per_stage"])}
        if size >> (image["stages"] - 1) < 1:
            from studio.core.errors import InputError

            raise InputError(f"{image['stages']} stages halve a {size}×{size} picture to "
                             "nothing: use fewer stages or a larger picture size")
        plan = Augment(float(params["augment_shift"]), bool(params["augment_flip"]),
                       float(params["augment_jitter"]))
        augment = augmenter(plan, [i["name"] for i in data.inputs], feature)
        return train_network(self.name, data, params, ctx, hidden=list(params["hidden"]),
                             dropout=float(params["dropout"]), augment=augment, image=image)


FAMILY = CNN()
