"""The diff engine: two sides in, drift items out. Forms and hashes first; the documents of
only the pairs they cannot prove equal are normalized and compared (app.diff.items)."""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from app.diff.forms import Form, context_for, matching_key
from app.diff.heap import cycle_collection_paused
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
from app.diff.model import (
    DiffResult,
    DriftItem,
    ResourceColumns,
    Rules,
    Side,
    SideResource,
    Unknown,
)
from app.diff.normalize import (
    Normalizer,
    canonical,
    distinctive_vars,
    doc_hash,
    networks,
)
from app.diff.rules import severity_of, tolerance_of, waiver_of
from app.states import Change, SideName
from collectors.secrets import SECRET_PREFIX

_IPV4 = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")
_POSITIONS = ("positions", frozenset[str]())  # Side.indexes: a columnar side's positions
Positions = dict[str, dict[str, int]]  # a columnar side's positions, by type and normalized key


def comparison_name(left: Side, right: Side) -> str:
    return f"{left.environment}->{right.environment}"


def compare(left: Side, right: Side, rules: Rules, now: datetime) -> DiffResult:
    """Every difference between two snapshots, classified, with its fingerprint."""
    with cycle_collection_paused():
        return _compare(left, right, rules, now)


def _compare(left: Side, right: Side, rules: Rules, now: datetime) -> DiffResult:
    comparison = comparison_name(left, right)
    cross = left.environment != right.environment
    normalizers = (_SideNormalizer(left, rules, cross), _SideNormalizer(right, rules, cross))
    lefts: dict[Identity, Normalized] = {}
    rights: dict[Identity, Normalized] = {}
    # Identities proven equal unread, in the left side's order: (category, type, key). The
    # rest of what is compared goes to `compared` (identity -> category) as it is read.
    equal: list[tuple[str, str, str]] = []
    compared: dict[Identity, str] = {}
    todo: tuple[list[tuple[Identity, SideResource]], list[tuple[Identity, SideResource]]] = (
        [],
        [],
    )
    # Two stored sides whose every form this comparison trusts (the usual case across
    # environments): their columns are compared directly, the loop's whole cost at a million,
    # so it does no more than that. Else, or when two resources of the left side share one
    # identity, resource by resource.
    columns = normalizers[0].columns(), normalizers[1].columns()
    if not (
        columns[0] is not None
        and columns[1] is not None
        and _match_columns(columns[0], columns[1], normalizers[1].positions(), equal, todo)
    ):
        equal.clear()
        todo[0].clear()
        todo[1].clear()
        _match(normalizers, rules, equal, todo)
    # Only now are documents read: those no form or hash proved equal.
    for normalizer, pending, out in zip(normalizers, todo, (lefts, rights), strict=True):
        normalizer.load(r for _, r in pending)
        for identity, resource in pending:
            out[identity] = normalizer.normalize(resource, identity[1])
        normalizer.bodies.clear()  # each is a document now (a million per side: 10,000 texts)
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
        compared=len(equal) + len(compared),
        differing=len(differing & compared.keys()),  # nothing proven equal differs
        listed=equal + [(category, i[0], i[1]) for i, category in compared.items()],
    )


def _match(
    normalizers: tuple[_SideNormalizer, _SideNormalizer],
    rules: Rules,
    equal: list[tuple[str, str, str]],
    todo: tuple[list[tuple[Identity, SideResource]], list[tuple[Identity, SideResource]]],
) -> None:
    """Pairs resources by identity and puts those not proven equal unread in `todo`: by their
    forms where both are trusted, else by their raw hashes where normalization could not
    touch either document; the resources of one side only go to `todo` too."""
    left_index, right_index = (n.index() for n in normalizers)
    left, right = (n.side for n in normalizers)
    unaffected = _Unaffected(rules, left, right) if left.environment != right.environment else None
    if unaffected is not None:  # it reads the text of resources that came with no form
        for normalizer in normalizers:
            if not normalizer.trusts_all:
                normalizer.load(r for r in normalizer.side.resources if normalizer.form(r) is None)
    for identity, raw_left in left_index.items():
        raw_right = right_index.get(identity)
        if raw_right is not None:
            if _equal_unread(raw_left, raw_right, normalizers, unaffected):
                equal.append((raw_left.category, *identity))
                continue
            todo[1].append((identity, raw_right))
        todo[0].append((identity, raw_left))
    only_right = right_index.keys() - left_index.keys()
    if only_right:  # in the side's order, as the left's are
        todo[1].extend((i, r) for i, r in right_index.items() if i in only_right)


