"""``studio models``: the registry from the command line. Every command takes ``--json``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from studio.cli_output import out
from studio.core.workspace import Workspace

REF = "NAME[:N|@ALIAS]"
Handler = Callable[[Workspace, argparse.Namespace], int]


def add_parsers(models: Any, cmd: Callable[..., argparse.ArgumentParser]) -> None:
    p = cmd("ls", "list model versions (newest last)", models)
    p.add_argument("name", nargs="?", help="one model's versions only")
    p.add_argument("--archived", action="store_true", help="list archived versions too")
    p = cmd("show", "a version: what it is, where it came from, its files", models)
    p.add_argument("ref", metavar=REF)
    p = cmd("alias", "point NAME@ALIAS at a version (it moves atomically), or show or "
            "remove it", models)
    p.add_argument("name")
    p.add_argument("alias", help="e.g. production, staging, or any name")
    p.add_argument("version", nargs="?", help="N, or a reference such as NAME@staging")
    p.add_argument("--remove", action="store_true")
    p = cmd("tag", "set tags on a version (KEY=VALUE), remove them (--remove KEY), or list "
            "them", models)
    p.add_argument("ref", metavar=REF)
    p.add_argument("tags", nargs="*", metavar="KEY=VALUE")
    p.add_argument("--remove", action="append", default=[], metavar="KEY",
                   help="remove this tag (repeat for more)")
    p = cmd("describe", "set a version's one-line description", models)
    p.add_argument("ref", metavar=REF)
    p.add_argument("text")
    p = cmd("card", "print a version's model card (Markdown), or replace it", models)
    p.add_argument("ref", metavar=REF)
    p.add_argument("--set", type=Path, metavar="FILE.md", help="the card's new text")
    p = cmd("compare", "versions side by side; with one model name and --metric, that "
            "metric across all its versions", models)
    p.add_argument("refs", nargs="+", metavar=REF)
    p.add_argument("--metric", help="chart this test metric (e.g. accuracy, r2, f1_macro)")
    p = cmd("rm", "delete a version (refused while an alias points at it or a server "
            "serves it); its files go at the next gc", models)
    p.add_argument("ref", metavar=REF)
    p = cmd("archive", "hide a version from lists and from NAME (NAME:N still works)", models)
    p.add_argument("ref", metavar=REF)
    p.add_argument("--undo", action="store_true", help="list it again")
    p = cmd("gc", "remove stored files nothing refers to; report the bytes freed", models)
    p.add_argument("--dry-run", action="store_true", help="report only")
    cmd("verify", "hash every stored file again (exit 1 when any is damaged)", models)
    p = cmd("export", "write a version out: a bundle .zip (the default), plain ONNX, or a "
            "Triton/KServe model repository", models)
    p.add_argument("items", nargs="+", metavar="REF [DEST]",
                   help="the version, then a .zip or .onnx file or a folder to write to "
                   "(with --triton: one or more versions)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--onnx", action="store_true", help="the model file alone")
    how.add_argument("--triton", type=Path, metavar="DIR",
                     help="add the versions to the model repository DIR (DIR/NAME/N/"
                     "model.onnx + DIR/NAME/config.pbtxt)")
    p = cmd("import", "register a model made elsewhere: ONNX (file or folder), safetensors, "
            "a Hugging Face folder, a PyTorch checkpoint (weights only) or a bundle", models)
    p.add_argument("path", type=Path, metavar="FILE_OR_FOLDER")
    p.add_argument("--name", help="the model's name (default: from the file's name)")
    p = cmd("pull", "register a model from the Hugging Face Hub (through the standard cache; "
            "HF_HUB_OFFLINE=1 works from it)", models)
    p.add_argument("repo_id", metavar="REPO_ID")
    p.add_argument("--revision", help="a branch, tag or commit (default: main)")
    p.add_argument("--name", help="the model's name (default: the repository's)")
    p = cmd("push", "upload a version to the Hugging Face Hub (graph, weights, card, "
            "manifest) in one commit", models)
    p.add_argument("ref", metavar=REF)
    p.add_argument("repo_id", metavar="REPO_ID")
    p.add_argument("--public", action="store_true", help="create the repository public "
                   "(default: private)")
    p.add_argument("--revision", help="a branch to push to (default: main)")
    cmd("du", "disk use per model", models)
    p = cmd("candidates", "a training run's leaderboard (default: the latest run's)", models)
    p.add_argument("--job", help="the training job's id (see the run's output)")
    p = cmd("add-candidate", "register a family from a run's leaderboard as a new version",
            models)
    p.add_argument("family")
    p.add_argument("--job", help="the training job's id (default: the latest run's)")


def shown(text: object) -> str:
    """Text from a model made elsewhere, safe for a terminal: control characters escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def size_text(n: int | None) -> str:
    if n is None:
        return "-"
    from studio.core.printable import human_bytes

    return human_bytes(n)


