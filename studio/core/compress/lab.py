"""One run of the compression lab: methods applied to a version, each result evaluated on
the source's test split, measured beside the source, and registered as a version of its own.

A run either applies each method to the source (side by side) or chains them (distil →
prune → int8: each stage starts from the one before and is its own version). Each result's
row is emitted as soon as it is known (:class:`~studio.core.events.Compressed`), so a table
fills while the run goes on. A Stop ends the run before the stage at work is registered:
the stages already registered are whole versions, and no half one is left.
"""

from __future__ import annotations

import copy
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from studio.core import registry
from studio.core.compress import methods
from studio.core.compress.source import Source, load_source, missing_data_reason, sample
from studio.core.errors import Abandoned, Cancelled, InputError
from studio.core.events import Compressed, Emit, Log, Progress, Started
from studio.core.workspace import Workspace

HEADLINE = {"classification": "accuracy", "regression": "r2"}
COLLAPSE_POINTS = 5.0  # a drop of more than this (in points of the headline) is a collapse
MEASURE_ROWS = 64
REPEATS = 10


@dataclass(frozen=True)
class Step:
    method: str
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "settings": dict(self.settings)}


@dataclass
class Stage:
    """What one method made: the files of a version and what to say about it."""

    onnx: bytes
    files: dict[str, bytes]
    details: dict[str, Any]
    network: dict[str, Any] | None = None  # the torch architecture, where there are weights


def parse_steps(raw: Sequence[Mapping[str, Any]]) -> list[Step]:
    """Steps from a job spec (``{"method", "settings"}`` each), their settings checked."""
    if not raw:
        raise InputError("no compression method was chosen")
    out = []
    for item in raw:
        method = methods.get(str(item.get("method", "")))
        out.append(Step(method.name, method.resolve(dict(item.get("settings") or {}))))
    return out


def run(ws: Workspace, source_ref: str, steps: Sequence[Step], emit: Emit,
        should_stop: Callable[[], bool] = lambda: False, job_id: str | None = None,
        chain: bool = False, dataset: str | None = None, threads: int = 1,
        repeats: int = REPEATS) -> dict[str, Any]:
    started = time.perf_counter()
    version = registry.get_version(ws, source_ref)
    steps = [Step(s.method, methods.get(s.method).resolve(s.settings)) for s in steps]
    if not steps:
        raise InputError("no compression method was chosen")
    learns = any(s.method in ("prune", "distill") for s in steps)
    emit(Started(job_id or "", "compress", _device() if learns else "cpu"))
    _check_applicable(version, steps, chain)
    if not chain:
        seen = [(s.method, sorted(s.settings.items())) for s in steps]
        twice = next((steps[i].method for i in range(len(seen)) if seen[i] in seen[:i]), None)
        if twice:
            raise InputError(f"{twice} is asked for twice with the same settings: it would "
                             "make the same version twice")
    if dataset and version.manifest.recipe is None:
        raise InputError(f"{version.ref} takes tensors only (it has no recipe): it cannot "
                         f"read the rows of {dataset!r}")
    needs_data = any(methods.get(s.method).needs_data for s in steps)
    no_data = None if dataset else missing_data_reason(ws, version)
    if needs_data and no_data:
        which = ", ".join(s.method for s in steps if methods.get(s.method).needs_data)
        raise InputError(f"{which} needs the training data: {no_data}")
    emit(Progress("prepare", 0, 0, f"loading {version.ref} and its data"))
    source = load_source(ws, version, need_data=not no_data, dataset=dataset, emit=emit,
                         should_stop=should_stop)
    if source.data is None:
        emit(Log(f"results are measured but not evaluated: {no_data}", "warning"))
    feed = _measuring_sample(source)
    metric = HEADLINE.get(version.task or "")
    emit(Progress("evaluate", 0, len(steps), f"evaluating {version.ref} on its test split"))
    base = _evaluate(source, source.onnx)
    rows: list[dict[str, Any]] = []
    parent = version
    for i, step in enumerate(steps):
        should_stop() and _cancel(rows)
        start = parent if chain else version
        label = f"{step.method} of {start.ref}"
        emit(Progress("compress", i, len(steps), f"{label} ({i + 1} of {len(steps)})"))
        try:
            stage = _apply(ws, source, start, step, emit, should_stop, feed)
            should_stop() and _cancel(rows)
            _check_finite(source.onnx, stage.onnx, feed, step.method)
            emit(Progress("evaluate", i, len(steps), f"evaluating {label}"))
            evaluation = _evaluate(source, stage.onnx)
            emit(Progress("measure", i, len(steps), f"measuring {label} beside {version.ref}"))
            from studio.core.compress.measure import measure_pair

            pair = measure_pair(source.onnx, stage.onnx, _inputs(version), feed, threads,
                                repeats)
        except Abandoned:
            raise
        except Cancelled:
            _cancel(rows)  # said the lab's way, with what was kept
        except Exception as exc:
            # one method failing (a runtime refusing a graph, a NaN metric) fails its row;
            # the results already registered are reported and the other methods still run
            message = str(exc) if isinstance(exc, InputError) else \
                f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, InputError):
                emit(Log(traceback.format_exc(), "debug"))
            row = _failed_row(step, start, message, metric)
            rows.append(row)
            emit(Log(f"{label} failed: {message}", "warning"))
            emit(Compressed(row))
            if chain:
                break
            continue
        should_stop() and _cancel(rows)  # the last moment a Stop keeps this stage out
        row = _row(step, start, stage, evaluation, base, pair, metric)
        made = _register(ws, source, start, step, stage, evaluation, row, job_id)
        row["version"] = made.ref
        rows.append(row)
        emit(Compressed(row))
        if row["collapsed"]:
            emit(Log(f"{made.ref} ({step.method}) lost {-row['delta_points']:.1f} points of "
                     f"{metric}: registered, flagged, and never promoted on its own",
                     "warning"))
        if row["size_ratio"] > 1:
            emit(Log(f"{made.ref} ({step.method}) is larger than {version.ref} "
                     f"({row['size_ratio']:.2f}×): the method does not pay on this model",
                     "warning"))
        parent = made
    emit(Progress("done", len(steps), len(steps),
                  f"{sum(1 for r in rows if r['version'])} of {len(steps)} registered"))
    return {"source": version.ref, "metric": metric,
            "source_value": base["value"] if base else None, "chain": chain,
            "not_evaluated": None if source.data is not None else no_data,
            "dataset": source.dataset, "threads": threads, "results": rows,
            "duration_s": round(time.perf_counter() - started, 3)}


