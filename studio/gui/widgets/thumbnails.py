"""A stored picture, read verified and scaled down to a thumbnail. File work and hashing: call
it in a worker thread (a QImage may be made there; a QPixmap is the GUI thread's)."""

from __future__ import annotations

from PySide6.QtCore import QBuffer, QIODevice, QSize, Qt
from PySide6.QtGui import QImage, QImageReader

from studio.core.errors import StudioError
from studio.core.workspace import Workspace


def thumbnail(ws: Workspace, digest: str, px: int, enlarge: bool = False) -> QImage | None:
    """The picture ``digest`` fitted in a ``px`` square, its proportions kept (a smaller one
    is only made larger when ``enlarge``); None when it is missing, damaged or not a picture
    Qt reads."""
    try:  # read verified, as every stored file is: a damaged one shows as missing
        data = ws.blobs.read_bytes(digest)
    except StudioError:
        return None
    buffer = QBuffer()
    buffer.setData(data)
    buffer.open(QIODevice.OpenModeFlag.ReadOnly)
    reader = QImageReader(buffer)
    size = reader.size()
    if size.isValid() and not size.isEmpty():
        fitted = size.scaled(QSize(px, px), Qt.AspectRatioMode.KeepAspectRatio)
        reader.setScaledSize(fitted if enlarge else fitted.boundedTo(size))
    image = reader.read()
    return None if image.isNull() else image
