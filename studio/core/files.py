"""Writing user-facing files safely: whole or not at all, and safe to open in a spreadsheet."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd

from studio.core.errors import InputError

FORMULA_STARTS = ("=", "+", "-", "@")
CONTROL_STARTS = ("\t", "\r", "\n")  # a spreadsheet may drop them, then run what follows


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename over it."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} is a folder")
    if not path.parent.is_dir():
        raise InputError(f"{path.parent}: no such folder")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a user's file follows umask
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Prefix text a spreadsheet would run as a formula with a quote: cells and column names
    (a JSON key or a header can be ``=HYPERLINK(…)`` too), also after leading whitespace,
    which spreadsheets skip.

    Numbers written as text ("-1", " +3.5") are left alone: a spreadsheet reads them as numbers.
    """
    out = frame.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.CategoricalDtype):
            out[col] = out[col].astype(object)  # categories are text a spreadsheet reads too
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(_neutralize)
    out.columns = [_neutralize(str(c)) for c in out.columns]
    return out


def _neutralize(value: object) -> object:
    if not isinstance(value, str):
        return value
    if not value.startswith(CONTROL_STARTS) and not value.lstrip().startswith(FORMULA_STARTS):
        return value
    try:
        float(value)
    except ValueError:
        return "'" + value
    return value


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
