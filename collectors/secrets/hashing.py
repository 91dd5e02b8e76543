"""The stored form of a secret: a keyed hash (HMAC-SHA256 under the installation's key)."""

from __future__ import annotations

import hashlib
import hmac
import re

SECRET_PREFIX = "secret:hmac-sha256:"
MARKER = re.compile(r"^secret:hmac-sha256:[0-9a-f]{32}$")
# A marker standing inside a larger value (`postgres://app:<marker>@db/app`).
MARKER_IN_TEXT = re.compile(r"secret:hmac-sha256:[0-9a-f]{32}")


SHOWN = "(secret)"  # how reports, pages and alerts show a secret: never its marker


def show_markers(text: str, shown: str = SHOWN) -> str:
    """`text` with every marker inside it replaced (by `(secret)`, or a placeholder)."""
    return MARKER_IN_TEXT.sub(shown, text) if SECRET_PREFIX in text else text


def is_secret_marker(value: object) -> bool:
    """True for a value that is already a keyed hash (so hashing is idempotent)."""
    return isinstance(value, str) and bool(MARKER.match(value))


class SecretHasher:
    """HMAC-SHA256 under the installation's key; equal secrets give equal markers."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the secret key must be at least 16 bytes")
        self._key = key

    def __call__(self, value: str) -> str:
        if is_secret_marker(value):
            return value
        digest = hmac.new(self._key, value.encode("utf-8"), hashlib.sha256).hexdigest()
        return SECRET_PREFIX + digest[:32]

    def __repr__(self) -> str:  # never show the key
        return "SecretHasher(<key>)"
