"""The Evaluation view of a model version (imported on first use: it brings pyqtgraph)."""
