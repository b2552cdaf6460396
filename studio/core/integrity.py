"""`studio verify`: every blob the workspace refers to, hashed again.

Reads are verified one at a time as they happen; this is the whole-workspace check, for
files that are rarely read (a version's weights and card) and for a person who wants to
know before a long run. It reports what each damaged or missing blob is used by, and counts
the blobs nothing refers to (left by a killed import, say); it changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from studio.core.datasets import catalog
from studio.core.errors import Cancelled, NotFoundError, StudioError
from studio.core.events import Emit, Progress
from studio.core.printable import human_bytes
from studio.core.workspace import Workspace


@dataclass(frozen=True)
class Problem:
    digest: str
    state: str  # "corrupt" or "missing"
    uses: list[str]  # what refers to it: "dataset pets: picture cats/1.png", "model m:1: …"

    def to_dict(self) -> dict[str, Any]:
        return {"digest": self.digest, "state": self.state, "uses": self.uses}


@dataclass
class VerifyReport:
    checked: int = 0
    bytes: int = 0
    problems: list[Problem] = field(default_factory=list)
    orphans: int = 0
    orphan_bytes: int = 0
    # image datasets whose manifest is intact yet lists no pictures that can be read
    unchecked: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.unchecked

    def summary(self) -> str:
        if self.ok:
            head = (f"{self.checked:,} stored file(s) checked, all intact "
                    f"({human_bytes(self.bytes)})")
        else:
            kinds = {s: sum(p.state == s for p in self.problems) for s in ("corrupt", "missing")}
            parts = [f"{n} {s}" for s, n in kinds.items() if n]
            if self.unchecked:
                parts.append(f"{len(self.unchecked)} dataset(s) whose pictures could not be "
                             "listed")
            uses = [u for p in self.problems for u in p.uses]
            hints = (["import the dataset's source again to repair it"]
                     if any(u.startswith("dataset") for u in uses) else [])
            hints += (["train the model again (its files cannot be rebuilt)"]
                      if any(u.startswith("model") for u in uses) else [])
            head = (f"{len(self.problems)} of {self.checked:,} stored file(s) damaged "
                    f"({', '.join(parts)})" + "".join(f"; {h}" for h in hints))
        if self.orphans:
            head += (f"; {self.orphans:,} unreferenced file(s) ({human_bytes(self.orphan_bytes)}), "
                     "left in place")
        return head

    def lines(self) -> list[str]:
        """One line per damaged blob, then the summary."""
        out = [f"{p.state:<8} {p.digest[:12]}  {'; '.join(p.uses)}" for p in self.problems]
        out += [f"unchecked    {u}" for u in self.unchecked]
        return [*out, self.summary()]

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checked": self.checked, "bytes": self.bytes,
                "problems": [p.to_dict() for p in self.problems],
                "unchecked": self.unchecked, "orphans": self.orphans,
                "orphan_bytes": self.orphan_bytes, "summary": self.summary()}


def blob_uses(ws: Workspace, report: VerifyReport) -> dict[str, list[str]]:
    """Digest → what refers to it. An image dataset's pictures are listed from its manifest,
    which is read verified: a damaged manifest names none (it is itself a problem)."""
    uses: dict[str, list[str]] = {}
    for info in catalog.list_datasets(ws):
        uses.setdefault(info.digest, []).append(f"dataset {info.name}: snapshot")
        try:
            pictures = catalog.picture_files(ws, info)
        except StudioError:
            continue  # damaged or missing: the snapshot's own entry reports it
        except (OSError, ValueError, KeyError, pa.ArrowException) as exc:
            # intact, yet no manifest of pictures: say so rather than stop the check
            report.unchecked.append(f"dataset {info.name}: pictures not listed "
                                    f"({str(exc).splitlines()[0][:80]})")
            continue
        for path, digest in pictures.items():
            uses.setdefault(digest, []).append(f"dataset {info.name}: picture {path}")
    rows = ws.db.conn.execute(
        "SELECT name, version, manifest_digest, manifest, card_digest FROM versions"
        " ORDER BY name, version")
    for name, version, manifest_digest, text, card_digest in rows:
        ref = f"{name}:{version}"
        uses.setdefault(manifest_digest, []).append(f"model {ref}: manifest")
        if card_digest:
            uses.setdefault(card_digest, []).append(f"model {ref}: card as edited")
        # the row keeps a copy of the manifest: its file list holds even when the blob fails
        for fname, digest in json.loads(text).get("files", {}).items():
            uses.setdefault(digest, []).append(f"model {ref}: {fname}")
    candidates = ws.db.conn.execute(
        "SELECT job_id, family, files FROM candidates WHERE files IS NOT NULL")
    for job_id, family, files in candidates:  # a run's losing families, still registrable
        for fname, digest in json.loads(files).items():
            uses.setdefault(digest, []).append(f"job {job_id} candidate {family}: {fname}")
    return uses


def verify_workspace(ws: Workspace, emit: Emit | None = None,
                     should_stop: Callable[[], bool] = lambda: False) -> VerifyReport:
    """Hash every referenced blob once; count the unreferenced ones."""
    report = VerifyReport()
    uses = blob_uses(ws, report)
    digests = sorted(uses)
    for i, digest in enumerate(digests):
        if should_stop():
            raise Cancelled("verify stopped")
        if emit is not None and (i % 64 == 0 or i + 1 == len(digests)):
            emit(Progress("verify", i, len(digests), digest[:12]))
        report.checked += 1
        try:
            report.bytes += ws.blobs.path(digest).stat().st_size
        except (FileNotFoundError, NotFoundError):  # not there, or no blob name at all
            aside = any((ws.blobs.root.parent / "damaged").glob(f"{digest}-*"))
            report.problems.append(Problem(digest, "corrupt" if aside else "missing",
                                           uses[digest]))
            continue
        if not ws.blobs.intact(digest):
            # moved aside: a quick re-import then finds it gone and stores the file again
            ws.blobs.quarantine(digest)
            report.problems.append(Problem(digest, "corrupt", uses[digest]))
    if emit is not None:
        emit(Progress("verify", len(digests), len(digests), "done"))
    for path in ws.blobs.root.rglob("*"):
        if path.is_file() and path.parent.name + path.name not in uses:
            try:
                report.orphan_bytes += path.stat().st_size
            except FileNotFoundError:
                continue  # removed meanwhile (a delete or a failed import cleaning up)
            report.orphans += 1
    return report
