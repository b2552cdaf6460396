"""The ``studio`` command. No arguments opens the GUI; every subcommand takes ``--json``.

Errors print one line on stderr; bad input exits with 2, a fault of the program with 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from studio.cli_output import out
from studio.core.errors import Cancelled, InputError, StudioError
from studio.core.training.families import MODULES as FAMILY_MODULES
from studio.core.training.spec import TASKS
from studio.core.workspace import Workspace

FAMILY_NAMES = list(FAMILY_MODULES)

EXIT_OK, EXIT_FAILED, EXIT_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


class CliError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_INPUT, f"studio: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="studio", description="Model Studio: dataset to served model.")
    parser.add_argument("--home", help="workspace folder (default: $STUDIO_HOME or the "
                        "platform's user data folder)")
    sub = parser.add_subparsers(dest="command", parser_class=Parser)

    def cmd(name: str, help_: str, parent: Any = sub) -> argparse.ArgumentParser:
        p = parent.add_parser(name, help=help_, description=help_)
        p.add_argument("--json", action="store_true", help="print one JSON document")
        return p

    sub.add_parser("gui", help="open the desktop app (the default)")
    data = sub.add_parser("data", help="datasets").add_subparsers(
        dest="data_command", parser_class=Parser, required=True)
    p = cmd("import", "import a data file as a dataset", data)
    p.add_argument("path", type=Path, help="a data file, a folder of class sub-folders of "
                   "images, or a zip of one")
    p.add_argument("--name")
    p.add_argument("--sheet", help="Excel: the sheet to read (default: the largest)")
    cmd("ls", "list datasets", data)
    p = cmd("show", "show a dataset's columns and their profile", data)
    p.add_argument("name")
    p = cmd("rename", "rename a dataset", data)
    p.add_argument("name")
    p.add_argument("new_name")
    p = cmd("describe", "set a dataset's description", data)
    p.add_argument("name")
    p.add_argument("description")
    p = cmd("rm", "delete a dataset (models trained on it keep working)", data)
    p.add_argument("name")
    p = cmd("export", "write a dataset as CSV (spreadsheet-safe)", data)
    p.add_argument("name")
    p.add_argument("--output", required=True, type=Path)

    p = cmd("train", "train a model on a dataset; prints NAME:VERSION and test metrics")
    p.add_argument("dataset", nargs="?")
    p.add_argument("--target", help="column to predict (default: the suggested one; "
                   "'label' for an image dataset)")
    p.add_argument("--model", help="model name (default: the dataset's)")
    p.add_argument("--task", choices=TASKS, default="auto")
    p.add_argument("--family", default="auto", metavar="FAMILY",
                   help="train one model family (" + ", ".join(FAMILY_NAMES) + "); default: "
                   "every family that fits, the best on the validation split wins")
    p.add_argument("--time-budget", type=float, default=0.0, metavar="SECONDS",
                   help="time the families may take together (default: from the data's size)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a family parameter, repeatable: KEY for every family that has it, "
                   "FAMILY.KEY for one (e.g. boosted-trees.leaves=63, mlp.hidden=256,256); "
                   "`studio train --params` lists them")
    p.add_argument("--params", action="store_true", dest="list_params",
                   help="list every family's parameters with defaults and exit")
    p.add_argument("--epochs", type=int, help="passes over the data (neural families)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", metavar="DEVICE",
                   help="auto (the best: a CUDA GPU, then mps, then cpu), cpu, cuda, cuda:N "
                   "or mps; studio devices lists them")
    p.add_argument("--nproc-per-node", type=int, metavar="N",
                   help="train in N processes on this machine (torch.distributed: gloo on "
                   "CPUs, NCCL on GPUs); one neural --family")
    p.add_argument("--nnodes", type=int, metavar="M",
                   help="machines taking part (run the same command on each)")
    p.add_argument("--rdzv-endpoint", metavar="HOST:PORT",
                   help="where the machines meet (one of them, reachable by all)")
    p.add_argument("--rdzv-id", metavar="ID", help="names the run the machines join "
                   "(default: studio)")
    p.add_argument("--resume", metavar="RUN", help="go on with a stopped, failed or killed "
                   "run from its last checkpoint, with its own settings (see studio runs ls)")
    p.add_argument("--recipe", type=Path, metavar="FILE.json",
                   help='preprocessing choices: {"columns": {"age": {"fill": "mean", '
                   '"scale": "minmax", "clip": true}, "city": {"encode": "ordinal"}, '
                   '"id": {"drop": true}}}')

    models = sub.add_parser("models", help="the model registry").add_subparsers(
        dest="models_command", parser_class=Parser, required=True)
    from studio.cli_models import add_parsers as add_models_parsers

    add_models_parsers(models, cmd)

    p = cmd("tune", "search a model's family and parameters (Optuna: TPE sampler, median "
            "pruner); each trial is a run, the best one can be registered")
    p.add_argument("dataset", nargs="?")
    p.add_argument("--target", help="column to predict (default: the suggested one)")
    p.add_argument("--task", choices=TASKS, default="auto")
    p.add_argument("--family", default="auto", metavar="FAMILY",
                   help="search this family's parameters only (default: the family too)")
    p.add_argument("--trials", type=int, default=0, metavar="N",
                   help="how many trials (default 20, or as many as --time-budget allows)")
    p.add_argument("--time-budget", type=float, default=0.0, metavar="SECONDS",
                   help="end the search after this long")
    p.add_argument("--trial-budget", type=float, default=0.0, metavar="SECONDS",
                   help="each trial's time (default: from the data's size)")
    p.add_argument("--epochs", type=int, help="the neural families' most epochs a trial")
    p.add_argument("--study", metavar="NAME", help="continue this study (default: a new one)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", metavar="DEVICE")
    p.add_argument("--register", action="store_true",
                   help="register the best trial as a version when the search ends")
    p.add_argument("--register-best", metavar="STUDY",
                   help="register STUDY's best trial as a version, and do nothing else")

    runs = sub.add_parser("runs", help="training runs: list, show, compare, delete"
                          ).add_subparsers(dest="runs_command", parser_class=Parser,
                                           required=True)
    from studio.cli_runs import add_parsers as add_runs_parsers

    add_runs_parsers(runs, cmd)

    from studio.cli_compress import add_parser as add_compress_parser

    add_compress_parser(cmd)

    p = cmd("evaluate", "score a version on a labelled dataset: metrics, per-class table, "
            "confusion, column importance, worst errors")
    p.add_argument("ref", metavar="NAME[:N|@ALIAS]")
    p.add_argument("dataset")
    p.add_argument("--split", choices=["test", "all"],
                   help="test: the rows the version was tested on (the default on the data "
                   "it was trained on); all: every labelled row (the default elsewhere)")

    p = cmd("serve", "serve versions over HTTP (Open Inference Protocol) until Ctrl-C")
    p.add_argument("refs", nargs="+", metavar="NAME[:N|@ALIAS]")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    p.add_argument("--api-key", help="required from clients; generated when the host is "
                   "not loopback and none is given (or set STUDIO_API_KEY)")
    p.add_argument("--canary", metavar="NAME:N[=PERCENT]",
                   help="answer PERCENT (default 10) of the requests for the served NAME or "
                   "NAME@ALIAS with version NAME:N, comparing the two")
    p.add_argument("--max-batch-size", type=int, default=64, metavar="ROWS",
                   help="rows concurrent requests are joined into for one model call "
                   "(default 64; 1 turns batching off)")
    p.add_argument("--max-batch-delay-ms", type=float, default=2.0, metavar="MS",
                   help="the longest a batch keeps gathering once it has started "
                   "(default 2; a lone request never waits)")
    p.add_argument("--batch-imported", action="store_true",
                   help="batch imported ONNX graphs too (only when their first axis is "
                   "independent rows)")
    p.add_argument("--max-body-mb", type=float, metavar="MB",
                   help="largest request body accepted (default 64); larger ones get 413")
    p.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="a Host name clients may use besides 127.0.0.1, localhost, ::1 and "
                   "--host (repeatable; * accepts any, e.g. behind a proxy that checks it)")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="a web page origin allowed to call the server, e.g. "
                   "https://app.example.com (repeatable; * for any); none by default")

    from studio.cli_requests import add_parser as add_requests_parser

    add_requests_parser(cmd)

    p = cmd("predict", "predict raw rows (a table file), or pictures for an image model")
    p.add_argument("ref", metavar="NAME[:N|@ALIAS]")
    p.add_argument("--input", required=True, type=Path,
                   help="a table of raw rows; for an image model also an image or a folder")
    p.add_argument("--output", type=Path, help="CSV to write (default: stdout)")

    cmd("devices", "the devices training can use (CUDA GPUs, mps, the CPU) with their memory; "
        "the first is the default")

    cmd("verify", "hash every stored file again; list damaged ones and what uses them "
        "(exit 1 when any is)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in (None, "gui"):
        return open_gui(args.home)
    try:
        if args.command == "devices":  # nothing of a workspace: it must not make one
            return devices(None, args)
        ws = Workspace.open(args.home)
        if not getattr(args, "json", False) and not os.environ.get("STUDIO_NO_NOTES"):
            tell_interruptions(ws)  # a script's JSON or the app's own server: not told there
        handler = handler_for(args)
        return handler(ws, args)
    except CliError as exc:
        print(f"studio: error: {exc}", file=sys.stderr)
        return exc.code
    except InputError as exc:
        print(f"studio: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except Cancelled as exc:
        print(f"studio: stopped: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except StudioError as exc:
        print(f"studio: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("studio: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `studio models ls | head`: the reader has what it wanted
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - nothing more is printed
        return EXIT_OK


def tell_interruptions(ws: Workspace) -> None:
    """Once, on the next command: the jobs whose terminal went away before they ended."""
    from studio.jobs.records import interruption_message, unnoticed_interruptions

    for row in unnoticed_interruptions(ws):
        print(f"studio: note: {interruption_message(row)}", file=sys.stderr)


def open_gui(home: str | None = None) -> int:
    """The desktop app, after checking that a window can open here at all."""
    from studio.gui.preflight import display_problem

    problem = display_problem()
    if problem is not None:
        print(f"studio: error: {problem}", file=sys.stderr)
        return EXIT_INPUT
    from studio.gui.app import main as gui_main

    return gui_main(home=home)


def gui_entry() -> int:
    """``studio-gui``: the app, or one line on why it cannot open."""
    return open_gui(None)


POLL_S = 0.05
JOB_EXIT_WAIT_S = 10.0


def run_job(ws: Workspace, kind: str, spec: dict[str, Any], quiet: bool,
            warnings: bool = True) -> dict[str, Any]:
    """Run a job through the shared runner, drawing its events as a terminal progress bar
    (``warnings``: also its warnings, as they come)."""
    from studio.cli_progress import TerminalView
    from studio.core.events import Done, Failed
    from studio.jobs import records
    from studio.jobs.records import reap_stale
    from studio.jobs.runner import JobRunner

    reap_stale(ws)  # jobs orphaned by an earlier parent that died are marked failed
    runner = JobRunner(ws, kind, spec)
    # Ctrl-C only sets a flag: a KeyboardInterrupt raised inside a queue or lock wait can
    # leave that lock held, and the job's events would never arrive again.
    interrupts = threading.Event()
    main_thread = threading.current_thread() is threading.main_thread()  # signals live there
    previous = previous_term = None
    view = TerminalView(quiet=quiet, warnings=warnings)
    stopping = False
    try:
        if main_thread:
            previous = signal.signal(signal.SIGINT, lambda *_: interrupts.set())
            # SIGTERM (kill, timeout, a service manager) asks to stop cleanly too: a Stop
            # keeps the best epoch; only a lost terminal abandons the run.
            previous_term = signal.signal(signal.SIGTERM, lambda *_: interrupts.set())
        runner.start()
        while runner.final is None:
            for event in runner.poll():
                view.show(event)
            if interrupts.is_set():
                interrupts.clear()
                if stopping:
                    records.finish(ws, runner.job_id or "", "cancelled", "killed by the user")
                    runner.kill()
                else:
                    print("studio: stopping after the current step (Ctrl-C again to kill)",
                          file=sys.stderr)
                    runner.stop(grace_s=30)
                    stopping = True
            time.sleep(POLL_S)
    finally:
        for sig, handler in ((signal.SIGINT, previous), (signal.SIGTERM, previous_term)):
            if handler is not None:
                signal.signal(sig, handler)
        view.close()
    # The verdict comes before the job's process has ended: its last act is closing the
    # database (which folds the write-ahead log back). A script that copies or opens the
    # workspace once this command returns must find it whole.
    with contextlib.suppress(subprocess.TimeoutExpired):
        runner.wait(timeout=JOB_EXIT_WAIT_S)
    final = runner.final
    if isinstance(final, Done):
        return final.result
    assert isinstance(final, Failed)
    if final.cancelled or stopping:  # stopped by the person, however it ended
        raise Cancelled(final.error if final.cancelled else f"stopped: {final.error}")
    raise CliError(final.error, EXIT_INPUT if final.user_error else EXIT_FAILED)


def data_import(ws: Workspace, args: argparse.Namespace) -> int:
    from studio.core.names import check_name

    if args.name is not None:
        check_name(args.name)
    if not args.path.exists():
        raise InputError(f"{args.path}: no such file or folder")
    if args.sheet is not None and args.path.suffix.lower() not in (".xlsx", ".xlsm"):
        raise InputError(f"{args.path.name}: --sheet is for Excel workbooks (.xlsx, .xlsm)")
    from studio.core.datasets.catalog import find_imported

    seen = find_imported(ws, args.path, args.name, args.sheet)
    if seen is not None:  # unchanged since it was imported: no job, no reading
        report = {**seen.import_report(), "already_imported": True}
    else:
        spec = {"path": str(args.path.resolve()), "name": args.name, "sheet": args.sheet}
        # its warnings come after the summary, not also above it
        report = {**run_job(ws, "import", spec, quiet=args.json, warnings=False),
                  "already_imported": False}
    from studio.core.datasets.report import import_summary

    out(args, report, import_summary(report))
    if not args.json:
        for warning in report.get("warnings") or []:
            print(f"studio: warning: {warning}", file=sys.stderr)
    return EXIT_OK


def data_ls(ws: Workspace, args: argparse.Namespace) -> int:
    from studio.core.datasets.catalog import list_datasets

    items = list_datasets(ws)
    lines = [f"{'NAME':<24} {'ROWS':>9} {'COLUMNS':>7}  SOURCE"] + [
        f"{d.name:<24} {d.rows:>9,} {len(d.columns):>7}  {d.source}" for d in items]
    out(args, {"datasets": [d.to_dict() for d in items]},
        "\n".join(lines) if items else "no datasets yet: studio data import FILE")
    return EXIT_OK


def data_show(ws: Workspace, args: argparse.Namespace) -> int:
    from studio.core.datasets.catalog import dataset_profile, get_dataset

    info = get_dataset(ws, args.name)
    profile = dataset_profile(ws, info)
    lines = [f"{info.name}: {info.rows:,} rows × {len(info.columns)} columns  ({info.source})"]
    if info.description:
        lines.append(info.description)
    lines.append(f"{'COLUMN':<24} {'KIND':<12} {'MISSING':>8} {'UNIQUE':>8}  NOTES")
    lines += [f"{c['name'][:24]:<24} {c['kind']:<12} {c['missing']:>8,} {c['unique']:>8,}  "
              f"{'; '.join(c.get('warnings', []))}" for c in profile]
    out(args, {**info.to_dict(), "profile": profile}, "\n".join(lines))
    return EXIT_OK


def data_rename(ws: Workspace, args: argparse.Namespace) -> int:
    from studio.core.datasets.catalog import rename_dataset

    info = rename_dataset(ws, args.name, args.new_name)
    out(args, info.to_dict(), info.name)
    return EXIT_OK


def data_describe(ws: Workspace, args: argparse.Namespace) -> int:
    from studio.core.datasets.catalog import describe_dataset

    info = describe_dataset(ws, args.name, args.description)
    out(args, info.to_dict(), "")
    return EXIT_OK


def data_rm(ws: Workspace, args: argparse.Namespace) -> int:
    from studio.core.datasets.catalog import delete_dataset

    delete_dataset(ws, args.name)
    out(args, {"deleted": args.name}, f"deleted {args.name}")
    return EXIT_OK


def data_export(ws: Workspace, args: argparse.Namespace) -> int:
    from studio.core.datasets.catalog import export_csv

    rows = export_csv(ws, args.name, args.output)
    out(args, {"dataset": args.name, "rows": rows, "output": str(args.output)},
        f"wrote {rows:,} row{'' if rows == 1 else 's'} to {args.output}")
    return EXIT_OK


def train(ws: Workspace, args: argparse.Namespace) -> int:
    from studio.core.datasets.catalog import get_dataset
    from studio.core.training.metrics import headline

    if args.list_params:
        print(family_params_text())
        return EXIT_OK
    if args.resume:
        spec = resumed_spec(ws, args)
        info = get_dataset(ws, spec.dataset)
        spec.check_columns(info.column_names)
    else:
        spec, info = new_spec(ws, args)
    result = run_job(ws, "train", spec.to_dict(), quiet=args.json)
    if "version" not in result:  # a machine of a distributed run whose process is not rank 0
        out(args, result, "this machine's processes finished their share of the run; the "
            "machine with rank 0 registers the version")
        return EXIT_OK
    if result["name"] != info.name and args.model is None and not args.json:
        # the pipeline names it once the task is known: the dataset's model answers another
        # question, so this run is a model of its own
        from studio.core.registry import latest_version

        other = latest_version(ws, info.name)
        said = f"{other.ref} predicts {other.manifest.raw['target']!r}; " if other else ""
        print(f"model: {result['name']} ({said}name another with --model)", file=sys.stderr)
    shown = ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc", "log_loss", "r2", "mae",
             "rmse", "mape", "n")
    metrics = {k: result["metrics"][k] for k in shown if result["metrics"].get(k) is not None}
    text = f"{result['version']}\nfamily {result.get('family', '')}  " + "  ".join(
        f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items())
    if len(result.get("leaderboard", [])) > 1:
        text += "\n" + leaderboard_text(result["leaderboard"])
    if not args.json:
        for warning in result.get("warnings", []):
            print(f"studio: warning: {warning}", file=sys.stderr)
    out(args, {"version": result["version"], "task": result["task"],
               "family": result.get("family"), "leaderboard": result.get("leaderboard", []),
               "device": result["device"], "metrics": result["metrics"],
               "warnings": result.get("warnings", []),
               "headline": headline(result["task"], result["metrics"])}, text)
    return EXIT_OK


def new_spec(ws: Workspace, args: argparse.Namespace) -> tuple[Any, Any]:
    """The run the options ask for, checked against the dataset before a process starts."""
    from studio.core.datasets.catalog import get_dataset
    from studio.core.names import check_name
    from studio.core.training.spec import TrainSpec, default_threads

    if args.dataset is None:
        raise InputError("name the dataset to train on: studio train DATASET")
    if args.model is not None:
        check_name(args.model, "model")
    info = get_dataset(ws, args.dataset)
    preprocessing: dict[str, Any] = {}
    if args.recipe is not None:
        try:
            preprocessing = json.loads(args.recipe.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"{args.recipe}: not a readable JSON file: {exc}") from None
    target = args.target
    if target is None:
        target, why = suggested_target(ws, info)
        if not args.json:
            print(f"target: {target} ({why}; choose another with --target)", file=sys.stderr)
    spec = TrainSpec(
        dataset=info.name, target=target, model=args.model, task=args.task,
        family=args.family, params=parse_params(args.param), time_budget_s=args.time_budget,
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr, seed=args.seed,
        device=args.device, threads=default_threads(leave_one_free=False),
        preprocessing=preprocessing, distributed=distributed_options(args),
    ).validate().check_columns(info.column_names)
    if args.target is not None:
        from studio.core.datasets.catalog import remember_choices

        remember_choices(ws, info.name, target, args.task)
    return spec, info


def distributed_options(args: argparse.Namespace) -> dict[str, Any] | None:
    """``--nproc-per-node`` and friends as the spec's ``distributed`` (None: one process)."""
    if args.nproc_per_node is None and args.nnodes is None and not args.rdzv_endpoint:
        return None
    out: dict[str, Any] = {
        "nproc_per_node": 1 if args.nproc_per_node is None else args.nproc_per_node,
        "nnodes": 1 if args.nnodes is None else args.nnodes}
    if args.rdzv_endpoint:
        out["rdzv_endpoint"] = args.rdzv_endpoint
    if args.rdzv_id:
        out["rdzv_id"] = args.rdzv_id
    return out


