"""The Serving page: start the local server, watch it live, change what it serves."""

from studio.gui.pages.serving.view import ServingPage

__all__ = ["ServingPage"]
