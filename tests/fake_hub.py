"""Just enough of the Hugging Face Hub's HTTP API for huggingface_hub 2.4 to create a repo,
commit to it (regular files inline, large ones over the LFS batch API) and download from it,
recording what it was sent. Listens on 127.0.0.1 only, in a thread, for one test module.

The endpoints are the ones huggingface_hub calls (read in its source): POST /api/repos/create,
/api/validate-yaml, /api/models/{repo}/branch/{b}, /preupload/{rev}, /commit/{rev} (ndjson),
POST /{repo}.git/info/lfs/objects/batch with a PUT per object, GET /api/models/{repo}/revision/
{rev} and /tree/{rev}, HEAD and GET /{repo}/resolve/{rev}/{file}. Xet is not spoken: tests
turn it off (HF_HUB_DISABLE_XET).
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

# The Hub stores a file in LFS when it is large or its name matches the default .gitattributes.
LFS_MIN_SIZE = 10 * 1024 * 1024
LFS_SUFFIXES = (".onnx", ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".msgpack", ".h5")


def git_sha1(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content, usedforsecurity=False).hexdigest()


@dataclass
class Repo:
    private: bool
    refs: dict[str, str] = field(default_factory=dict)  # branch → commit
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # commit → files
    lfs: set[str] = field(default_factory=set)  # paths stored in LFS


@dataclass
class Commit:
    repo_id: str
    revision: str
    message: str
    inline: dict[str, bytes]  # sent base64 in the commit
    lfs: dict[str, str]  # path → sha256 oid, uploaded before


class FakeHub:
    def __init__(self) -> None:
        self.url = ""
        self.repos: dict[str, Repo] = {}
        self.objects: dict[str, bytes] = {}  # LFS store: sha256 → bytes
        self.commits: list[Commit] = []
        self.uploads: list[str] = []  # LFS oids PUT
        self.downloads: list[str] = []  # files GET through /resolve
        self.tampered: dict[tuple[str, str], bytes] = {}  # (repo, path) → bytes served instead
        self.bad_tokens: set[str] = set()
        self.yaml_errors: list[str] = []  # what /api/validate-yaml finds wrong in a card
        self.app = Starlette(routes=[
            Route("/api/repos/create", self.create_repo, methods=["POST"]),
            Route("/api/validate-yaml", self.validate_yaml, methods=["POST"]),
            Route("/api/models/{repo:path}/branch/{branch}", self.create_branch,
                  methods=["POST"]),
            Route("/api/models/{repo:path}/preupload/{rev}", self.preupload, methods=["POST"]),
            Route("/api/models/{repo:path}/commit/{rev}", self.commit, methods=["POST"]),
            Route("/api/models/{repo:path}/revision/{rev}", self.revision, methods=["GET"]),
            Route("/api/models/{repo:path}/tree/{rev}", self.tree, methods=["GET"]),
            Route("/api/models/{repo:path}", self.revision, methods=["GET"]),
            Route("/_lfs/{oid}", self.lfs_put, methods=["PUT"]),
            Route("/_lfs/{oid}/verify", self.lfs_verify, methods=["POST"]),
            Route("/{repo:path}.git/info/lfs/objects/batch", self.lfs_batch, methods=["POST"]),
            Route("/{repo:path}/resolve/{rev}/{file:path}", self.resolve,
                  methods=["GET", "HEAD"]),
        ])

    # --- state ---------------------------------------------------------------------------

    def reset(self) -> None:
        self.repos.clear()
        self.objects.clear()
        self.commits.clear()
        self.uploads.clear()
        self.downloads.clear()
        self.tampered.clear()
        self.bad_tokens.clear()
        self.yaml_errors.clear()

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        repo = self.repos[repo_id]
        return dict(repo.commits[repo.refs[revision]])

    def _new_commit(self, repo: Repo, parent: str | None, files: dict[str, bytes]) -> str:
        sha = hashlib.sha1(f"{parent}{sorted(files)}{time.time_ns()}".encode(),
                           usedforsecurity=False).hexdigest()
        repo.commits[sha] = files
        return sha

    # --- helpers -------------------------------------------------------------------------

    def _denied(self, request: Request) -> Response | None:
        auth = request.headers.get("authorization", "")
        if auth.removeprefix("Bearer ") in self.bad_tokens:
            return JSONResponse({"error": "Invalid credentials in Authorization header"},
                                status_code=401,
                                headers={"X-Error-Message":
                                         "Invalid credentials in Authorization header"})
        return None

    def _repo(self, request: Request) -> tuple[str, Repo | None]:
        repo_id = request.path_params["repo"]
        return repo_id, self.repos.get(repo_id)

    @staticmethod
    def _not_found(code: str) -> Response:
        return JSONResponse({"error": code}, status_code=404, headers={"X-Error-Code": code})

    # --- routes --------------------------------------------------------------------------

    async def create_repo(self, request: Request) -> Response:
        if denied := self._denied(request):
            return denied
        body = await request.json()
        repo_id = f"{body['organization']}/{body['name']}" if body.get("organization") \
            else body["name"]
        url = f"{self.url}/{repo_id}"
        if repo_id in self.repos:
            return JSONResponse({"error": "You already created this model repo", "url": url},
                                status_code=409)
        repo = self.repos[repo_id] = Repo(private=body.get("visibility") == "private")
        repo.refs["main"] = self._new_commit(repo, None, {})
        return JSONResponse({"url": url})

    async def validate_yaml(self, request: Request) -> Response:
        errors = [{"message": m} for m in self.yaml_errors]
        return JSONResponse({"errors": errors, "warnings": []},
                            status_code=400 if errors else 200)

    async def create_branch(self, request: Request) -> Response:
        _, repo = self._repo(request)
        if repo is None:
            return self._not_found("RepoNotFound")
        branch = unquote(request.path_params["branch"])
        if branch in repo.refs:
            return JSONResponse({"error": "Reference already exists"}, status_code=409)
        repo.refs[branch] = repo.refs["main"]
        return JSONResponse({})

    async def preupload(self, request: Request) -> Response:
        _, repo = self._repo(request)
        if repo is None:
            return self._not_found("RepoNotFound")
        files = (await request.json())["files"]
        return JSONResponse({"files": [{
            "path": f["path"], "shouldIgnore": False, "oid": None,
            "uploadMode": "lfs" if f["size"] >= LFS_MIN_SIZE
            or f["path"].endswith(LFS_SUFFIXES) else "regular"} for f in files]})

    async def lfs_batch(self, request: Request) -> Response:
        body = await request.json()
        objects = []
        for obj in body["objects"]:
            entry = {"oid": obj["oid"], "size": obj["size"]}
            if obj["oid"] not in self.objects:
                entry["actions"] = {
                    "upload": {"href": f"{self.url}/_lfs/{obj['oid']}"},
                    "verify": {"href": f"{self.url}/_lfs/{obj['oid']}/verify"}}
            objects.append(entry)
        return JSONResponse({"transfer": "basic", "objects": objects})

    async def lfs_put(self, request: Request) -> Response:
        oid = request.path_params["oid"]
        content = await request.body()
        if hashlib.sha256(content).hexdigest() != oid:
            return JSONResponse({"error": "sha256 mismatch"}, status_code=400)
        self.objects[oid] = content
        self.uploads.append(oid)
        return Response(status_code=200)

    async def lfs_verify(self, request: Request) -> Response:
        body = await request.json()
        ok = len(self.objects.get(body["oid"], b"")) == body["size"]
        return JSONResponse({}, status_code=200 if ok else 404)

    async def commit(self, request: Request) -> Response:
        repo_id, repo = self._repo(request)
        if repo is None:
            return self._not_found("RepoNotFound")
        revision = unquote(request.path_params["rev"])
        if revision not in repo.refs:
            return self._not_found("RevisionNotFound")
        lines = [json.loads(line) for line in (await request.body()).splitlines() if line]
        header = next(line["value"] for line in lines if line["key"] == "header")
        record = Commit(repo_id, revision, header["summary"], {}, {})
        files = dict(repo.commits[repo.refs[revision]])
        for line in lines:
            value = line["value"]
            if line["key"] == "file":
                record.inline[value["path"]] = files[value["path"]] = \
                    base64.b64decode(value["content"])
                repo.lfs.discard(value["path"])
            elif line["key"] == "lfsFile":
                if value["oid"] not in self.objects:
                    return JSONResponse({"error": f"LFS object {value['oid']} missing"},
                                        status_code=400)
                record.lfs[value["path"]] = value["oid"]
                files[value["path"]] = self.objects[value["oid"]]
                repo.lfs.add(value["path"])
        sha = self._new_commit(repo, repo.refs[revision], files)
        repo.refs[revision] = sha
        self.commits.append(record)
        return JSONResponse({"commitUrl": f"{self.url}/{repo_id}/commit/{sha}",
                             "commitOid": sha})

    def _resolve_rev(self, repo: Repo, rev: str) -> str | None:
        rev = unquote(rev)
        return repo.refs.get(rev) or (rev if rev in repo.commits else None)

    async def revision(self, request: Request) -> Response:
        if denied := self._denied(request):
            return denied
        repo_id, repo = self._repo(request)
        if repo is None:
            return self._not_found("RepoNotFound")
        sha = self._resolve_rev(repo, request.path_params.get("rev", "main"))
        if sha is None:
            return self._not_found("RevisionNotFound")
        return JSONResponse({"id": repo_id, "sha": sha, "private": repo.private,
                             "siblings": [{"rfilename": p} for p in repo.commits[sha]]})

    async def tree(self, request: Request) -> Response:
        _, repo = self._repo(request)
        if repo is None:
            return self._not_found("RepoNotFound")
        sha = self._resolve_rev(repo, request.path_params["rev"])
        if sha is None:
            return self._not_found("RevisionNotFound")
        entries = []
        for path, content in sorted(repo.commits[sha].items()):
            entry = {"type": "file", "path": path, "size": len(content),
                     "oid": git_sha1(content)}
            if path in repo.lfs:
                entry["lfs"] = {"oid": hashlib.sha256(content).hexdigest(),
                                "size": len(content), "pointerSize": 134}
            entries.append(entry)
        return JSONResponse(entries)

    async def resolve(self, request: Request) -> Response:
        repo_id, repo = self._repo(request)
        if repo is None:
            return self._not_found("RepoNotFound")
        sha = self._resolve_rev(repo, request.path_params["rev"])
        if sha is None:
            return self._not_found("RevisionNotFound")
        path = request.path_params["file"]
        if path not in repo.commits[sha]:
            return self._not_found("EntryNotFound")
        content = repo.commits[sha][path]
        headers = {"X-Repo-Commit": sha, "Content-Length": str(len(content))}
        if path in repo.lfs:
            headers["X-Linked-Etag"] = f'"{hashlib.sha256(content).hexdigest()}"'
            headers["X-Linked-Size"] = str(len(content))
        headers["ETag"] = f'"{git_sha1(content)}"' if path not in repo.lfs \
            else headers["X-Linked-Etag"]
        if request.method == "HEAD":
            return Response(status_code=200, headers=headers)
        self.downloads.append(f"{repo_id}/{path}")
        body = self.tampered.get((repo_id, path), content)
        return Response(body, status_code=200, headers=headers,
                        media_type="application/octet-stream")


@contextmanager
def serve(hub: FakeHub) -> Iterator[FakeHub]:
    """Run ``hub`` on 127.0.0.1 (a free port) in a thread until the block ends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    hub.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(hub.app, log_level="warning", lifespan="off",
                                           timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the fake Hub did not start")
        time.sleep(0.01)
    try:
        yield hub
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def isolate(monkeypatch: Any, tmp_path: Path) -> None:
    """huggingface_hub reads its environment once, at import: set the constants it read, so
    a test reaches no real Hub, no real cache and no real token."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)  # the fake speaks LFS only
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "default-cache"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no-tokens"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
