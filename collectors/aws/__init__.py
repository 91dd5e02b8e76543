"""AWS source types, one per file; shared plumbing in base.py."""
