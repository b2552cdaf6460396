"""How an import reads a file: legacy encodings."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.core.datasets.catalog import import_dataset, load_frame
from studio.core.datasets.sniff import detect_encoding
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


def test_polish_cp1250_text_imports_as_written(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "ludzie.csv"
    ages = iter(range(30, 40))  # a number column: the first row is then plainly a header
    text = "".join(f"{line};{'wiek' if i == 0 else next(ages)}\n"
                   for i, line in enumerate(POLISH.splitlines()))
    path.write_bytes(text.encode("cp1250"))
    frame = load_frame(ws, import_dataset(ws, path))
    assert list(frame.columns) == ["imię", "miasto", "opis", "wiek"]
    assert frame["miasto"].tolist()[:2] == ["Łódź", "Kraków"]
