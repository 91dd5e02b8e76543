"""envparity: environment drift detection service."""

__version__ = "0.2.0"
