"""Secrets at the edge: secret values become keyed hashes before anything is stored or shown.

- `lexicon`: which attribute names hold secrets, word by word;
- `rules`: where secrets stand inside a string (URLs, connection strings, vendor tokens, PEM);
- `redactor`: both applied to documents, resource keys and error texts;
- `hashing`: the stored form, a keyed hash.
"""

from collectors.secrets.census import Census
from collectors.secrets.hashing import (
    MARKER_IN_TEXT,
    SECRET_PREFIX,
    SHOWN,
    SecretHasher,
    is_secret_marker,
    show_markers,
)
from collectors.secrets.lexicon import KeyLexicon
from collectors.secrets.redactor import RULES, RULES_VERSION, Finding, Redactor

__all__ = [
    "MARKER_IN_TEXT",
    "RULES",
    "RULES_VERSION",
    "SECRET_PREFIX",
    "SHOWN",
    "Census",
    "Finding",
    "KeyLexicon",
    "Redactor",
    "SecretHasher",
    "is_secret_marker",
    "show_markers",
]
