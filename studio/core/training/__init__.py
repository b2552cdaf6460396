"""Task templates, model builders, the trainer loop and metrics. torch is imported lazily."""