def resumed_spec(ws: Workspace, args: argparse.Namespace) -> Any:
    """The run ``--resume`` names, to go on from its checkpoints with its own settings (a
    new time budget may be given)."""
    from studio.core import checkpoints, job_rows, runs
    from studio.core.training.spec import TrainSpec, default_threads

    source = runs.get_run(ws, args.resume, history=False)
    run = source.run
    given = [o for o, v in (("DATASET", args.dataset), ("--target", args.target),
                            ("--family", args.family != "auto"), ("--param", args.param),
                            ("--epochs", args.epochs), ("--model", args.model),
                            ("--lr", args.lr), ("--batch-size", args.batch_size),
                            ("--seed", args.seed), ("--recipe", args.recipe),
                            ("--task", args.task != "auto"),
                            ("--nproc-per-node", args.nproc_per_node),
                            ("--nnodes", args.nnodes), ("--rdzv-endpoint", args.rdzv_endpoint),
                            ("--rdzv-id", args.rdzv_id)) if v]
    if given:
        raise InputError(f"--resume goes on with the run's own settings; leave out "
                         f"{', '.join(given)} (or start a new run)")
    if run.status in runs.ACTIVE and job_rows.alive(ws.db.db["jobs"].get(run.id)):
        raise InputError(f"run {run.id} is still {run.status}")
    if run.status == "done" and not run.resumable:
        raise InputError(f"run {run.id} ran to its end ({run.version}); there is nothing to "
                         "resume")
    if int((source.spec.get("distributed") or {}).get("nnodes", 1)) > 1:
        raise InputError(f"run {run.id} trained on several machines: only rank 0's machine "
                         "kept checkpoints, so it cannot be resumed; start a new run")
    if not checkpoints.resumable(ws, run.id):
        raise InputError(f"run {run.id} has no checkpoint to resume from (only the neural "
                         "families keep them, once an epoch has ended)")
    spec = {**runs.resume_fields(source), "threads": default_threads(leave_one_free=False)}
    if args.time_budget:
        spec["time_budget_s"] = args.time_budget
    if args.device != "auto":  # a checkpoint goes on on any device
        spec["device"] = args.device
    return TrainSpec.from_dict(spec)


