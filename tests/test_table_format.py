"""Cells read as people write numbers: whole numbers in full with separators, the decimals a
column needs, no separators in codes and years, and headers whose tip names them whole."""

from __future__ import annotations

import math

import pyarrow as pa
from PySide6.QtCore import Qt

from studio.gui.widgets.table_model import TableModel, format_block


def texts(table: pa.Table, kinds: dict[str, str] | None = None) -> dict[str, list]:
    return dict(zip(table.column_names, format_block(table, 0, kinds), strict=True))


def test_numbers_read_as_a_person_writes_them() -> None:
    shown = texts(pa.table({
        "price": [1177710.0, None, 250000.0, math.nan],  # whole numbers in a float column
        "count": [1177710, 2, None, 40],
        "area": [12.5, 3.25, 80.0, 1.0],  # two decimals are what the column needs
        "ratio": [0.1, 0.25, 0.5, 1.0],
        "measured": [1234.56789, 2.5, 0.333333333, 17.0],  # noise: about six digits
        "tiny": [1e-6, 2e-7, 0.0, 3e-5],
        "huge": [2e16, 1.0, 2.0, 3.0],
        "f32": pa.array([0.1, 0.25, 3.0, 1.5], pa.float32()),
    }))
    assert shown["price"] == ["1,177,710", None, "250,000", None]
    assert shown["count"] == ["1,177,710", "2", None, "40"]
    assert shown["area"] == ["12.50", "3.25", "80.00", "1.00"]
    assert shown["ratio"] == ["0.10", "0.25", "0.50", "1.00"]
    assert shown["measured"] == ["1,234.57", "2.50", "0.33", "17.00"]
    assert shown["f32"] == ["0.10", "0.25", "3.00", "1.50"]
    assert shown["tiny"] == ["1e-06", "2e-07", "0", "3e-05"]
    assert shown["huge"][0] == "2e+16"
    assert not any("e+" in t for col in ("price", "count", "area", "measured")
                   for t in shown[col] if t)


def test_codes_and_years_get_no_thousands_separators() -> None:
    table = pa.table({"year": [2008, 2009, 2007], "built": [1999.0, None, 2003.0],
                      "user_id": [12345, 12346, 12347], "ref": [88001, 88002, 88003],
                      "grams": [3750, 4250, 2900]})
    shown = texts(table)
    assert shown["year"] == ["2008", "2009", "2007"]  # named like a year
    assert shown["built"] == ["1999", None, "2003"]  # every value a year-like whole number
    assert shown["user_id"] == ["12345", "12346", "12347"]  # named like an id
    assert shown["ref"] == ["88,001", "88,002", "88,003"]  # only the profile knows
    assert shown["grams"] == ["3,750", "4,250", "2,900"]  # a quantity
    assert texts(table, {"ref": "identifier"})["ref"] == ["88001", "88002", "88003"]


def test_the_model_reformats_identifiers_once_the_profile_tells_them(qtbot) -> None:
    table = pa.table({"ref": [88001, 88002], "a_very_long_column_name_that_elides": [1.5, 2.0]})
    model = TableModel()
    model.set_table(table, first_block=format_block(table, 0))
    assert model.data(model.index(0, 0)) == "88,001"
    assert model.data(model.index(0, 1)) == "1.5"
    assert model.data(model.index(0, 0), Qt.ItemDataRole.TextAlignmentRole) is not None
    model.set_kinds({"ref": "identifier", "a_very_long_column_name_that_elides": "numeric"})
    assert model.data(model.index(0, 0)) == "88001"
    tip = model.headerData(1, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole)
    assert tip == "a_very_long_column_name_that_elides\nnumeric"


def test_nested_cells_read_as_their_size() -> None:
    shown = texts(pa.table({
        "tags": pa.array([[1, 2, 3], [4], None], pa.list_(pa.int64())),
        "attrs": pa.array([[("k", 1)], [], None], pa.map_(pa.string(), pa.int64())),
        "blob": pa.array([b"\xff\x00" * 6, b"\x80", None]),  # not text
        "point": pa.array([{"x": 1, "y": 2}, {"x": 1, "y": None}, None]),
    }))
    assert shown["tags"] == ["[3 items]", "[1 item]", None]
    assert shown["attrs"] == ["[1 item]", "[0 items]", None]
    assert shown["blob"] == ["<12 bytes>", "<1 byte>", None]
    assert shown["point"] == ["{2 fields}", "{1 field}", None]
