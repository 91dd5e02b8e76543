"""envparity: environment drift detection service."""

__version__ = "0.1.0"
