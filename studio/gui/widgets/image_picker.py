"""A field that holds one picture: chosen with a file dialog or dropped on it."""

from __future__ import annotations

import base64
from pathlib import Path

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QImageReader, QPixmap
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QWidget

PREVIEW_PX = 96
MAX_BYTES = 45 << 20  # base64 of it must fit the server's 64 MiB body


class ImagePicker(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.path: Path | None = None
        self.setAcceptDrops(True)
        self.preview = QLabel("Drop an image here")
        self.preview.setObjectName("muted")
        self.preview.setFixedSize(PREVIEW_PX, PREVIEW_PX)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setWordWrap(True)
        self.preview.setStyleSheet("border: 1px dashed #9aa0a6; border-radius: 4px;")
        choose = QPushButton("Choose image…")
        choose.clicked.connect(self._choose)
        self.name = QLabel("")
        self.name.setObjectName("muted")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.preview)
        layout.addWidget(choose)
        layout.addWidget(self.name, 1)

    def set_path(self, path: Path) -> None:
        reader = QImageReader(str(path))
        size = reader.size()
        if not reader.canRead() or size.isEmpty():
            self.name.setText(f"{path.name}: not an image this app can read")
            return
        reader.setScaledSize(size.scaled(QSize(PREVIEW_PX, PREVIEW_PX),
                                         Qt.AspectRatioMode.KeepAspectRatio))
        self.preview.setPixmap(QPixmap.fromImage(reader.read()))
        self.path = path
        self.name.setText(path.name)

    def value(self) -> str | None:
        """The picture as base64 text, the way the server takes it; None when empty."""
        if self.path is None:
            return None
        try:
            if self.path.stat().st_size > MAX_BYTES:
                raise ValueError(f"{self.path.name} is over {MAX_BYTES >> 20} MiB")
            return base64.b64encode(self.path.read_bytes()).decode("ascii")
        except OSError as exc:
            raise ValueError(f"{self.path.name} cannot be read: {exc.strerror}") from None

    def _choose(self) -> None:
        from studio.core.datasets.pixels import IMAGE_SUFFIXES

        pattern = " ".join(f"*{s}" for s in IMAGE_SUFFIXES)
        name, _ = QFileDialog.getOpenFileName(self, "Choose an image", "",
                                              f"Images ({pattern})")
        if name:
            self.set_path(Path(name))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        self.set_path(Path(event.mimeData().urls()[0].toLocalFile()))
        event.acceptProposedAction()
