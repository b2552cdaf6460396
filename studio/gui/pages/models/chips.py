"""Aliases and tags as chips: painted in the list's cells (``ChipDelegate``) and, with a ✕
that removes one, in a version's details (``ChipBar``). Painted rather than made of widgets,
so a long list costs no widgets, and a chip's text is drawn as text, never as markup."""

from __future__ import annotations

from PySide6.QtCore import (
    QEvent,
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    QRect,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QFontMetrics, QHelpEvent, QMouseEvent, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QApplication,
    QSizePolicy,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QToolTip,
    QWidget,
)

from studio.gui.pages.evaluation.plain import tip

ALIAS = ("#e8f0fe", "#1967d2")  # fill, ink
TAG = ("#eef1f4", "#3e4c59")
CHIPS_ROLE = Qt.ItemDataRole.UserRole + 1  # the cell's chips: a list of str
PAD_X, PAD_Y, GAP = 7, 1, 4
CLOSE = "  ✕"
MAX_CHIP_PX = 220  # a long tag value is elided in its chip; the tooltip has it whole

Index = QModelIndex | QPersistentModelIndex


def chip_width(fm: QFontMetrics, text: str, closable: bool) -> int:
    # +4: text measured whole can need a pixel or two more once drawn (kerning, rounding)
    return min(MAX_CHIP_PX, fm.horizontalAdvance(text + (CLOSE if closable else "")) + 4
               ) + 2 * PAD_X


def flow(fm: QFontMetrics, texts: list[str], width: int, closable: bool) -> list[QRect]:
    """Where each chip goes, left to right, wrapping at ``width``."""
    h = fm.height() + 2 * PAD_Y
    x = y = 0
    rects = []
    for text in texts:
        w = min(chip_width(fm, text, closable), max(width, 1))
        if x and x + w > width:
            x, y = 0, y + h + GAP
        rects.append(QRect(x, y, w, h))
        x += w + GAP
    return rects


def paint_chip(painter: QPainter, rect: QRect, text: str, colors: tuple[str, str],
               closable: bool = False) -> None:
    fill, ink = colors
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(fill))
    painter.drawRoundedRect(rect, rect.height() / 2, rect.height() / 2)
    painter.setPen(QColor(ink))
    fm = painter.fontMetrics()
    inner = rect.adjusted(PAD_X, 0, -PAD_X, 0)
    close_w = fm.horizontalAdvance(CLOSE) if closable else 0
    shown = fm.elidedText(text, Qt.TextElideMode.ElideRight, inner.width() - close_w)
    painter.drawText(inner.adjusted(0, 0, -close_w, 0),
                     int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft), shown)
    if closable:
        painter.drawText(inner, int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight),
                         CLOSE.strip())


class ChipDelegate(QStyledItemDelegate):
    """A cell's chips on one line; those that do not fit become "+N" (its tooltip lists
    them all)."""

    def __init__(self, colors: tuple[str, str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.colors = colors

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        style = opt.widget.style() if opt.widget else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)
        chips = index.data(CHIPS_ROLE) or []
        if not chips:
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        fm = painter.fontMetrics()
        area = option.rect.adjusted(4, 0, -4, 0)
        h = fm.height() + 2 * PAD_Y
        x, top = area.left(), area.top() + (area.height() - h) // 2
        for k, text in enumerate(chips):
            w = chip_width(fm, text, False)
            rest = len(chips) - k - 1
            more_w = fm.horizontalAdvance(f"+{rest}") + 6 if rest else 0
            if x + w + more_w > area.right() and k > 0:
                painter.setPen(QColor(self.colors[1]))
                painter.drawText(QRect(x, top, area.right() - x, h),
                                 int(Qt.AlignmentFlag.AlignVCenter), f"+{len(chips) - k}")
                break
            # the first chip gives up width (elided) so that "+N" still shows
            w = max(min(w, area.right() - x - more_w), min(w, 30))
            paint_chip(painter, QRect(x, top, w, h), text, self.colors)
            x += w + GAP
        painter.restore()

    def sizeHint(self, option: QStyleOptionViewItem, index: Index) -> QSize:
        fm = option.fontMetrics
        chips = index.data(CHIPS_ROLE) or []
        width = sum(chip_width(fm, t, False) + GAP for t in chips[:3]) + 8
        return QSize(max(width, 40), fm.height() + 2 * PAD_Y + 8)

    def helpEvent(self, event: QHelpEvent, view: object, option: QStyleOptionViewItem,
                  index: Index) -> bool:
        chips = index.data(CHIPS_ROLE) or []
        if chips:
            QToolTip.showText(event.globalPos(), tip("\n".join(chips)))
            return True
        return super().helpEvent(event, view, option, index)


class ChipBar(QWidget):
    """Chips that wrap, each with a ✕: a click on it asks for that chip's removal."""

    removed = Signal(str)

    def __init__(self, colors: tuple[str, str], empty: str = "none",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.colors = colors
        self.empty = empty
        self.chips: list[str] = []
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setMouseTracking(True)

    def set_chips(self, chips: list[str]) -> None:
        self.chips = list(chips)
        self.updateGeometry()
        self.update()

    def rects(self) -> list[QRect]:
        return flow(self.fontMetrics(), self.chips, self.width(), True)

    def chip_at(self, pos: QPoint) -> tuple[str, bool] | None:
        """The chip under ``pos`` and whether ``pos`` is on its ✕."""
        close_w = self.fontMetrics().horizontalAdvance(CLOSE) + PAD_X
        for text, r in zip(self.chips, self.rects(), strict=True):
            if r.contains(pos):
                return text, pos.x() >= r.right() - close_w
        return None

    def close_point(self, text: str) -> QPoint:
        """The middle of ``text``'s ✕ (for tests and for keyboard-less scripts)."""
        rect = self.rects()[self.chips.index(text)]
        return QPoint(rect.right() - PAD_X - self.fontMetrics().horizontalAdvance("✕") // 2,
                      rect.center().y())

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        rects = flow(self.fontMetrics(), self.chips, width, True)
        return max((r.bottom() + 1 for r in rects), default=self.fontMetrics().height()
                   + 2 * PAD_Y)

    def sizeHint(self) -> QSize:
        return QSize(200, self.heightForWidth(max(self.width(), 200)))

    def minimumSizeHint(self) -> QSize:
        return QSize(60, self.fontMetrics().height() + 2 * PAD_Y)

    def resizeEvent(self, event: QEvent) -> None:
        super().resizeEvent(event)
        if self.height() != self.heightForWidth(self.width()):
            self.updateGeometry()

    def paintEvent(self, _event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if not self.chips:
            painter.setPen(QColor("#616e7c"))
            painter.drawText(self.rect(), int(Qt.AlignmentFlag.AlignLeft
                                              | Qt.AlignmentFlag.AlignVCenter), self.empty)
        for text, rect in zip(self.chips, self.rects(), strict=True):
            paint_chip(painter, rect, text, self.colors, closable=True)
        painter.end()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        hit = self.chip_at(event.position().toPoint())
        on_close = hit is not None and hit[1]
        self.setCursor(Qt.CursorShape.PointingHandCursor if on_close
                       else Qt.CursorShape.ArrowCursor)
        self.setToolTip(tip(f"{hit[0]}" + ("\n(click ✕ to remove)" if on_close else ""))
                        if hit else "")

    def mousePressEvent(self, event: QMouseEvent) -> None:
        hit = self.chip_at(event.position().toPoint())
        if hit is not None and hit[1] and event.button() == Qt.MouseButton.LeftButton:
            self.removed.emit(hit[0])