def parse_params(items: list[str]) -> dict[str, str]:
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--param {item!r}: write KEY=VALUE, e.g. epochs=100")
        params[key.strip()] = value.strip()
    return params


def family_params_text() -> str:
    from studio.core.training.families import all_families

    lines = []
    for f in all_families():
        lines.append(f"{f.name}  ({f.title}: {f.description})")
        for p in f.params:
            default = ",".join(map(str, p.default)) if isinstance(p.default, list) else p.default
            lines.append(f"  {p.name:<18} {default!s:<10} {p.help}")
    return "\n".join(lines)


def leaderboard_text(rows: list[dict[str, Any]]) -> str:
    metric = rows[0]["metric"] if rows else ""
    lines = [f"  {'FAMILY':<16} {'VALIDATION':>10} {'TEST':>8} {'FIT':>8} {'SIZE':>9}  "
             f"({metric})"]
    for r in sorted(rows, key=lambda r: (-r["validation"], not r.get("chosen"))):
        size = f"{r['size_bytes'] / 1024:,.0f} KiB" if r.get("size_bytes") else "-"
        lines.append(f"{'*' if r.get('chosen') else ' '} {r['family']:<16} "
                     f"{r['validation']:>10.4f} {r['test']:>8.4f} {r['fit_s']:>7.1f}s "
                     f"{size:>9}" + (f"  {r['version']}" if r.get("version") else ""))
    return "\n".join(lines)


