"""The diff engine: two sides in, drift items out. Hash first; deepdiff only where hashes differ."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Any

from app.diff.items import (
    Identity,
    Normalized,
    changed_items,
    drift_item,
    leak_items,
    secret_reuse_items,
    shown,
    suppress_changes_explained_by_leaks,
    suppress_nested_var_artifacts,
)
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
)
from app.diff.rules import severity_of, tolerance_of, waiver_of
from app.states import Change, SideName
from collectors.secrets import SECRET_PREFIX, show_markers

_IPV4 = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")


def comparison_name(left: Side, right: Side) -> str:
    return f"{left.environment}->{right.environment}"


def compare(left: Side, right: Side, rules: Rules, now: datetime) -> DiffResult:
    """Every difference between two snapshots, classified, with its fingerprint."""
    comparison = comparison_name(left, right)
    cross = left.environment != right.environment
    normalizers = (_SideNormalizer(left, rules, cross), _SideNormalizer(right, rules, cross))
    indexes = [n.index() for n in normalizers]
    unaffected = _Unaffected(rules, left, right) if cross else None
    lefts: dict[Identity, Normalized] = {}
    rights: dict[Identity, Normalized] = {}
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
    changed: list[tuple[Normalized, Normalized]] = []
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
            drift_item(
                present,
                (),
                Change.REMOVED if a is not None else Change.ADDED,
                shown(a.doc) if a is not None else None,
                shown(b.doc) if b is not None else None,
            )
        )
    items.extend(changed_items(changed))
    items.extend(leak_items(lefts, rights, compared, cross))
    if cross:
        items.extend(secret_reuse_items(lefts, rights))
    items = suppress_changes_explained_by_leaks(items)
    if cross:
        items = suppress_nested_var_artifacts(items, left.vars, right.vars)
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

    def normalize(self, resource: SideResource, key: str) -> Normalized:
        memo_key = (resource.hash, resource.source) if resource.hash else None
        cached = self.memo.get(memo_key) if memo_key else None
        if cached is None:
            volatile = self.side.volatile.get(self.source_types.get(resource.source, ""), ())
            doc, secrets, leaks = self.normalizer.document(resource.document(), volatile)
            cached = (doc, secrets, leaks, doc_hash(doc))
            if memo_key:
                self.memo[memo_key] = cached
        doc, secrets, leaks, digest = cached
        return Normalized(resource, key, doc, digest, secrets, leaks)


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
