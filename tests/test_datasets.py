"""Reading, recipes and exports: the cases a user's own files bring."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from studio.core.datasets.readers import read_table
from studio.core.datasets.recipe import encode_target, fit_recipe, transform
from studio.core.errors import InputError
from studio.core.files import atomic_write_text, csv_safe


def test_semicolon_csv_with_quoted_header_is_sniffed(tmp_path: Path) -> None:
    path = tmp_path / "semi.csv"
    path.write_text('"name, full";"size"\n"Ann, B";3\n"Cy, D";4\n')
    frame = read_table(path)
    assert list(frame.columns) == ["name, full", "size"]
    assert frame["size"].tolist() == [3, 4]


def test_duplicate_csv_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("a,b,a\n1,2,3\n")
    with pytest.raises(InputError, match="duplicate column name 'a'"):
        read_table(path)


def test_mixed_json_column_is_kept_as_text_and_nested_is_refused(tmp_path: Path) -> None:
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text('{"a": 1, "b": "x"}\n{"a": "one", "b": "y"}\n')
    assert read_table(mixed)["a"].tolist() == ["1", "one"]
    nested = tmp_path / "nested.jsonl"
    nested.write_text('{"a": {"b": 1}}\n')
    with pytest.raises(InputError, match="nested"):
        read_table(nested)


def test_missing_tokens_in_the_target_are_missing_not_classes() -> None:
    train = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": ["p", "?", "q", "None"]})
    recipe = fit_recipe(train, "y", "classification")
    assert recipe["labels"] == ["p", "q"]
    assert encode_target(recipe, train["y"]).tolist() == [0, -1, 1, -1]


def test_infinite_values_are_missing_and_fitted_parameters_stay_finite() -> None:
    train = pd.DataFrame({"x": [1.0, np.inf, 3.0, -np.inf], "y": ["a", "b", "a", "b"]})
    recipe = fit_recipe(train, "y", "classification")
    feature = recipe["features"][0]
    assert all(np.isfinite([feature["fill"], feature["mean"], feature["scale"]]))
    assert np.isfinite(transform(recipe, train)).all()


def test_one_hot_keeps_the_most_frequent_categories_only() -> None:
    values = [f"zip{i}" for i in range(200)] * 25 + ["common"] * 100
    train = pd.DataFrame({"zip": values, "y": ["a", "b"] * (len(values) // 2)})
    recipe = fit_recipe(train, "y", "classification")
    cats = recipe["features"][0]["categories"]
    assert len(cats) == 100 and "common" in cats
    unknown = transform(recipe, pd.DataFrame({"zip": ["never-seen"]}))
    assert unknown.sum() == 0


def test_csv_export_neutralizes_formulas_but_not_numbers() -> None:
    frame = pd.DataFrame({"c": ["=SUM(A1)", "+cmd", "-1", "+3.5", "@x", "plain"]})
    assert csv_safe(frame)["c"].tolist() == ["'=SUM(A1)", "'+cmd", "-1", "+3.5", "'@x",
                                             "plain"]


def test_atomic_write_refuses_a_missing_folder_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such folder"):
        atomic_write_text(tmp_path / "nope" / "out.csv", "a\n")
    atomic_write_text(tmp_path / "out.csv", "a\n")
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_profile_kinds_statistics_and_warnings() -> None:
    from studio.core.datasets.profile import profile_columns, suggest_target, suggest_task

    n = 200
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "customer_id": np.arange(1000, 1000 + n),
        "ref": [f"R{i:05d}" for i in range(n)],
        "income": rng.normal(50_000, 8_000, n),
        "city": rng.choice(["Oslo", "Lima", "Pune"], n),
        "photo": [f"img/{i}.jpg" for i in range(n)],
        "constant": ["x"] * n,
        "sparse": [1.0] * 20 + [None] * (n - 20),
        "churn": ["no"] * 190 + ["yes"] * 10,
        "when": pd.date_range("2024-01-01", periods=n, freq="D"),
    })
    profile = {p["name"]: p for p in profile_columns(frame)}
    kinds = {name: p["kind"] for name, p in profile.items()}
    assert kinds == {"customer_id": "identifier", "ref": "identifier", "income": "numeric",
                     "city": "categorical", "photo": "image path", "constant": "categorical",
                     "sparse": "numeric", "churn": "categorical", "when": "datetime"}
    income = profile["income"]
    assert income["min"] < income["mean"] < income["max"] and income["std"] > 0
    assert sum(income["histogram"]["counts"]) == n
    assert len(income["histogram"]["edges"]) == len(income["histogram"]["counts"]) + 1
    assert profile["city"]["top"][0][1] >= profile["city"]["top"][-1][1]
    assert "constant" in profile["constant"]["warnings"]
    assert any(w.startswith("mostly missing") for w in profile["sparse"]["warnings"])
    assert "likely an identifier" in profile["customer_id"]["warnings"]
    assert any(w.startswith("imbalanced") for w in profile["churn"]["warnings"])
    assert suggest_target(list(profile.values())).name == "churn"
    assert suggest_task(profile["churn"]) == "classification"
    assert suggest_task(profile["income"]) == "regression"
    ids = pd.DataFrame({"order": [f"ORD-2023-01-{i:05d}" for i in range(n)],
                        "email": [f"user{i}.smith@example.com" for i in range(n)],
                        "uuid": [f"e3e70682-c209-4cac-629f-{i:012d}" for i in range(n)]})
    assert {p["kind"] for p in profile_columns(ids)} == {"identifier"}
    review = {"name": "review", "kind": "text"}
    assert suggest_task(profile["churn"], [*profile.values(), review]) == "text-classification"
    assert suggest_task(profile["income"], [review]) == "regression"


def test_identifier_columns_are_not_features() -> None:
    train = pd.DataFrame({"id": np.arange(100), "x": np.linspace(0, 1, 100),
                          "y": ["a", "b"] * 50})
    recipe = fit_recipe(train, "y", "classification")
    assert [f["name"] for f in recipe["features"]] == ["x"]
    assert recipe["dropped"][0]["name"] == "id"


def test_split_preview_counts_what_training_cuts() -> None:
    from studio.core.datasets.split import present_mask, split_indices, split_preview, strata

    y = pd.Series(["a"] * 50 + ["b"] * 30 + ["NA"] * 5 + [None] * 5 + ["c"] * 20)
    preview = split_preview(y, True, (0.7, 0.15, 0.15))
    kept = y[present_mask(y)]
    parts = split_indices(strata(kept), len(kept), (0.7, 0.15, 0.15))
    assert preview["sizes"] == [len(p) for p in parts] and sum(preview["sizes"]) == 100
    assert preview["classes"] == {"a": [34, 8, 8], "b": [22, 4, 4], "c": [14, 3, 3]}


def test_recipe_choices_are_fitted_on_train_and_applied_the_same_everywhere() -> None:
    from studio.core.datasets.prepare import prepare, preview

    rng = np.random.default_rng(1)
    n = 200
    frame = pd.DataFrame({
        "size": np.r_[rng.normal(10, 2, n - 2), [1e6, np.nan]],
        "city": rng.choice(["Oslo", "Lima", "Pune", None], n),
        "noise": rng.normal(size=n),
        "y": rng.choice(["a", "b"], n),
    })
    options = {"columns": {"size": {"scale": "minmax", "clip": True, "fill": "constant",
                                    "fill_value": -1},
                           "city": {"encode": "ordinal", "fill": "most_frequent"},
                           "noise": {"drop": True}}}
    prepared = prepare(frame, "d", "y", "classification", options=options)
    size, city = prepared.recipe["features"]
    assert size["scaling"] == "minmax" and size["clip"][1] < 1e6 and size["fill"] == -1.0
    assert city["kind"] == "ordinal" and "fill" in city
    assert [d["name"] for d in prepared.recipe["dropped"]] == ["noise"]
    shown = preview(prepared, rows=50)
    assert list(shown.columns) == ["size", "city"]
    assert shown["size"].max() <= 1.0 + 1e-6  # the 1e6 outlier was clipped before scaling
    assert set(shown["city"].unique()) <= {0.0, 1.0, 2.0}  # ordinal codes, missing filled
    with pytest.raises(InputError, match="unknown column"):
        prepare(frame, "d", "y", "classification", options={"columns": {"nope": {}}})
    with pytest.raises(InputError, match="scale='cubic'"):
        prepare(frame, "d", "y", "classification",
                options={"columns": {"size": {"scale": "cubic"}}})


def test_a_feature_the_file_is_sorted_by_is_kept() -> None:
    train = pd.DataFrame({"sqft": np.arange(500, 600), "y": ["a", "b"] * 50})
    recipe = fit_recipe(train, "y", "classification")
    assert [f["name"] for f in recipe["features"]] == ["sqft"]


def test_missing_words_mean_missing_in_every_path() -> None:
    from studio.core.datasets.recipe import frame_from_records

    train = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "c": ["u", "v", "u", "u"],
                          "y": ["a", "b", "a", "b"]})
    options = {"columns": {"c": {"fill": "most_frequent"}}}
    recipe = fit_recipe(train, "y", "classification", options)
    rows = [{"x": "#N/A", "c": "#N/A"}, {"x": None, "c": None}]
    out = transform(recipe, frame_from_records(recipe, rows))
    assert out[0].tolist() == out[1].tolist()


def test_lazy_table_slices_across_row_groups_like_the_whole_table(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from studio.core.datasets.lazy_table import LazyTable

    n = 10_000
    whole = pa.table({"i": np.arange(n), "s": [f"row {i}" for i in range(n)],
                      "x": pa.array(np.arange(n) / 3, mask=np.arange(n) % 7 == 0)})
    pq.write_table(whole, tmp_path / "t.parquet", row_group_size=999)
    lazy = LazyTable(tmp_path / "t.parquet")
    assert (lazy.num_rows, lazy.column_names) == (n, ["i", "s", "x"])
    assert lazy.largest_row_group() == 999
    for offset, length in ((0, 256), (990, 20), (1998, 2000), (9990, 256), (n, 5), (0, n)):
        assert lazy.slice(offset, length).equals(whole.slice(offset, length)), (offset, length)
    assert lazy.column("s").equals(whole.column("s"))
    assert lazy.select(["x", "i"]).equals(whole.select(["x", "i"]))


def test_a_preview_sample_spreads_over_the_whole_file(ws, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from studio.core.datasets.catalog import import_dataset, load_sample

    n = 100_000
    pq.write_table(pa.table({"i": np.arange(n), "x": np.arange(n) % 7}), tmp_path / "t.parquet",
                   row_group_size=1000)
    info = import_dataset(ws, tmp_path / "t.parquet")
    sample = load_sample(ws, info, 10_000)
    assert 5_000 <= len(sample) <= 20_000
    assert sample["i"].min() < 1_000 and sample["i"].max() > 90_000  # not just the head
    assert len(load_sample(ws, info, n)) == n
