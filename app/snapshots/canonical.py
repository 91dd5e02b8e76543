"""Canonical JSON and its content hash: the identity of every stored document."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(text: str) -> str:
    return bytes_hash(text.encode("utf-8"))


def bytes_hash(data: bytes) -> str:
    """`content_hash` of text already encoded as UTF-8."""
    return hashlib.sha256(data).hexdigest()
