"""Find the bundled resources (samples, icons, themes) in a checkout or an installed wheel."""

from __future__ import annotations

import sys
from pathlib import Path


def resources_dir() -> Path:
    candidates = [
        Path(__file__).resolve().parents[1] / "resources",  # a checkout or editable install
        Path(sys.prefix) / "share" / "model-studio",  # data-files of a wheel install
        Path(getattr(sys, "_MEIPASS", "/nonexistent")) / "resources",  # a PyInstaller bundle
    ]
    for path in candidates:
        if (path / "samples").is_dir():
            return path
    return candidates[0]


def sample_path(name: str = "penguins.csv") -> Path:
    return resources_dir() / "samples" / name


def icon_path(name: str) -> Path:
    return resources_dir() / "icons" / name
