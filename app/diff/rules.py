"""Severity, tolerances and waivers: which differences matter, and how much. Pure."""

from __future__ import annotations

import fnmatch
import re
from datetime import datetime
from typing import Any, Literal

from app.diff.model import DriftItem, SeverityRule, Tolerance, Waiver
from app.states import Allowance, Change, Severity

_OPEN_TO_WORLD = ("0.0.0.0/0", "::/0")
_COUNT_NAMES = {
    "count",
    "counts",
    "desired",
    "desired_count",
    "desired_capacity",
    "min_size",
    "max_size",
    "replicas",
    "instances",
}
_VERSION_NUMBERS = re.compile(r"\d+")
# Drift about secrets: always critical, never tolerated.
_SECRET_CHANGES = (Change.LEAK, Change.SECRET_REUSED)


def _glob(pattern: str | None, value: str) -> bool:
    return pattern is None or fnmatch.fnmatchcase(value, pattern)


def _matches(rule: SeverityRule | Tolerance | Waiver, comparison: str, item: DriftItem) -> bool:
    return (
        _glob(rule.comparison, comparison)
        and (rule.category is None or rule.category == item.category)
        and _glob(rule.resource_type, item.resource_type)
        and _glob(rule.key, item.key)
        and path_matches(rule.path, item)
    )


def path_matches(pattern: str | None, item: DriftItem) -> bool:
    """A glob on the whole path; a bare name (`count`) also matches the last attribute name,
    so `path: instance_type` covers `web.instance_type` too."""
    if pattern is None or fnmatch.fnmatchcase(item.path, pattern):
        return True
    if "." in pattern or "[" in pattern:
        return False
    names = [part for part in item.parts if not part.startswith("[")]
    return bool(names) and fnmatch.fnmatchcase(names[-1], pattern)


def leaf_name(item: DriftItem) -> str:
    names = [part for part in item.parts if not part.startswith("[")]
    return names[-1] if names else ""


# ----------------------------------------------------------------------------- versions


def version_parts(version: str) -> tuple[int, ...]:
    """`1:2.31.0-1ubuntu1` -> (2, 31, 0): the numbers of the upstream version."""
    text = version.split(":", 1)[1] if re.match(r"^\d+:", version) else version
    text = text.lstrip("vV")
    upstream = re.split(r"[-+~]", text, maxsplit=1)[0]
    return tuple(int(n) for n in _VERSION_NUMBERS.findall(upstream)[:3])


def version_gap(left: Any, right: Any) -> Literal["major", "minor", "patch"] | None:
    """`major`, `minor`, `patch`, or None when these are not two comparable versions."""
    if not (isinstance(left, str) and isinstance(right, str)):
        return None
    a, b = version_parts(left), version_parts(right)
    if not a or not b:
        return None
    if a[:1] != b[:1]:
        return "major"
    if a[:2] != b[:2]:
        return "minor"
    return "patch"


def family(value: str) -> str:
    """`m5.large` -> `m5`, `db.r6g.xlarge` -> `db.r6g`: the class without its size."""
    return value.rsplit(".", 1)[0] if "." in value else value


# ----------------------------------------------------------------------------- severity


def default_severity(item: DriftItem) -> Severity:
    """The documented defaults (docs/diff.md), used when no `severity:` rule matches."""
    if item.change in _SECRET_CHANGES:
        return Severity.CRITICAL
    if item.detail == "secret rotated":
        return Severity.INFO  # a secret changed over time: worth knowing, never a warning
    if item.category == "network" and (_opens(item.right) or _opens(item.left)):
        return Severity.CRITICAL
    last = leaf_name(item)
    # `states.stopped`: how many instances are in a state is a count too (staging stopped
    # at night is not a deletion).
    if last in _COUNT_NAMES or "states" in item.parts:
        return Severity.INFO
    if item.category == "packages" and last == "version":
        gap = version_gap(item.left, item.right)
        if gap == "patch":
            return Severity.INFO
        return Severity.WARNING
    return Severity.WARNING


def _opens(value: Any) -> bool:
    if isinstance(value, str):
        return any(cidr in value for cidr in _OPEN_TO_WORLD)
    if isinstance(value, dict):
        return any(_opens(v) for v in value.values()) or any(_opens(k) for k in value)
    if isinstance(value, list):
        return any(_opens(v) for v in value)
    return False


def severity_of(item: DriftItem, comparison: str, rules: tuple[SeverityRule, ...]) -> Severity:
    for rule in rules:
        if (rule.change is None or rule.change == item.change) and _matches(rule, comparison, item):
            return rule.severity
    return default_severity(item)


# ----------------------------------------------------------------------------- tolerances


def tolerance_of(
    item: DriftItem, comparison: str, tolerances: tuple[Tolerance, ...]
) -> Tolerance | None:
    if item.change in _SECRET_CHANGES:
        return None
    for tolerance in tolerances:
        if not _matches(tolerance, comparison, item):
            continue
        if tolerance.allow == Allowance.ANY:
            return tolerance
        if item.change != Change.CHANGED:
            continue
        if tolerance.allow == Allowance.SAME_FAMILY:
            left, right = item.left, item.right
            if isinstance(left, str) and isinstance(right, str) and family(left) == family(right):
                return tolerance
        elif tolerance.allow in (Allowance.PATCH, Allowance.MINOR):
            gap = version_gap(item.left, item.right)
            if gap == "patch" or (gap == "minor" and tolerance.allow == Allowance.MINOR):
                return tolerance
    return None


# ----------------------------------------------------------------------------- waivers


def waiver_of(
    item: DriftItem, comparison: str, waivers: tuple[Waiver, ...], now: datetime
) -> Waiver | None:
    for waiver in waivers:
        if waiver.expires is not None and waiver.expires <= now:
            continue
        if _matches(waiver, comparison, item):
            return waiver
    return None
