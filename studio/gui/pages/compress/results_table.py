"""The results side by side: the source first, then one row per result as the job reports
it. A collapsed result's Δ is red with the loss in its tooltip; a failed one shows why."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from studio.gui.pages.compress.text import (
    collapse_text,
    count_text,
    delta_text,
    method_text,
    metric_title,
    ms_text,
    ratio_text,
    value_text,
)
from studio.gui.pages.evaluation.plain import tip
from studio.gui.pages.models.text import size_text

COLUMNS = ["Version", "Method", "Score", "Δ points", "Size", "Latency", "Throughput",
           "Parameters", "p50 ms", "p99 ms"]
HEADER_TIPS = {
    "Score": "The headline test metric, on the source's test split",
    "Δ points": "The result's metric minus the source's, in points (×100); more than 5 "
                "points lost is a collapse",
    "Size": "Model file size as a share of the source's (0.25× is a quarter)",
    "Latency": "Median time of one row's prediction as a share of the source's, measured "
               "side by side on this machine (below 1× is faster)",
    "Throughput": "Rows per second in batches of 64, as a multiple of the source's (above "
                  "1× is faster)",
    "Parameters": "Weights in the graph",
    "p50 ms": "Median milliseconds of one row's prediction",
    "p99 ms": "99th percentile milliseconds of one row's prediction",
}
BAD, GOOD, FAILED = QColor("#d93025"), QColor("#137333"), QColor("#b3261e")
MUTED = QColor("#616e7c")


class ResultsTable(QTableWidget):
    def __init__(self) -> None:
        super().__init__(0, len(COLUMNS))
        self.rows: list[dict[str, Any]] = []  # rows[0] is the source
        self.setHorizontalHeaderLabels(COLUMNS)
        for col, name in enumerate(COLUMNS):
            if name in HEADER_TIPS:
                self.horizontalHeaderItem(col).setToolTip(HEADER_TIPS[name])
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setWordWrap(False)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.verticalHeader().hide()
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(COLUMNS.index("Method"), QHeaderView.ResizeMode.Stretch)
        header.setMinimumSectionSize(48)

    def show_source(self, ref: str | None, metric: str | None, value: float | None) -> None:
        """Start again with only the source's row (measured once a result is)."""
        self.setHorizontalHeaderItem(COLUMNS.index("Score"), QTableWidgetItem(
            metric_title(metric)))
        self.horizontalHeaderItem(COLUMNS.index("Score")).setToolTip(HEADER_TIPS["Score"])
        self.setRowCount(0)
        self.rows = []
        if ref is not None:
            self._append({"version": ref, "method": None, "status": "source", "metric": metric,
                          "value": value, "size_ratio": 1.0, "latency_ratio": 1.0,
                          "throughput_ratio": 1.0, "measurement": None})

    def add(self, row: dict[str, Any]) -> int:
        """A result's row (a Compressed event's); its index."""
        source = self.rows[0] if self.rows else None
        if source is not None and source["measurement"] is None and row.get(
                "source_measurement"):
            # each result is measured beside the source: the first such measure stands for it
            source["measurement"] = row["source_measurement"]
            if row.get("source_value") is not None:  # scored on the split the results were
                source["value"] = row["source_value"]
            self._fill(0, source)
        return self._append(row)

    def _append(self, row: dict[str, Any]) -> int:
        self.rows.append(row)
        i = self.rowCount()
        self.setRowCount(i + 1)
        self._fill(i, row)
        self._fit()
        return i

    def _fill(self, i: int, row: dict[str, Any]) -> None:
        source = row["status"] == "source"
        failed = row["status"] == "failed"
        m = row.get("measurement") or {}
        ref = row.get("version")
        cells = [
            ref or "—",
            "source" if source else method_text(row, self.rows[0].get("version")
                                                 if self.rows else None),
            value_text(row.get("value")),
            "" if source else delta_text(row.get("delta_points")),
            ratio_text(row.get("size_ratio")),
            ratio_text(row.get("latency_ratio")),
            ratio_text(row.get("throughput_ratio")),
            count_text(m.get("parameters")),
            ms_text(m.get("latency_p50_ms")),
            ms_text(m.get("latency_p99_ms")),
        ]
        if self.columnSpan(i, 2) > 1:
            self.setSpan(i, 2, 1, 1)
        for col, text in enumerate(cells):
            item = QTableWidgetItem(text)
            if col >= 2:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.setItem(i, col, item)
        self.item(i, 0).setData(Qt.ItemDataRole.UserRole, ref)
        if source:
            bold = QFont(self.font())
            bold.setBold(True)
            for col in range(len(COLUMNS)):
                self.item(i, col).setFont(bold)
            self.item(i, 0).setToolTip(tip(f"{ref}: the version compressed. Its figures are "
                                           "measured beside each result, on this machine."))
        elif failed:
            message = row.get("message") or "failed"
            self.item(i, 0).setText("failed")
            self.setSpan(i, 2, 1, len(COLUMNS) - 2)
            cell = QTableWidgetItem(" ".join(message.split()))
            cell.setForeground(FAILED)
            cell.setToolTip(tip(message))
            self.setItem(i, 2, cell)
            for col in (0, 1):
                self.item(i, col).setForeground(FAILED)
                self.item(i, col).setToolTip(tip(message))
        else:
            self._mark(i, row)
        if not source:
            self.item(i, 1).setToolTip(tip(self._about(row)))

    def _mark(self, i: int, row: dict[str, Any]) -> None:
        delta = self.item(i, COLUMNS.index("Δ points"))
        if row.get("collapsed"):
            delta.setForeground(BAD)
            font = QFont(self.font())
            font.setBold(True)
            delta.setFont(font)
            delta.setText(delta.text() + " ⚠")
            delta.setToolTip(tip(collapse_text(row)))
            self.item(i, 0).setToolTip(tip(collapse_text(row)))
        # cheaper or faster in green, slower in red: lower is better but for throughput
        for name, better_low in (("size_ratio", True), ("latency_ratio", True),
                                 ("throughput_ratio", False)):
            value = row.get(name)
            if not isinstance(value, int | float):
                continue
            good = value < 0.95 if better_low else value > 1.05
            bad = value > 1.05 if better_low else value < 0.95
            col = {"size_ratio": 4, "latency_ratio": 5, "throughput_ratio": 6}[name]
            if good or bad:
                self.item(i, col).setForeground(GOOD if good else BAD)
        if row.get("method") == "prune" and row.get("details"):
            from studio.core.compress.methods import sparsity_text

            self.item(i, COLUMNS.index("Method")).setToolTip(
                tip("Sparsity measured in the file: " + sparsity_text(row["details"])))
        note = (row.get("details") or {}).get("note")
        if note:  # fp16 on a CPU: smaller, not faster, and the page says so
            self.item(i, COLUMNS.index("Method")).setToolTip(tip(str(note)))
            self.item(i, COLUMNS.index("Latency")).setToolTip(tip(str(note)))
        m, s = row.get("measurement") or {}, row.get("source_measurement") or {}
        if m and s:
            self.item(i, 4).setToolTip(f"{size_text(m.get('file_bytes'))} against "
                                       f"{size_text(s.get('file_bytes'))}")
            self.item(i, 5).setToolTip(f"p50 {ms_text(m.get('latency_p50_ms'))} ms against "
                                       f"{ms_text(s.get('latency_p50_ms'))} ms")
            self.item(i, 6).setToolTip(f"{count_text(m.get('throughput_rows_s'))} rows/s "
                                       f"against {count_text(s.get('throughput_rows_s'))}")

    @staticmethod
    def _about(row: dict[str, Any]) -> str:
        lines = [f"{row.get('method')} of {row.get('parent')}"]
        settings = row.get("settings") or {}
        if settings:
            lines.append(", ".join(f"{k} = {v}" for k, v in settings.items()))
        for key, value in (row.get("details") or {}).items():
            lines.append(f"{key}: {value}")
        return "\n".join(lines)

    def _fit(self) -> None:
        header = self.horizontalHeader()
        for col, name in enumerate(COLUMNS):
            if name != "Method":
                self.resizeColumnToContents(col)
                header.resizeSection(col, min(header.sectionSize(col), 160))

    # -- selection --------------------------------------------------------------------------

    def selected_index(self) -> int | None:
        rows = self.selectionModel().selectedRows()
        return rows[0].row() if rows else None

    def selected_row(self) -> dict[str, Any] | None:
        i = self.selected_index()
        return self.rows[i] if i is not None and i < len(self.rows) else None

    def select_index(self, i: int) -> None:
        if 0 <= i < self.rowCount():
            self.selectRow(i)
            self.scrollToItem(self.item(i, 0))

    def refs(self) -> list[str | None]:
        return [r.get("version") for r in self.rows]
