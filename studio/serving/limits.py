"""What a client may cost the server: sizes, times, connections, and who may call it.

One frozen value, made by ``studio serve`` (options, then ``STUDIO_SERVE_*`` environment
variables for the rarely changed ones) and read by the protocol (``protocol.py``), the body
reader (``body.py``) and the browser guard (``guard.py``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

MiB = 1024 * 1024
ENV_PREFIX = "STUDIO_SERVE_"


@dataclass(frozen=True)
class ServeLimits:
    max_body_bytes: int = 64 * MiB
    # Request line and headers; one read (up to 256 KiB) may pass it before it is seen.
    max_header_bytes: int = 64 * 1024
    # From the connection (or the first byte of a request) to the end of its headers.
    header_timeout_s: float = 10.0
    # Longest wait for the next piece of a body...
    body_idle_timeout_s: float = 10.0
    # ...and the slowest average a body may come at, once the grace period is over.
    body_min_rate: int = 64 * 1024
    body_grace_s: float = 5.0
    # Bodies being read or parsed at once hold this many bytes at most (a byte budget);
    # bodies up to ``small_body_bytes`` never wait for it (they are parsed on the loop).
    body_budget_bytes: int = 128 * MiB
    small_body_bytes: int = 64 * 1024
    budget_wait_s: float = 2.0
    # Connections open at once; over it the longest idle one is closed.
    max_connections: int = 2048
    keep_alive_s: float = 5.0
    # A client that does not read its answer for this long is cut off.
    write_timeout_s: float = 30.0
    # None: any Host (in-process apps); ``serve`` always sets the bound names plus these.
    allowed_hosts: tuple[str, ...] | None = None
    cors_origins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, int | float) and value <= 0:
                raise ValueError(f"{f.name} must be positive, got {value}")
        if self.body_budget_bytes < self.max_body_bytes:
            # a body at the limit must be able to get in at all
            object.__setattr__(self, "body_budget_bytes", self.max_body_bytes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **given: Any) -> ServeLimits:
        """The defaults, overridden by ``STUDIO_SERVE_<FIELD>`` (e.g.
        ``STUDIO_SERVE_HEADER_TIMEOUT_S=2``), then by ``given``."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is None or f.name in ("allowed_hosts", "cors_origins"):
                continue
            kind = float if f.name.endswith("_s") else int
            try:
                values[f.name] = kind(raw)
            except ValueError:
                raise ValueError(f"{ENV_PREFIX}{f.name.upper()} must be a number, "
                                 f"got {raw!r}") from None
        return replace(cls(**values), **given)
