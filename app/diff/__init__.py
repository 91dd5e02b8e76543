"""The diff engine: normalization, comparison and classification of drift. Pure: no I/O."""