def _cancel(rows: Sequence[Mapping[str, Any]]) -> None:
    kept = [str(r["version"]) for r in rows if r.get("version")]
    raise Cancelled("no half-made version was kept"
                    + (f"; made before the stop: {', '.join(kept)}" if kept else ""))


def _check_applicable(version: registry.Version, steps: Sequence[Step], chain: bool) -> None:
    """Refuse before any work what cannot apply: to the source, or in a chain to what the
    stages before it make (nothing follows int8; only a network is pruned)."""
    manifest = version.manifest
    for i, step in enumerate(steps):
        method = methods.get(step.method)
        before = [s.method for s in steps[:i]] if chain else []
        if any(b.startswith("int8") or b == "fp16" for b in before):
            raise InputError(f"{step.method} cannot follow {before[-1]} in a chain: put "
                             "quantization last")
        if "distill" in before:
            continue  # what follows a distillation works on the student, a known network
        reason = methods.unfit_reason(method, manifest)
        if reason:
            raise InputError(f"{step.method} does not apply to {version.ref}: {reason}")


def _apply(ws: Workspace, source: Source, start: registry.Version, step: Step, emit: Emit,
           should_stop: Callable[[], bool], feed: Mapping[str, np.ndarray]) -> Stage:
    s = step.settings
    onnx = source.onnx if start.ref == source.ref else registry.read_file(ws, start,
                                                                          "model.onnx")
    if step.method == "int8-dynamic":
        from studio.core.compress.quantize import int8_dynamic

        return Stage(int8_dynamic(onnx, per_channel=bool(s["per_channel"])), {}, {})
    if step.method == "int8-static":
        from studio.core.compress.quantize import int8_static

        assert source.data is not None
        calibration = sample(source.data, source.data.train, int(s["calibration_rows"]))
        return Stage(int8_static(onnx, calibration, per_channel=bool(s["per_channel"])), {},
                     {"calibration_rows": int(min(len(source.data.train),
                                                  s["calibration_rows"]))})
    if step.method == "fp16":
        from studio.core.compress.quantize import fp16

        # the values' ranges seen on training rows (or the timing sample) say what stays fp32
        rows = sample(source.data, source.data.train, 512) if source.data is not None \
            else feed
        return Stage(fp16(onnx, rows), {},
                     {"note": "fp16 saves size; on a CPU it is not faster"})
    ctx = _context(emit, should_stop, source)
    assert source.data is not None
    if step.method == "prune":
        from studio.core.compress import network, prune

        model, config = network.load(ws, start)
        pruned = prune.prune(model, config, source.data, str(s["kind"]), float(s["sparsity"]),
                             int(s["epochs"]), ctx)
        return Stage(pruned.exported.onnx, dict(pruned.exported.files), pruned.details,
                     pruned.config)
    if step.method == "distill":
        from studio.core.compress.distill import distill

        student = distill(onnx, source.data, float(s["fraction"]), float(s["temperature"]),
                          float(s["alpha"]), int(s["epochs"]), ctx)
        return Stage(student.exported.onnx, dict(student.exported.files), student.details,
                     student.config)
    raise InputError(f"unknown method {step.method!r}")