def models_ls(ws: Workspace, args: argparse.Namespace) -> int:
    from studio.core.registry.listing import version_rows

    rows = version_rows(ws, args.name, archived=args.archived)
    lines = [f"{'VERSION':<28} {'KIND':<24} {'TEST':<16} {'SIZE':>10}  ALIASES"]
    for r in rows:
        test = f"{r.metric} {r.score:.3f}" if r.metric and r.score is not None else "-"
        lines.append(f"{r.ref:<28} {(r.kind or '-'):<24} {test:<16} "
                     f"{size_text(r.size_bytes):>10}  {', '.join(r.aliases)}"
                     + (f"  (compressed from {r.parent})" if r.source == "compression"
                        else "")
                     + ("  (archived)" if r.archived else ""))
    empty = ("no models yet: studio train DATASET --target COLUMN"
             if args.name is None else f"no versions of {args.name!r}")
    out(args, {"versions": [r.to_dict() for r in rows]}, "\n".join(lines) if rows else empty)
    return 0


def show_document(ws: Workspace, ref: str) -> tuple[dict[str, Any], str]:
    """The manifest as stored, with what the registry adds: aliases, tags, size, links."""
    from studio.core.registry import get_version
    from studio.core.registry.listing import lineage_edges, version_rows

    v = get_version(ws, ref)
    m = v.manifest
    row = next(r for r in version_rows(ws, v.name, archived=True) if r.version == v.version)
    links = lineage_edges(ws, v.name, v.version)
    doc = {**m.raw, "ref": v.ref, "source": m.source, "size_bytes": row.size_bytes,
           "total_bytes": row.total_bytes, "aliases": list(row.aliases), "tags": row.tags,
           "description": row.description, "archived": row.archived,
           "links": {k: [{"relation": a, "kind": b, "ref": c} for a, b, c in e]
                     for k, e in links.items()}}
    what = f" of {shown(repr(m.target))}" if m.target else ""
    lines = [f"{v.ref}  ({m.kind}{what})" + ("  archived" if row.archived else "")]
    if row.description:
        lines.append(f"about     {row.description}")
    if row.aliases:
        lines.append("aliases   " + ", ".join(f"{v.name}@{a}" for a in row.aliases))
    if row.tags:
        lines.append("tags      " + ", ".join(f"{k}={val}" for k, val in row.tags.items()))
    if m.training is not None:
        d = m.raw.get("dataset") or {}
        lines.append(f"dataset   {d.get('name')} ({d.get('rows')} rows, digest "
                     f"{str(d.get('digest', ''))[:12]})")
    if m.recipe is not None and m.raw.get("input_schema"):
        lines.append("columns   " + ", ".join(c["name"] for c in m.raw["input_schema"]))
    lines.append("inputs    " + ", ".join(f"{shown(t.name)} {shown(t.datatype)} "
                                           f"{list(t.shape)}" for t in m.inputs))
    lines.append("outputs   " + ", ".join(f"{shown(t.name)} {shown(t.datatype)} "
                                           f"{list(t.shape)}" for t in m.outputs))
    if m.labels:
        lines.append(f"labels    {shown(', '.join(m.labels))}")
    test = {k: val for k, val in m.metrics.items() if isinstance(val, float)}
    if test:
        lines.append("test      " + "  ".join(f"{k} {val:.4f}" for k, val in test.items()))
    if m.training is not None and m.compression is None:
        t = m.training.spec
        unit = "rounds" if m.training.family == "boosted-trees" else "epochs"
        lines.append(f"trained   {m.training.family}, {t.get('epochs_run')} {unit} on "
                     f"{t.get('device')} in {float(t.get('duration_s') or 0):.1f}s")
    if m.compression is not None:
        c = m.compression.details
        settings = ", ".join(f"{k}={v}" for k, v in (c.get("settings") or {}).items())
        delta = c.get("delta_points")
        said = f" ({settings})" if settings else ""
        said += f": {delta:+.2f} points of {c.get('metric')}" if isinstance(
            delta, int | float) else ": not evaluated"
        said += "".join(f", {f.upper()}" for f in c.get("flags") or [])
        lines.append(f"made by   {m.compression.method} of {m.compression.parent}{said}")
    if m.imported is not None:
        lines.append(f"imported  {shown(m.imported.format)} from {shown(m.imported.source)}")
    for relation, kind, target in links["from"]:
        lines.append(f"lineage   {relation.replace('_', ' ')} {kind} {shown(target)}")
    for relation, _kind, target in links["to"]:
        lines.append(f"lineage   {target} {relation.replace('_', ' ')} this")
    lines.append(f"size      {size_text(row.size_bytes)} model, {size_text(row.total_bytes)} "
                 "in all")
    lines.append("files     " + ", ".join(f"{f} ({d[:12]})" for f, d in m.files.items()))
    return doc, "\n".join(lines)


