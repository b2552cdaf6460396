"""Run the app on uvicorn (uvloop + httptools where installed)."""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import replace

import uvicorn

from studio.core.errors import InputError
from studio.core.registry import resolve, servers
from studio.core.workspace import Workspace
from studio.serving.app import create_app
from studio.serving.batcher import BatchConfig
from studio.serving.dataplane import ModelRepository
from studio.serving.front import front_class
from studio.serving.guard import host_names
from studio.serving.limits import ServeLimits
from studio.serving.protocol import protocol_class

log = logging.getLogger("studio.serving")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """Bind before serving, so port 0 resolves to a real port we can announce."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def resolve_api_key(host: str, api_key: str | None) -> tuple[str | None, bool]:
    """The key to require, and whether it was generated here (and so must be shown)."""
    if api_key:
        return api_key, False
    if is_loopback(host):
        return None, False
    return secrets.token_urlsafe(24), True


def serve(
    ws: Workspace, refs: list[str], host: str = "127.0.0.1", port: int = 8080,
    api_key: str | None = None, announce: Callable[[str, str | None, bool], None] | None = None,
    threads: int = 0, canary: str | None = None, limits: ServeLimits | None = None,
    batch: BatchConfig | None = None,
) -> None:
    """Load the versions, bind, announce the URL, then serve until interrupted.

    ``limits`` default to ``ServeLimits.from_env()``; their ``allowed_hosts`` are names
    accepted besides the loopback names and ``host`` itself."""
    # claimed before loading, so `studio models rm` cannot remove one while it loads
    starting = f"starting-{os.getpid()}"
    servers.announce(ws, starting, [f"{n}:{v}" for n, v in (resolve(ws, r) for r in refs)])
    try:
        repo = ModelRepository(ws, refs, threads)
        if canary:
            start_canary(repo, refs, canary)
        key, generated = resolve_api_key(host, api_key)
        sock = bind(host, port)
    except BaseException:
        servers.withdraw(ws, starting)
        raise
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound}"
    limits = server_limits(limits or ServeLimits.from_env(), host)
    app = create_app(repo, key, limits, url=url, batch_config=batch)
    config = uvicorn.Config(
        app, log_level="warning", access_log=False,
        loop="auto", http=front_class(protocol_class(limits, app.lane), app.lane),
        timeout_graceful_shutdown=5,
        timeout_keep_alive=limits.keep_alive_s,
    )
    servers.announce(ws, url, repo.served())  # `studio models rm` refuses what is served
    servers.withdraw(ws, starting)
    if announce is not None:
        announce(url, key if generated else None, key is not None)
    stop = threading.Event()
    # always: aliases added through the admin routes are followed too, and drift is told
    threading.Thread(target=_watch, args=(ws, repo, url, stop), daemon=True,
                     name="studio-watch").start()
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        stop.set()
        servers.withdraw(ws, url)


def start_canary(repo: ModelRepository, refs: list[str], given: str) -> None:
    """``--canary NAME:N[=PERCENT]``: on the served ref of the same model name."""
    candidate, _, percent = given.partition("=")
    try:
        share = float(percent) if percent else 10.0
    except ValueError:
        raise InputError(f"--canary {given}: the share after '=' must be a percentage, "
                         f"like {candidate}=10") from None
    name = candidate.partition(":")[0]
    targets = [r for r in refs if ":" not in r and r.partition("@")[0] == name]
    if len(targets) != 1:
        raise InputError(f"--canary {given}: serve {name} (or {name}@ALIAS) exactly once "
                         "for the canary to share its traffic")
    repo.set_canary(targets[0], candidate, share)


def server_limits(limits: ServeLimits, host: str) -> ServeLimits:
    """``limits`` for a server bound to ``host``: the Host names it answers to, and no
    more connections than it has file descriptors for."""
    hosts = host_names(host, limits.allowed_hosts or ())
    return replace(limits, allowed_hosts=hosts,
                   max_connections=min(limits.max_connections, _open_files() - FD_RESERVE))


FD_RESERVE = 256  # model files, sqlite, threads' pipes, the listening socket


def _open_files() -> int:
    """The soft limit on open files, raised to the hard limit: each client holds one."""
    try:
        import resource
    except ImportError:  # not on Windows
        return 512 + FD_RESERVE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return max(soft if soft != resource.RLIM_INFINITY else 65536, 2 * FD_RESERVE)


FOLLOW_EVERY_S = 0.5
DRIFT_EVERY_S = 10.0


def _watch(ws: Workspace, repo: ModelRepository, url: str, stop: threading.Event) -> None:
    """Switch served aliases to where they point now, as `studio models alias` moves them
    (the registry learns what is served, so `studio models rm` refuses the new version),
    and say in the log when a served version's inputs move away from its training data."""
    own = Workspace.open(ws.root)  # this thread's own database connection
    moved: dict[str, set[str]] = {}
    next_drift = time.monotonic() + DRIFT_EVERY_S
    try:
        while not stop.wait(FOLLOW_EVERY_S):
            try:
                if repo.followed:
                    for line in repo.follow_aliases(own):
                        servers.announce(own, url, repo.served())
                        log.warning("%s %s", "switched" if "→" in line else "alias", line)
                if time.monotonic() >= next_drift:
                    next_drift = time.monotonic() + DRIFT_EVERY_S
                    _tell_drift(repo, moved)
            except Exception:  # a locked database, a bug: said, and tried again next turn
                log.exception("watching the registry failed; trying again")
    finally:
        own.db.close()


def _tell_drift(repo: ModelRepository, moved: dict[str, set[str]]) -> None:
    """Log each column of a served version that has newly moved from its training data."""
    for ref, report in repo.drift_report().items():
        now = set(report["moved"])
        for column in sorted(now - moved.get(ref, set())):
            psi = next(c["psi"] for c in report["columns"] if c["column"] == column)
            log.warning("drift: %s column %r has moved away from the training data "
                        "(PSI %.2f)", ref, column, psi)
        moved[ref] = now
