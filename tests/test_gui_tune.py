"""The Tune window: started from the Train form's choices, trials drawn as they end, the
best registered with one click; each trial listed on the Runs page."""

from __future__ import annotations

import pytest
from test_gui_train import form  # noqa: F401 - the Train form with penguins on screen

from studio.core.events import Done
from studio.core.registry import list_versions
from studio.gui.pages.tune.view import tune_fields


def test_tune_fields_keep_the_question_and_leave_the_search_its_knobs() -> None:
    fields = {"dataset": "d", "target": "t", "task": "auto", "family": "mlp", "model": "m",
              "time_budget_s": 30.0, "learning_rate": 0.1, "params": {"mlp.dropout": 0.2},
              "epochs": 5, "split": [0.7, 0.15, 0.15], "preprocessing": {}}
    out = tune_fields(fields)
    assert out["trial_budget_s"] == 30.0 and out["epochs"] == 5 and out["family"] == "mlp"
    assert not {"learning_rate", "params", "model", "time_budget_s"} & set(out)


@pytest.mark.timeout(240)
def test_a_search_from_the_train_form_draws_trials_and_registers_the_best(
        form, window, qtbot) -> None:  # noqa: F811
    form.family.setCurrentIndex(form.family.findData("mlp"))
    form.set_knob("epochs", 6)
    assert form.tune_btn.isEnabled()
    form.tune_btn.click()
    tuning = window.tuning
    assert tuning is not None and tuning.isVisible()
    assert tuning.fields["family"] == "mlp" and tuning.fields["epochs"] == 6
    tuning.n_trials.setValue(4)
    tuning.start_btn.click()
    qtbot.waitUntil(lambda: tuning.final is not None, timeout=200_000)
    assert isinstance(tuning.final, Done), tuning.final
    assert tuning.table.rowCount() == 4
    assert sorted(t["state"] for t in tuning.trials.values()) <= ["complete"] * 4 + ["pruned"] * 4
    assert tuning.charts.points() >= 1
    assert tuning.best is not None and tuning.register_btn.isEnabled()
    with qtbot.waitSignal(tuning.registered, timeout=60_000) as got:
        tuning.register_btn.click()
    assert got.args[0] == "penguins:1"
    assert [v.ref for v in list_versions(window.ws)] == ["penguins:1"]
    tuning.reject()  # Escape: closed, as by its close button
    assert not tuning.isVisible() and not tuning.running
    window.go(window.runs)
    trials = [r for r in window.runs.model.runs if r.trial]
    assert len(trials) == 4 and all(r.trial.split("#")[0] == tuning.study for r in trials)