def suggested_target(ws: Workspace, info: Any) -> tuple[str, str]:
    """The column to predict when none is given, and why; an error when nothing says which."""
    from studio.core.datasets.catalog import dataset_profile
    from studio.core.datasets.prepare import is_image_dataset
    from studio.core.datasets.profile import suggest_target

    if is_image_dataset(info.column_names):
        return "label", "the class folders"
    if info.choices.get("target") in info.column_names:
        return info.choices["target"], "chosen last time"
    suggestion = suggest_target(dataset_profile(ws, info))
    if suggestion is None:
        raise InputError(f"no column of {info.name!r} looks like the one to predict; choose "
                         f"it with --target (columns: {', '.join(info.column_names)})")
    return suggestion.name, f"suggested: {suggestion.reason}"


def evaluate(ws: Workspace, args: argparse.Namespace) -> int:
    from studio.cli_evaluate import summary
    from studio.cli_progress import TerminalView
    from studio.core.registry import get_version
    from studio.core.training.evaluate_dataset import evaluate_version

    view = TerminalView(quiet=args.json)
    try:
        doc = evaluate_version(ws, get_version(ws, args.ref), args.dataset, view.show,
                               split=args.split)
    finally:
        view.close()
    if doc["training_data"] and doc["split"] == "all":
        print(f"studio: warning: most of these rows were seen in training, so the scores "
              f"flatter {doc['model']}; --split test scores only its test rows",
              file=sys.stderr)
    out(args, doc, summary(doc))
    return EXIT_OK


