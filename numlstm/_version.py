"""The package version, on the ground floor (the model files record it)."""

__version__ = "0.1.0"
