"""The cnn family: augmentation of training pictures, training and export on a small set of
coloured shapes, and pictures that cannot be decoded."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from studio.core.datasets.prepare import prepare
from studio.core.datasets.recipe import encode_target, transform_inputs
from studio.core.errors import InputError
from studio.core.events import Log
from studio.core.training.augment import Augment, augmenter, flip, shift
from studio.core.training.families import get
from studio.core.training.families.base import FitContext, TrainData, resolve_params

FEATURE = {"name": "image", "size": 32, "mean": [0.5] * 3, "std": [0.25, 0.5, 1.0]}


def pictures(n: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_augmentation_keeps_shapes_and_is_repeatable_by_seed() -> None:
    augment = augmenter(Augment(shift=0.125, flip=True, jitter=0.2), ["input", "image"],
                        FEATURE)
    assert augment is not None
    table, x = torch.randn(8, 5), pictures()
    out = augment([table, x], torch.Generator().manual_seed(1))
    assert out[1].shape == x.shape and out[1].dtype == torch.float32
    assert out[0] is table  # only the picture changes
    again = augment([table, x], torch.Generator().manual_seed(1))
    assert torch.equal(out[1], again[1])
    other = augment([table, x], torch.Generator().manual_seed(2))
    assert not torch.equal(out[1], other[1])
    assert not torch.equal(out[1], x)
    assert augmenter(Augment(), ["image"], FEATURE) is None  # nothing to vary: no cost


def test_a_shift_moves_the_picture_a_few_pixels_at_most() -> None:
    x = torch.zeros(64, 3, 32, 32)
    x[:, :, 16, 16] = 1.0  # one bright dot in the middle of each picture
    out = shift(x, 4, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    moves = set()
    for picture in out:
        ys, xs = torch.nonzero(picture[0], as_tuple=True)
        assert len(ys) == 1 and picture[0, ys[0], xs[0]] == 1.0  # moved, not smeared
        dy, dx = int(ys[0]) - 16, int(xs[0]) - 16
        assert abs(dy) <= 4 and abs(dx) <= 4
        assert torch.equal(picture[0], picture[2])  # every channel the same way
        moves.add((dy, dx))
    assert len(moves) > 10  # pictures move differently


def test_a_flip_mirrors_left_to_right() -> None:
    x = pictures(64)
    out = flip(x, torch.Generator().manual_seed(0))
    mirrored = [torch.equal(o, p.flip(2)) for o, p in zip(out, x, strict=True)]
    kept = [torch.equal(o, p) for o, p in zip(out, x, strict=True)]
    assert all(m or k for m, k in zip(mirrored, kept, strict=True))
    assert 10 < sum(mirrored) < 54  # about half


def test_jitter_changes_brightness_and_contrast_within_bounds() -> None:
    augment = augmenter(Augment(jitter=0.2), ["image"], FEATURE)
    assert augment is not None
    x = pictures(32)
    out = augment([x], torch.Generator().manual_seed(0))[0]
    ratio = out.std(dim=(2, 3)) / x.std(dim=(2, 3))  # contrast, per picture and channel
    assert ((ratio > 0.79) & (ratio < 1.21)).all() and ratio.std() > 0.01
    # brightness moves each channel by the same step on the 0–1 scale: b / std here
    step = (out.mean(dim=(2, 3)) - x.mean(dim=(2, 3))) * torch.tensor(FEATURE["std"])
    assert torch.allclose(step[:, 0], step[:, 2], atol=1e-5)
    assert (step.abs() <= 0.2 + 1e-5).all()


# -- training ----------------------------------------------------------------------------

CLASSES = ("circle", "square", "triangle")


def shapes(root: Path, per_class: int = 30, size: int = 16, seed: int = 0) -> pd.DataFrame:
    """Coloured shapes of three kinds at random places on dark grounds, as the manifest an
    image import writes (the digest is the file's name here)."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    rows = []
    for cls in CLASSES:
        for i in range(per_class):
            img = Image.new("RGB", (size, size), tuple(rng.randrange(0, 60) for _ in range(3)))
            draw = ImageDraw.Draw(img)
            r = rng.randint(4, 6)
            x, y = rng.randint(r, size - r - 1), rng.randint(r, size - r - 1)
            fill = tuple(rng.randrange(140, 256) for _ in range(3))
            if cls == "circle":
                draw.ellipse([x - r, y - r, x + r, y + r], fill=fill)
            elif cls == "square":
                draw.rectangle([x - r, y - r, x + r, y + r], fill=fill)
            else:
                draw.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=fill)
            name = f"{cls}-{i}.png"
            img.save(root / name)
            rows.append({"path": f"{cls}/{name}", "label": cls, "digest": name,
                         "width": size, "height": size})
    return pd.DataFrame(rows)


