"""The confusion matrix as a painted heatmap: a count in every cell, class names on both axes,
a click on a cell reports it. Right answers are shaded blue and mistakes red, each by its
share of the actual class, so a small class's errors show as clearly as a large one's."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QMouseEvent, QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from studio.gui.pages.evaluation.plain import tip

MAX_LABEL_PX = 150
MAX_CELL_PX = 88
AXIS_PX = 18  # the "actual" / "predicted" axis titles
RIGHT = (26, 86, 196)  # fully right: a deep blue
WRONG = (197, 34, 31)  # a whole class mistaken: a deep red
EMPTY = QColor("#f5f7fa")
GRID = QColor("#ffffff")
SELECTED = QColor("#1f2933")


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

    def _layout(self) -> tuple[int, int, int, bool]:
        """(left, top, cell, upright): the grid's corner, its cell size, and whether the
        predicted classes' names stand upright (turned) because they are too wide to lie."""
        n = max(1, len(self.labels))
        fm = QFontMetrics(self._label_font())
        widest = min(MAX_LABEL_PX, max((fm.horizontalAdvance(t) for t in self.labels),
                                       default=0)) + 8
        left = AXIS_PX + widest
        avail_w = self.width() - left - 6
        lying = fm.height() + 6
        cell = min(MAX_CELL_PX, avail_w // n, (self.height() - AXIS_PX - lying - 6) // n)
        upright = widest > cell
        if upright:
            cell = min(MAX_CELL_PX, avail_w // n, (self.height() - AXIS_PX - widest - 6) // n)
        cell = max(8, cell)
        grid = cell * n
        left += max(0, (avail_w - grid) // 2)
        return left, 4, cell, upright

    def cell_rect(self, actual: int, predicted: int) -> QRect:
        left, top, cell, _ = self._layout()
        return QRect(left + predicted * cell, top + actual * cell, cell, cell)

    def cell_at(self, pos: QPoint) -> tuple[int, int] | None:
        left, top, cell, _ = self._layout()
        n = len(self.labels)
        i, j = (pos.y() - top) // cell, (pos.x() - left) // cell
        if pos.x() < left or pos.y() < top or not (0 <= i < n and 0 <= j < n):
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
        left, top, cell, upright = self._layout()
        n = len(self.labels)
        self._paint_cells(p, n, cell)
        self._paint_labels(p, left, top, cell, upright)
        p.end()

    def _paint_cells(self, p: QPainter, n: int, cell: int) -> None:
        biggest = max((c for row in self.counts for c in row), default=0)
        font = QFont(self.font())
        size = font.pointSizeF()
        fm = QFontMetrics(font)
        while size > 6.5 and fm.horizontalAdvance(f"{biggest:,}") > cell - 4:
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
                if fm.horizontalAdvance(text) <= cell - 2 and fm.height() <= cell:
                    p.setPen(QColor("white") if fill.lightnessF() < 0.55 else QColor("#1f2933"))
                    p.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), text)
        for mark, color, width in ((self._hover, QColor("#616e7c"), 1),
                                   (self.selected, SELECTED, 3)):
            if mark is not None:
                pen = p.pen()
                pen.setColor(color)
                pen.setWidth(width)
                p.setPen(pen)
                p.drawRect(self.cell_rect(*mark).adjusted(1, 1, -2, -2))

    def _paint_labels(self, p: QPainter, left: int, top: int, cell: int, upright: bool) -> None:
        n = len(self.labels)
        font = self._label_font()
        fm = QFontMetrics(font)
        p.setFont(font)
        p.setPen(QColor("#1f2933"))
        room = left - AXIS_PX - 8
        elide = Qt.TextElideMode.ElideRight
        right_mid = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        for i, name in enumerate(self.labels):
            rect = QRect(AXIS_PX, top + i * cell, room + 2, cell)
            p.drawText(rect, right_mid, fm.elidedText(name, elide, min(room, MAX_LABEL_PX)))
        below = top + n * cell + 4
        depth = 0
        for j, name in enumerate(self.labels):
            x = left + j * cell
            if upright:
                text = fm.elidedText(name, elide, MAX_LABEL_PX)
                depth = max(depth, fm.horizontalAdvance(text))
                p.save()
                p.translate(x + cell / 2 + fm.ascent() / 2 - 1, below)
                p.rotate(90)  # read top to bottom, starting under the column
                p.drawText(0, 0, text)
                p.restore()
            else:
                depth = fm.height()
                p.drawText(QRect(x, below, cell, fm.height()), int(Qt.AlignmentFlag.AlignHCenter),
                           fm.elidedText(name, elide, cell))
        axis = QFont(self.font())
        axis.setItalic(True)
        p.setFont(axis)
        p.setPen(QColor("#616e7c"))
        grid = n * cell
        p.drawText(QRect(left, below + depth + 2, grid, AXIS_PX),
                   int(Qt.AlignmentFlag.AlignHCenter), "predicted class")
        p.save()
        p.translate(2, top + grid / 2)
        p.rotate(-90)
        p.drawText(QRect(-grid // 2, 0, grid, AXIS_PX), int(Qt.AlignmentFlag.AlignCenter),
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
