"""A version's lineage as a small painted graph, left to right: the dataset, the training run,
the version it was made from or the file it was imported from → this version → the versions
made from it. A click on a version walks there; a click on the dataset opens it."""

from __future__ import annotations

import os
from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPen,
    QPolygonF,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

from studio.gui.pages.evaluation.plain import tip

NODE_W, NODE_H, V_GAP, MARGIN, MIN_COL_GAP, MAX_COL_GAP = 190, 46, 12, 14, 28, 90
INK, MUTED, EDGE = QColor("#1f2933"), QColor("#616e7c"), QColor("#9aa5b1")
FILL = {"dataset": "#e6f4ea", "job": "#f5f7fa", "source": "#fef7e0", "version": "#ffffff",
        "this": "#1a73e8"}
BORDER = {"dataset": "#34a853", "job": "#cbd2d9", "source": "#f9ab00", "version": "#1a73e8",
          "this": "#1a73e8"}
TITLES = {"trained_on": "dataset", "made_by": "training run", "derived_from": "made from",
          "imported_from": "imported from"}


@dataclass(frozen=True)
class Node:
    key: str  # what it names: a dataset NAME@DIGEST12, a job id, NAME:N, a path
    kind: str  # dataset, job, source, version, this
    title: str  # the small line above: "dataset", "training run", "derived" …
    text: str  # the name shown
    detail: str  # its tooltip
    note: str = ""  # added to the title where the node is wide enough (a snapshot digest)

    @property
    def clickable(self) -> bool:
        return self.kind in ("dataset", "version")


def build(ref: str, edges: dict[str, list[tuple[str, str, str]]]
          ) -> tuple[list[list[Node]], list[tuple[Node, Node]]]:
    """Columns of nodes, left to right, and the arrows between them."""
    this = Node(ref, "this", "this version", ref, ref)
    dataset = job = None
    before: list[Node] = []
    for relation, kind, target in edges.get("from", []):
        node = _upstream(relation, kind, target)
        if kind == "dataset" and dataset is None:
            dataset = node
        elif kind == "job" and job is None:
            job = node
        else:
            before.append(node)
    children = [Node(target, "version", "derived" if relation == "derived_from"
                     else relation.replace("_", " "), target,
                     f"{target}: {relation.replace('_', ' ')} {ref}\n(click to go there)")
                for relation, _kind, target in edges.get("to", [])]
    links: list[tuple[Node, Node]] = []
    columns: list[list[Node]] = []
    if dataset is not None and job is not None:
        columns.append([dataset])
        links.append((dataset, job))
    near = [n for n in (job or dataset,) if n is not None] + before
    if near:
        columns.append(near)
        links += [(n, this) for n in near]
    columns.append([this])
    if children:
        columns.append(children)
        links += [(this, c) for c in children]
    return columns, links


def _upstream(relation: str, kind: str, target: str) -> Node:
    title = TITLES.get(relation, relation.replace("_", " "))
    if kind == "dataset":
        name, _, digest = target.partition("@")
        return Node(target, "dataset", title, name,
                    f"dataset {name}\nsnapshot {digest or 'unknown'}\n(click to open it)",
                    digest)
    if kind == "job":
        return Node(target, "job", title, target, f"the training run (job {target})")
    if kind == "version":
        return Node(target, "version", title, target, f"{target}\n(click to go there)")
    shown = target
    if not target.startswith("hf://"):
        shown = os.path.basename(target.rstrip("/\\")) or target
    return Node(target, "source" if kind == "source" else kind, title, shown, target)


