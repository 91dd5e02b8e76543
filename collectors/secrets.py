"""Secrets at the edge: secret values become keyed hashes before anything is stored or shown."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from typing import Any

# Attribute keys that hold secrets. "auth" counts only as a word of its own, so that
# `author` or `authority` are not taken for secrets while `db_auth` and `AUTH_TOKEN` are.
DEFAULT_SECRET_KEY_PATTERN = (
    r"passw(or)?d|secret|token|api[_-]?key|apikey|private[_-]?key|credential"
    r"|(^|[^a-z])auth(orization)?([^a-z]|$)|^pwd$"
)

SECRET_PREFIX = "secret:hmac-sha256:"
_MARKER = re.compile(r"^secret:hmac-sha256:[0-9a-f]{32}$")
# scheme://user:password@host: the password part of a URL is a secret whatever its key.
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^@\s/]+)(?=@)")


def is_secret_marker(value: object) -> bool:
    """True for a value that is already a keyed hash (so hashing is idempotent)."""
    return isinstance(value, str) and bool(_MARKER.match(value))


def compile_key_pattern(pattern: str | None = None) -> re.Pattern[str]:
    return re.compile(pattern or DEFAULT_SECRET_KEY_PATTERN, re.IGNORECASE)


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


class Redactor:
    """Replaces secret values in attribute documents and error texts."""

    def __init__(self, hasher: SecretHasher, key_pattern: str | None = None) -> None:
        self.hash = hasher
        self.key_pattern = compile_key_pattern(key_pattern)

    def is_secret_key(self, key: str) -> bool:
        return bool(self.key_pattern.search(key))

    def redact(
        self, attributes: dict[str, Any], secret_paths: Iterable[tuple[str | int, ...]] = ()
    ) -> dict[str, Any]:
        """A copy of `attributes` with every secret value hashed."""
        doc: dict[str, Any] = self._walk(attributes, secret=False)
        for path in secret_paths:
            doc = _replace_at(doc, path, self._hash_tree)
        return doc

    def _walk(self, value: Any, secret: bool) -> Any:
        if isinstance(value, dict):
            return {
                k: self._walk(v, secret or self.is_secret_key(str(k))) for k, v in value.items()
            }
        if isinstance(value, list):
            return [self._walk(v, secret) for v in value]
        if secret:
            return self._hash_scalar(value)
        if isinstance(value, str) and "://" in value:
            return _URL_PASSWORD.sub(lambda m: m["head"] + self.hash(m["pw"]), value)
        return value

    def _hash_scalar(self, value: Any) -> Any:
        # Booleans and nulls say whether something is set, never what it is: kept for diffing.
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int | float):
            return self.hash(repr(value))
        if isinstance(value, str):
            return self.hash(value)
        return self.hash(str(value))

    def _hash_tree(self, value: Any) -> Any:
        return self._walk(value, secret=True)

    def scrub(self, text: str) -> str:
        """Best effort for free text (errors, stderr tails): masks `key=value` and URL passwords."""
        text = _URL_PASSWORD.sub(lambda m: m["head"] + "***", text)

        out: list[str] = []
        pos = 0
        for m in _KEY_SEPARATOR.finditer(text):
            value = _VALUE.match(text, m.end())
            if m.start() >= pos and value and self.is_secret_key(m["k"]):
                out += [text[pos : m.end()], "***"]
                pos = value.end()
        return "".join(out) + text[pos:]


# `key=value`, `key: value`, `"key": "value"`: a key, its separator, then the value.
_KEY_SEPARATOR = re.compile(r"""(?P<k>[A-Za-z_][A-Za-z0-9_.\-]*)["']?\s*[=:]\s*["']?""")
_VALUE = re.compile(r"""[^\s"',;}]+""")


def _replace_at(doc: Any, path: tuple[str | int, ...], fn: Any) -> Any:
    if not path:
        return fn(doc)
    head, rest = path[0], path[1:]
    if isinstance(doc, dict) and head in doc:
        return {**doc, head: _replace_at(doc[head], rest, fn)}
    if isinstance(doc, list) and isinstance(head, int) and -len(doc) <= head < len(doc):
        copy = list(doc)
        copy[head] = _replace_at(copy[head], rest, fn)
        return copy
    return doc