def _device() -> str:
    from studio.core.training.pipeline import choose_device
    from studio.core.training.spec import default_threads

    return choose_device("auto", default_threads(leave_one_free=False))


def _context(emit: Emit, should_stop: Callable[[], bool], source: Source) -> Any:
    """How a fine-tune or a student trains: as a training run would, on the GPU when there
    is one, torch held to the training threads."""
    from studio.core.training.families.base import FitContext
    from studio.core.training.spec import default_threads

    seed = int(((source.version.manifest.raw.get("training") or {}).get("seed")) or 0)
    return FitContext(emit, should_stop, None, _device(), default_threads(
        leave_one_free=False), seed)


def _check_finite(source: bytes, candidate: bytes, feed: Mapping[str, np.ndarray],
                  method: str) -> None:
    """Refuse a result that gives infinity or NaN where its source gives numbers (a value
    beyond a narrower type's range): caught here even when there is no data to score it."""
    from studio.core.training.evaluate import onnx_runner

    try:
        want = onnx_runner(source)(feed)
    except Exception:  # tensors this runner cannot feed: the measuring says why
        return
    got = onnx_runner(candidate)(feed)
    if method == "fp16":
        # ONNX Runtime on a CPU computes fp16 in fp32 and would hide an overflow a GPU
        # meets: a few rows through ONNX's exact reference arithmetic tell
        got = _reference(candidate, {k: np.asarray(v)[:8] for k, v in feed.items()}, got)
        want = want[:len(got)]
    bad = int((~np.isfinite(got) & np.isfinite(want)).sum())
    if bad:
        raise InputError(f"{method} gives infinite or undefined outputs ({bad:,} of "
                         f"{got.size:,} on sample rows) where the source gives numbers: "
                         "this model's values do not fit the narrower type")


def _reference(onnx_bytes: bytes, feed: Mapping[str, np.ndarray],
               fallback: np.ndarray) -> np.ndarray:
    """The graph's first output on ``feed`` by ONNX's reference evaluator (exact dtypes);
    ``fallback`` where it cannot run the graph."""
    try:
        import onnx
        from onnx.reference import ReferenceEvaluator

        model = onnx.load_from_string(onnx_bytes)
        types = {i.name: i.type.tensor_type.elem_type for i in model.graph.input}
        inputs = {k: np.asarray(v).astype(np.int64 if types.get(k) == 7 else np.float32)
                  for k, v in feed.items() if k in types}
        return np.asarray(ReferenceEvaluator(model).run(None, inputs)[0])
    except Exception:  # an operator the evaluator lacks: ONNX Runtime's answer stands
        return fallback


def _inputs(version: registry.Version) -> list[dict[str, Any]]:
    return [t.to_dict() for t in version.manifest.inputs]


def _measuring_sample(source: Source) -> dict[str, np.ndarray]:
    """Rows to time the models on: test rows as the recipe makes them, or (a model that
    takes tensors only) seeded random tensors of its inputs' shapes."""
    if source.data is not None:
        return sample(source.data, source.data.test, MEASURE_ROWS)
    rng = np.random.default_rng(0)
    out = {}
    for t in source.version.manifest.inputs:
        shape = [MEASURE_ROWS, *[d if d > 0 else 1 for d in t.shape[1:]]]
        if t.datatype.startswith("INT") or t.datatype.startswith("UINT"):
            out[t.name] = rng.integers(0, 2, size=shape)
        else:
            out[t.name] = rng.standard_normal(shape).astype(np.float32)
    return out


def _evaluate(source: Source, onnx: bytes) -> dict[str, Any] | None:
    """The headline metric and the evaluation of ``onnx`` on the source's test split; None
    without data."""
    data = source.data
    if data is None:
        return None
    from studio.core.training.evaluation_step import evaluate_exported

    ev = evaluate_exported(onnx, data, importance=False, dataset=(source.dataset or {}).get(
        "name", ""), row_ids=None if data.rows is None else data.rows[data.test])
    metrics = ev["metrics"]
    return {"metrics": metrics, "document": ev["document"],
            "value": float(metrics[HEADLINE[data.task]])}


