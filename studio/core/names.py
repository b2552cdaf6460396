"""The names people give datasets, models and aliases: one rule, checked everywhere, and
light to import (the server checks a model's name before anything else loads)."""

from __future__ import annotations

import re

from studio.core.errors import InputError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")  # \Z: no newline after it


def check_name(name: str, what: str = "dataset") -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InputError(
            f"invalid {what} name {name!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def as_name(text: str) -> str:
    """``text`` made a valid name (other characters become '-'): a file's or a repository's
    name turned into a model's."""
    return (re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._") or "model")[:64]