def train_data(root: Path, manifest: pd.DataFrame) -> TrainData:
    p = prepare(manifest, "shapes", "label", "auto", (0.7, 0.15, 0.15), 0,
                {"columns": {"image": {"size": 32}}}, blob_path=lambda d: root / d)
    return TrainData(p.recipe, p.task, p.frame, encode_target(p.recipe, p.frame["label"]),
                     p.parts)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("shapes")
    manifest = shapes(root)
    (root / "square-7.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really" * 20)
    data = train_data(root, manifest)
    corrupt_row = int(np.flatnonzero(data.frame["image"].str.endswith("square-7.png"))[0])
    parts_before = [p.copy() for p in data.parts]
    logs: list[Log] = []
    family = get("cnn")
    params = resolve_params(family, {"epochs": 12, "batch_size": 16, "patience": 0})
    ctx = FitContext(emit=lambda e: logs.append(e) if isinstance(e, Log) else None, seed=0,
                     threads=1)
    torch.set_num_threads(1)
    fitted = family.train(data, params, ctx)
    return {"data": data, "fitted": fitted, "logs": logs, "corrupt_row": corrupt_row,
            "parts_before": parts_before}


def test_the_family_learns_the_shapes(trained: dict) -> None:
    data, fitted = trained["data"], trained["fitted"]
    rows = np.concatenate([data.validation, data.test])
    accuracy = float((fitted.predict(rows).argmax(1) == data.y[rows]).mean())
    assert accuracy >= 0.8, accuracy
    d = fitted.details
    assert d["epochs_run"] == 12 and 1 <= d["best_epoch"] <= 12
    assert d["image_encoder"] == {"width": 16, "stages": 4, "convs": 1}  # 32 px → 4×4


def test_the_onnx_export_matches_predict(trained: dict) -> None:
    import onnxruntime as ort

    data, fitted = trained["data"], trained["fitted"]
    exported = fitted.export()
    assert exported.output == "probabilities" and "weights.safetensors" in exported.files
    session = ort.InferenceSession(exported.onnx, providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert inp.name == "image" and inp.type == "tensor(float)"
    assert inp.shape[1:] == [3, 32, 32] and not isinstance(inp.shape[0], int)
    assert out.name == "probabilities"
    rows = data.test
    tensors = transform_inputs(data.recipe, data.frame.iloc[rows], allow_paths=True)
    (probabilities,) = session.run(None, {"image": tensors["image"]})
    assert probabilities.shape == (len(rows), len(CLASSES))
    np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(probabilities, fitted.predict(rows), atol=1e-4)


def test_a_picture_that_cannot_be_decoded_is_skipped_and_counted(trained: dict) -> None:
    data, fitted, row = trained["data"], trained["fitted"], trained["corrupt_row"]
    assert fitted.details["skipped_images"] == 1
    assert "square-7.png" in fitted.details["skipped_image_list"][0]
    warnings = [e.message for e in trained["logs"] if e.level == "warning"]
    assert any("skipped 1 picture" in m and "square-7.png" in m for m in warnings), warnings
    # left out of every split, so validation and the test after training do not read it
    assert row in np.concatenate(trained["parts_before"])
    assert all(row not in p for p in data.parts)
    assert sum(map(len, data.parts)) == sum(map(len, trained["parts_before"])) - 1


def test_too_many_pictures_that_cannot_be_decoded_stop_training(tmp_path: Path) -> None:
    manifest = shapes(tmp_path, per_class=10)
    for i in range(3):
        (tmp_path / f"circle-{i}.png").write_bytes(b"GIF89a" + bytes(40))
    data = train_data(tmp_path, manifest)
    family = get("cnn")
    with pytest.raises(InputError, match=r"3 of 30 pictures cannot be read \(row \d+, file "
                                         r"circle-\d\.png: .*too many to skip"):
        family.train(data, resolve_params(family, {"epochs": 1}),
                     FitContext(emit=lambda e: None, threads=1))


def test_flip_is_off_by_default_and_shift_on() -> None:
    params = resolve_params(get("cnn"), {})
    # a mirrored digit or letter is another one (or none): the user turns flips on
    assert params["augment_flip"] is False
    assert params["augment_shift"] > 0
    with pytest.raises(InputError, match="augment_shift"):
        resolve_params(get("cnn"), {"augment_shift": 0.9})