def _row(step: Step, start: registry.Version, stage: Stage, evaluation: dict[str, Any] | None,
         base: dict[str, Any] | None, pair: Any, metric: str | None) -> dict[str, Any]:
    value = evaluation["value"] if evaluation else None
    delta = None if value is None or base is None else (value - base["value"]) * 100
    return {
        "method": step.method, "settings": dict(step.settings), "parent": start.ref,
        "version": None, "status": "done", "message": "", "metric": metric,
        "value": value, "source_value": base["value"] if base else None,
        "delta_points": delta, "collapsed": delta is not None and delta < -COLLAPSE_POINTS,
        "size_ratio": pair.size_ratio, "latency_ratio": pair.latency_ratio,
        "throughput_ratio": pair.throughput_ratio,
        "measurement": pair.candidate.to_dict(), "source_measurement": pair.source.to_dict(),
        "details": stage.details,
    }


def _failed_row(step: Step, start: registry.Version, message: str,
                metric: str | None) -> dict[str, Any]:
    return {"method": step.method, "settings": dict(step.settings), "parent": start.ref,
            "version": None, "status": "failed", "message": message, "metric": metric,
            "value": None, "source_value": None, "delta_points": None, "collapsed": False,
            "size_ratio": None, "latency_ratio": None, "throughput_ratio": None,
            "measurement": None, "source_measurement": None, "details": {}}


# the parent's training keys that cut its data again exactly (source.py, evaluate)
RESPLIT = ("split", "seed", "task", "preprocessing", "dataset", "target")
# what a result's manifest does not take over from its parent's: it is written anew
RENEWED = ("format", "name", "version", "created", "files", "lineage", "compression",
           "leaderboard", "metrics", "network")


def _register(ws: Workspace, source: Source, start: registry.Version, step: Step,
              stage: Stage, evaluation: dict[str, Any] | None, row: dict[str, Any],
              job_id: str | None) -> registry.Version:
    parent = start.manifest.raw
    manifest = {k: copy.deepcopy(v) for k, v in parent.items() if k not in RENEWED}
    test = dict(evaluation["metrics"]) if evaluation else {}
    manifest["metrics"] = {"test": test} if test else {}
    if stage.network is not None:
        manifest["network"] = stage.network
        family = str(stage.network.get("family") or manifest.get("family") or "")
        # a student is a plain network of the family's kind, not the family's own model
        manifest["family"] = f"{family} student" if step.method == "distill" else family
    # Of the parent's training only what cuts its data again (the split, the seed, the
    # preprocessing) is true of this version; what trained it is this stage's own.
    trained = parent.get("training")
    manifest.pop("training", None)
    if isinstance(trained, dict):  # a model made elsewhere has none, and gets none
        section = {k: copy.deepcopy(trained[k]) for k in RESPLIT if k in trained}
        # a fine-tune's or a student's own knobs; a quantized graph keeps its parent's
        params = stage.details.get("params") or trained.get("params") or {}
        section.update(compressed=True, params=dict(params))
        if manifest.get("family"):
            section["family"] = manifest["family"]
        manifest["training"] = section
    flags = (["collapsed"] if row["collapsed"] else []) + (
        ["larger"] if row["size_ratio"] > 1 else [])
    manifest["compression"] = {
        "method": step.method, "parent": start.ref, "root": source.ref,
        "settings": dict(step.settings), "details": stage.details,
        "metric": row["metric"], "value": row["value"], "source_value": row["source_value"],
        "delta_points": row["delta_points"], "flags": flags,
        "measurement": row["measurement"], "source_measurement": row["source_measurement"],
        "ratios": {k: row[k] for k in ("size_ratio", "latency_ratio", "throughput_ratio")},
        "evaluated_on": source.dataset,
    }
    lineage = dict(parent.get("lineage") or {})
    dataset = lineage.get("dataset")
    if source.dataset is not None and step.method in ("prune", "distill"):
        # the rows this stage learnt from (a quantized graph learnt from none: it keeps its
        # parent's; where it was scored is in its compression section)
        manifest["dataset"] = dict(source.dataset)
        dataset = f"{source.dataset['name']}@{source.dataset['digest'][:12]}"
    manifest["lineage"] = {"dataset": dataset, "parent": start.ref, "job": job_id}
    files: dict[str, bytes] = {"model.onnx": stage.onnx, **stage.files}
    if evaluation:
        files["evaluation.json"] = evaluation["document"]
    from studio.core.compress.card import compression_card

    return registry.register_version(ws, start.name, files, manifest,
                                     compression_card(manifest, row), job_id=job_id)
