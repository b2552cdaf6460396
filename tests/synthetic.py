"""Small generated datasets with a learnable signal: reviews (text) and shapes (images)."""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd

POSITIVE = ["great", "excellent", "lovely", "wonderful", "superb", "fantastic", "enjoyable",
            "delightful"]
NEGATIVE = ["awful", "terrible", "boring", "dreadful", "poor", "horrible", "dull",
            "disappointing"]
FILLER = ["the", "movie", "film", "plot", "actors", "story", "was", "and", "it", "a", "very",
          "really", "quite", "with", "scenes"]


def reviews(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Short reviews whose sentiment shows in a few telling words among filler."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = rng.choice(["positive", "negative"])
        words = [rng.choice(FILLER) for _ in range(rng.randint(6, 25))]
        for _ in range(rng.randint(1, 3)):
            tell = rng.choice(POSITIVE if label == "positive" else NEGATIVE)
            words.insert(rng.randrange(len(words) + 1), tell)
        rows.append({"review": " ".join(words).capitalize() + ".",
                     "length_hint": round(rng.random(), 3), "sentiment": label})
    return pd.DataFrame(rows)


def shapes(root: Path, per_class: int = 40, size: int = 40, seed: int = 0) -> Path:
    """A folder of circles and squares in random places, colours and sizes."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    for cls in ("circle", "square"):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = Image.new("RGB", (size, size), tuple(rng.randrange(20, 90) for _ in range(3)))
            draw = ImageDraw.Draw(img)
            r = rng.randint(size // 6, size // 4)
            x, y = rng.randint(r, size - r - 1), rng.randint(r, size - r - 1)
            box = [x - r, y - r, x + r, y + r]
            fill = tuple(rng.randrange(150, 256) for _ in range(3))
            (draw.ellipse if cls == "circle" else draw.rectangle)(box, fill=fill)
            img.save(root / cls / f"{cls}-{i}.png")
    return root
