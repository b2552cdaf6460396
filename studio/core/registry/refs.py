"""References to versions, one grammar for every caller: ``NAME`` (the newest version that
is not archived), ``NAME:N`` (version N) and ``NAME@ALIAS`` (the version an alias points at;
``NAME@latest`` is ``NAME``)."""

from __future__ import annotations

from dataclasses import dataclass

from studio.core.errors import InputError
from studio.core.names import NAME_RE, check_name

LATEST = "latest"
MAX_VERSION_DIGITS = 18  # below SQLite's 2**63: a longer number is no version, never an error


@dataclass(frozen=True)
class Ref:
    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}:{self.version}"
        return f"{self.name}@{self.alias}" if self.alias else self.name


def parse_ref(text: str) -> Ref:
    if not isinstance(text, str):
        raise InputError(f"a model reference must be text, got {type(text).__name__}")
    if "@" in text:
        name, _, alias = text.partition("@")
        check_name(name, "model")
        check_alias(alias)
        return Ref(name, alias=None if alias == LATEST else alias)
    name, sep, version = text.partition(":")
    check_name(name, "model")
    if not sep:
        return Ref(name)
    number = version_number(version)
    if number is None:
        raise InputError(f"invalid version in {text[:80]!r}: expected a positive number "
                         "(NAME:N), or an alias (NAME@ALIAS)")
    return Ref(name, number)


def version_number(text: str) -> int | None:
    """``text`` as a version number, or None when it is not one. ``str.isdigit`` alone is not
    enough: '²' is a digit to it, and int() refuses it (and numbers of over 4,300 digits)."""
    if not (0 < len(text) <= MAX_VERSION_DIGITS and text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if number >= 1 else None


def check_alias(alias: str) -> str:
    if not NAME_RE.match(alias) or alias.isdigit():
        raise InputError(f"invalid alias {alias!r}: use 1-64 letters, digits, '.', '_' or "
                         "'-', starting with a letter or digit, and not a number (NAME:N "
                         "names a version by number)")
    return alias
