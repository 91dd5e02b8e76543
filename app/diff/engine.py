"""The diff engine: two sides in, drift items out. Hash first; deepdiff only where hashes differ."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.diff.model import DiffResult, DriftItem, Rules, Side, SideResource, Unknown
from app.diff.normalize import (
    SECRET_PLACEHOLDER,
    Leak,
    Normalizer,
    Path,
    canonical,
    distinctive_vars,
    doc_hash,
    networks,
    render_path,
)
from app.diff.rules import severity_of, tolerance_of, waiver_of
from app.states import Change, SideName
from collectors.secrets import SECRET_PREFIX, SHOWN, is_secret_marker, show_markers

Identity = tuple[str, str]  # resource_type, normalized key
_IPV4 = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")
SECRET_SHOWN = SHOWN
SECRET_ROTATED = "secret rotated"


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
    normalizers = (_SideNormalizer(left, rules, cross), _SideNormalizer(right, rules, cross))
    indexes = [n.index() for n in normalizers]
    unaffected = _Unaffected(rules, left, right) if cross else None
    lefts: dict[Identity, _Normalized] = {}
    rights: dict[Identity, _Normalized] = {}
    compared: dict[Identity, str] = {}  # identity -> category
    # Hash first: a resource collected identically on both sides, whose text holds nothing
    # normalization would touch (a var value, a secret, an address), cannot differ.
    for identity, raw_left in indexes[0].items():
        raw_right = indexes[1].get(identity)
        if (
            raw_right is not None
            and raw_left.hash
            and raw_left.hash == raw_right.hash
            and (unaffected is None or unaffected(raw_left))
        ):
            compared[identity] = raw_left.category
            continue
        lefts[identity] = normalizers[0].normalize(raw_left, identity[1])
        if raw_right is not None:
            rights[identity] = normalizers[1].normalize(raw_right, identity[1])
    for identity, raw_right in indexes[1].items():
        if identity not in indexes[0]:
            rights[identity] = normalizers[1].normalize(raw_right, identity[1])
    items: list[DriftItem] = []
    unknown_counts: dict[tuple[SideName, str], int] = {}
    changed: list[tuple[_Normalized, _Normalized]] = []
    for identity in sorted(lefts.keys() | rights.keys()):
        a, b = lefts.get(identity), rights.get(identity)
        if a is not None and b is not None:
            compared[identity] = a.resource.category
            if a.hash != b.hash:
                changed.append((a, b))
            continue
        present = a or b
        assert present is not None
        other = right if a is not None else left
        if present.resource.source in other.failed_sources:
            side = SideName.RIGHT if a is not None else SideName.LEFT
            unknown_counts[(side, present.resource.source)] = (
                unknown_counts.get((side, present.resource.source), 0) + 1
            )
            continue
        compared[identity] = present.resource.category
        items.append(
            _item(
                present,
                (),
                Change.REMOVED if a is not None else Change.ADDED,
                _shown(a.doc) if a is not None else None,
                _shown(b.doc) if b is not None else None,
            )
        )
    items.extend(_changes(changed))
    items.extend(_leaks(lefts, rights, compared, cross))
    if cross:
        items.extend(_secret_reuse(lefts, rights))
    items = _suppress_changes_explained_by_leaks(items)
    if cross:
        items = _suppress_nested_var_artifacts(items, left.vars, right.vars)
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
        for side_name, snapshot in ((SideName.LEFT, left), (SideName.RIGHT, right))
        for name in sorted(snapshot.failed_sources)
    ]
    return DiffResult(
        comparison=comparison,
        items=items,
        unknown=unknown,
        compared=len(compared),
        differing=len(differing & compared.keys()),
        resources=[(category, i[0], i[1]) for i, category in compared.items()],
    )


# ----------------------------------------------------------------------------- normalizing


class _SideNormalizer:
    """Normalizes one side's resources on demand, each distinct document once."""

    def __init__(self, side: Side, rules: Rules, cross: bool) -> None:
        self.side = side
        self.cross = cross
        environments = {**rules.environments, side.environment: side.vars}
        self.normalizer = Normalizer(
            vars=side.vars,
            foreign=distinctive_vars(environments, side.environment),
            mask_secrets=cross,
        )
        self.source_types = {name: s.type for name, s in side.sources.items()}
        self.memo: dict[tuple[str, str], tuple[Any, dict[Path, str], list[Leak], str]] = {}

    def index(self) -> dict[Identity, SideResource]:
        resources = self.side.resources
        keys = "\n".join(r.key for r in resources)
        masked = self.cross and SECRET_PREFIX in keys
        if not masked and not self.normalizer.mentions_vars(keys):
            return {(r.resource_type, r.key): r for r in resources}  # no key holds a var value
        substitute = self.normalizer.substitute_key

        def key(text: str) -> str:
            # Across environments a secret inside a key (a `lines` command's `TOKEN=...`)
            # compares by presence, like one inside a value.
            if masked:
                text = show_markers(text, SECRET_PLACEHOLDER)
            return substitute(text)

        return {(r.resource_type, key(r.key)): r for r in resources}

    def normalize(self, resource: SideResource, key: str) -> _Normalized:
        memo_key = (resource.hash, resource.source) if resource.hash else None
        cached = self.memo.get(memo_key) if memo_key else None
        if cached is None:
            volatile = self.side.volatile.get(self.source_types.get(resource.source, ""), ())
            doc, secrets, leaks = self.normalizer.document(resource.document(), volatile)
            cached = (doc, secrets, leaks, doc_hash(doc))
            if memo_key:
                self.memo[memo_key] = cached
        doc, secrets, leaks, digest = cached
        return _Normalized(resource, key, doc, digest, secrets, leaks)


