"""Collectors: each source type turns one configured source into resources. Knows nothing of app."""
