"""What an import says about itself, in one line: the CLI prints it, the app's status bar
shows it."""

from __future__ import annotations

from typing import Any

DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
FORMAT_NAMES = {"parquet": "Parquet", "feather": "Feather", "json": "JSON",
                "jsonl": "JSON lines", "excel": "Excel", "images": "image folder",
                "zip": "zip of images"}


def import_summary(report: dict[str, Any]) -> str:
    """One line: the name first (scripts take the first word), then what was read and how:
    ``penguins: 344 rows × 8 columns (UTF-8, comma-delimited)``."""
    how = []
    if report.get("encoding"):
        how.append(encoding_name(report["encoding"]))
    if report.get("delimiter"):
        d = report["delimiter"]
        how.append(f"{DELIMITER_NAMES.get(d, repr(d))}-delimited")
    if report.get("decimal") == ",":
        how.append("decimal comma")
    if report.get("sheet"):
        count = len(report.get("sheets") or [])
        how.append(f"sheet {report['sheet']!r}" + (f" of {count}" if count > 1 else ""))
    if not how and report.get("format") in FORMAT_NAMES:
        how.append(FORMAT_NAMES[report["format"]])
    notes = ", ".join(how)
    if report.get("already_imported"):
        notes = f"{notes}; already imported" if notes else "already imported"
    rows, columns = report["rows"], report["columns"]
    text = (f"{report['dataset']}: {rows:,} row{'' if rows == 1 else 's'} × "
            f"{columns} column{'' if columns == 1 else 's'}")
    return f"{text} ({notes})" if notes else text


def encoding_name(codec: str) -> str:
    """The name people know: UTF-8, Windows-1252; else Python's codec name."""
    if codec.lower().startswith("utf"):
        return codec.upper().replace("_", "-")
    if codec.startswith("cp125"):
        return f"Windows-{codec[2:]}"
    return codec
