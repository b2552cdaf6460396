"""One-click training in the GUI: the Train form's family, budget and Advanced knobs, and the
Training page's live leaderboard with Register for a family that lost."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from studio.core.events import Candidate, Log, Metric, Progress, Started
from studio.core.registry import list_versions
from studio.core.training import families
from studio.core.training.spec import TrainSpec

SAMPLE = Path(__file__).resolve().parents[1] / "resources" / "samples" / "penguins.csv"
COMMON_FIELDS = ("epochs", "batch_size", "learning_rate", "hidden", "dropout", "params",
                 "time_budget_s", "seed", "device")


@pytest.fixture
def form(window, qtbot):
    """The Train form with the penguins on screen and ``species`` chosen."""
    window.import_paths([SAMPLE])
    qtbot.waitUntil(lambda: bool(window.datasets.profile), timeout=60_000)
    form = window.datasets.form
    form.set_target("species")
    qtbot.waitUntil(lambda: "train 240" in form.split_label.text(), timeout=10_000)
    assert form.train_btn.isEnabled()
    return form


def test_one_click_asks_for_every_fitting_family_and_nothing_else(form, window, qtbot,
                                                                  monkeypatch):
    started: list[dict] = []
    monkeypatch.setattr(window.training, "start", lambda **fields: started.append(fields))
    assert form.family.currentText() == "Best of all families"
    assert form.budget.value() == 0 and form.budget.text() == "auto · 20 s"
    with qtbot.waitSignal(form.train_requested) as sent:
        form.train_btn.click()
    spec = sent.args[0]
    assert started == [spec]
    assert spec["family"] == "auto"
    assert not set(spec) & set(COMMON_FIELDS)  # each family's defaults, the automatic budget
    TrainSpec.from_dict(spec)


def test_a_chosen_family_and_changed_knobs_are_exactly_what_the_spec_holds(form):
    form.family.setCurrentIndex(form.family.findData("mlp"))
    form.advanced_btn.click()
    assert form.advanced.isVisible()
    assert form.advanced.currentIndex() == 1 + [f.name for f in form.all_families].index("mlp")
    mlp = {p.name: p for p in families.get("mlp").params}
    dropout = form.advanced.own["mlp"]["dropout"]
    dropout.widget.setValue(5.0)  # beyond the knob's bound: the widget keeps it in range
    assert dropout.widget.value() == pytest.approx(mlp["dropout"].high)
    dropout.widget.setValue(0.25)
    epochs = form.advanced.common["epochs"]
    assert epochs.widget.text() == "default"  # each family trains its own default
    epochs.widget.stepBy(1)  # a step up from "default" starts at the mlp's own default
    assert epochs.widget.value() == mlp["epochs"].default
    epochs.widget.setValue(7)
    form.set_knob("C", 3.0, family="linear")  # linear does not train in this run
    form.budget.setValue(45)

    spec = form.spec()
    assert spec["family"] == "mlp"
    assert spec["params"] == {"mlp.dropout": 0.25}
    assert spec["epochs"] == 7
    assert spec["time_budget_s"] == 45.0
    assert not {"batch_size", "learning_rate", "hidden", "dropout", "seed",
                "device"} & set(spec)
    assert form.advanced_btn.text().startswith("Advanced (2)")
    assert TrainSpec.from_dict(spec).params_for(families.get("mlp"))["dropout"] == 0.25

    dropout.widget.setValue(mlp["dropout"].default)  # back to the default: not asked for
    assert "params" not in form.spec()


def test_a_knob_typed_halfway_is_said_and_starts_nothing(form, window, monkeypatch):
    shown: list[str] = []
    monkeypatch.setattr(window, "error", shown.append)
    form.advanced.common["hidden"].widget.setText("64, 0")  # 0 units: below the bound
    form.train_btn.click()
    assert shown and "hidden" in shown[0] and "from 1" in shown[0]
    assert not window.training.running
    assert form.advanced.isVisible()  # opened where the knob to fix is


def test_a_family_that_does_not_fit_is_greyed_out_with_its_reason(form):
    model = form.family.model()
    for family in families.all_families():
        i = form.family.findData(family.name)
        reason = family.unfit_reason("classification", "tabular")
        assert model.item(i).isEnabled() == (reason is None), family.name
        tip = form.family.itemData(i, Qt.ItemDataRole.ToolTipRole)
        if reason:
            assert tip == f"Does not fit: {reason}"
            tab = 1 + [f.name for f in form.all_families].index(family.name)
            assert not form.advanced.isTabEnabled(tab)
    assert not model.item(form.family.findData("cnn")).isEnabled()
    assert model.item(form.family.findData("mlp")).isEnabled()


def test_a_text_dataset_offers_the_text_families(window, qtbot, tmp_path):
    from synthetic import reviews

    reviews(120).to_csv(tmp_path / "reviews.csv", index=False)
    window.import_paths([tmp_path / "reviews.csv"])
    qtbot.waitUntil(lambda: bool(window.datasets.profile), timeout=60_000)
    form = window.datasets.form
    qtbot.waitUntil(lambda: form.task.currentText() == "text-classification", timeout=5_000)
    fits = {f.name: form.family.model().item(form.family.findData(f.name)).isEnabled()
            for f in families.all_families()}
    assert fits["embedding"] and fits["linear"]
    assert not fits["mlp"] and not fits["cnn"]
    assert form.budget.text() == "auto · 31 s"  # 30 s + 6 ms a text row
    form.family.setCurrentIndex(form.family.findData("embedding"))
    assert form.spec()["family"] == "embedding"


# -- the Training page --------------------------------------------------------------------

def _run_events() -> list[list]:
    """What a two-family run sends, in the batches the job bridge hands the page."""
    loss = [Metric(n, v, e, e, series="linear") for e, (n, v) in
            enumerate([("val_loss", 0.5), ("val_loss", 0.4), ("val_loss", 0.45)], start=1)]
    return [
        [Started("job", "train", "cpu"), Log("trying linear, mlp within 20 s"),
         Candidate("linear", "Linear", "training", "accuracy", message="3 s"),
         Progress("family", 0, 2, "training linear (1 of 2)")],
        [*loss, Metric("val_accuracy", 0.9, 3, 3, series="linear"),
         Candidate("linear", "Linear", "done", "accuracy", 0.92, 0.90, 1.5)],
        [Candidate("mlp", "Multilayer perceptron", "training", "accuracy", message="17 s"),
         Progress("family", 1, 2, "training multilayer perceptron (2 of 2)"),
         Metric("train_loss", 1.0, 1, 8, series="mlp"),
         Metric("val_loss", 0.8, 1, 8, series="mlp"),
         Progress("train", 1, 40, "mlp: epoch 1/40")],
        [Metric("train_loss", 0.5, 2, 16, series="mlp"),
         Metric("val_loss", 0.3, 2, 16, series="mlp"),
         Metric("val_accuracy", 0.98, 2, 16, series="mlp"),
         Progress("train", 2, 40, "mlp: epoch 2/40"),
         Candidate("mlp", "Multilayer perceptron", "done", "accuracy", 0.98, 0.96, 4.0,
                   message="early stopping; best epoch 2")],
        [Candidate("mlp", "Multilayer perceptron", "done", "accuracy", 0.98, 0.96, 4.0,
                   42_021, chosen=True)],
    ]


def test_the_leaderboard_fills_from_candidate_events(window):
    page = window.training
    batches = _run_events()
    for batch in batches[:2]:
        page._on_events(batch)  # the slot JobBridge.events is connected to
    assert page.shown == "linear"
    assert page.loss.points("val_loss") == 3 and page.loss.points("train_loss") == 0
    assert [page.board.item(0, c).text() for c in (0, 1, 2, 3)] == [
        "Linear", "done", "0.9200", "0.9000"]
    assert page.board.horizontalHeaderItem(2).text() == "Validation accuracy"

    page._on_events(batches[2])  # the mlp starts: the curves follow it, titled with it
    assert page.shown == "mlp"
    assert page.loss.points("train_loss") == 1 and page.loss.points("val_loss") == 1
    assert "Multilayer perceptron" in page.loss.plotItem.titleLabel.text
    assert page.progress.format() == "family 2 of 2 · mlp: epoch 1/40"
    assert page.board.item(1, 1).text() == "training…"

    for batch in batches[3:]:
        page._on_events(batch)
    rows = [[page.board.item(r, c).text() for c in range(6)] for r in range(2)]
    assert rows[0] == ["★ Multilayer perceptron", "chosen", "0.9800", "0.9600", "4.0 s",
                       "41.0 KiB"]
    assert rows[1][:4] == ["Linear", "done", "0.9200", "0.9000"]
    assert page.board.item(0, 0).font().bold() and not page.board.item(1, 0).font().bold()
    assert "early stopping" in page.board.item(0, 1).toolTip()
    assert page.loss.points("train_loss") == 2

    page.board.selectRow(1)  # a row picked shows that family's curves again
    assert page.shown == "linear" and page.loss.points("val_loss") == 3
    assert not page.register_btn.isEnabled()  # the run has not ended (nothing stored yet)


def _row_of(board, family: str) -> int:
    """The leaderboard row showing ``family`` (rows are sorted best first)."""
    return next(r for r in range(board.rowCount())
                if board.item(r, 0).data(Qt.ItemDataRole.UserRole) == family)


@pytest.mark.timeout(240)
def test_register_makes_a_losing_family_a_version(window, qtbot):
    window.import_paths([SAMPLE])
    qtbot.waitUntil(lambda: bool(window.datasets.profile), timeout=60_000)
    window.train({"dataset": "penguins", "target": "species", "time_budget_s": 8})
    page = window.training
    qtbot.waitUntil(lambda: not page.running, timeout=180_000)
    assert "penguins:1" in page.result.text(), page.result.text()
    fit = {f.name for f, why in families.fitting("classification", "tabular") if why is None}
    assert set(page.board.rows) == fit and len(fit) > 1  # a row for every family that fits
    winner = page.board.winner()
    assert winner is not None
    loser = next(r for r in page.board.rows.values()
                 if r is not winner and r.status == "done")
    assert loser.size_bytes > 0  # its size read from the store

    page.board.selectRow(_row_of(page.board, loser.family))
    assert page.board.selected() is loser
    assert page.register_btn.isEnabled()
    page.register_btn.click()
    qtbot.waitUntil(lambda: "penguins:2" in page.result.text(), timeout=30_000)
    versions = {v.ref: v for v in list_versions(window.ws)}
    assert set(versions) == {"penguins:1", "penguins:2"}
    assert versions["penguins:2"].manifest.raw["family"] == loser.family
    assert versions["penguins:1"].manifest.raw["family"] == winner.family
    assert loser.version == "penguins:2"
    assert page.board.item(_row_of(page.board, loser.family), 1).text() == (
        "registered → penguins:2")
    assert not page.register_btn.isEnabled()  # it is a version now
    assert window.models.table.rowCount() == 2  # the Models page knows
    page.board.selectRow(_row_of(page.board, winner.family))
    assert not page.register_btn.isEnabled()  # the chosen one is a version already

    # registered meanwhile from a terminal: the button's error is said, nothing is added
    loser.version = None
    page.board.set_board([])
    page.board.selectRow(_row_of(page.board, loser.family))
    page.register_btn.click()
    qtbot.waitUntil(lambda: "Could not register" in page.result.text(), timeout=30_000)
    assert "already penguins:2" in page.result.text()
    assert len(list_versions(window.ws)) == 2


def test_the_advanced_panel_lists_the_devices_with_their_memory(form, qtbot):
    form.advanced_btn.click()
    note = form.advanced.devices_note
    qtbot.waitUntil(lambda: "cpu:" in note.text(), timeout=60_000)
    assert "GiB" in note.text() and "auto takes the first" in note.text()
    assert "cpu:" in form.advanced.common["device"].widget.toolTip()