def serve(ws: Workspace, args: argparse.Namespace) -> int:
    import os

    from studio.serving.guard import check_origin
    from studio.serving.limits import MiB, ServeLimits
    from studio.serving.server import serve as run_server

    def announce(url: str, generated_key: str | None, protected: bool) -> None:
        doc = {"url": url, "models": args.refs, "api_key_required": protected}
        if generated_key:
            doc["api_key"] = generated_key
        text = f"Serving {', '.join(args.refs)} at {url}  (Ctrl-C to stop)"
        if generated_key:
            text += f"\nAPI key (send as 'Authorization: Bearer KEY'): {generated_key}"
        out(args, doc, text)
        sys.stdout.flush()

    if not 0 <= args.port <= 65535:
        raise InputError(f"port must be between 0 and 65535, got {args.port}")
    given: dict = {"allowed_hosts": tuple(args.allowed_host)}
    if args.max_body_mb is not None:
        if not 0 < args.max_body_mb <= 4096:
            raise InputError(f"--max-body-mb must be between 0 and 4096, got {args.max_body_mb:g}")
        given["max_body_bytes"] = int(args.max_body_mb * MiB)
    try:
        given["cors_origins"] = tuple(check_origin(o) for o in args.cors_origin)
        limits = ServeLimits.from_env(**given)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    # uvicorn shuts down cleanly before re-raising Ctrl-C, which is how a user stops serving.
    with contextlib.suppress(KeyboardInterrupt):
        run_server(ws, args.refs, args.host, args.port,
                   args.api_key or os.environ.get("STUDIO_API_KEY"), announce,
                   canary=args.canary, limits=limits, batch=batch_config(args))
    return EXIT_OK


