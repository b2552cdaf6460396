"""Unpacking a zip made elsewhere without letting it write outside its folder or fill the disk.

Every member is checked before the first byte is written; bytes are then counted as they come
out, and the whole tree appears at ``dest`` by one rename, or not at all.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from pathlib import Path

from studio.core.errors import InputError

MAX_RATIO = 200  # larger members packed tighter than this are zip bombs, not models
RATIO_FROM = 1 << 20  # a tiny file of zeros may pack tighter; it cannot fill a disk
_CHUNK = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def extract(zip_path: Path, dest: Path, max_bytes: int = 8 << 30,
            max_members: int = 10_000) -> list[Path]:
    """Unpack ``zip_path`` into the new folder ``dest``; the paths of its files, in the
    archive's order. A refused or failed archive raises InputError and leaves nothing."""
    if dest.exists() or dest.is_symlink():
        raise FileExistsError(f"{dest} already exists")
    name = zip_path.name
    try:
        with zipfile.ZipFile(zip_path) as z:
            members = z.infolist()
            parts = _check_members(name, members, max_bytes, max_members,
                                   os.path.getsize(zip_path))
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.partial-"))
            try:
                files = _write(name, z, members, parts, tmp, max_bytes)
                os.rename(tmp, dest)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise InputError(f"{name}: damaged or unsupported zip file: {exc}") from None
    except OSError as exc:
        raise InputError(f"{name}: cannot unpack: {exc.strerror or exc}") from None
    return [dest.joinpath(*p) for p in files]


def _check_members(name: str, members: list[zipfile.ZipInfo], max_bytes: int,
                   max_members: int, archive_size: int) -> list[tuple[str, ...]]:
    if len(members) > max_members:
        raise InputError(f"{name}: refused: it holds {len(members):,} members, over the "
                         f"{max_members:,} allowed")
    declared = sum(m.file_size for m in members)
    if declared > max_bytes:
        raise InputError(f"{name}: refused: it would unpack to {declared:,} bytes, over the "
                         f"{max_bytes:,} allowed")
    seen: dict[str, str] = {}
    all_parts = []
    for m in members:
        raw = m.orig_filename  # zipfile cuts ``filename`` at a NUL byte: check what is stored
        where = f"{name}: refused: member {raw!r}"
        if _CONTROL.search(raw):
            raise InputError(f"{where} has control characters in its name")
        if "\\" in raw:
            raise InputError(f"{where} has a backslash, a folder separator on Windows")
        if raw.startswith("/") or _DRIVE.match(raw):
            raise InputError(f"{where} has an absolute path")
        parts = tuple(p for p in raw.split("/") if p not in ("", "."))
        if ".." in parts:
            raise InputError(f"{where} climbs out of the archive with '..'")
        if not parts:
            raise InputError(f"{where} has no name")
        if stat.S_ISLNK(m.external_attr >> 16):
            raise InputError(f"{where} is a symbolic link")
        if m.flag_bits & 0x1:
            raise InputError(f"{where} is encrypted")
        # a case-insensitive disk (macOS, Windows) would write both to one file
        key = "/".join(parts).casefold()
        if key in seen:
            raise InputError(f"{where} has the same name as {seen[key]!r}")
        seen[key] = raw
        if m.file_size > RATIO_FROM and m.file_size > MAX_RATIO * max(1, m.compress_size):
            raise InputError(f"{where} would expand {m.file_size / max(1, m.compress_size):,.0f}"
                             f" times (to {m.file_size:,} bytes): a zip bomb")
        all_parts.append(parts)
    _check_tree(name, members, all_parts)
    _check_no_overlap(name, members, archive_size)
    return all_parts


def _check_tree(name: str, members: list[zipfile.ZipInfo],
                all_parts: list[tuple[str, ...]]) -> None:
    """No name is both a file and a folder of other members (``a`` and ``a/b``)."""
    folders = {p[:i] for p in all_parts for i in range(1, len(p))}
    folders |= {p for m, p in zip(members, all_parts, strict=True) if m.is_dir()}
    for m, p in zip(members, all_parts, strict=True):
        if not m.is_dir() and p in folders:
            raise InputError(f"{name}: refused: member {m.orig_filename!r} is a file and also "
                             "a folder of other members")


def _check_no_overlap(name: str, members: list[zipfile.ZipInfo], archive_size: int) -> None:
    """Each member's packed bytes end before the next member's header: members that share
    bytes are how a small zip names terabytes (a non-recursive zip bomb)."""
    local_header = 30  # the fixed part; a name and an extra field follow it
    placed = sorted(members, key=lambda m: m.header_offset)
    for m, after in zip(placed, [*placed[1:], None], strict=True):
        end = m.header_offset + local_header + m.compress_size
        limit = after.header_offset if after is not None else archive_size
        if end > limit:
            raise InputError(f"{name}: refused: member {m.orig_filename!r} overlaps "
                             + (f"{after.orig_filename!r}" if after is not None
                                else "the end of the archive")
                             + " (a zip bomb or a damaged archive)")


def _write(name: str, z: zipfile.ZipFile, members: list[zipfile.ZipInfo],
           all_parts: list[tuple[str, ...]], root: Path, max_bytes: int) -> list[tuple[str, ...]]:
    written = 0
    files = []
    for m, parts in zip(members, all_parts, strict=True):
        target = root.joinpath(*parts)
        if m.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        member_bytes = 0
        # "x": a second member reaching the same file fails instead of replacing it
        with z.open(m) as src, open(target, "xb") as out:
            while chunk := src.read(_CHUNK):
                member_bytes += len(chunk)
                written += len(chunk)
                if member_bytes > m.file_size or written > max_bytes:
                    raise InputError(f"{name}: refused: member {m.orig_filename!r} unpacks to "
                                     "more bytes than the archive declares")
                out.write(chunk)
        files.append(parts)
    return files
