"""Secrets at the edge: secret values become keyed hashes before anything is stored or shown."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable
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
        """Best effort for free text (errors, stderr tails, command lines): masks the values of
        secret-looking `key=value`, `key: value`, `"key": "value"` and `--key value`, and URL
        passwords. Over-masking beats a leak: an unquoted value runs to the end of the line."""
        text = _URL_PASSWORD.sub(lambda m: m["head"] + "***", text)
        return self._mask_assignments(text, lambda _value: "***")

    def redact_text(self, text: str) -> str:
        """Like scrub, but each secret becomes its keyed hash, so that distinct values stay
        distinct (resource keys must stay unique)."""
        text = _URL_PASSWORD.sub(lambda m: m["head"] + self.hash(m["pw"]), text)
        return self._mask_assignments(text, lambda value: self.hash(value.strip("\"'")))

    def _mask_assignments(self, text: str, replace: Callable[[str], str]) -> str:
        out: list[str] = []
        pos = 0
        hashed = [(h.start(), h.end()) for h in _MARKER_IN_TEXT.finditer(text)]
        for m in _ASSIGNMENT.finditer(text):
            name = m["flag"] or m["k"]
            if m.start() < pos or not self.is_secret_key(name.lstrip("-")):
                continue
            if any(start <= m.start() < end for start, end in hashed):
                continue  # the word `secret` of a hash already made
            if _IAM_ACTION.match(text, m.start()):
                continue  # `secretsmanager:GetSecretValue` names a permission, holds no secret
            value = (_FLAG_VALUE if m["flag"] else _VALUE).match(text, m.end())
            if value is None or not value[0].strip() or is_secret_marker(value[0]):
                continue
            end = m.end() + len(value[0].rstrip())
            out += [text[pos : m.end()], replace(text[m.end() : end])]
            pos = end
        return "".join(out) + text[pos:]


# `--key value` / `--key=value`, or `key=value`, `key: value`, `"key": value`.
_ASSIGNMENT = re.compile(
    r"""(?:(?P<flag>--?[A-Za-z][\w-]*)(?:\s+|=)|(?P<k>[A-Za-z_][\w.-]*)["']?[ \t]*[=:][ \t]*)"""
)
_MARKER_IN_TEXT = re.compile(r"secret:hmac-sha256:[0-9a-f]{32}")
# An IAM permission named in an AWS error (`secretsmanager:GetSecretValue`) is no secret.
_IAM_ACTION = re.compile(
    r"(?:secretsmanager|ssm|kms|sts|iam|ec2|rds|lambda|ecs|acm|autoscaling|elasticloadbalancing)"
    r":[A-Z][A-Za-z0-9]*(?![A-Za-z0-9:=])"
)
# A quoted value, or everything up to the end of the line or a list separator.
_VALUE = re.compile(r""""[^"\n]*"|'[^'\n]*'|[^\n,;}&"']+""")
_FLAG_VALUE = re.compile(r""""[^"\n]*"|'[^'\n]*'|[^\s"']+""")


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