def _match_columns(
    left: ResourceColumns,
    right: ResourceColumns,
    positions: Positions,
    equal: list[tuple[str, str, str]],
    todo: tuple[list[tuple[Identity, SideResource]], list[tuple[Identity, SideResource]]],
) -> bool:
    """`_match` for two stored sides whose every form is trusted, on their columns: a pair is
    equal when both forms are plain with one digest. `positions` is the right side's
    resources by type and normalized key (`_SideNormalizer.positions`). False, with `equal`
    and `todo` half filled, when two resources of the left side have one identity (the
    object path then keeps the last, as ever)."""
    width = 32  # a digest's bytes
    left_digests, right_digests = left.digests, right.digests
    left_plain, right_plain = left.plain, right.plain
    left_types, categories = left.types, left.categories
    assert left.form_keys is not None
    assert right.form_keys is not None
    keep = equal.append
    pending_left, pending_right = todo
    matched = bytearray(len(right))
    nothing: dict[str, int] = {}
    last_type, table = "", nothing
    for i, key in enumerate(left.form_keys):
        resource_type = left_types[i]
        if resource_type is not last_type:  # types come in long runs (chunks are sorted)
            last_type, table = resource_type, positions.get(resource_type, nothing)
        j = table.get(key)
        if j is None:
            pending_left.append(((resource_type, key), left[i]))
            continue
        if matched[j]:
            return False
        matched[j] = 1
        a, b = i * width, j * width
        if (
            left_plain[i]
            and right_plain[j]
            and left_digests[a : a + width] == right_digests[b : b + width]
        ):
            keep((categories[i], resource_type, key))
        else:
            identity = (resource_type, key)
            pending_left.append((identity, left[i]))
            pending_right.append((identity, right[j]))
    if len(right) > len(equal) + len(pending_right):  # `equal` came in empty
        # Some right resources have no left counterpart: in the side's order, as the left's
        # (of two with one identity, the last, as the object path keeps).
        types, keys = right.types, right.form_keys
        pending_right.extend(
            ((types[j], keys[j]), right[j])
            for j in range(len(right))
            if not matched[j] and positions[types[j]][keys[j]] == j
        )
    return True


# ----------------------------------------------------------------------------- normalizing


def _normalizer_key(
    vars: Mapping[str, str], foreign: Mapping[str, Mapping[str, str]], cross: bool
) -> str:
    # In their order: a normalizer built back from the key is the one these would make.
    return json.dumps([vars, foreign, cross])


@functools.lru_cache(maxsize=64)
def _normalizer(key: str) -> Normalizer:
    """The normalizer of the vars `_normalizer_key` names, made once for the comparisons that
    share them (its patterns compiled and its string caches warm)."""
    vars, foreign, cross = json.loads(key)
    return Normalizer(vars=vars, foreign=foreign, mask_secrets=cross)


