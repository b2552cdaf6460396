"""The compression lab end to end: a method applied to a registered version makes a new
version with its parent, evaluated on the source's test split and measured beside it; what
cannot apply is refused before any work; a Stop leaves no half version."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import copied_workspace, penguins_workspace, run_studio

from studio.core import registry
from studio.core.compress import lab, methods
from studio.core.compress.lab import Step
from studio.core.datasets import catalog
from studio.core.errors import Cancelled, InputError
from studio.core.events import Compressed, Event, Progress
from studio.core.registry.listing import lineage_edges, version_rows
from studio.core.workspace import Workspace


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """penguins:1 (mlp) and penguins:2 (boosted trees)."""
    return penguins_workspace(tmp_path_factory.mktemp("lab") / "ws", ("mlp", "boosted-trees"))


@pytest.fixture
def lws(template: Path, tmp_path: Path) -> Iterator[Workspace]:
    with copied_workspace(template, tmp_path / "ws") as ws:
        yield ws


def _run(ws: Workspace, ref: str, *steps: Step, **kw) -> tuple[dict, list[Event]]:
    events: list[Event] = []
    result = lab.run(ws, ref, list(steps), events.append, repeats=2, **kw)
    return result, events


def test_int8_is_a_new_version_judged_on_the_sources_test_split(lws: Workspace) -> None:
    source = registry.get_version(lws, "penguins:1")
    result, events = _run(lws, "penguins:1", Step("int8-dynamic"))
    (row,) = result["results"]
    assert [e.row for e in events if isinstance(e, Compressed)] == [row]
    made = registry.get_version(lws, row["version"])
    assert made.ref == "penguins:3"
    m = made.manifest
    assert (m.source, m.compression.method, m.compression.parent) == (
        "compression", "int8-dynamic", "penguins:1")
    assert m.lineage.parent == "penguins:1"
    # the same held-out rows as the source's own evaluation, scored again through each graph
    assert m.metrics["n"] == source.manifest.metrics["n"]
    assert result["source_value"] == pytest.approx(source.manifest.metrics["accuracy"])
    assert abs(row["delta_points"]) <= 2.0
    # measured, not assumed: the int8 file holds a quarter of the weights' bytes
    assert row["size_ratio"] < 0.4
    assert row["measurement"]["file_bytes"] == len(registry.read_file(lws, made, "model.onnx"))
    assert row["measurement"]["latency_p50_ms"] > 0 and row["throughput_ratio"] > 0
    evaluation = json.loads(registry.read_file(lws, made, "evaluation.json"))
    assert evaluation["split"] == "test"
    # the registry's listing and lineage know where it came from
    listed = {r.ref: r for r in version_rows(lws)}
    assert (listed["penguins:3"].source, listed["penguins:3"].parent) == (
        "compression", "penguins:1")
    assert ("penguins:3" in {ref for _, _, ref in lineage_edges(lws, "penguins", 1)["to"]})
    from studio.core.registry.labels import card_text

    card = card_text(lws, made)
    assert "penguins:1" in card and "int8-dynamic" in card


def test_quantization_cannot_be_followed_in_a_chain(lws: Workspace) -> None:
    before = len(version_rows(lws))
    with pytest.raises(InputError, match="put quantization last"):
        _run(lws, "penguins:1", Step("int8-dynamic"), Step("prune"), chain=True)
    assert len(version_rows(lws)) == before


def test_what_does_not_apply_is_refused_with_its_reason(lws: Workspace) -> None:
    trees = registry.get_version(lws, "penguins:2").manifest
    reasons = {m.name: r for m, r in methods.applicable(trees)}
    assert "boosted-tree" in reasons["int8-dynamic"] and "boosted-tree" in reasons["prune"]
    assert reasons["distill"] is None
    with pytest.raises(InputError, match="does not apply to penguins:2: a boosted-tree"):
        _run(lws, "penguins:2", Step("int8-dynamic"))
    with pytest.raises(InputError, match="no setting 'bits'; it has: per_channel"):
        lab.parse_steps([{"method": "int8-dynamic", "settings": {"bits": 4}}])
    with pytest.raises(InputError, match="unknown method 'int4'"):
        lab.parse_steps([{"method": "int4"}])


def test_a_version_whose_data_is_gone_asks_for_a_dataset(lws: Workspace) -> None:
    from studio.core.compress.source import missing_data_reason

    catalog.rename_dataset(lws, "penguins", "birds")  # renamed: still found by its content
    assert missing_data_reason(lws, registry.get_version(lws, "penguins:1")) is None
    lws.db.conn.execute("DELETE FROM datasets")
    lws.db.conn.commit()
    reason = missing_data_reason(lws, registry.get_version(lws, "penguins:1"))
    assert reason and "--dataset" in reason
    with pytest.raises(InputError, match="int8-static needs the training data"):
        _run(lws, "penguins:1", Step("int8-static"))
    # int8-dynamic needs no data: measured, not evaluated, and said so
    result, events = _run(lws, "penguins:1", Step("int8-dynamic"))
    assert result["results"][0]["value"] is None and result["results"][0]["version"]
    assert any("not evaluated" in getattr(e, "message", "") for e in events)
    # a dataset with the same columns stands in
    catalog.import_dataset(lws, Path(__file__).parents[1] / "resources/samples/penguins.csv",
                           "again")
    result, _ = _run(lws, "penguins:1", Step("int8-static"), dataset="again")
    assert result["results"][0]["value"] is not None


def test_a_stop_leaves_no_half_version(lws: Workspace) -> None:
    before = len(version_rows(lws))
    def stop_at_second() -> bool:
        return len([e for e in seen if isinstance(e, Compressed)]) >= 1

    seen: list[Event] = []
    with pytest.raises(Cancelled, match="no half-made version"):
        lab.run(lws, "penguins:1", [Step("int8-dynamic"), Step("fp16")], seen.append,
                stop_at_second, repeats=1)
    # the first result is whole and kept; the second was never registered
    assert len(version_rows(lws)) == before + 1
    assert [e.row["method"] for e in seen if isinstance(e, Compressed)] == ["int8-dynamic"]


def test_static_int8_calibrates_on_training_rows(lws: Workspace) -> None:
    result, _ = _run(lws, "penguins:1", Step("int8-static", {"calibration_rows": 32}))
    (row,) = result["results"]
    assert row["details"]["calibration_rows"] == 32
    assert abs(row["delta_points"]) <= 2.0
    made = registry.get_version(lws, row["version"])
    import onnx

    graph = onnx.load_from_string(registry.read_file(lws, made, "model.onnx")).graph
    assert any(n.op_type == "QuantizeLinear" for n in graph.node)


def test_the_cli_prints_the_table_and_the_new_reference(template: Path,
                                                        tmp_path: Path) -> None:
    import shutil

    home = tmp_path / "home"
    shutil.copytree(template, home)
    done = run_studio(home, "compress", "penguins:1", "--method", "int8-dynamic",
                      "--method", "fp16", "--repeats", "1", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["versions"] == ["penguins:3", "penguins:4"] and doc["version"] == "penguins:4"
    text = run_studio(home, "compress", "penguins:1", "--method", "int8-dynamic",
                      "--repeats", "1")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].split()[:3] == ["version", "method", "accuracy"]
    assert lines[1].split()[:2] == ["penguins:1", "source"]
    assert lines[2].split()[:2] == ["penguins:5", "int8-dynamic"]
    listed = run_studio(home, "models", "ls").stdout.splitlines()
    assert any(line.startswith("penguins:5 ") and "(compressed from penguins:1)" in line
               for line in listed)
    assert not any(line.startswith("penguins:1 ") and "compressed" in line for line in listed)
    bad = run_studio(home, "compress", "penguins:2", "--method", "prune")
    assert bad.returncode == 2 and bad.stderr.startswith("studio: error: prune does not apply")
    assert bad.stderr.count("\n") == 1
    bad = run_studio(home, "compress", "penguins:1", "--method", "prune:sparsity=2")
    assert bad.returncode == 2 and "sparsity must be from 0.05 to 0.95" in bad.stderr


def test_the_cli_lists_the_methods_it_knows() -> None:
    from studio.cli_compress import METHOD_NAMES

    assert tuple(methods.BY_NAME) == METHOD_NAMES


def test_a_chain_makes_one_version_per_stage(lws: Workspace) -> None:
    result, _ = _run(lws, "penguins:2", Step("distill", {"epochs": 20}),
                     Step("prune", {"epochs": 5}), Step("int8-dynamic"), chain=True)
    rows = result["results"]
    assert [r["method"] for r in rows] == ["distill", "prune", "int8-dynamic"]
    # each stage starts from the one before; the tree teacher became a network first
    assert [r["parent"] for r in rows] == ["penguins:2", "penguins:3", "penguins:4"]
    assert [r["version"] for r in rows] == ["penguins:3", "penguins:4", "penguins:5"]
    student = registry.get_version(lws, "penguins:3").manifest
    assert student.raw["network"]["builder"] == "studionet"
    assert "weights.safetensors" in student.files
    final = registry.get_version(lws, "penguins:5").manifest
    assert (final.compression.method, final.lineage.parent) == ("int8-dynamic", "penguins:4")
    assert final.compression.details["root"] == "penguins:2"
    assert all(abs(r["delta_points"]) < 10 for r in rows)
    # every ratio is against the chain's source, measured in the same run as each result
    assert all(r["source_measurement"]["file_bytes"] == rows[0]["source_measurement"][
        "file_bytes"] for r in rows)


def test_a_collapse_is_registered_flagged_and_not_promoted(lws: Workspace) -> None:
    from studio.core.registry.labels import aliases

    result, events = _run(lws, "penguins:1", Step("prune", {
        "kind": "magnitude", "sparsity": 0.95, "epochs": 0}))
    (row,) = result["results"]
    assert row["collapsed"] and row["delta_points"] < -5
    made = registry.get_version(lws, row["version"]).manifest
    assert made.compression.details["flags"] == ["collapsed"]
    from studio.gui.pages.models.details import collapse_text  # the Models page says so

    assert collapse_text(made).startswith(f"⚠ collapsed: {row['delta_points']:+.1f} points")
    assert collapse_text(registry.get_version(lws, "penguins:1").manifest) == ""
    assert any(getattr(e, "level", "") == "warning" and "never promoted" in e.message
               for e in events if hasattr(e, "message"))
    assert not aliases(lws, "penguins")
    # nor does the bare name move to it (or to any compressed version)
    assert registry.get_version(lws, "penguins").ref == "penguins:2"
    _run(lws, "penguins:1", Step("int8-dynamic"))
    assert registry.get_version(lws, "penguins").ref == "penguins:2"


def test_calibration_reads_training_rows_only(lws: Workspace, monkeypatch) -> None:
    seen: list[np.ndarray] = []
    real = lab.sample

    def spy(data, rows, limit, seed=0):
        seen.append(np.asarray(rows))
        return real(data, rows, limit, seed)

    monkeypatch.setattr(lab, "sample", spy)
    events: list[Event] = []
    lab.run(lws, "penguins:1", [Step("int8-static", {"calibration_rows": 40})], events.append,
            repeats=1)
    source = lab.load_source(lws, registry.get_version(lws, "penguins:1"), need_data=True)
    assert source.data is not None
    measuring, calibration = seen  # the timing sample first, then the calibration rows
    assert set(measuring) <= set(source.data.test)
    assert set(calibration) == set(source.data.train)
    assert not set(calibration) & set(source.data.test)


def test_a_stop_after_a_result_is_made_keeps_it_out(lws: Workspace) -> None:
    before = len(version_rows(lws))
    seen: list[Event] = []

    def stop_once_measured() -> bool:
        return any(isinstance(e, Progress) and e.stage == "measure" for e in seen)

    with pytest.raises(Cancelled):
        lab.run(lws, "penguins:1", [Step("int8-dynamic")], seen.append, stop_once_measured,
                repeats=1)
    assert len(version_rows(lws)) == before  # made, evaluated, measured: and not kept


def test_per_channel_dynamic_int8_works_on_the_tabular_network(lws: Workspace) -> None:
    result, _ = _run(lws, "penguins:1", Step("int8-dynamic", {"per_channel": True}))
    (row,) = result["results"]
    assert row["status"] == "done" and abs(row["delta_points"]) <= 2.0


@pytest.mark.parametrize(("mean", "spread"), [(4e6, 3e5), (6.5e4, 2e4)])
def test_fp16_keeps_large_regression_values_in_range(lws: Workspace, tmp_path: Path,
                                                     mean: float, spread: float) -> None:
    import pandas as pd

    from studio.core.training.pipeline import run
    from studio.core.training.spec import TrainSpec

    rng = np.random.default_rng(0)
    a, b = rng.uniform(0, 10, 300), rng.uniform(0, 5, 300)
    pd.DataFrame({"a": a, "b": b, "price": mean + spread * (a - 5) / 3 + spread * (b - 2.5) / 2
                  + rng.normal(0, spread / 6, 300)}).to_csv(tmp_path / "big.csv", index=False)
    catalog.import_dataset(lws, tmp_path / "big.csv")
    made = run(lws, TrainSpec(dataset="big", target="price", family="mlp", threads=1,
                              epochs=30), lambda _e: None)
    result, _ = _run(lws, made["version"], Step("fp16"))
    (row,) = result["results"]
    assert row["status"] == "done", row["message"]
    assert row["value"] > 0.8 and abs(row["delta_points"]) < 1  # r², not -29
    # in true fp16 arithmetic (a GPU's; ONNX Runtime's CPU kernels widen to fp32) too
    version = registry.get_version(lws, row["version"])
    source = lab.load_source(lws, version, need_data=True)
    feed = lab.sample(source.data, source.data.test, 8)
    exact = lab._reference(registry.read_file(lws, version, "model.onnx"), feed, None)
    assert exact is not None and np.isfinite(exact).all()
    from studio.core.training.evaluate import onnx_runner

    fp32 = onnx_runner(registry.read_file(lws, registry.get_version(lws, made["version"]),
                                          "model.onnx"))(feed)
    assert np.allclose(exact.ravel(), fp32.ravel(), rtol=0.01)
    # an fp16 version is not quantized again: its fp32 parent is
    with pytest.raises(InputError, match="is fp16: quantize its fp32 parent"):
        _run(lws, row["version"], Step("int8-dynamic"))


def test_a_bare_name_never_means_a_compressed_version(lws: Workspace) -> None:
    from studio.core.errors import NotFoundError
    from studio.core.registry.lifecycle import archive, delete_version

    _run(lws, "penguins:1", Step("int8-dynamic"))  # penguins:3
    delete_version(lws, "penguins:2")
    assert registry.get_version(lws, "penguins").ref == "penguins:1"
    archive(lws, "penguins:1")  # archived: still what the bare name means
    assert registry.get_version(lws, "penguins").ref == "penguins:1"
    delete_version(lws, "penguins:1")
    with pytest.raises(NotFoundError, match="only compressed versions left"):
        registry.get_version(lws, "penguins")
    assert registry.get_version(lws, "penguins:3").manifest.compression is not None


def test_a_version_being_compressed_cannot_be_deleted(lws: Workspace) -> None:
    import os

    from studio.core.registry.lifecycle import delete_version
    from studio.core.store import now

    lws.db.db["jobs"].insert({"id": "j1", "kind": "compress", "status": "running",
                              "spec": json.dumps({"source": "penguins:1"}),
                              "pid": os.getpid(), "created": now()})
    with pytest.raises(InputError, match="penguins:1 is being compressed"):
        delete_version(lws, "penguins:1")
    delete_version(lws, "penguins:2")  # what no run reads goes as before
    lws.db.conn.execute("UPDATE jobs SET status = 'done' WHERE id = 'j1'")
    lws.db.conn.commit()
    delete_version(lws, "penguins:1")


def test_the_same_method_twice_side_by_side_is_refused(lws: Workspace) -> None:
    with pytest.raises(InputError, match="fp16 is asked for twice"):
        _run(lws, "penguins:1", Step("fp16"), Step("fp16"))
    result, _ = _run(lws, "penguins:1", Step("prune", {"sparsity": 0.3, "epochs": 2}),
                     Step("prune", {"sparsity": 0.6, "epochs": 2}))
    assert [r["settings"]["sparsity"] for r in result["results"]] == [0.3, 0.6]


def test_the_cli_marks_a_larger_result_and_exits_1_when_a_method_failed(
        lws: Workspace, tmp_path: Path) -> None:
    from studio.core.training.pipeline import run
    from studio.core.training.spec import TrainSpec

    run(lws, TrainSpec(dataset="penguins", target="species", family="linear", threads=1),
        lambda _e: None)  # penguins:3: a linear model of 33 weights
    home = Path(lws.root)
    done = run_studio(home, "compress", "penguins:3", "--method", "fp16", "--method",
                      "distill", "--repeats", "1")
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    fp16_row = next(line for line in lines if " fp16 " in f" {line} ")
    assert "LARGER" in fp16_row  # the casts outweigh 33 weights: said, not hidden
    assert any("distill of penguins:3 failed: the teacher is too small to distil" in line
               for line in lines)
    assert done.stderr.strip().splitlines()[-1] == "studio: error: distill failed; see the table"