class _Unaffected:
    """True for a document normalization would leave alone on both sides: no var value of
    any environment, no secret, no IPv4 address (a leak by CIDR) anywhere in its text."""

    def __init__(self, rules: Rules, left: Side, right: Side) -> None:
        every = [
            v
            for env_vars in (*rules.environments.values(), left.vars, right.vars)
            for v in env_vars.values()
            if v
        ]
        # Plain substring tests on lowered text: far cheaper than a regex alternation.
        needles = {json.dumps(v, ensure_ascii=False)[1:-1].lower() for v in every}
        needles.add(SECRET_PREFIX)
        # An address inside a CIDR var may be a leak: it starts with the CIDR's whole octets.
        self.addresses = False
        for network in networks(every):
            octets = network.prefixlen // 8 if network.version == 4 else 0
            if octets:
                needles.add(".".join(str(network.network_address).split(".")[:octets]) + ".")
            else:
                self.addresses = True  # too wide to narrow down: look for any address
        self.needles = sorted(needles)

    def __call__(self, resource: SideResource) -> bool:
        text = (resource.body or canonical(resource.document())).lower()
        for needle in self.needles:
            if needle in text:
                return False
        return not (self.addresses and _IPV4.search(text))


# ----------------------------------------------------------------------------- items


def _item(
    n: _Normalized, parts: Path, change: Change, left: Any, right: Any, detail: str | None = None
) -> DriftItem:
    return DriftItem(
        category=n.resource.category,
        resource_type=n.resource.resource_type,
        key=_shown(n.key),
        path=_shown(render_path(parts)),
        change=change,
        left=left,
        right=right,
        detail=detail,
        parts=parts,
    )


