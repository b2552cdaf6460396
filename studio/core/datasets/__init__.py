"""Datasets: readers per format, the catalog of imported snapshots, the recipe and splits."""
