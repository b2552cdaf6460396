"""Model Studio: from a dataset to a served model without writing code."""

__version__ = "0.1.0"
