"""The confusion matrix as a painted heatmap: a count in every cell, class names on both axes,
a click on a cell reports it. Right answers are shaded blue and mistakes red, each by its
share of the actual class, so a small class's errors show as clearly as a large one's.

Up to 1,000 classes are allowed, so a paint must not grow with n³: the layout and the row
totals are computed once (per size and per matrix), a many-class matrix is painted as one
scaled image without counts, and hovering repaints only the two cells that changed."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from PySide6.QtCore import QEvent, QPoint, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QImage,
    QMouseEvent,
    QPainter,
    QPaintEvent,
)
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from studio.gui.pages.evaluation.plain import tip

MAX_LABEL_PX = 140  # an actual class's name, beside its row
MAX_COLUMN_LABEL_PX = 100  # a predicted class's name, standing under its column
MAX_CELL_PX = 110
ASPECT = 1.6  # the most a cell's width and height differ by
TOP = 4
AXIS_PX = 18  # the "actual" / "predicted" axis titles
RIGHT = (26, 86, 196)  # fully right: a deep blue
WRONG = (197, 34, 31)  # a whole class mistaken: a deep red
EMPTY = QColor("#f5f7fa")
GRID = QColor("#ffffff")
SELECTED = QColor("#1f2933")
ZERO_INK = QColor("#b0b8c1")  # a zero recedes: the counts that matter stand out
DENSE = 40  # above this many classes a cell is too small for its count: one image instead


class Grid(NamedTuple):
    left: int  # the grid's corner
    top: int
    cw: float  # a cell's width and height (whole pixels unless the matrix is dense)
    ch: float
    upright: bool  # whether the predicted classes' names stand, turned


class ConfusionHeatmap(QWidget):
    cell_clicked = Signal(int, int)  # actual class, predicted class

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.labels: list[str] = []
        self.counts: list[list[int]] = []
        self.selected: tuple[int, int] | None = None
        self._hover: tuple[int, int] | None = None
        self._totals: list[int] = []  # each actual class's rows
        self._names_px: int | None = None  # the widest class name, in the label font
        self._grid: Grid | None = None
        self._grid_for: tuple[int, int] = (-1, -1)  # the size _grid was laid out for
        self._image: QImage | None = None  # a dense matrix's cells, one pixel each
        self.setMouseTracking(True)
        self.setMinimumSize(220, 200)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_matrix(self, labels: list[str], counts: list[list[int]]) -> None:
        self.labels, self.counts = list(labels), [list(map(int, r)) for r in counts]
        self._totals = [sum(row) for row in self.counts]
        self.selected = self._hover = None
        self._forget()
        self.update()

    def _forget(self) -> None:
        self._names_px, self._grid, self._image = None, None, None

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.FontChange:  # the names' widths change with the font
            self._forget()
        super().changeEvent(event)

    def sizeHint(self) -> QSize:
        return QSize(460, 420)

    # -- geometry ---------------------------------------------------------------------------

    def _label_font(self) -> QFont:
        font = QFont(self.font())
        font.setPointSizeF(max(7.0, font.pointSizeF() - (1 if len(self.labels) > 8 else 0)))
        return font

    def dense(self) -> bool:
        return len(self.labels) > DENSE

    def names_px(self) -> int:
        if self._names_px is None:
            fm = QFontMetrics(self._label_font())
            self._names_px = max((fm.horizontalAdvance(t) for t in self.labels), default=0)
        return self._names_px

    def _layout(self) -> Grid:
        size = (self.width(), self.height())
        if self._grid is None or self._grid_for != size:
            self._grid, self._grid_for = self._lay_out(), size
        return self._grid

    def _lay_out(self) -> Grid:
        n = max(1, len(self.labels))
        fm = QFontMetrics(self._label_font())
        names = self.names_px()
        left = AXIS_PX + min(MAX_LABEL_PX, names) + 8
        avail_w = self.width() - left - 6
        dense = self.dense()
        cw = min(MAX_CELL_PX, avail_w / n if dense else avail_w // n)
        upright = names + 4 > cw  # the predicted classes' names stand when they cannot lie
        below = (min(MAX_COLUMN_LABEL_PX, names) if upright else fm.height()) + 6
        avail_h = self.height() - TOP - below - AXIS_PX - 4
        ch = min(MAX_CELL_PX, avail_h / n if dense else avail_h // n)
        if dense:  # cells shrink below a pixel rather than run off the widget
            cw = ch = max(0.5, min(cw, ch))
        else:
            # Cells may be wider than high (or the reverse), up to a point: the room is used.
            cw, ch = max(8, min(cw, round(ch * ASPECT))), max(8, min(ch, round(cw * ASPECT)))
        left += max(0, int(avail_w - cw * n) // 2)
        return Grid(left, TOP, cw, ch, upright)

    def cell_rect(self, actual: int, predicted: int) -> QRect:
        g = self._layout()
        # the pixels whose cell_at is this cell (none where cells are under a pixel wide)
        x0, x1 = math.ceil(g.left + predicted * g.cw), math.ceil(g.left + (predicted + 1) * g.cw)
        y0, y1 = math.ceil(g.top + actual * g.ch), math.ceil(g.top + (actual + 1) * g.ch)
        return QRect(x0, y0, max(1, x1 - x0), max(1, y1 - y0))

    def cell_at(self, pos: QPoint) -> tuple[int, int] | None:
        g = self._layout()
        n = len(self.labels)
        i, j = int((pos.y() - g.top) // g.ch), int((pos.x() - g.left) // g.cw)
        if pos.x() < g.left or pos.y() < g.top or not (0 <= i < n and 0 <= j < n):
            return None
        return int(i), int(j)

    # -- colours ----------------------------------------------------------------------------

    def share(self, actual: int, predicted: int) -> float:
        total = self._totals[actual]
        return self.counts[actual][predicted] / total if total else 0.0

    def color(self, actual: int, predicted: int) -> QColor:
        if self.counts[actual][predicted] == 0:
            return EMPTY
        # Mistakes are never fainter than a visible tint: one wrong row must show.
        share = self.share(actual, predicted)
        strength = share if actual == predicted else 0.18 + 0.82 * share
        r, g, b = RIGHT if actual == predicted else WRONG
        mix = 0.08 + 0.92 * strength
        return QColor(round(255 + (r - 255) * mix), round(255 + (g - 255) * mix),
                      round(255 + (b - 255) * mix))

    # -- painting ---------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        if not self.labels or not self.counts:
            return
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        g = self._layout()
        n = len(self.labels)
        if self.dense():
            # shrunk below a pixel a cell is blended with its neighbours, not dropped
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, g.cw < 1)
            p.drawImage(QRectF(g.left, g.top, n * g.cw, n * g.ch), self._cells_image())
        else:
            self._paint_cells(p, n, g, event.rect())
        self._paint_marks(p, g)
        self._paint_labels(p, g)
        p.end()

    def _cells_image(self) -> QImage:
        """Every cell's colour as one pixel, the same colours color() gives, built at once."""
        if self._image is None:
            counts = np.asarray(self.counts, dtype=np.float64)
            n = len(counts)
            totals = counts.sum(1, keepdims=True)
            share = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
            right = np.eye(n, dtype=bool)
            strength = np.where(right, share, 0.18 + 0.82 * share)
            mix = (0.08 + 0.92 * strength)[..., None]
            base = np.where(right[..., None], np.array(RIGHT, float), np.array(WRONG, float))
            rgb = np.round(255 + (base - 255) * mix)
            rgb[counts == 0] = (EMPTY.red(), EMPTY.green(), EMPTY.blue())
            pixels = np.ascontiguousarray(rgb.astype(np.uint8))
            self._image = QImage(pixels.data, n, n, 3 * n, QImage.Format.Format_RGB888).copy()
        return self._image

    def _paint_cells(self, p: QPainter, n: int, g: Grid, dirty: QRect) -> None:
        biggest = max((c for row in self.counts for c in row), default=0)
        font = QFont(self.font())
        size = font.pointSizeF()
        fm = QFontMetrics(font)
        while size > 6.5 and (fm.horizontalAdvance(f"{biggest:,}") > g.cw - 4
                              or fm.height() > g.ch):
            size -= 0.5
            font.setPointSizeF(size)
            fm = QFontMetrics(font)
        p.setFont(font)
        # Only the cells the repaint asks for: a hover repaints two cells, not n².
        rows = range(max(0, int((dirty.top() - g.top) // g.ch)),
                     min(n, int((dirty.bottom() - g.top) // g.ch) + 1))
        columns = range(max(0, int((dirty.left() - g.left) // g.cw)),
                        min(n, int((dirty.right() - g.left) // g.cw) + 1))
        for i in rows:
            for j in columns:
                rect = self.cell_rect(i, j)
                fill = self.color(i, j)
                p.fillRect(rect, fill)
                p.setPen(GRID)
                p.drawRect(rect.adjusted(0, 0, -1, -1))
                text = f"{self.counts[i][j]:,}"
                if fm.horizontalAdvance(text) <= g.cw - 2 and fm.height() <= g.ch + 2:
                    p.setPen(ZERO_INK if self.counts[i][j] == 0 else QColor("white")
                             if fill.lightnessF() < 0.55 else QColor("#1f2933"))
                    p.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), text)

    def _paint_marks(self, p: QPainter, g: Grid) -> None:
        thick = 3 if min(g.cw, g.ch) >= 30 else 2
        for mark, color, width in ((self._hover, QColor("#616e7c"), 1),
                                   (self.selected, SELECTED, thick)):
            if mark is not None:
                pen = p.pen()
                pen.setColor(color)
                pen.setWidth(width)
                p.setPen(pen)
                p.setBrush(Qt.BrushStyle.NoBrush)
                rect = self.cell_rect(*mark)
                # a cell of a few pixels is marked around, not inside
                p.drawRect(rect.adjusted(1, 1, -2, -2) if min(rect.width(), rect.height()) >= 8
                           else rect.adjusted(-2, -2, 1, 1))

    def _paint_labels(self, p: QPainter, g: Grid) -> None:
        n = len(self.labels)
        font = self._label_font()
        fm = QFontMetrics(font)
        p.setFont(font)
        p.setPen(QColor("#1f2933"))
        room = min(MAX_LABEL_PX, g.left - AXIS_PX - 8)
        elide = Qt.TextElideMode.ElideRight
        right_mid = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        # Where rows are shorter than a line of text, every k-th class is named.
        step = max(1, math.ceil(fm.height() / g.ch)) if self.dense() else 1
        high = max(round(g.ch), fm.height())
        for i in range(0, n, step):
            mid = g.top + (i + 0.5) * g.ch
            rect = QRect(g.left - room - 6, int(mid - high / 2), room, high)
            p.drawText(rect, right_mid, fm.elidedText(self.labels[i], elide, room))
        below = int(g.top + n * g.ch + 4)
        depth = 0
        step = max(1, math.ceil(fm.height() / g.cw)) if self.dense() else 1
        for j in range(0, n, step):
            name, x = self.labels[j], int(g.left + j * g.cw)
            if g.upright:
                text = fm.elidedText(name, elide, MAX_COLUMN_LABEL_PX)
                depth = max(depth, fm.horizontalAdvance(text))
                p.save()
                p.translate(x + g.cw / 2 - (fm.ascent() - fm.descent()) / 2, below)
                p.rotate(90)  # read top to bottom, the letters' tops to the right of the baseline
                p.drawText(0, 0, text)
                p.restore()
            else:
                depth = fm.height()
                p.drawText(QRect(x, below, int(g.cw), fm.height()),
                           int(Qt.AlignmentFlag.AlignHCenter), fm.elidedText(name, elide, g.cw))
        axis = QFont(self.font())
        axis.setItalic(True)
        p.setFont(axis)
        p.setPen(QColor("#616e7c"))
        width, height = int(n * g.cw), int(n * g.ch)
        p.drawText(QRect(g.left, below + depth + 2, width, AXIS_PX),
                   int(Qt.AlignmentFlag.AlignHCenter), "predicted class")
        names = min(MAX_LABEL_PX, self.names_px())
        p.save()  # beside the actual classes' names, however far the grid is centred
        p.translate(max(2, g.left - names - 10 - AXIS_PX), g.top + height / 2)
        p.rotate(-90)
        p.drawText(QRect(-height // 2, 0, height, AXIS_PX), int(Qt.AlignmentFlag.AlignCenter),
                   "actual class")
        p.restore()

    # -- the mouse --------------------------------------------------------------------------

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        at = self.cell_at(event.position().toPoint()) if self.labels else None
        if at != self._hover:
            self._repaint_cell(self._hover)
            self._hover = at
            self._repaint_cell(at)
        if at is None:
            QToolTip.hideText()
            return
        i, j = at
        count = self.counts[i][j]
        QToolTip.showText(event.globalPosition().toPoint(), tip(
            f"actual: {self.labels[i]}\npredicted: {self.labels[j]}\n"
            f"{count:,} row{'s' if count != 1 else ''} ({self.share(i, j):.1%} of the actual "
            "class)\nclick to list them"), self)

    def _repaint_cell(self, cell: tuple[int, int] | None) -> None:
        if cell is not None:  # with the margin a mark around a small cell takes
            self.update(self.cell_rect(*cell).adjusted(-3, -3, 3, 3))

    def leaveEvent(self, _event: object) -> None:
        self._repaint_cell(self._hover)
        self._hover = None

    def mousePressEvent(self, event: QMouseEvent) -> None:
        at = self.cell_at(event.position().toPoint()) if self.labels else None
        if at is not None and event.button() == Qt.MouseButton.LeftButton:
            self._repaint_cell(self.selected)
            self.selected = at
            self._repaint_cell(at)
            self.cell_clicked.emit(*at)