def requests_cmd(ws: Workspace, args: argparse.Namespace) -> int:
    from studio.cli_requests import requests

    return requests(ws, args)


def batch_config(args: argparse.Namespace) -> Any:
    from studio.serving.batcher import BatchConfig

    if not 1 <= args.max_batch_size <= 100_000:
        raise InputError(f"--max-batch-size must be from 1 to 100000, not {args.max_batch_size}")
    if not 0 <= args.max_batch_delay_ms <= 1000:
        raise InputError("--max-batch-delay-ms must be from 0 to 1000, not "
                         f"{args.max_batch_delay_ms:g}")
    return BatchConfig(max_batch_size=args.max_batch_size,
                       max_batch_delay_s=args.max_batch_delay_ms / 1000,
                       imported=args.batch_imported)


def predict(ws: Workspace, args: argparse.Namespace) -> int:
    from studio.core.datasets.readers import read_table
    from studio.core.files import atomic_write_text, csv_safe
    from studio.core.predict import Predictor, predictions_frame
    from studio.core.registry import get_version

    predictor = Predictor(ws, get_version(ws, args.ref))
    image = next((f["name"] for f in predictor.recipe["features"] if f["kind"] == "image"), None)
    if image is not None and (args.input.is_dir() or looks_like_image(args.input)):
        frame = image_rows(args.input, image)
    else:
        frame = read_table(args.input, warn=lambda note: print(f"studio: note: {note}",
                                                                  file=sys.stderr))
        if image is not None and image in frame.columns:  # paths relative to the table
            base = args.input.resolve().parent
            frame[image] = [str(base / v) if isinstance(v, str) and len(v) < 4096
                            and (base / v).is_file() else v for v in frame[image]]
    result = predictor.predict_frame(frame, allow_paths=True)
    if args.json:
        out(args, {"model": predictor.version.ref, **result}, "")
        if args.output is None:
            return EXIT_OK
    text = csv_safe(predictions_frame(frame, result)).to_csv(index=False)
    if args.output is not None:
        atomic_write_text(args.output, text)
        if not args.json:
            print(f"wrote {len(frame)} predictions to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def looks_like_image(path: Path) -> bool:
    from studio.core.datasets.pixels import IMAGE_SUFFIXES

    return path.suffix.lower() in IMAGE_SUFFIXES


def image_rows(path: Path, column: str) -> Any:
    """One row per picture: the file itself, or every image under a folder."""
    import pandas as pd

    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    files = ([path] if path.is_file() else
             sorted(f for f in path.rglob("*") if f.is_file() and looks_like_image(f)))
    if not files:
        raise InputError(f"{path}: no image files found")
    return pd.DataFrame({column: [str(f) for f in files]})


def verify(ws: Workspace, args: argparse.Namespace) -> int:
    """Exit 1, not 2, when something is damaged: the workspace is at fault, not the input."""
    from studio.cli_progress import TerminalView
    from studio.core.integrity import verify_workspace

    view = TerminalView(quiet=args.json)
    try:
        report = verify_workspace(ws, view.show)
    finally:
        view.close()
    if args.json:
        out(args, report.to_dict(), "")
    elif report.ok:
        print(report.summary())
    else:
        print("\n".join(report.lines()[:-1]))
        print(f"studio: error: {report.summary()}", file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_FAILED


def tune_cmd(ws: Workspace, args: argparse.Namespace) -> int:
    from studio.core.datasets.catalog import get_dataset
    from studio.core.training import tune
    from studio.core.training.spec import default_threads

    if args.register_best:
        version = tune.register_best(ws, args.register_best)
        out(args, {"version": version.ref, "study": args.register_best}, version.ref)
        return EXIT_OK
    if args.dataset is None:
        raise InputError("name the dataset to tune on: studio tune DATASET")
    info = get_dataset(ws, args.dataset)
    target = args.target
    if target is None:
        target, why = suggested_target(ws, info)
        if not args.json:
            print(f"target: {target} ({why}; choose another with --target)", file=sys.stderr)
    spec = tune.TuneSpec(
        dataset=info.name, target=target, task=args.task, family=args.family,
        trials=args.trials, time_budget_s=args.time_budget, trial_budget_s=args.trial_budget,
        epochs=args.epochs, study=args.study, seed=args.seed, device=args.device,
        threads=default_threads(leave_one_free=False)).validate()
    spec.trial_spec({}, "mlp").check_columns(info.column_names)
    result = run_job(ws, "tune", spec.to_dict(), quiet=args.json)
    best = result["best"]
    lines = [f"study {result['study']}: {result['ran']} trials run ({result['trials']} in all)",
             f"best: trial {best['number']} ({best['family']}), validation {result['metric']} "
             f"{best['value']:.4f}, run {best['run']}",
             "params " + ", ".join(f"{k}={v}" for k, v in sorted(best["params"].items()))]
    if args.register:
        version = tune.register_best(ws, result["study"])
        result["version"] = version.ref
        lines.append(f"registered {version.ref}")
    else:
        lines.append(f"register it: studio tune --register-best {result['study']}")
    out(args, result, "\n".join(lines))
    return EXIT_OK


def devices(ws: Workspace | None, args: argparse.Namespace) -> int:
    from studio.core.devices import detect
    from studio.core.printable import human_bytes

    found = detect()
    lines = [f"{'DEVICE':<8} {'MEMORY':>10} {'FREE':>10}  MODEL"]
    for d in found:
        lines.append(f"{d.name:<8} {human_bytes(d.memory_bytes) if d.memory_bytes else '-':>10} "
                     f"{human_bytes(d.free_bytes) if d.free_bytes else '-':>10}  {d.title} "
                     f"({d.detail})")
    out(args, {"devices": [d.to_dict() for d in found], "default": found[0].name},
        "\n".join(lines))
    return EXIT_OK


def compress_cmd(ws: Workspace, args: argparse.Namespace) -> int:
    from studio.cli_compress import compress

    return compress(ws, args)


HANDLERS = {
    ("data", "import"): data_import, ("data", "ls"): data_ls, ("data", "show"): data_show,
    ("data", "rename"): data_rename, ("data", "describe"): data_describe,
    ("data", "rm"): data_rm, ("data", "export"): data_export, ("train", None): train,
    ("evaluate", None): evaluate, ("compress", None): compress_cmd,
    ("serve", None): serve, ("requests", None): requests_cmd,
    ("predict", None): predict, ("verify", None): verify, ("devices", None): devices,
    ("tune", None): tune_cmd,
}



def handler_for(args: argparse.Namespace) -> Any:
    if args.command == "models":
        from studio.cli_models import HANDLERS as MODELS

        return MODELS[args.models_command]
    if args.command == "runs":
        from studio.cli_runs import HANDLERS as RUNS

        return RUNS[args.runs_command]
    return HANDLERS[(args.command, getattr(args, f"{args.command}_command", None))]


if __name__ == "__main__":
    raise SystemExit(main())
