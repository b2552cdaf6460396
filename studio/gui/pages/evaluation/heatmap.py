"""The confusion matrix as a painted heatmap: a count in every cell, class names on both axes,
a click on a cell reports it. Right answers are shaded blue and mistakes red, each by its
share of the actual class, so a small class's errors show as clearly as a large one's."""

from __future__ import annotations

from typing import NamedTuple

from PySide6.QtCore import QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QMouseEvent, QPainter, QPaintEvent
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


class Grid(NamedTuple):
    left: int  # the grid's corner
    top: int
    cw: int  # a cell's width and height
    ch: int
    upright: bool  # whether the predicted classes' names stand, turned


class ConfusionHeatmap(QWidget):
    cell_clicked = Signal(int, int)  # actual class, predicted class

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.labels: list[str] = []
        self.counts: list[list[int]] = []
        self.selected: tuple[int, int] | None = None
        self._hover: tuple[int, int] | None = None
        self.setMouseTracking(True)
        self.setMinimumSize(220, 200)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_matrix(self, labels: list[str], counts: list[list[int]]) -> None:
        self.labels, self.counts = list(labels), [list(map(int, r)) for r in counts]
        self.selected = self._hover = None
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(460, 420)

    # -- geometry ---------------------------------------------------------------------------

    def _label_font(self) -> QFont:
        font = QFont(self.font())
        font.setPointSizeF(max(7.0, font.pointSizeF() - (1 if len(self.labels) > 8 else 0)))
        return font

    def _layout(self) -> Grid:
        n = max(1, len(self.labels))
        fm = QFontMetrics(self._label_font())
        names = max((fm.horizontalAdvance(t) for t in self.labels), default=0)
        left = AXIS_PX + min(MAX_LABEL_PX, names) + 8
        avail_w = self.width() - left - 6
        cw = min(MAX_CELL_PX, avail_w // n)
        upright = names + 4 > cw  # the predicted classes' names stand when they cannot lie
        below = (min(MAX_COLUMN_LABEL_PX, names) if upright else fm.height()) + 6
        ch = min(MAX_CELL_PX, (self.height() - TOP - below - AXIS_PX - 4) // n)
        # Cells may be wider than high (or the reverse), up to a point: the room is used.
        cw, ch = max(8, min(cw, round(ch * ASPECT))), max(8, min(ch, round(cw * ASPECT)))
        left += max(0, (avail_w - cw * n) // 2)
        return Grid(left, TOP, cw, ch, upright)

    def cell_rect(self, actual: int, predicted: int) -> QRect:
        g = self._layout()
        return QRect(g.left + predicted * g.cw, g.top + actual * g.ch, g.cw, g.ch)

    def cell_at(self, pos: QPoint) -> tuple[int, int] | None:
        g = self._layout()
        n = len(self.labels)
        i, j = (pos.y() - g.top) // g.ch, (pos.x() - g.left) // g.cw
        if pos.x() < g.left or pos.y() < g.top or not (0 <= i < n and 0 <= j < n):
            return None
        return int(i), int(j)

    # -- colours ----------------------------------------------------------------------------

    def share(self, actual: int, predicted: int) -> float:
        total = sum(self.counts[actual])
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

    def paintEvent(self, _event: QPaintEvent) -> None:
        if not self.labels or not self.counts:
            return
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        g = self._layout()
        self._paint_cells(p, len(self.labels), g)
        self._paint_labels(p, g)
        p.end()

    def _paint_cells(self, p: QPainter, n: int, g: Grid) -> None:
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
        for i in range(n):
            for j in range(n):
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
        thick = 3 if min(g.cw, g.ch) >= 30 else 2
        for mark, color, width in ((self._hover, QColor("#616e7c"), 1),
                                   (self.selected, SELECTED, thick)):
            if mark is not None:
                pen = p.pen()
                pen.setColor(color)
                pen.setWidth(width)
                p.setPen(pen)
                p.drawRect(self.cell_rect(*mark).adjusted(1, 1, -2, -2))

    def _paint_labels(self, p: QPainter, g: Grid) -> None:
        n = len(self.labels)
        font = self._label_font()
        fm = QFontMetrics(font)
        p.setFont(font)
        p.setPen(QColor("#1f2933"))
        room = min(MAX_LABEL_PX, g.left - AXIS_PX - 8)
        elide = Qt.TextElideMode.ElideRight
        right_mid = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        for i, name in enumerate(self.labels):
            rect = QRect(g.left - room - 6, g.top + i * g.ch, room, g.ch)
            p.drawText(rect, right_mid, fm.elidedText(name, elide, room))
        below = g.top + n * g.ch + 4
        depth = 0
        for j, name in enumerate(self.labels):
            x = g.left + j * g.cw
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
                p.drawText(QRect(x, below, g.cw, fm.height()),
                           int(Qt.AlignmentFlag.AlignHCenter), fm.elidedText(name, elide, g.cw))
        axis = QFont(self.font())
        axis.setItalic(True)
        p.setFont(axis)
        p.setPen(QColor("#616e7c"))
        width, height = n * g.cw, n * g.ch
        p.drawText(QRect(g.left, below + depth + 2, width, AXIS_PX),
                   int(Qt.AlignmentFlag.AlignHCenter), "predicted class")
        names = min(MAX_LABEL_PX, max(fm.horizontalAdvance(t) for t in self.labels))
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
            self._hover = at
            self.update()
        if at is None:
            QToolTip.hideText()
            return
        i, j = at
        count = self.counts[i][j]
        QToolTip.showText(event.globalPosition().toPoint(), tip(
            f"actual: {self.labels[i]}\npredicted: {self.labels[j]}\n"
            f"{count:,} row{'s' if count != 1 else ''} ({self.share(i, j):.1%} of the actual "
            "class)\nclick to list them"), self)

    def leaveEvent(self, _event: object) -> None:
        self._hover = None
        self.update()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        at = self.cell_at(event.position().toPoint()) if self.labels else None
        if at is not None and event.button() == Qt.MouseButton.LeftButton:
            self.selected = at
            self.update()
            self.cell_clicked.emit(*at)