def models_show(ws: Workspace, args: argparse.Namespace) -> int:
    from studio.core.registry import get_version, read_file

    doc, text = show_document(ws, args.ref)
    if args.json and "evaluation.json" in doc["files"]:
        doc["evaluation"] = json.loads(read_file(ws, get_version(ws, doc["ref"]),
                                                 "evaluation.json"))
    out(args, doc, text)
    return 0


def models_alias(ws: Workspace, args: argparse.Namespace) -> int:
    from studio.core.registry import labels
    from studio.core.registry.versions import resolve

    if args.remove:
        number = labels.remove_alias(ws, args.name, args.alias)
        out(args, {"name": args.name, "alias": args.alias, "removed": True,
                   "version": number}, f"removed {args.name}@{args.alias} (was version "
                                       f"{number})")
        return 0
    if args.version is None:
        name, number = resolve(ws, f"{args.name}@{args.alias}")
        out(args, {"name": name, "alias": args.alias, "version": number},
            f"{name}@{args.alias} → {name}:{number}")
        return 0
    moved = labels.set_alias(ws, args.name, args.alias, args.version)
    was = (f" (was {moved.name}:{moved.previous})"
           if moved.previous not in (None, moved.version) else "")
    out(args, {"name": moved.name, "alias": moved.alias, "version": moved.version,
               "previous": moved.previous},
        f"{moved.name}@{moved.alias} → {moved.name}:{moved.version}{was}")
    return 0


def models_tag(ws: Workspace, args: argparse.Namespace) -> int:
    from studio.core.registry import labels
    from studio.core.registry.versions import resolve

    if args.tags or args.remove:
        tags = labels.set_tags(ws, args.ref, labels.parse_tags(args.tags, args.remove))
    else:
        tags = labels.tags_of(ws, *resolve(ws, args.ref))
    out(args, {"tags": tags}, "\n".join(f"{k}={v}" for k, v in tags.items()) or "no tags")
    return 0


def models_describe(ws: Workspace, args: argparse.Namespace) -> int:
    from studio.core.registry import labels

    labels.set_description(ws, args.ref, args.text)
    out(args, {"ref": args.ref, "description": args.text.strip()}, "")
    return 0


