"""Image datasets: a folder with one sub-folder per class, or a zip of one.

Every image is opened with Pillow (its decompression-bomb guard left on, its warning treated
as a refusal) and fully decoded, so truncated files are found at import, skipped and listed.
Kept images are copied into the blob store; the dataset itself is a manifest table of
relative path, label, blob digest and size.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import pyarrow as pa

from studio.core.datasets.pixels import FORMATS, IMAGE_SUFFIXES, draft_as_training, over_limit
from studio.core.errors import Cancelled, InputError
from studio.core.events import Emit, Log, Progress
from studio.core.store import BlobStore, scratch_prefix

MAX_ZIP_BYTES = 8 << 30  # uncompressed
MAX_ZIP_RATIO = 200  # a zip bomb compresses far better than images do
MAX_ZIP_MEMBERS = 500_000


def image_folder_table(
    folder: Path, blobs: BlobStore, emit: Emit, should_stop: Callable[[], bool],
    label: str | None = None,
) -> pa.Table:
    """The manifest of a class folder, its pictures stored as blobs on the way. Links, to
    files or folders, are skipped and listed: an import never reads outside ``folder``."""
    from PIL import Image

    name = label or folder.name
    root = _class_root(folder, name)
    skipped: list[str] = []
    classes = []
    for c in sorted(root.iterdir()):
        if c.name.startswith("."):
            continue
        if c.is_symlink():
            skipped.append(f"{c.name} (a link{' to a folder' if c.is_dir() else ''})")
        elif c.is_dir():
            classes.append(c)
    files: list[tuple[str, Path]] = []
    for c in classes:
        files += [(c.name, f) for f in _walk(c, root, skipped)]
    with_images = {c for c, f in files if f.suffix.lower() in IMAGE_SUFFIXES}
    if len(with_images) < 2:  # before any copying: a refused import leaves no blobs
        found = f"only one class ({next(iter(with_images))!r})" if with_images else "no images"
        links = [s for s in skipped if s.endswith(("(a link)", "(a link to a folder)"))]
        also = f" (links are not followed: {'; '.join(links[:5])})" if links else ""
        raise InputError((f"{name}: found {found}; an image dataset needs one sub-folder per "
                          "class, at least two" if with_images else
                          f"{name}: no readable images found (one sub-folder per class)")
                         + also)
    rows: dict[str, list[object]] = {k: [] for k in ("path", "label", "digest", "width",
                                                     "height")}
    for i, (cls, f) in enumerate(files):
        if should_stop():
            raise Cancelled("import cancelled")
        rel = f.relative_to(root).as_posix()
        if f.suffix.lower() not in IMAGE_SUFFIXES:
            skipped.append(f"{rel} (not an image file)")
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(f, formats=FORMATS) as img:
                    width, height = img.size
                    draft_as_training(img)
                    # the limit training applies, here: what is kept can be trained on
                    too_many = over_limit(*img.size)
                    if too_many:
                        skipped.append(f"{rel} (refused: {too_many})")
                        continue
                    img.load()  # decodes the whole file: a truncated one fails here
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            skipped.append(f"{rel} (refused: too many pixels, a decompression bomb?)")
            continue
        except (OSError, SyntaxError, ValueError) as exc:
            skipped.append(f"{rel} (unreadable: {str(exc).splitlines()[0][:80]})")
            continue
        rows["path"].append(rel)
        rows["label"].append(cls)
        rows["digest"].append(blobs.put_file(f))
        rows["width"].append(width)
        rows["height"].append(height)
        if i % 50 == 0:
            emit(Progress("images", i, len(files), rel))
    emit(Progress("images", len(files), len(files), "done"))
    if skipped:
        shown = "; ".join(skipped[:20]) + (f"; and {len(skipped) - 20} more"
                                           if len(skipped) > 20 else "")
        emit(Log(f"skipped {len(skipped)} file(s): {shown}", "warning"))
    labels = set(rows["label"])
    if not rows["path"]:
        raise InputError(f"{name}: no readable images found (one sub-folder per class)")
    if len(labels) < 2:
        raise InputError(f"{name}: found only one class ({next(iter(labels))!r}); "
                         "an image dataset needs one sub-folder per class, at least two")
    return pa.table(rows)


def _walk(folder: Path, root: Path, skipped: list[str]) -> list[Path]:
    """Every file under ``folder``, sorted as paths sort, hidden files left out and links
    listed in ``skipped``. A folder that cannot be read refuses the import: leaving it out
    would quietly drop a class, or part of one."""
    found: list[Path] = []
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        rel = folder.relative_to(root).as_posix()
        raise InputError(f"{rel}: this folder cannot be read ({exc.strerror or exc}); fix "
                         "its permissions or move it out, then import again") from None
    for e in entries:
        path = Path(e.path)
        if e.is_dir(follow_symlinks=False):
            found += _walk(path, root, skipped)
        elif e.name.startswith("."):
            continue  # .DS_Store and the like, links too: never pictures of the set
        elif e.is_symlink():
            kind = " to a folder" if path.is_dir() else ""
            skipped.append(f"{path.relative_to(root).as_posix()} (a link{kind})")
        elif e.is_file(follow_symlinks=False):
            found.append(path)
    return found


def _class_root(folder: Path, name: str) -> Path:
    """Descend through single wrapper folders (``photos/`` inside a zip) to the classes."""
    root = folder
    for _ in range(5):
        entries = [p for p in root.iterdir() if not p.name.startswith((".", "__MACOSX"))]
        dirs = [p for p in entries if p.is_dir() and not p.is_symlink()]
        if len(dirs) == 1 and len(entries) == 1 and any(p.is_dir() for p in dirs[0].iterdir()):
            root = dirs[0]  # a wrapper around the class folders, not a class of its own
            continue
        break
    if not any(p.is_dir() for p in root.iterdir()):
        raise InputError(f"{name}: no class sub-folders; put each class's images in a "
                         "folder named after the class")
    return root


def safe_extract(archive: Path, dest: Path, should_stop: Callable[[], bool]) -> None:
    """Extract a zip, refusing absolute paths, ``..``, links and bombs before writing."""
    if not zipfile.is_zipfile(archive):
        raise InputError(f"{archive.name}: not a zip file")
    try:
        with zipfile.ZipFile(archive) as z:
            members = z.infolist()
            if len(members) > MAX_ZIP_MEMBERS:
                raise InputError(f"{archive.name}: too many files ({len(members):,})")
            total = sum(m.file_size for m in members)
            packed = max(1, sum(m.compress_size for m in members))
            if total > MAX_ZIP_BYTES or total / packed > MAX_ZIP_RATIO:
                raise InputError(f"{archive.name}: refused: it expands to {total:,} bytes "
                                 f"({total / packed:.0f}× its size), a zip bomb?")
            for m in members:
                name = m.filename
                pure = PurePosixPath(name.replace("\\", "/"))
                if pure.is_absolute() or ".." in pure.parts or (len(name) > 1 and name[1] == ":"):
                    raise InputError(f"{archive.name}: refused: member {name!r} points outside "
                                     "the archive")
                if stat.S_ISLNK(m.external_attr >> 16):
                    raise InputError(f"{archive.name}: refused: member {name!r} is a link")
            _check_file_folder_clash(archive, members)
            for m in members:
                if should_stop():
                    raise Cancelled("import cancelled")
                target = dest.joinpath(*PurePosixPath(m.filename.replace("\\", "/")).parts)
                if m.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with z.open(m) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
    except zipfile.BadZipFile as exc:
        raise InputError(f"{archive.name}: damaged zip file: {exc}") from None


def _check_file_folder_clash(archive: Path, members: list[zipfile.ZipInfo]) -> None:
    """Refuse a zip where one name is both a file and a folder (``cats`` and ``cats/1.png``),
    or holds one file twice: extracting it would fail half-way or keep only one copy."""
    files: dict[tuple[str, ...], str] = {}
    folders: set[tuple[str, ...]] = set()
    for m in members:
        parts = PurePosixPath(m.filename.replace("\\", "/")).parts
        folders.update(parts[:i] for i in range(1, len(parts)))
        if m.is_dir():
            folders.add(parts)
        elif parts in files:
            raise InputError(f"{archive.name}: refused: it holds {m.filename!r} twice")
        else:
            files[parts] = m.filename
    for parts, name in files.items():
        if parts in folders:
            raise InputError(f"{archive.name}: refused: member {name!r} is a file, and also "
                             "a folder of other members")


def image_zip_table(
    archive: Path, blobs: BlobStore, emit: Emit, should_stop: Callable[[], bool]
) -> pa.Table:
    with tempfile.TemporaryDirectory(dir=blobs.tmp, prefix=scratch_prefix("unzip")) as tmp:
        emit(Progress("unzip", 0, 1, f"extracting {archive.name}"))
        safe_extract(archive, Path(tmp), should_stop)
        return image_folder_table(Path(tmp), blobs, emit, should_stop, label=archive.name)
