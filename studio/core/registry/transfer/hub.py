"""The Hugging Face Hub: pull a model repository through the standard local cache, push files.

A pull goes through huggingface_hub's own cache (HF_HOME / HF_HUB_CACHE, or ``cache_dir``), so
it is shared with every other tool on the machine and works offline (HF_HUB_OFFLINE=1) from
what is cached. Only what a model needs is fetched, and every file is hashed against the name
of its cache blob before it is returned: the cache names an LFS file's blob by its SHA-256 and
a plain git file's by its git blob SHA-1, and nothing in huggingface_hub checks either.

huggingface_hub is imported inside the functions: the registry is imported by the server.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from studio.core.errors import Cancelled, InputError

WEIGHTS = ("*.onnx", "*.onnx_data", "*.safetensors")
# Where a repository without weights at its root keeps its ONNX export (transformers.js).
EXPORTED_ONNX = ("onnx/model.onnx", "onnx/model.onnx_data")
# What loads beside the weights: configs, shard indexes, tokenizer and preprocessor files, card.
SIDE_FILES = ("*.json", "README.md", "tokenizer.model", "vocab.txt", "merges.txt")
# Weights that unpickle: only a weights_only loader may open them, so they come on request.
PICKLE_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl", "*.pickle")
_SHA256 = re.compile(r"^[0-9a-f]{64}\Z")
_GIT_SHA1 = re.compile(r"^[0-9a-f]{40}\Z")
_CHUNK = 1 << 20

Progress = Callable[[int, int], None]  # (bytes done, bytes known so far); called from threads


@dataclass(frozen=True)
class PulledFile:
    path: str  # inside the repository, with '/'
    size: int
    digest: str  # the blob's name, checked: SHA-256 (LFS) or git blob SHA-1

    def to_dict(self) -> dict:
        return {"path": self.path, "size": self.size, "digest": self.digest}


@dataclass(frozen=True)
class PulledSnapshot:
    repo_id: str
    revision: str  # as asked ("main" when not given)
    commit: str  # the commit it resolved to
    folder: Path  # the snapshot folder in the Hugging Face cache: read it, never write it
    files: tuple[PulledFile, ...]
    pickle_files: tuple[str, ...]  # pickled weights fetched because the caller allowed them

    def path(self, name: str) -> Path:
        return self.folder / name

    def to_dict(self) -> dict:
        return {"repo_id": self.repo_id, "revision": self.revision, "commit": self.commit,
                "folder": str(self.folder), "files": [f.to_dict() for f in self.files],
                "pickle_files": list(self.pickle_files)}


def pull(repo_id: str, revision: str | None = None, cache_dir: Path | None = None,
         progress: Progress | None = None, cancel: Callable[[], bool] | None = None, *,
         allow_pickle: bool = False, token: str | None = None,
         endpoint: str | None = None) -> PulledSnapshot:
    """Download (or find in the cache) what a model needs from ``repo_id`` at ``revision``.

    Refuses a repository whose only weights are pickled (.bin, .pt, ...) unless
    ``allow_pickle``; they are then fetched and listed in ``pickle_files``.
    """
    from huggingface_hub import HfApi, get_cached_repo_tree, snapshot_download
    from huggingface_hub.errors import CachedRepoTreeNotFoundError

    asked = revision or "main"
    cache = str(cache_dir) if cache_dir is not None else None
    api = HfApi(endpoint=endpoint, token=token)
    bar = _progress_bar_class(progress, cancel)
    with _hub_errors(repo_id, asked, cache_dir):
        _check_cancel(cancel)
        resolved = api.resolve_revision(repo_id, revision=revision, cache_dir=cache)
        commit = resolved.resolved

        def download(patterns: tuple[str, ...], root_only: bool = True) -> Path:
            # root_only: a repository's sub-folders hold variants (onnx/model_quantized.onnx,
            # fp16 copies …) that are not fetched unless asked for by name
            folder = snapshot_download(repo_id, revision=resolved, cache_dir=cache,
                                       allow_patterns=list(patterns),
                                       ignore_patterns=["*/*"] if root_only else None,
                                       tqdm_class=bar, endpoint=endpoint, token=token)
            _check_cancel(cancel)
            return Path(folder)

        patterns = WEIGHTS + SIDE_FILES
        folder = download(patterns)
        try:  # the whole repository's listing, cached by an online download
            names = [f.path for f in get_cached_repo_tree(repo_id, revision=commit,
                                                          cache_dir=cache)]
        except CachedRepoTreeNotFoundError:  # an older cache, read offline: what it holds
            names = _files_under(folder)
        names = [n for n in names if "/" not in n or n in EXPORTED_ONNX]
        if EXPORTED_ONNX[0] in names:  # the ONNX export is what can be served here
            patterns = (*patterns, *EXPORTED_ONNX)
            folder = download(EXPORTED_ONNX, root_only=False)
        if not _matching(names, WEIGHTS):
            pickled = _matching(names, PICKLE_WEIGHTS)
            if not pickled:
                raise InputError(f"{repo_id} ({asked}) has no model weights: no .onnx or "
                                 ".safetensors file")
            if not allow_pickle:
                raise InputError(
                    f"{repo_id} ({asked}) has only pickled weights ({', '.join(pickled[:3])}), "
                    "which can run code when opened; allow pickled weights to load them with "
                    "a weights-only loader")
            patterns += PICKLE_WEIGHTS
            folder = download(patterns)
    wanted = _matching(names, patterns)
    missing = sorted(set(wanted) - set(_files_under(folder)))
    if missing:
        raise InputError(f"{repo_id} ({asked}): {', '.join(missing[:3])} missing from the "
                         f"Hugging Face cache ({folder}); pull it again with the Hub reachable")
    files = tuple(_verified(repo_id, folder, name, cancel) for name in wanted)
    total = sum(f.size for f in files)
    if progress is not None:
        progress(total, total)
    return PulledSnapshot(repo_id=repo_id, revision=asked, commit=commit, folder=folder,
                          files=files,
                          pickle_files=tuple(_matching(wanted, PICKLE_WEIGHTS)))


def push(repo_id: str, files: dict[str, Path | bytes], token: str | None,
         endpoint: str | None = None, revision: str | None = None, private: bool = True,
         commit_message: str = "Upload model from Model Studio") -> str:
    """Create ``repo_id`` if needed (private by default) and commit ``files`` (path in the
    repository → a file or its bytes) in one commit; returns the commit's URL.

    ``token`` None uses the one huggingface_hub finds (HF_TOKEN, ``hf auth login``).
    A ``revision`` other than main is created as a branch if it does not exist.
    """
    if not files:
        raise InputError("nothing to push: no files given")
    for name, content in files.items():
        _check_repo_path(name)
        if isinstance(content, Path) and not content.is_file():
            raise InputError(f"{content}: no such file (to push as {name})")
        if not isinstance(content, Path | bytes | bytearray):
            raise InputError(f"{name}: give a file path or bytes, not {type(content).__name__}")
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(endpoint=endpoint, token=token)
    operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=(
        str(content) if isinstance(content, Path) else bytes(content)))
        for name, content in files.items()]
    with _hub_errors(repo_id, revision or "main", None):
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        if revision not in (None, "main") and not revision.startswith("refs/"):
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        try:
            info = api.create_commit(repo_id, operations=operations,
                                     commit_message=commit_message, revision=revision)
        except ValueError as exc:
            if "README.md" not in str(exc):  # the Hub validates the card's YAML front matter
                raise
            found = " ".join(str(exc).split())  # "Invalid metadata…" then one line per error
            raise InputError(f"{repo_id}: the Hub refused README.md: {found}") from None
    return str(info.commit_url)


def _check_repo_path(name: str) -> None:
    path = PurePosixPath(name)
    if (not name or name != str(path) or path.is_absolute() or ".." in path.parts
            or "\\" in name or name.startswith(".git/") or name == ".git"):
        raise InputError(f"{name!r} is not a file path inside a repository (use a relative "
                         "path with '/', like onnx/model.onnx)")


def _matching(names: Iterable[str], patterns: tuple[str, ...]) -> list[str]:
    from huggingface_hub.utils import filter_repo_objects

    return sorted(filter_repo_objects(list(names), allow_patterns=list(patterns)))


def _files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if not p.is_dir())


def _verified(repo_id: str, folder: Path, name: str,
              cancel: Callable[[], bool] | None) -> PulledFile:
    """Hash a snapshot file against the name of the blob it links to."""
    link = folder / name
    blob = link.resolve()
    blobs = folder.parent.parent / "blobs"
    digest = blob.name
    if not link.is_symlink() or blob.parent != blobs.resolve() or not (
            _SHA256.match(digest) or _GIT_SHA1.match(digest)):
        # A cache without symlinks (Windows without developer mode) copies files: no name
        # says what the content should be.
        raise InputError(f"{repo_id}: {name} in the Hugging Face cache ({link}) is not a link "
                         "to a hash-named blob, so it cannot be checked")
    if not blob.is_file():
        raise InputError(f"{repo_id}: {name} is missing from the Hugging Face cache ({blob})")
    size = blob.stat().st_size
    if _GIT_SHA1.match(digest):
        hasher = hashlib.sha1(usedforsecurity=False)
        hasher.update(b"blob %d\0" % size)  # git hashes its blob header with the content
    else:
        hasher = hashlib.sha256()
    with open(blob, "rb") as f:
        while chunk := f.read(_CHUNK):
            hasher.update(chunk)
            _check_cancel(cancel)
    if hasher.hexdigest() != digest:
        raise InputError(f"{repo_id}: {name} in the Hugging Face cache is damaged: its content "
                         f"does not match its hash {digest}; delete {blob} and pull again")
    return PulledFile(path=name, size=size, digest=digest)


def _check_cancel(cancel: Callable[[], bool] | None) -> None:
    if cancel is not None and cancel():
        raise Cancelled("pull stopped")


def _progress_bar_class(progress: Progress | None,
                        cancel: Callable[[], bool] | None) -> type:
    """A silent tqdm for snapshot_download: it reports bytes and stops the download threads
    at their next chunk once ``cancel()`` is true."""
    from tqdm import tqdm

    lock = threading.Lock()
    byte_bars: list[Any] = []

    class Bar(tqdm):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.pop("name", None)
            super().__init__(*args, **{**kwargs, "disable": True})
            self.done = int(kwargs.get("initial") or 0)
            if kwargs.get("unit") == "B":
                with lock:
                    byte_bars.append(self)

        def update(self, n: float | None = 1) -> bool | None:
            _check_cancel(cancel)
            with lock:
                self.done += int(n or 0)
                # snapshot_download keeps two byte bars (received, written): report the ahead one
                if progress is not None and self in byte_bars:
                    done = max(bar.done for bar in byte_bars)
                    total = max(int(bar.total or 0) for bar in byte_bars)
                    progress(done, max(total, done))
            return None

    return Bar


@contextmanager
def _hub_errors(repo_id: str, revision: str, cache_dir: Path | None) -> Iterator[None]:
    """huggingface_hub's errors as one line a person can act on."""
    import httpx2
    from huggingface_hub import constants
    from huggingface_hub import errors as hub

    try:
        yield
    except hub.GatedRepoError:
        raise InputError(f"{repo_id} is gated: accept its conditions on the Hub, then log in "
                         "(HF_TOKEN or `hf auth login`)") from None
    except hub.RepositoryNotFoundError:
        raise InputError(f"no model repository {repo_id!r} on the Hub, or it is private and "
                         "the token cannot read it") from None
    except hub.RevisionNotFoundError:
        raise InputError(f"{repo_id} has no revision {revision!r}") from None
    except (hub.RevisionResolutionError, hub.LocalEntryNotFoundError,
            hub.OfflineModeIsEnabled) as exc:
        cache = cache_dir or constants.HF_HUB_CACHE
        why = ("HF_HUB_OFFLINE is set" if constants.is_offline_mode()
               else "the Hub cannot be reached")
        incomplete = isinstance(exc, hub.IncompleteSnapshotError)
        raise InputError(f"{repo_id} ({revision}) is {'only partly' if incomplete else 'not'} "
                         f"in the Hugging Face cache ({cache}) and {why}") from None
    except hub.HFValidationError as exc:
        raise InputError(f"invalid Hub repository {repo_id!r}: {_one_line(exc)}") from None
    except hub.HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status == 401:
            raise InputError("the Hub refused the token (or none was given): set HF_TOKEN "
                             "or run `hf auth login`") from None
        if status == 403:
            raise InputError(f"the token may not write to {repo_id} (the Hub answered 403 "
                             "Forbidden)") from None
        raise InputError(f"the Hub answered {status} for {repo_id}: {_one_line(exc)}") from None
    except httpx2.TransportError as exc:
        raise InputError(f"cannot reach the Hub for {repo_id}: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


__all__ = ["PICKLE_WEIGHTS", "SIDE_FILES", "WEIGHTS", "PulledFile", "PulledSnapshot", "pull",
           "push"]
