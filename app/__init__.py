"""envparity: environment drift detection service."""
