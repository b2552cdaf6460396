"""Pulling from and pushing to the Hugging Face Hub, without the Hub.

Offline pulls read a Hugging Face cache built here in the standard layout (blobs named by
their hash, snapshot files as relative links to them, refs naming the commit). Online pulls
and pushes talk to tests/fake_hub.py on 127.0.0.1, through huggingface_hub's real client code.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_hub import FakeHub, git_sha1, isolate, serve
from huggingface_hub import constants

from studio.core.errors import Cancelled, InputError
from studio.core.registry.transfer.hub import pull, push

REPO_ROOT = Path(__file__).resolve().parents[1]
COMMIT = "0123456789abcdef0123456789abcdef01234567"
V1 = "fedcba9876543210fedcba9876543210fedcba98"


@pytest.fixture(autouse=True)
def hub_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


@pytest.fixture(scope="module")
def served_hub() -> Iterator[FakeHub]:
    with serve(FakeHub()) as hub:
        yield hub


@pytest.fixture
def hub(served_hub: FakeHub) -> FakeHub:
    served_hub.reset()
    return served_hub


def cache_repo(cache: Path, repo_id: str, files: dict[str, bytes], lfs: set[str],
               commit: str = COMMIT, ref: str = "main") -> Path:
    """A repository as huggingface_hub caches it; returns its snapshot folder."""
    storage = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = storage / "snapshots" / commit
    for name, content in files.items():
        digest = hashlib.sha256(content).hexdigest() if name in lfs else git_sha1(content)
        blob = storage / "blobs" / digest
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(content)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (storage / "refs").mkdir(parents=True, exist_ok=True)
    (storage / "refs" / ref).write_text(commit)  # huggingface_hub writes no newline
    return snapshot


MODEL_FILES = {
    "model.safetensors": b"\x08\x00\x00\x00\x00\x00\x00\x00{}      " + bytes(range(256)) * 40,
    "onnx/model.onnx": b"onnx graph bytes" * 100,
    "config.json": json.dumps({"architectures": ["Tiny"]}).encode(),
    "tokenizer.json": b'{"model": {"vocab": {}}}',
    "README.md": b"---\nlicense: mit\n---\n# Tiny\n",
}
EXTRA_FILES = {"training_args.bin": b"\x80\x04pickle", "train.py": b"print('hi')\n"}
LFS = {"model.safetensors", "onnx/model.onnx", "training_args.bin"}


# --- offline, from the cache -----------------------------------------------------------------

def test_offline_pull_returns_the_model_files_from_the_standard_cache(
        tmp_path: Path, offline: None) -> None:
    cache = tmp_path / "hf"
    snapshot = cache_repo(cache, "org/tiny", {**MODEL_FILES, **EXTRA_FILES}, LFS)
    pulled = pull("org/tiny", cache_dir=cache)
    assert pulled.commit == COMMIT and pulled.revision == "main"
    assert pulled.folder == snapshot.resolve()
    assert {f.path: f.size for f in pulled.files} == {n: len(c) for n, c in MODEL_FILES.items()}
    digests = {f.path: f.digest for f in pulled.files}
    assert digests["model.safetensors"] == hashlib.sha256(MODEL_FILES["model.safetensors"]) \
        .hexdigest()
    assert digests["config.json"] == git_sha1(MODEL_FILES["config.json"])
    assert pulled.path("onnx/model.onnx").read_bytes() == MODEL_FILES["onnx/model.onnx"]
    assert pulled.pickle_files == ()
    assert json.loads(json.dumps(pulled.to_dict()))["files"][0] == \
        {"path": "README.md", "size": len(MODEL_FILES["README.md"]),
         "digest": git_sha1(MODEL_FILES["README.md"])}


def test_offline_pull_of_a_tag_or_a_commit(tmp_path: Path, offline: None) -> None:
    cache = tmp_path / "hf"
    cache_repo(cache, "org/tiny", MODEL_FILES, LFS)
    older = {**MODEL_FILES, "config.json": b'{"old": true}'}
    cache_repo(cache, "org/tiny", older, LFS, commit=V1, ref="v1")
    assert pull("org/tiny", revision="v1", cache_dir=cache).commit == V1
    by_commit = pull("org/tiny", revision=V1, cache_dir=cache)
    assert by_commit.path("config.json").read_bytes() == b'{"old": true}'


def test_offline_pull_reads_the_cache_huggingface_hub_was_configured_with(
        tmp_path: Path, offline: None, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "configured"
    cache_repo(cache, "org/tiny", MODEL_FILES, LFS)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))  # what HF_HUB_CACHE sets
    assert pull("org/tiny").commit == COMMIT


@pytest.mark.timeout(60)
def test_environment_variables_alone_point_a_fresh_process_at_the_cache(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    cache_repo(cache, "org/tiny", MODEL_FILES, LFS)
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": str(REPO_ROOT)}
    code = ("from studio.core.registry.transfer.hub import pull\n"
            "p = pull('org/tiny')\n"
            "print(p.commit, len(p.files))\n")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=50, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [COMMIT, str(len(MODEL_FILES))]


@pytest.mark.parametrize("name", ["model.safetensors", "config.json"])
def test_a_damaged_blob_is_refused(tmp_path: Path, offline: None, name: str) -> None:
    cache = tmp_path / "hf"
    snapshot = cache_repo(cache, "org/tiny", MODEL_FILES, LFS)
    blob = (snapshot / name).resolve()
    damaged = bytearray(blob.read_bytes())
    damaged[-1] ^= 1  # same size: only hashing sees it
    blob.write_bytes(bytes(damaged))
    with pytest.raises(InputError, match=rf"{name} in the Hugging Face cache is damaged") \
            as caught:
        pull("org/tiny", cache_dir=cache)
    assert str(blob) in str(caught.value) and "\n" not in str(caught.value)


def test_a_repo_not_in_the_cache_offline_gets_one_clear_line(
        tmp_path: Path, offline: None) -> None:
    with pytest.raises(InputError) as caught:
        pull("org/absent", cache_dir=tmp_path / "hf")
    assert str(caught.value) == (f"org/absent (main) is not in the Hugging Face cache "
                                 f"({tmp_path / 'hf'}) and HF_HUB_OFFLINE is set")


def test_pickle_only_weights_are_refused_unless_allowed(tmp_path: Path, offline: None) -> None:
    cache = tmp_path / "hf"
    cache_repo(cache, "org/old", {"pytorch_model.bin": b"\x80\x04pickled",
                                  "config.json": b"{}"}, {"pytorch_model.bin"})
    with pytest.raises(InputError, match=r"only pickled weights \(pytorch_model\.bin\)"):
        pull("org/old", cache_dir=cache)
    pulled = pull("org/old", cache_dir=cache, allow_pickle=True)
    assert pulled.pickle_files == ("pytorch_model.bin",)
    assert {f.path for f in pulled.files} == {"pytorch_model.bin", "config.json"}


def test_a_repo_without_weights_is_refused(tmp_path: Path, offline: None) -> None:
    cache = tmp_path / "hf"
    cache_repo(cache, "org/card", {"README.md": b"# nothing\n"}, set())
    with pytest.raises(InputError, match="has no model weights"):
        pull("org/card", cache_dir=cache)


def test_cancel_stops_a_pull(tmp_path: Path, offline: None) -> None:
    cache = tmp_path / "hf"
    cache_repo(cache, "org/tiny", MODEL_FILES, LFS)
    with pytest.raises(Cancelled):
        pull("org/tiny", cache_dir=cache, cancel=lambda: True)


# --- push, then pull online, against the fake Hub ------------------------------------------

BIG = os.urandom(11 * 1024 * 1024)  # over the Hub's 10 MB line: goes the LFS way by size


def studio_files(tmp_path: Path) -> dict[str, Path | bytes]:
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(BIG)
    return {"model.onnx": b"small onnx graph", "model.safetensors": weights,
            "README.md": b"---\nlicense: apache-2.0\nlibrary_name: onnx\n---\n# m\n",
            "studio.json": json.dumps({"format": 1, "name": "m"}).encode()}


def test_push_uploads_every_file_in_one_commit(tmp_path: Path, hub: FakeHub) -> None:
    files = studio_files(tmp_path)
    url = push("me/model", files, token="hf_test", endpoint=hub.url,
               commit_message="Model m:3")
    assert hub.repos["me/model"].private
    (commit,) = hub.commits
    assert url == f"{hub.url}/me/model/commit/{hub.repos['me/model'].refs['main']}"
    assert commit.message == "Model m:3"
    # Large files and weights go through LFS (batch API + PUT), the rest inline in the commit.
    assert set(commit.lfs) == {"model.onnx", "model.safetensors"}
    assert set(commit.inline) == {"README.md", "studio.json"}
    assert commit.lfs["model.safetensors"] == hashlib.sha256(BIG).hexdigest()
    assert sorted(hub.uploads) == sorted(commit.lfs.values())
    expected = {n: (c.read_bytes() if isinstance(c, Path) else c) for n, c in files.items()}
    assert hub.files("me/model") == expected


def test_push_to_an_existing_repo_and_a_new_branch(tmp_path: Path, hub: FakeHub) -> None:
    push("me/model", {"README.md": b"# first\n"}, token="hf_test", endpoint=hub.url,
         private=False)
    push("me/model", {"studio.json": b"{}"}, token="hf_test", endpoint=hub.url,
         revision="dev")
    assert not hub.repos["me/model"].private  # an existing repo keeps its visibility
    assert hub.files("me/model", "dev") == {"README.md": b"# first\n", "studio.json": b"{}"}
    assert hub.files("me/model", "main") == {"README.md": b"# first\n"}


@pytest.mark.parametrize("files, message", [
    ({}, "nothing to push"),
    ({"../escape.txt": b"x"}, "not a file path inside a repository"),
    ({"/abs.txt": b"x"}, "not a file path inside a repository"),
    ({"model.onnx": Path("/nonexistent/model.onnx")}, "no such file"),
])
def test_push_refuses_bad_files_before_any_request(hub: FakeHub, files: dict,
                                                   message: str) -> None:
    with pytest.raises(InputError, match=message):
        push("me/model", files, token="hf_test", endpoint=hub.url)
    assert hub.repos == {}


def test_push_with_a_refused_token_gets_one_clear_line(hub: FakeHub) -> None:
    hub.bad_tokens.add("hf_bad")
    with pytest.raises(InputError, match="the Hub refused the token") as caught:
        push("me/model", {"README.md": b"# m\n"}, token="hf_bad", endpoint=hub.url)
    assert "\n" not in str(caught.value)


def test_a_card_the_hub_refuses_is_reported_before_any_upload(tmp_path: Path,
                                                              hub: FakeHub) -> None:
    hub.yaml_errors.append('"license" must be one of [apache-2.0, mit, ...]')
    with pytest.raises(InputError, match=r"the Hub refused README\.md: Invalid metadata.*"
                                         r'"license" must be one of'):
        push("me/model", studio_files(tmp_path), token="hf_test", endpoint=hub.url)
    assert hub.uploads == [] and hub.commits == []


def test_what_was_pushed_pulls_back_through_a_fresh_cache(tmp_path: Path, hub: FakeHub,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    files = studio_files(tmp_path)
    push("me/model", files, token="hf_test", endpoint=hub.url)
    seen: list[tuple[int, int]] = []
    cache = tmp_path / "hf"
    pulled = pull("me/model", cache_dir=cache, progress=lambda d, t: seen.append((d, t)),
                  endpoint=hub.url, token="hf_test")
    assert pulled.commit == hub.repos["me/model"].refs["main"]
    got = {f.path: pulled.path(f.path).read_bytes() for f in pulled.files}
    assert got == {n: (c.read_bytes() if isinstance(c, Path) else c) for n, c in files.items()}
    total = sum(len(c) for c in got.values())
    assert seen[-1] == (total, total)
    assert any(0 < done < total for done, _ in seen)  # bytes reported while downloading
    # The standard layout: the snapshot links to blobs named by SHA-256 (LFS) or git SHA-1.
    link = pulled.folder / "model.safetensors"
    assert link.is_symlink()
    assert link.resolve() == (cache / "models--me--model" / "blobs"
                              / hashlib.sha256(BIG).hexdigest()).resolve()
    assert (pulled.folder / "studio.json").resolve().name == git_sha1(files["studio.json"])

    # Later, offline, the same pull is served from that cache alone.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    downloads = len(hub.downloads)
    again = pull("me/model", cache_dir=cache)
    assert again.files == pulled.files and len(hub.downloads) == downloads


def test_cancel_stops_a_download_and_the_next_pull_completes_it(tmp_path: Path,
                                                                 hub: FakeHub) -> None:
    files = studio_files(tmp_path)
    push("me/model", files, token="hf_test", endpoint=hub.url)
    seen: list[int] = []
    with pytest.raises(Cancelled):
        pull("me/model", cache_dir=tmp_path / "hf", endpoint=hub.url,
             progress=lambda done, total: seen.append(done), cancel=lambda: bool(seen))
    assert seen and seen[-1] < len(BIG)
    pulled = pull("me/model", cache_dir=tmp_path / "hf", endpoint=hub.url)
    assert pulled.path("model.safetensors").read_bytes() == BIG


def test_online_pickle_only_repo_is_refused_before_its_weights_download(
        tmp_path: Path, hub: FakeHub) -> None:
    push("me/old", {"pytorch_model.bin": b"\x80\x04" + b"p" * 100, "config.json": b"{}"},
         token="hf_test", endpoint=hub.url)
    with pytest.raises(InputError, match="only pickled weights"):
        pull("me/old", cache_dir=tmp_path / "hf", endpoint=hub.url)
    assert "me/old/pytorch_model.bin" not in hub.downloads


def test_a_download_that_does_not_match_its_hash_is_refused(tmp_path: Path,
                                                            hub: FakeHub) -> None:
    files = studio_files(tmp_path)
    push("me/model", files, token="hf_test", endpoint=hub.url)
    wrong = bytearray(BIG)
    wrong[12345] ^= 0xFF
    hub.tampered[("me/model", "model.safetensors")] = bytes(wrong)
    with pytest.raises(InputError, match=r"model\.safetensors in the Hugging Face cache is dam"):
        pull("me/model", cache_dir=tmp_path / "hf", endpoint=hub.url)


@pytest.mark.parametrize("repo_id, revision, message", [
    ("me/absent", None, "no model repository 'me/absent' on the Hub"),
    ("me/model", "v9", "me/model has no revision 'v9'"),
    ("not a repo id!", None, "invalid Hub repository"),
])
def test_hub_errors_become_one_line(tmp_path: Path, hub: FakeHub, repo_id: str,
                                    revision: str | None, message: str) -> None:
    push("me/model", {"model.onnx": b"x"}, token="hf_test", endpoint=hub.url)
    with pytest.raises(InputError, match=message) as caught:
        pull(repo_id, revision=revision, cache_dir=tmp_path / "hf", endpoint=hub.url)
    assert "\n" not in str(caught.value)


def test_the_hub_unreachable_and_nothing_cached(tmp_path: Path) -> None:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # a port nobody listens on
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(InputError, match=r"not in the Hugging Face cache .* the Hub cannot "
                                         r"be reached"):
        pull("me/model", cache_dir=tmp_path / "hf", endpoint=f"http://127.0.0.1:{port}")