def _shown(value: Any) -> Any:
    """A value as a report shows it: secrets as `(secret)`, never their hash."""
    if isinstance(value, str):
        if value == SECRET_PLACEHOLDER or is_secret_marker(value):
            return SECRET_SHOWN
        value = show_markers(value)
        if SECRET_PLACEHOLDER in value:
            value = value.replace(SECRET_PLACEHOLDER, SECRET_SHOWN)
        return value
    if isinstance(value, dict):
        return {_shown(k): _shown(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shown(v) for v in value]
    return value


_REPORTS = {
    "dictionary_item_added": Change.ADDED,
    "dictionary_item_removed": Change.REMOVED,
    "values_changed": Change.CHANGED,
    "type_changes": Change.CHANGED,
    "iterable_item_added": Change.ADDED,
    "iterable_item_removed": Change.REMOVED,
}


def _prune(a: Any, b: Any) -> tuple[Any, Any]:
    """Both documents less the branches they share (a C-speed `==` per branch), so that
    DeepDiff walks only what differs; the paths it reports are unchanged."""
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return a, b
    left: dict[str, Any] = {}
    right: dict[str, Any] = {}
    for key in a.keys() | b.keys():
        if key not in b:
            left[key] = a[key]
        elif key not in a:
            right[key] = b[key]
        elif a[key] != b[key] or type(a[key]) is not type(b[key]):
            left[key], right[key] = _prune(a[key], b[key])
    return left, right


def _path_of(level: Any) -> list[str]:
    """The keys from the root to a DeepDiff tree level (what `level.path(output_format="list")`
    gives, without the string formatting that dominates its cost)."""
    parts = []
    node = level.all_up
    while node.down is not None:
        relation = node.t1_child_rel or node.t2_child_rel
        parts.append(str(relation.param))
        node = node.down
    return parts


def _holds_secret(value: Any) -> bool:
    return isinstance(value, str) and (SECRET_PREFIX in value or SECRET_PLACEHOLDER in value)


def _changes(pairs: list[tuple[_Normalized, _Normalized]]) -> list[DriftItem]:
    """One DeepDiff over every resource whose hashes differ (one call, not one per resource:
    DeepDiff's set-up costs more than a small document's comparison)."""
    if not pairs:
        return []
    from deepdiff import DeepDiff  # only when something differs: it is slow to import

    t1: dict[str, Any] = {}
    t2: dict[str, Any] = {}
    for n, (a, b) in enumerate(pairs):
        t1[str(n)], t2[str(n)] = _prune(a.doc, b.doc)
    diff = DeepDiff(t1, t2, view="tree", threshold_to_diff_deeper=0, verbose_level=2)
    items = []
    for report, levels in diff.items():
        change = _REPORTS.get(report)
        if change is None:
            continue
        for level in levels:
            index, *rest = _path_of(level)
            parts = tuple(rest)
            left = None if change == Change.ADDED else _shown(level.t1)
            right = None if change == Change.REMOVED else _shown(level.t2)
            detail = None
            if change == Change.CHANGED and left == right and _holds_secret(level.t2):
                # Only a secret changed (whole, or inside a URL): shown alike on both sides.
                detail = SECRET_ROTATED
                if right == SECRET_SHOWN:
                    right = SECRET_SHOWN + " (changed)"
            items.append(_item(pairs[int(index)][0], parts, change, left, right, detail))
    items.sort(key=lambda i: (i.key, i.path, i.change))
    return items


def _leaks(
    lefts: dict[Identity, _Normalized],
    rights: dict[Identity, _Normalized],
    compared: dict[Identity, str],
    cross: bool,
) -> list[DriftItem]:
    """Across environments, every leak on either side; over time, only leaks that are new."""
    items = []
    seen: set[tuple[Identity, Path, SideName]] = set()
    left, right = SideName.LEFT, SideName.RIGHT
    others = {left: rights, right: lefts}
    if not cross:
        seen = {(identity, leak.path, right) for identity, n in lefts.items() for leak in n.leaks}
    sides = ((left, lefts), (right, rights)) if cross else ((right, rights),)
    for side_name, side in sides:
        for identity in sorted(side):
            n = side[identity]
            for leak in n.leaks:
                marker = (identity, leak.path, side_name)
                if marker in seen:
                    continue
                seen.add(marker)
                compared[identity] = n.resource.category
                detail = f"names {leak.environment} (its {leak.var})"
                value = _shown(leak.value)
                # The other side's value at the same place (what it holds instead), so the row
                # does not read as "missing" there.
                other = others[side_name].get(identity)
                counterpart = _shown(_at(other.doc, leak.path)) if other is not None else None
                items.append(
                    _item(
                        n,
                        leak.path,
                        Change.LEAK,
                        value if side_name == left else counterpart,
                        value if side_name == right else counterpart,
                        detail,
                    )
                )
    return items


def _at(doc: Any, path: Path) -> Any:
    for part in path:
        if not isinstance(doc, dict) or part not in doc:
            return None
        doc = doc[part]
    return doc


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
                        Change.SECRET_REUSED,
                        SECRET_SHOWN,
                        SECRET_SHOWN,
                        f"same secret as {location}",
                    )
                )
    return items


def _suppress_changes_explained_by_leaks(items: list[DriftItem]) -> list[DriftItem]:
    """A value that differs *because* it names the other environment is reported once, as a leak."""
    leaked = {(i.resource_type, i.key, i.parts) for i in items if i.change == Change.LEAK}
    return [
        i
        for i in items
        if not (i.change == Change.CHANGED and (i.resource_type, i.key, i.parts) in leaked)
    ]


def _suppress_nested_var_artifacts(
    items: list[DriftItem], left: dict[str, str], right: dict[str, str]
) -> list[DriftItem]:
    """With `domain: staging.example.com` and `domain: example.com`, production's
    `support+production@example.com` reads `support+{env}@{domain}` while staging's
    `support+staging@example.com` keeps `example.com` (its own domain is longer): the same
    text, normalized differently. Such a var's placeholder is put back to its value on each
    side, and a pair that is then equal is no drift."""
    nested = {
        name
        for name in left.keys() & right.keys()
        if left[name].lower() != right[name].lower()
        and (left[name].lower() in right[name].lower() or right[name].lower() in left[name].lower())
    }
    if not nested:
        return items

    def expand(value: str, values: dict[str, str]) -> str:
        for name in nested:
            value = value.replace("{" + name + "}", values[name])
        return value.lower()

    return [
        i
        for i in items
        if not (
            i.change == Change.CHANGED
            and isinstance(i.left, str)
            and isinstance(i.right, str)
            and expand(i.left, left) == expand(i.right, right)
        )
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
