"""The diff engine: two sides in, drift items out. Hash first; deepdiff only where hashes differ."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from deepdiff import DeepDiff

from app.diff.model import DiffResult, DriftItem, Rules, Side, SideResource, Unknown
from app.diff.normalize import (
    SECRET_PLACEHOLDER,
    Leak,
    Normalizer,
    Path,
    canonical,
    distinctive_vars,
    doc_hash,
    render_path,
)
from app.diff.rules import severity_of, tolerance_of, waiver_of
from collectors.secrets import is_secret_marker

Identity = tuple[str, str]  # resource_type, normalized key
SECRET_SHOWN = "(secret)"


@dataclass
class _Normalized:
    resource: SideResource
    key: str
    doc: Any
    hash: str
    secrets: dict[Path, str] = field(default_factory=dict)
    leaks: list[Leak] = field(default_factory=list)


def comparison_name(left: Side, right: Side) -> str:
    return f"{left.environment}->{right.environment}"


def compare(left: Side, right: Side, rules: Rules, now: datetime) -> DiffResult:
    """Every difference between two snapshots, classified, with its fingerprint."""
    comparison = comparison_name(left, right)
    cross = left.environment != right.environment
    lefts = _normalize_side(left, rules, cross)
    rights = _normalize_side(right, rules, cross)
    items: list[DriftItem] = []
    unknown_counts: dict[tuple[str, str], int] = {}
    compared: set[Identity] = set()
    all_identities = lefts.keys() | rights.keys()
    for identity in sorted(all_identities):
        a, b = lefts.get(identity), rights.get(identity)
        if a is not None and b is not None:
            compared.add(identity)
            if a.hash != b.hash:
                items.extend(_changes(a, b))
            continue
        present = a or b
        assert present is not None
        other = right if a is not None else left
        if present.resource.source in other.failed_sources:
            side = "right" if a is not None else "left"
            unknown_counts[(side, present.resource.source)] = (
                unknown_counts.get((side, present.resource.source), 0) + 1
            )
            continue
        compared.add(identity)
        items.append(
            _item(
                present,
                (),
                "removed" if a is not None else "added",
                _shown(a.doc) if a is not None else None,
                _shown(b.doc) if b is not None else None,
            )
        )
    items.extend(_leaks(lefts, rights, compared, cross))
    if cross:
        items.extend(_secret_reuse(lefts, rights))
    items = _suppress_changes_explained_by_leaks(items)
    differing: set[Identity] = set()
    for item in items:
        _classify(item, comparison, rules, now)
        if item.counts:
            differing.add((item.resource_type, item.key))
    # Every failed source is listed, with how many resources of the other side it hid.
    unknown = [
        Unknown(
            side=side_name,
            environment=snapshot.environment,
            source=name,
            error=snapshot.sources[name].error,
            resources=unknown_counts.get((side_name, name), 0),
        )
        for side_name, snapshot in (("left", left), ("right", right))
        for name in sorted(snapshot.failed_sources)
    ]
    return DiffResult(
        comparison=comparison,
        items=items,
        unknown=unknown,
        compared=len(compared),
        differing=len(differing & compared),
        resources=[
            ((lefts.get(i) or rights[i]).resource.category, i[0], i[1]) for i in sorted(compared)
        ],
    )


# ----------------------------------------------------------------------------- normalizing


def _normalize_side(side: Side, rules: Rules, cross: bool) -> dict[Identity, _Normalized]:
    normalizer = Normalizer(
        vars=side.vars,
        foreign=distinctive_vars(
            {**rules.environments, side.environment: side.vars}, side.environment
        ),
        mask_secrets=cross,
    )
    source_types = {name: s.type for name, s in side.sources.items()}
    out: dict[Identity, _Normalized] = {}
    memo: dict[tuple[str, str], tuple[Any, dict[Path, str], list[Leak], str]] = {}
    for resource in side.resources:
        volatile = side.volatile.get(source_types.get(resource.source, ""), ())
        memo_key = (resource.hash, resource.source) if resource.hash else None
        cached = memo.get(memo_key) if memo_key else None
        if cached is None:
            doc, secrets, leaks = normalizer.document(resource.attributes, volatile)
            cached = (doc, secrets, leaks, doc_hash(doc))
            if memo_key:
                memo[memo_key] = cached
        doc, secrets, leaks, digest = cached
        key = normalizer.substitute(resource.key)
        out[(resource.resource_type, key)] = _Normalized(resource, key, doc, digest, secrets, leaks)
    return out


# ----------------------------------------------------------------------------- items


def _item(
    n: _Normalized, parts: Path, change: str, left: Any, right: Any, detail: str | None = None
) -> DriftItem:
    return DriftItem(
        category=n.resource.category,
        resource_type=n.resource.resource_type,
        key=n.key,
        path=render_path(parts),
        change=change,  # type: ignore[arg-type]
        left=left,
        right=right,
        detail=detail,
        parts=parts,
    )


def _shown(value: Any) -> Any:
    """A value as a report shows it: secrets as `(secret)`, never their hash."""
    if isinstance(value, str):
        return SECRET_SHOWN if (value == SECRET_PLACEHOLDER or is_secret_marker(value)) else value
    if isinstance(value, dict):
        return {k: _shown(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shown(v) for v in value]
    return value


_REPORTS = {
    "dictionary_item_added": "added",
    "dictionary_item_removed": "removed",
    "values_changed": "changed",
    "type_changes": "changed",
    "iterable_item_added": "added",
    "iterable_item_removed": "removed",
}


def _changes(a: _Normalized, b: _Normalized) -> list[DriftItem]:
    diff = DeepDiff(a.doc, b.doc, view="tree", threshold_to_diff_deeper=0, verbose_level=2)
    items = []
    for report, levels in diff.items():
        change = _REPORTS.get(report)
        if change is None:
            continue
        for level in levels:
            parts = tuple(str(p) for p in level.path(output_format="list"))
            left = None if change == "added" else _shown(level.t1)
            right = None if change == "removed" else _shown(level.t2)
            if change == "changed" and left == SECRET_SHOWN and right == SECRET_SHOWN:
                left, right = SECRET_SHOWN, SECRET_SHOWN + " (changed)"
            items.append(_item(a, parts, change, left, right))
    items.sort(key=lambda i: (i.path, i.change))
    return items


def _leaks(
    lefts: dict[Identity, _Normalized],
    rights: dict[Identity, _Normalized],
    compared: set[Identity],
    cross: bool,
) -> list[DriftItem]:
    """Across environments, every leak on either side; over time, only leaks that are new."""
    items = []
    seen: set[tuple[Identity, Path, str]] = set()
    if not cross:
        seen = {(identity, leak.path, "right") for identity, n in lefts.items() for leak in n.leaks}
    for side_name, side in (("left", lefts), ("right", rights)) if cross else (("right", rights),):
        for identity, n in sorted(side.items()):
            for leak in n.leaks:
                marker = (identity, leak.path, side_name)
                if marker in seen:
                    continue
                seen.add(marker)
                compared.add(identity)
                detail = f"names {leak.environment} (its {leak.var})"
                value = leak.value
                items.append(
                    _item(
                        n,
                        leak.path,
                        "leak",
                        value if side_name == "left" else None,
                        value if side_name == "right" else None,
                        detail,
                    )
                )
    return items


def _secret_reuse(
    lefts: dict[Identity, _Normalized], rights: dict[Identity, _Normalized]
) -> list[DriftItem]:
    where_right: dict[str, list[tuple[_Normalized, Path]]] = {}
    for n in rights.values():
        for path, marker in n.secrets.items():
            where_right.setdefault(marker, []).append((n, path))
    items = []
    for identity in sorted(lefts):
        n = lefts[identity]
        for path, marker in sorted(n.secrets.items()):
            for other, other_path in where_right.get(marker, []):
                location = f"{other.key} {render_path(other_path)}".strip()
                items.append(
                    _item(
                        n,
                        path,
                        "secret_reused",
                        SECRET_SHOWN,
                        SECRET_SHOWN,
                        f"same secret as {location}",
                    )
                )
    return items


def _suppress_changes_explained_by_leaks(items: list[DriftItem]) -> list[DriftItem]:
    """A value that differs *because* it names the other environment is reported once, as a leak."""
    leaked = {(i.resource_type, i.key, i.parts) for i in items if i.change == "leak"}
    return [
        i
        for i in items
        if not (i.change == "changed" and (i.resource_type, i.key, i.parts) in leaked)
    ]


def _classify(item: DriftItem, comparison: str, rules: Rules, now: datetime) -> None:
    item.severity = severity_of(item, comparison, rules.severity)
    tolerance = tolerance_of(item, comparison, rules.tolerances)
    if tolerance is not None:
        item.tolerated = True
        item.tolerance = f"{tolerance.allow} on {tolerance.path}"
    waiver = waiver_of(item, comparison, rules.waivers, now)
    if waiver is not None:
        item.waived = True
        item.waiver = waiver.describe()
    item.fingerprint = fingerprint(comparison, item)


def fingerprint(comparison: str, item: DriftItem) -> str:
    """Same difference, same fingerprint, scan after scan: identity, path, change and values."""
    material = canonical(
        [
            comparison,
            item.category,
            item.resource_type,
            item.key,
            item.path,
            item.change,
            item.left,
            item.right,
        ]
    )
    return hashlib.sha256(material.encode()).hexdigest()[:24]
