"""Waivers: reviewed, expected differences with a reason and an optional expiry."""
