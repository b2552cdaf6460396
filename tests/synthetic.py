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


def houses(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """A table as people keep them: whole prices in a float column with gaps, an id, years,
    two-decimal areas, a long-named column, many cities, a review, and a label last."""
    import numpy as np

    rng = np.random.default_rng(seed)
    price = np.round(rng.lognormal(13.5, 0.6, n), -1)
    price[rng.random(n) < 0.1] = np.nan
    price[0] = 1177710.0
    text = reviews(n, seed)
    return pd.DataFrame({
        "id": np.arange(1, n + 1), "year_built": rng.integers(1950, 2021, n), "price": price,
        "area_m2": rng.choice([12.5, 3.25, 80.75, 120.0], n), "rooms": rng.integers(1, 9, n),
        "lat": rng.normal(52.37, 0.05, n),
        "city": rng.choice([f"City number {i}" for i in range(40)], n),
        "review": text["review"],
        "distance_to_the_nearest_railway_station_in_kilometres_as_the_crow_flies":
            rng.random(n) * 10,
        "sentiment": text["sentiment"]})