def models_card(ws: Workspace, args: argparse.Namespace) -> int:
    from studio.core.errors import InputError
    from studio.core.registry import get_version, labels

    if args.set is not None:
        try:
            text = args.set.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read {args.set}: {exc}") from None
        version = labels.set_card(ws, args.ref, text)
    else:
        version = get_version(ws, args.ref)
    card = labels.card_text(ws, version)
    out(args, {"ref": version.ref, "card": card}, card.rstrip("\n"))
    return 0


def models_compare(ws: Workspace, args: argparse.Namespace) -> int:
    from studio.core.registry import compare

    if args.metric and len(args.refs) == 1:
        series = compare.metric_series(ws, args.refs[0], args.metric)
        out(args, {"name": args.refs[0], "metric": args.metric, "series": series},
            series_text(args.metric, series))
        return 0
    table = compare.compare(ws, args.refs)
    out(args, table, table_text(table))
    return 0


def table_text(table: dict[str, Any], width: int = 22) -> str:
    """One column per version, one row per field that any of them has."""
    refs = table["refs"]
    lines = [f"{'':<22}" + "".join(f"{r[:width - 1]:<{width}}" for r in refs)]
    for section, rows in table["rows"].items():
        lines.append(f"-- {section}")
        for field, values in rows.items():
            cells = [_cell(v)[:width - 1] for v in values]
            same = len(set(cells)) == 1
            lines.append(f"{field[:21]:<22}" + "".join(f"{c:<{width}}" for c in cells)
                         + ("" if same or len(cells) < 2 else "  ≠"))
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, list | dict):
        return json.dumps(value, default=str)
    return str(value)


def series_text(metric: str, series: list[dict[str, Any]], bar: int = 30) -> str:
    """A bar per version: where a metric went as the model changed."""
    values = [s["value"] for s in series if s["value"] is not None]
    if not values:
        return f"no version has a test {metric}"
    low, high = min(values), max(values)
    lines = []
    for s in series:
        v = s["value"]
        if v is None:
            lines.append(f"{s['ref']:<24} {'-':>8}")
            continue
        n = bar if high == low else round(1 + (bar - 1) * (v - low) / (high - low))
        tail = f"  {', '.join(s['aliases'])}" if s["aliases"] else ""
        lines.append(f"{s['ref']:<24} {v:>8.4f} {'█' * n}{tail}")
    return "\n".join(lines)


def models_rm(ws: Workspace, args: argparse.Namespace) -> int:
    from studio.core.registry import lifecycle

    name, number = lifecycle.delete_version(ws, args.ref)
    out(args, {"deleted": f"{name}:{number}"},
        f"deleted {name}:{number} (its files go at the next `studio models gc`)")
    return 0


def models_archive(ws: Workspace, args: argparse.Namespace) -> int:
    from studio.core.registry import lifecycle

    name, number = lifecycle.archive(ws, args.ref, archived=not args.undo)
    state = "listed again" if args.undo else "archived"
    out(args, {"ref": f"{name}:{number}", "archived": not args.undo},
        f"{name}:{number} {state}")
    return 0


def models_gc(ws: Workspace, args: argparse.Namespace) -> int:
    from studio.core.registry import lifecycle

    report = lifecycle.gc(ws, dry_run=args.dry_run)
    text = report.summary()
    if args.dry_run:
        text = "would have " + text
    out(args, {"removed": report.removed, "freed_bytes": report.freed_bytes,
               "kept_recent": report.kept_recent, "dry_run": args.dry_run}, text)
    return 0


def models_du(ws: Workspace, args: argparse.Namespace) -> int:
    from studio.core.registry import lifecycle

    use = lifecycle.disk_use(ws)
    lines = [f"{size_text(n):>10}  {name}" for name, n in sorted(use.items(),
                                                                key=lambda x: -x[1])]
    out(args, {"bytes": use}, "\n".join(lines) or "no models yet")
    return 0


def models_candidates(ws: Workspace, args: argparse.Namespace) -> int:
    from studio.cli import leaderboard_text
    from studio.core.training import candidates

    job_id, rows = candidates.board(ws, args.job)
    out(args, {"job": job_id, "leaderboard": rows},
        f"job {job_id}\n" + leaderboard_text(rows))
    return 0


