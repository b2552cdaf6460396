"""Text that can always be stored, encoded and printed.

A file name on Linux is bytes: one that is not UTF-8 reaches Python as a string with lone
surrogates (PEP 383), which SQLite, ``json`` writing UTF-8 and a strict stdout all refuse.
Such names are shown with the odd bytes escaped (``caf\\xe9.csv``); the path itself is kept
for opening the file.
"""

from __future__ import annotations

import os


def printable(text: str) -> str:
    """``text`` unchanged when it is valid Unicode; else its undecodable bytes escaped."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:  # the surrogates of undecodable bytes, as os.fsdecode made them
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # other lone surrogates (a Windows name): escaped as code points
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def printable_path(path: str | os.PathLike[str]) -> str:
    return printable(os.fspath(path))


def human_bytes(n: int) -> str:
    """Bytes as a person reads them: 491 bytes, 167.3 KiB, 1.2 GiB."""
    if n < 1024:
        return f"{n:,} bytes"
    scaled = n / 1024
    for unit in ("KiB", "MiB"):
        if scaled < 1024:
            return f"{scaled:.1f} {unit}"
        scaled /= 1024
    return f"{scaled:.1f} GiB"


def brief(value: object) -> str:
    """A value a client sent, as repr() and short enough for an error sentence (a client's
    60 MB name is not sent back, nor logged)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
