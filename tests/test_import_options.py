"""How an import reads a file and says so: legacy encodings, workbook sheets, JSON under a
key, and the one-line summary of `studio data import`."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import PENGUINS, run_studio

from studio.core.datasets.catalog import (
    find_imported,
    get_dataset,
    import_dataset,
    list_datasets,
    load_frame,
)
from studio.core.datasets.excel import excel_sheets
from studio.core.datasets.sniff import detect_encoding
from studio.core.errors import InputError
from studio.core.events import Log
from studio.core.store import SCHEMA_VERSION
from studio.core.workspace import Workspace

# -- encodings ----------------------------------------------------------------------------

AREA = "Fläche_m²;Preis\n12,5;100\n14,0;120\n20,5;180\n33,1;250\n"
POLISH = ("imię;miasto;opis\nŁukasz;Łódź;Świetny człowiek, lubi śpiewać\n"
          "Małgorzata;Kraków;Pięknie się uśmiecha\nZbigniew;Gdańsk;Żółw źle się czuje\n"
          "Wojciech;Wrocław;Chrząszcz brzmi w trzcinie\n")
CZECH = ("jméno;město;popis\nJiří;Brno;Příliš žlutý kůň úpěl ďábelské ódy\n"
         "Řehoř;Plzeň;Čeština je krásná\n")
RUSSIAN = ("имя;город;описание\nИван;Москва;Хороший человек\n"
           "Мария;Санкт-Петербург;Любит читать книги\nПётр;Новосибирск;Работает инженером\n")
JAPANESE = ("名前,都市,説明\n田中,東京,元気な人です\n鈴木,大阪,本を読むのが好き\n"
            "佐藤,名古屋,エンジニアとして働いている\n")
WESTERN = ("nom;ville;Straße\nJosé;Genève;Größe\nRenée;Besançon;Übel\nBærum;Tromsø;Ålesund\n"
           "¿Qué?;año;Ñandú\nélève;très;forêt\n")


@pytest.mark.parametrize("text,encoding", [
    (AREA, "cp1252"),
    ("Fläche_m²;Preis\n" + "".join(f"{i},5;{i * 10}\n" for i in range(50)), "cp1252"),
    ("Fläche_m²;Preis\n12,5;100\n", "cp1252"),  # the header alone is not ASCII
    (WESTERN, "cp1252"),
    (POLISH, "cp1250"),
    (POLISH, "iso8859_2"),  # the same text from an older Unix system
    (CZECH, "cp1250"),
    (RUSSIAN, "cp1251"),
    (JAPANESE, "shift_jis"),
    (AREA, "utf-8"),
    (AREA, "utf-16"),
])
def test_the_encoding_is_the_one_the_text_was_written_in(text: str, encoding: str) -> None:
    raw = text.encode(encoding)
    assert raw.decode(detect_encoding(raw, "f.csv")) == text


def test_a_cp1252_header_keeps_its_squared_metres(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "flats.csv"
    path.write_bytes(AREA.encode("cp1252"))
    info = import_dataset(ws, path)
    assert info.column_names == ["Fläche_m²", "Preis"]
    assert load_frame(ws, info)["Fläche_m²"].tolist() == [12.5, 14.0, 20.5, 33.1]
    assert (info.details["encoding"], info.details["delimiter"]) == ("cp1252", ";")


def test_polish_cp1250_text_imports_as_written(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "ludzie.csv"
    ages = iter(range(30, 40))  # a number column: the first row is then plainly a header
    text = "".join(f"{line};{'wiek' if i == 0 else next(ages)}\n"
                   for i, line in enumerate(POLISH.splitlines()))
    path.write_bytes(text.encode("cp1250"))
    frame = load_frame(ws, import_dataset(ws, path))
    assert list(frame.columns) == ["imię", "miasto", "opis", "wiek"]
    assert frame["miasto"].tolist()[:2] == ["Łódź", "Kraków"]


# -- Excel ------------------------------------------------------------------------------


def workbook(path: Path, rows: int = 50) -> Path:
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        pd.DataFrame({"title": ["Sales 2024"]}).to_excel(writer, sheet_name="Cover",
                                                         index=False)
        pd.DataFrame({"id": range(rows), "city": [f"c{i % 7}" for i in range(rows)],
                      "price": [i * 1.5 for i in range(rows)], "sold": [i % 2 for i in range(rows)]}
                     ).to_excel(writer, sheet_name="Data", index=False)
    return path


def test_excel_sheets_lists_names_and_sizes(tmp_path: Path) -> None:
    path = workbook(tmp_path / "book.xlsx")
    assert excel_sheets(path) == [("Cover", 1, 1), ("Data", 50, 4)]


def test_excel_defaults_to_the_largest_sheet_and_says_so(ws: Workspace, tmp_path: Path) -> None:
    path = workbook(tmp_path / "book.xlsx")
    logs: list[Log] = []
    info = import_dataset(ws, path, emit=lambda e: logs.append(e) if isinstance(e, Log) else 0)
    assert (info.rows, info.column_names) == (50, ["id", "city", "price", "sold"])
    note = "sheet 'Data' (the largest of 2: Cover, Data)"
    assert [(e.message, e.level) for e in logs] == [(note, "warning")]
    assert info.details["sheet"] == "Data" and info.details["sheets"] == ["Cover", "Data"]
    assert info.details["warnings"] == [note]


def test_another_sheet_is_another_import(ws: Workspace, tmp_path: Path) -> None:
    path = workbook(tmp_path / "book.xlsx")
    default = import_dataset(ws, path)
    assert find_imported(ws, path, sheet="Data") == default  # the same sheet, by name
    assert find_imported(ws, path, sheet="Cover") is None
    cover = import_dataset(ws, path, sheet="Cover")
    assert cover.name != default.name and cover.rows == 1 and cover.column_names == ["title"]
    assert import_dataset(ws, path, sheet="Data") == default
    assert find_imported(ws, path) == default  # the default's key is kept
    assert len(list_datasets(ws)) == 2


def test_a_missing_sheet_names_the_sheets(ws: Workspace, tmp_path: Path) -> None:
    path = workbook(tmp_path / "book.xlsx")
    with pytest.raises(InputError) as caught:
        import_dataset(ws, path, sheet="Nope")
    assert str(caught.value) == "book.xlsx: no sheet 'Nope'; its sheets: Cover, Data"
    assert list_datasets(ws) == []


# -- JSON -------------------------------------------------------------------------------


@pytest.mark.parametrize("document,key", [
    ({"data": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]}, "data"),
    ({"results": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}], "count": 2, "next": None,
      "meta": {"page": 1}}, "results"),
])
def test_json_rows_under_one_key(ws: Workspace, tmp_path: Path, document: dict,
                                 key: str) -> None:
    path = tmp_path / "api.json"
    path.write_text(json.dumps(document))
    logs: list[str] = []
    info = import_dataset(ws, path, emit=lambda e: logs.append(e.message)
                          if isinstance(e, Log) else None)
    frame = load_frame(ws, info)
    assert frame["a"].tolist() == [1, 2] and frame["b"].tolist() == ["x", "y"]
    assert logs == [f"rows from the key {key!r}"]
    assert info.details["warnings"] == logs


def test_json_with_several_lists_of_rows_names_them(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "two.json"
    path.write_text(json.dumps({"users": [{"a": 1}], "orders": [{"b": 2}], "count": 1}))
    with pytest.raises(InputError, match="several keys hold lists of rows \\('users', "
                                         "'orders'\\)"):
        import_dataset(ws, path)
    columns = tmp_path / "columns.json"
    columns.write_text('{"a": [1, 2], "b": [3, 4]}')
    assert load_frame(ws, import_dataset(ws, columns))["b"].tolist() == [3, 4]


# -- details kept with the dataset -------------------------------------------------------


def test_a_database_from_before_import_details_is_migrated(tmp_path: Path,
                                                          penguins_csv: Path) -> None:
    ws = Workspace.open(tmp_path / "ws")
    import_dataset(ws, penguins_csv)
    ws.db.conn.execute("ALTER TABLE datasets DROP COLUMN details")
    ws.db.conn.execute("PRAGMA user_version = 3")
    ws.db.close()
    again = Workspace.open(tmp_path / "ws")
    try:
        info = get_dataset(again, "penguins")
        assert info.details == {} and info.import_report()["warnings"] == []
        assert find_imported(again, penguins_csv) == info
        assert again.db.conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    finally:
        again.db.close()


# -- the summary --------------------------------------------------------------------------


def test_cli_import_prints_a_summary_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = run_studio(home, "data", "import", str(PENGUINS))
    assert first.returncode == 0, first.stderr
    assert first.stdout == "penguins: 344 rows × 8 columns (UTF-8, comma-delimited)\n"
    again = json.loads(run_studio(home, "data", "import", str(PENGUINS), "--json").stdout)
    assert again == {
        "dataset": "penguins", "rows": 344, "columns": 8, "format": "csv", "encoding": "utf-8",
        "delimiter": ",", "decimal": ".", "sheet": None, "sheets": None, "warnings": [],
        "already_imported": True,
    }
    api = tmp_path / "api.json"
    api.write_text('{"data": [{"a": 1}, {"a": 2}], "next": null}')
    done = run_studio(home, "data", "import", str(api))
    assert done.stdout == "api: 2 rows × 1 column (JSON)\n"
    assert done.stderr == "studio: warning: rows from the key 'data'\n"
    flats = tmp_path / "flats.csv"
    flats.write_bytes(AREA.encode("cp1252"))
    assert run_studio(home, "data", "import", str(flats)).stdout == (
        "flats: 4 rows × 2 columns (Windows-1252, semicolon-delimited, decimal comma)\n")


def test_cli_sheet_choice_summary_and_error(tmp_path: Path) -> None:
    path = workbook(tmp_path / "book.xlsx")
    home = tmp_path / "home"
    done = run_studio(home, "data", "import", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "book: 50 rows × 4 columns (sheet 'Data' of 2)\n"
    assert "studio: warning: sheet 'Data' (the largest of 2: Cover, Data)" in done.stderr
    again = run_studio(home, "data", "import", str(path), "--sheet", "Data")
    assert again.stdout == "book: 50 rows × 4 columns (sheet 'Data' of 2; already imported)\n"
    missing = run_studio(home, "data", "import", str(path), "--sheet", "Nope")
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr == "studio: error: book.xlsx: no sheet 'Nope'; its sheets: Cover, Data\n"
    cover = json.loads(run_studio(home, "data", "import", str(path), "--sheet", "Cover",
                                  "--json").stdout)
    assert (cover["sheet"], cover["rows"], cover["already_imported"]) == ("Cover", 1, False)
    assert cover["dataset"] != "book"