def models_add_candidate(ws: Workspace, args: argparse.Namespace) -> int:
    from studio.core.training import candidates

    job_id = args.job or candidates.board(ws)[0]
    version = candidates.register(ws, job_id, args.family)
    out(args, {"version": version.ref, "family": args.family, "job": job_id},
        f"{version.ref}  ({args.family} from job {job_id})")
    return 0


def models_verify(ws: Workspace, args: argparse.Namespace) -> int:
    from studio.cli import verify

    return verify(ws, args)


def models_export(ws: Workspace, args: argparse.Namespace) -> int:
    from studio.core.errors import InputError
    from studio.core.registry.transfer import export

    if args.triton is not None:
        folders = export.export_triton(ws, args.items, args.triton)
        out(args, {"repository": str(args.triton), "models": [str(f) for f in folders]},
            "\n".join(f"{f}" for f in folders) + f"\nserve it with: tritonserver "
            f"--model-repository {args.triton}")
        return 0
    if len(args.items) != 2:
        raise InputError("give one version and where to write it: studio models export "
                         "NAME:N OUT.zip (or --onnx OUT.onnx, or --triton DIR NAME:N ...)")
    write = export.export_onnx if args.onnx else export.export_bundle
    path = write(ws, args.items[0], Path(args.items[1]))
    out(args, {"path": str(path), "bytes": path.stat().st_size},
        f"{path} ({size_text(path.stat().st_size)})")
    return 0


def models_import(ws: Workspace, args: argparse.Namespace) -> int:
    from studio.cli_progress import TerminalView
    from studio.core.registry.transfer.importer import import_model

    view = TerminalView(quiet=args.json)
    try:
        version = import_model(ws, args.path, args.name, view.show)
    finally:
        view.close()
    return _print_new(args, version)


def _print_new(args: argparse.Namespace, version: Any) -> int:
    m = version.manifest
    tensors = ", ".join(f"{t.name} {t.datatype} {list(t.shape)}" for t in m.inputs)
    out(args, {"version": version.ref, "kind": m.kind, "source": m.source,
               "inputs": [t.to_dict() for t in m.inputs],
               "outputs": [t.to_dict() for t in m.outputs]},
        f"{version.ref}\n{m.kind}" + (f"; inputs {tensors}" if tensors else
                                      "; weights only (no graph to serve)"))
    return 0


def models_pull(ws: Workspace, args: argparse.Namespace) -> int:
    from studio.core.registry.transfer.hub_models import pull_model

    shown = [0.0]

    def progress(done: int, total: int) -> None:
        import time

        if not args.json and (time.monotonic() - shown[0] > 0.5 or done == total):
            shown[0] = time.monotonic()
            print(f"\rdownloading {size_text(done)} of {size_text(total)}", end="",
                  file=sys.stderr, flush=True)

    try:
        version = pull_model(ws, args.repo_id, args.revision, args.name, progress=progress)
    finally:
        if not args.json:
            print(file=sys.stderr)
    return _print_new(args, version)


def models_push(ws: Workspace, args: argparse.Namespace) -> int:
    import os

    from studio.core.registry.transfer.hub_models import push_model

    url = push_model(ws, args.ref, args.repo_id, token=os.environ.get("HF_TOKEN"),
                     endpoint=os.environ.get("HF_ENDPOINT"), private=not args.public,
                     revision=args.revision)
    out(args, {"ref": args.ref, "repo_id": args.repo_id, "commit_url": url}, url)
    return 0


HANDLERS: dict[str, Handler] = {
    "export": models_export, "import": models_import, "pull": models_pull,
    "push": models_push,
    "ls": models_ls, "show": models_show, "alias": models_alias, "tag": models_tag,
    "describe": models_describe, "card": models_card, "compare": models_compare,
    "rm": models_rm, "archive": models_archive, "gc": models_gc, "du": models_du,
    "verify": models_verify, "candidates": models_candidates,
    "add-candidate": models_add_candidate,
}