class _SideNormalizer:
    """Normalizes one side's resources on demand, each distinct document once."""

    def __init__(self, side: Side, rules: Rules, cross: bool) -> None:
        self.side = side
        self.cross = cross
        environments = {**rules.environments, side.environment: side.vars}
        foreign = distinctive_vars(environments, side.environment)
        key = _normalizer_key(side.vars, foreign, cross)
        self.normalizer = _normalizer(key)
        self.source_types = {name: s.type for name, s in side.sources.items()}
        # Kept with the side: one side in several comparisons (a push to production judged
        # against every environment) has its documents normalized once for all of them.
        self.memo = side.normalized.setdefault(key, {})
        self.bodies: dict[str, str] = {}
        # The sources whose stored forms were made under the context this comparison uses
        # (only across environments: over time documents are compared unmasked).
        self.trusted: set[str] = set()
        if cross:
            for name, digest in side.form_contexts.items():
                volatile = side.volatile.get(self.source_types.get(name, ""), ())
                context = context_for(rules.environments, side.environment, side.vars, volatile)
                if context.digest == digest:
                    self.trusted.add(name)
        self.key = key
        # Whether every resource of the side came with a form this comparison may use (known
        # once indexed).
        self.trusts_all = False

    def form(self, resource: SideResource) -> Form | None:
        return resource.form if resource.source in self.trusted else None

    def load(self, resources: Iterable[SideResource]) -> None:
        """Reads, in one go, what the given resources need to be normalized: the stored
        normalized document of those with a plain trusted form, else the body of those that
        came without one (and, in a second read, the body of any whose normalized document
        is not stored: made by an earlier release, or written by none)."""
        bodies = self.bodies  # (a set less a dict's keys copies the keys: not per call)
        normal: dict[str, SideResource] = {}
        missing: set[str] = set()
        for r in resources:
            form = self.form(r)
            if form is not None and form.plain:
                if form.digest not in bodies:
                    normal[form.digest] = r
            elif r.attributes is None and not r.body and r.hash and r.hash not in bodies:
                missing.add(r.hash)
        if self.side.fetch is None or not (normal or missing):
            return
        bodies.update(self.side.fetch(sorted(normal.keys() | missing)))
        raw = {r.hash for d, r in normal.items() if d not in bodies and r.hash not in bodies}
        raw.discard("")
        if raw:
            bodies.update(self.side.fetch(sorted(raw)))

    def text(self, resource: SideResource) -> str:
        if resource.body:
            return resource.body
        if resource.attributes is None:
            body = self.bodies.get(resource.hash)
            if body is None:
                self.load([resource])
                body = self.bodies[resource.hash]
            return body
        return canonical(resource.attributes)

    def document(self, resource: SideResource) -> dict[str, Any]:
        if resource.attributes is not None or resource.body:
            return resource.document()
        value: dict[str, Any] = json.loads(self.text(resource))
        return value

    def columns(self) -> ResourceColumns | None:
        """The side's columns, when it is a stored side whose every resource has a form this
        comparison trusts."""
        resources = self.side.resources
        if (
            isinstance(resources, ResourceColumns)
            and resources.form_keys is not None
            and self.trusted
            and resources.source_names <= self.trusted
        ):
            self.trusts_all = True
            return resources
        return None

    def positions(self) -> Positions:
        """A columnar side's resources as positions in its columns, by type and normalized
        key (of two with one identity, the last), made once per side. By type, not by
        (type, key) pairs: no tuple per resource, a tenth of a side's memory at a million
        (resource types come in runs, as the store sorts each source's resources)."""
        cached = self.side.indexes.get(_POSITIONS)
        if cached is None:
            resources = self.side.resources
            assert isinstance(resources, ResourceColumns)
            assert resources.form_keys is not None
            keys = resources.form_keys
            cached = {}
            start = 0
            for resource_type, run in itertools.groupby(resources.types):
                end = start + sum(1 for _ in run)
                table = cached.setdefault(resource_type, {})
                table.update(zip(keys[start:end], range(start, end), strict=True))
                start = end
            self.side.indexes[_POSITIONS] = cached
        positions: Positions = cached
        return positions

    def index(self) -> dict[Identity, SideResource]:
        """The side's resources by identity (normalized key), made once per side for the
        comparisons that normalize it alike."""
        cache_key = (self.key, frozenset(self.trusted))
        cached = self.side.indexes.get(cache_key)
        if cached is None:
            cached = self.side.indexes[cache_key] = self._indexed()
        index, self.trusts_all = cached
        return index

    def _indexed(self) -> tuple[dict[Identity, SideResource], bool]:
        resources = self.side.resources
        if not self.trusted:
            return self._index(resources), False
        trusted = self.trusted
        by_form = {}
        rest = []
        for r in resources:
            f = r.form if r.source in trusted else None
            if f is None:
                rest.append(r)
            else:
                by_form[(r.resource_type, f.key)] = r
        if not rest:
            return by_form, True
        return {**self._index(rest), **by_form}, False

    def _index(self, resources: Sequence[SideResource]) -> dict[Identity, SideResource]:
        keys = "\n".join(r.key for r in resources)
        masked = self.cross and SECRET_PREFIX in keys
        if not masked and not self.normalizer.mentions_vars(keys):
            return {(r.resource_type, r.key): r for r in resources}  # no key holds a var value
        normalizer = self.normalizer
        return {
            (r.resource_type, matching_key(normalizer, r.key, masked=masked)): r for r in resources
        }

    def normalize(self, resource: SideResource, key: str) -> Normalized:
        memo_key = (resource.hash, resource.source) if resource.hash else None
        cached = self.memo.get(memo_key) if memo_key else None
        if cached is None:
            # A trusted form was made by this very normalization: its digest is the hash, and
            # a plain one's normalized document, when stored, is the document itself.
            form = self.form(resource)
            stored = self.bodies.get(form.digest) if form is not None and form.plain else None
            if form is not None and stored is not None:
                cached = (json.loads(stored), {}, [], form.digest)
            else:
                volatile = self.side.volatile.get(self.source_types.get(resource.source, ""), ())
                doc, secrets, leaks = self.normalizer.document(self.document(resource), volatile)
                cached = (doc, secrets, leaks, form.digest if form is not None else doc_hash(doc))
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

    def __call__(self, text: str) -> bool:
        text = text.lower()
        for needle in self.needles:
            if needle in text:
                return False
        return not (self.addresses and _IPV4.search(text))


def _equal_unread(
    left: SideResource,
    right: SideResource,
    normalizers: tuple[_SideNormalizer, _SideNormalizer],
    unaffected: _Unaffected | None,
) -> bool:
    """Whether two resources of one identity are proven equal without normalizing either:
    by their stored forms (across environments), else by their raw hashes when nothing in
    the text would be touched by normalization."""
    a, b = normalizers[0].form(left), normalizers[1].form(right)
    if a is not None and b is not None:
        return a.digest == b.digest and a.plain and b.plain
    if not (left.hash and left.hash == right.hash):
        return False
    return unaffected is None or unaffected(normalizers[0].text(left))


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
