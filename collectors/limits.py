"""Limits every document must keep, whoever made it (a source, a push): enforced before
anything walks it, so that no input can make normalization, redaction or storage run away."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Limits:
    """The defaults; `limits:` in envparity.yaml changes them (docs/operations.md)."""

    max_depth: int = 64  # levels of nested mappings and lists in one attribute document
    max_key_length: int = 65536  # characters of a resource key (a `lines` line) or attribute key
    max_string_length: int = 8 << 20  # characters of one string value
    max_resources: int = 1_000_000  # resources per source of a scan, per pushed snapshot
    max_source_bytes: int = 256 << 20  # bytes one file source reads, or a command prints
    max_yaml_nodes: int = 1_000_000  # nodes a YAML file's aliases may expand to, all told


class LimitExceeded(ValueError):
    """A document over a limit; the message names where and which limit."""


Link = tuple[Any, str | int] | None  # (parent link, key): a path, made only for a message


def _where(link: Link) -> str:
    parts: list[str | int] = []
    while link is not None:
        link, key = link
        parts.append(key)
    out = ""
    for part in reversed(parts):
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out or "(top)"


def check_document(doc: Any, limits: Limits, what: str = "attributes") -> None:
    """Raises LimitExceeded for the first place `doc` breaks a limit, or holds a value JSON
    cannot (NaN, Infinity). Iterative, so that depth itself cannot exhaust the stack."""
    stack: list[tuple[Any, Link, int]] = [(doc, None, 0)]
    max_string, max_key, max_depth = (
        limits.max_string_length,
        limits.max_key_length,
        limits.max_depth,
    )
    while stack:
        value, link, depth = stack.pop()
        kind = type(value)
        if kind is str:
            if len(value) > max_string:
                raise LimitExceeded(
                    f"{what} {_where(link)}: a string of {len(value):,} characters "
                    f"(limits.max_string_length is {max_string:,})"
                )
        elif kind is dict or kind is list:
            if depth >= max_depth:
                raise LimitExceeded(
                    f"{what}: nested deeper than {max_depth} levels (limits.max_depth)"
                )
            if kind is dict:
                for key, child in value.items():
                    if type(key) is str and len(key) > max_key:
                        raise LimitExceeded(
                            f"{what} {_where(link)}: a key of {len(key):,} characters "
                            f"(limits.max_key_length is {max_key:,})"
                        )
                    if type(child) in _CONTAINERS_AND_FLOATS or type(child) is str:
                        stack.append((child, (link, key), depth + 1))
            else:
                stack.extend(
                    (child, (link, i), depth + 1)
                    for i, child in enumerate(value)
                    if type(child) in _CONTAINERS_AND_FLOATS or type(child) is str
                )
        elif kind is float and not math.isfinite(value):
            raise LimitExceeded(f"{what} {_where(link)}: {value} is not a JSON number")


_CONTAINERS_AND_FLOATS = (dict, list, float)


MAX_MESSAGE = 8192  # characters of a stored error text


def clean_text(text: str, limit: int = MAX_MESSAGE) -> str:
    """An error text any database column holds: no NUL (PostgreSQL refuses it in text), no
    other control characters but newline and tab, at most `limit` characters."""
    if len(text) > limit:
        text = text[:limit] + " [cut]"
    if any(c < " " and c not in "\n\t" for c in text):
        text = "".join(c if c >= " " or c in "\n\t" else "\ufffd" for c in text)
    return text


def check_key(key: str, limits: Limits) -> None:
    if len(key) > limits.max_key_length:
        raise LimitExceeded(
            f"a resource key of {len(key):,} characters "
            f"(limits.max_key_length is {limits.max_key_length:,})"
        )