class LineageGraph(QWidget):
    version_clicked = Signal(str)  # NAME:N
    dataset_clicked = Signal(str)  # NAME@DIGEST12

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.columns: list[list[Node]] = []
        self.links: list[tuple[Node, Node]] = []
        self._rects: dict[Node, QRect] = {}
        self._hover: Node | None = None
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_lineage(self, ref: str, edges: dict[str, list[tuple[str, str, str]]]) -> None:
        self.columns, self.links = build(ref, edges)
        self._hover = None
        self._layout()
        self.updateGeometry()
        self.update()

    def clear(self) -> None:
        self.columns, self.links, self._rects = [], [], {}
        self.update()

    def nodes(self) -> list[Node]:
        return [n for col in self.columns for n in col]

    def node_rect(self, key: str) -> QRect:
        return next(r for n, r in self._rects.items() if n.key == key and n.kind != "this")

    def sizeHint(self) -> QSize:
        return QSize(4 * NODE_W, self._needed_height())

    def minimumSizeHint(self) -> QSize:
        return QSize(2 * MARGIN + len(self.columns) * 90, self._needed_height())

    def _needed_height(self) -> int:
        tallest = max((len(c) for c in self.columns), default=1)
        return 2 * MARGIN + tallest * NODE_H + (tallest - 1) * V_GAP

    def _layout(self) -> None:
        self._rects = {}
        n = len(self.columns)
        if not n:
            return
        room = self.width() - 2 * MARGIN
        w = int(min(NODE_W, (room - (n - 1) * MIN_COL_GAP) / n))
        gap = min((room - n * w) / (n - 1), MAX_COL_GAP) if n > 1 else 0
        left = max(MARGIN, (self.width() - n * w - (n - 1) * gap) // 2)
        for i, col in enumerate(self.columns):
            x = int(left + i * (w + gap))
            height = len(col) * NODE_H + (len(col) - 1) * V_GAP
            y = max(MARGIN, (self.height() - height) // 2)
            for k, node in enumerate(col):
                self._rects[node] = QRect(x, y + k * (NODE_H + V_GAP), w, NODE_H)

    def resizeEvent(self, event: object) -> None:
        self._layout()
        super().resizeEvent(event)

    def node_at(self, pos: QPointF) -> Node | None:
        return next((n for n, r in self._rects.items() if r.contains(pos.toPoint())), None)

    def paintEvent(self, _event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        for a, b in self.links:
            if a in self._rects and b in self._rects:
                self._arrow(painter, self._rects[a], self._rects[b])
        for node, rect in self._rects.items():
            self._node(painter, node, rect)
        painter.end()

    def _arrow(self, painter: QPainter, a: QRect, b: QRect) -> None:
        start = QPointF(a.right() + 1, a.center().y())
        end = QPointF(b.left() - 1, b.center().y())
        mid = (start.x() + end.x()) / 2
        path = QPainterPath(start)
        path.cubicTo(QPointF(mid, start.y()), QPointF(mid, end.y()), end)
        painter.setPen(QPen(EDGE, 1.5))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(path)
        painter.setBrush(EDGE)
        painter.drawPolygon(QPolygonF([end, end + QPointF(-8, -4), end + QPointF(-8, 4)]))

    def _node(self, painter: QPainter, node: Node, rect: QRect) -> None:
        this = node.kind == "this"
        hover = node is self._hover and node.clickable
        painter.setPen(QPen(QColor(BORDER.get(node.kind, "#cbd2d9")), 2 if hover else 1))
        painter.setBrush(QColor(FILL.get(node.kind, "#ffffff")))
        painter.drawRoundedRect(QRectF(rect).adjusted(0.5, 0.5, -0.5, -0.5), 7, 7)
        inner = rect.adjusted(9, 4, -9, -4)
        small = QFont(self.font())
        small.setPointSizeF(max(6.5, self.font().pointSizeF() * 0.8))
        painter.setFont(small)
        painter.setPen(QColor("#d2e3fc") if this else MUTED)
        top = QRect(inner.left(), inner.top(), inner.width(), inner.height() // 2)
        title = f"{node.title} · {node.note}" if node.note else node.title
        if painter.fontMetrics().horizontalAdvance(title) > inner.width():
            title = node.title
        painter.drawText(top, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
                         painter.fontMetrics().elidedText(title, Qt.TextElideMode.ElideRight,
                                                          inner.width()))
        bold = QFont(self.font())
        bold.setBold(this or node.clickable)
        painter.setFont(bold)
        painter.setPen(QColor("#ffffff") if this else INK)
        bottom = QRect(inner.left(), top.bottom(), inner.width(), inner.height() - top.height())
        mode = (Qt.TextElideMode.ElideLeft if node.kind == "source"
                else Qt.TextElideMode.ElideRight)
        painter.drawText(bottom, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
                         painter.fontMetrics().elidedText(node.text, mode, inner.width()))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        node = self.node_at(event.position())
        if node is not self._hover:
            self._hover = node
            self.update()
        self.setCursor(Qt.CursorShape.PointingHandCursor if node is not None and node.clickable
                       else Qt.CursorShape.ArrowCursor)
        self.setToolTip(tip(node.detail) if node is not None else "")

    def leaveEvent(self, event: object) -> None:
        self._hover = None
        self.update()
        super().leaveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        node = self.node_at(event.position())
        if node is None or event.button() != Qt.MouseButton.LeftButton:
            return
        if node.kind == "version":
            self.version_clicked.emit(node.key)
        elif node.kind == "dataset":
            self.dataset_clicked.emit(node.key)
