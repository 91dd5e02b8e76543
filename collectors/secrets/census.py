"""The census of one source's secrets: which paths were hashed, by which rule. No values."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from collectors.secrets.redactor import RULES_VERSION, Path, Redactor

MAX_PATHS = 2000  # per source; the counts stay complete past it


def render(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out


@dataclass
class Census:
    rules_id: str = ""  # the redactor's rule set (Redactor.rules_id)
    counts: Counter[str] = field(default_factory=Counter)
    paths: list[list[str]] = field(default_factory=list)
    more: int = 0

    def add(self, resource_type: str, key: str, path: Path, rule: str) -> None:
        self.counts[rule] += 1
        if len(self.paths) < MAX_PATHS:
            self.paths.append([resource_type, key, render(path), rule])
        else:
            self.more += 1

    def as_json(self) -> dict[str, Any]:
        return {
            "rules_version": RULES_VERSION,
            "rules": self.rules_id,
            "counts": dict(sorted(self.counts.items())),
            "paths": self.paths,
            "more": self.more,
        }


def redact_resource(
    redactor: Redactor,
    census: Census,
    resource_type: str,
    key: str,
    attributes: dict[str, Any],
    secret_paths: tuple[Path, ...] = (),
) -> tuple[str, dict[str, Any]]:
    """One resource's key and attributes redacted, what was hashed counted in `census`."""
    redacted, found = redactor.redact_found(attributes, secret_paths)
    new_key, fired = redactor.redact_text_found(key)
    for rule in fired:
        census.add(resource_type, new_key, ("(key)",), rule)
    for finding in found:
        census.add(resource_type, new_key, finding.path, finding.rule)
    return new_key, redacted
