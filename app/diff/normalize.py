"""Normalization: what makes two environments comparable. Pure functions, no I/O.

Applied to each side before comparing:
- secret markers: across environments a secret is compared by presence only (`{secret}`),
  and its hash is remembered for secret-reuse findings;
- the side's own vars become placeholders (`web-staging` -> `web-{env}`), longest value
  first, case-insensitively, on token boundaries (`prod` never eats `product`);
- values naming *another* environment (its distinctive var values, or an address inside
  its CIDR) are remembered as leaks;
- cloud-assigned ids (`i-0abc...`, `sg-...`, UUIDs) become `{id}`, account ids inside ARNs
  `{account}`: they differ by nature and are never drift;
- lists are sets: each becomes a mapping keyed by `[label]` (an item's `name`, `key`,
  `label` or `id`, else its value), so order never shows and paths stay readable;
- each source type's volatile paths are dropped.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, cast

from collectors.secrets import MARKER_IN_TEXT, SECRET_PREFIX, is_secret_marker, show_markers

SECRET_PLACEHOLDER = "{secret}"
ID_PLACEHOLDER = "{id}"
_CLOUD_ID = re.compile(
    r"(?<![A-Za-z0-9-])(?:i|sg|vpc|subnet|ami|vol|eni|igw|rtb|acl|snap|lt|nat|pl|eipalloc|tgw"
    r"|tgw-attach|vpce|lb|fs|fsap|sgr|cvpn-endpoint|dopt|pcx|vgw|cgw|eigw)-[0-9a-f]{8,17}(?![A-Za-z0-9])"
)
_UUID = re.compile(
    r"(?<![A-Za-z0-9])[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![A-Za-z0-9])"
)
_ARN_ACCOUNT = re.compile(r"(arn:aws[a-z-]*:[^:\s]*:[^:\s]*:)(\d{12})(?=:)")
_IPV4 = re.compile(r"(?<![0-9.])(\d{1,3}(?:\.\d{1,3}){3})(?![0-9])")
_LABEL_FIELDS = ("name", "key", "label", "id")
SHORT_VALUE = 4  # var values shorter than this must stand between separators to count as leaks
# Distinct strings a normalizer remembers, for each of its three memos. The strings that
# repeat across resources (versions, flags, shared hosts) are far fewer; past this, memos
# only hold names of single resources. A server keeps up to 64 normalizers.
MEMO = 16_384

Path = tuple[str, ...]


def _boundary_pattern(values: Iterable[str]) -> re.Pattern[str] | None:
    ordered = sorted({v for v in values if v}, key=lambda v: (-len(v), v))
    if not ordered:
        return None
    alternation = "|".join(re.escape(v) for v in ordered)
    return re.compile(rf"(?<![A-Za-z0-9])(?:{alternation})(?![A-Za-z0-9])", re.IGNORECASE)


@dataclass(frozen=True)
class Leak:
    path: Path
    value: str
    environment: str
    var: str


@dataclass
class Normalizer:
    """Normalizes one side's documents. Build once per side; `document` may be called often."""

    vars: Mapping[str, str]
    # other environment -> its distinctive var values (name -> value)
    foreign: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    mask_secrets: bool = True

    def __post_init__(self) -> None:
        by_value: dict[str, str] = {}
        for name in sorted(self.vars):
            by_value.setdefault(self.vars[name].lower(), name)
        self._placeholder = by_value
        self._own_lower = [v.lower() for v in self.vars.values() if v]
        own_values = {v.lower() for v in self.vars.values()}
        self._foreign_values: dict[str, tuple[str, str]] = {}
        foreign_networks: list[tuple[IPNetwork, str, str]] = []
        for env, env_vars in self.foreign.items():
            for name, value in env_vars.items():
                lowered = value.lower()
                # `example.com` (production's domain) inside staging's own `staging.example.com`
                # names no other environment: only values no own value contains are foreign.
                if lowered in own_values or any(lowered in own for own in own_values):
                    continue
                self._foreign_values.setdefault(value.lower(), (env, name))
                foreign_networks += [(network, env, name) for network in networks([value])]
        # One pattern for own and foreign values, longest first: in staging, the foreign
        # `staging-eu` is found whole before the own `staging` could match inside it; in
        # staging-eu, the own `staging-eu` is replaced before `staging` could look foreign.
        self._values = _boundary_pattern([*self.vars.values(), *self._foreign_values])
        self._own_set = own_values
        self._networks = foreign_networks
        self._own_networks = networks(self.vars.values())
        # Documents repeat their strings (versions, flags, hosts): each is worked out once.
        self.substitute = lru_cache(maxsize=MEMO)(self._substitute)
        self.value = lru_cache(maxsize=MEMO)(self._value)
        self.leaks_in = lru_cache(maxsize=MEMO)(self._leaks_in)

    # ------------------------------------------------------------------ strings
    def mentions_vars(self, text: str) -> bool:
        """Whether any of this side's var values occurs in `text` at all (a cheap pre-check)."""
        lowered = text.lower()
        return any(value in lowered for value in self._own_lower)

    def substitute_key(self, key: str) -> str:
        """A resource key with its vars replaced (keys are mostly unique: not cached)."""
        return self._substitute(key)

    def _substitute(self, text: str) -> str:
        if self._values is None:
            return text
        lowered = text.lower()
        for value in self._own_lower:
            if value in lowered:
                break
        else:
            return text

        def replace(m: re.Match[str]) -> str:
            found = m[0].lower()
            return "{" + self._placeholder[found] + "}" if found in self._own_set else m[0]

        return self._values.sub(replace, text)

    def _leaks_in(self, text: str) -> tuple[tuple[str, str], ...]:
        """(environment, var) pairs another environment's values name in `text`."""
        found: list[tuple[str, str]] = []
        if self._foreign_values and self._values is not None:
            for m in self._values.finditer(text):
                value = m[0]
                if value.lower() in self._own_set:
                    continue
                if len(value) < SHORT_VALUE:
                    before = text[m.start() - 1] if m.start() else ""
                    after = text[m.end()] if m.end() < len(text) else ""
                    if not ((before and before in "-_.") or (after and after in "-_.")):
                        continue
                found.append(self._foreign_values[value.lower()])
        if self._networks and "." in text:
            for m in _IPV4.finditer(text):
                try:
                    address = ipaddress.ip_address(m[1])
                except ValueError:
                    continue
                if any(address in own for own in self._own_networks):
                    continue
                for network, env, name in self._networks:
                    if address.version == network.version and address in network:
                        found.append((env, name))
        return tuple(found)

    def _value(self, text: str) -> str:
        text = self.substitute(text)
        if "-" in text:
            text = _CLOUD_ID.sub(ID_PLACEHOLDER, text)
            text = _UUID.sub(ID_PLACEHOLDER, text)
        if "arn:" in text:
            text = _ARN_ACCOUNT.sub(r"\1{account}", text)
        return text

    # ------------------------------------------------------------------ documents
    def document(
        self, doc: Any, volatile: tuple[str, ...] = ()
    ) -> tuple[Any, dict[Path, str], list[Leak]]:
        """The normalized document, its secret hashes by path, and the leaks found in it."""
        secrets: dict[Path, str] = {}
        leaks: list[Leak] = []
        if volatile:
            doc = drop_paths(doc, volatile)
        normalized = self._walk(doc, (), secrets, leaks)
        return normalized, secrets, leaks

    def _walk(self, value: Any, path: Path, secrets: dict[Path, str], leaks: list[Leak]) -> Any:
        if isinstance(value, str):
            return self._string(value, path, secrets, leaks)
        if isinstance(value, dict):
            return self._mapping(value, path, secrets, leaks)
        if isinstance(value, list):
            return self._list(value, path, secrets, leaks)
        return value

    def _string(self, value: str, path: Path, secrets: dict[Path, str], leaks: list[Leak]) -> str:
        if SECRET_PREFIX in value:
            if is_secret_marker(value):
                if self.mask_secrets:
                    secrets[path] = value
                    return SECRET_PLACEHOLDER
                return value
            value = self._embedded(value, path, secrets)
            if not self.mask_secrets:
                return value  # over time the markers themselves are compared
        for env, var in self.leaks_in(value):
            leaks.append(Leak(path, value, env, var))
        return self.value(value)

    def _mapping(
        self, value: dict[Any, Any], path: Path, secrets: dict[Path, str], leaks: list[Leak]
    ) -> dict[str, Any]:
        # The hot loop of normalization: plain strings and scalars, by far the most common
        # values, are handled inline, and a value's path is made only when something is
        # found at it.
        out = {}
        substitute, value_of, leaks_in = self.substitute, self.value, self.leaks_in
        for k, v in value.items():
            key = substitute(k if type(k) is str else str(k))
            if self.mask_secrets and SECRET_PREFIX in key:
                key = show_markers(key, SECRET_PLACEHOLDER)  # a URL used as a key
            kind = type(v)
            if kind is str and SECRET_PREFIX not in v:
                found = leaks_in(v)
                if found:
                    leaks.extend(Leak((*path, key), v, env, var) for env, var in found)
                out[key] = value_of(v)
            elif v is None or kind is int or kind is bool or kind is float:
                out[key] = v
            else:
                out[key] = self._walk(v, (*path, key), secrets, leaks)
        return out

    def _embedded(self, value: str, path: Path, secrets: dict[Path, str]) -> str:
        """A value with secrets inside (`postgres://app:<marker>@db-staging/app`): across
        environments each becomes `{secret}` and is remembered for secret-reuse findings;
        over time the value is compared as stored, markers and all."""
        if not self.mask_secrets:
            return self.value(value)
        markers = MARKER_IN_TEXT.findall(value)
        for n, marker in enumerate(markers, start=1):
            secrets[path if n == 1 else (*path, f"[secret {n}]")] = marker
        return show_markers(value, SECRET_PLACEHOLDER)

    def _list(
        self, items: list[Any], path: Path, secrets: dict[Path, str], leaks: list[Leak]
    ) -> dict[str, Any]:
        if all(isinstance(item, str | int | float | bool) or item is None for item in items):
            return self._scalar_list(items, path, secrets, leaks)
        # Normalize each item first (its label must carry no id or environment name), then
        # key it by label; what was found inside is re-located under that label.
        walked = []
        for item in items:
            item_secrets: dict[Path, str] = {}
            item_leaks: list[Leak] = []
            walked.append(
                (
                    self._walk(item, (*path, "[]"), item_secrets, item_leaks),
                    item_secrets,
                    item_leaks,
                )
            )
        # An item's label is its name field, else its canonical JSON (made only then). Items
        # that share a label are told apart in the order of their canonical JSON.
        labels = [own_label(w[0]) for w in walked]
        texts: list[str] = [""] * len(walked)
        for index, label in enumerate(labels):
            if label is None:
                texts[index] = canonical(walked[index][0])
                labels[index] = short_label(texts[index])
        named = cast(list[str], labels)
        if len(set(named)) < len(named):
            for index in range(len(walked)):
                if not texts[index]:
                    texts[index] = canonical(walked[index][0])
        order = sorted(range(len(walked)), key=lambda i: (named[i], texts[i]))
        keyed: dict[str, Any] = {}
        depth = len(path)
        for index in order:
            normalized, item_secrets, item_leaks = walked[index]
            label = _free_label(keyed, named[index])
            keyed[label] = normalized
            for p, marker in item_secrets.items():
                secrets[(*p[:depth], label, *p[depth + 1 :])] = marker
            for leak in item_leaks:
                relocated = (*leak.path[:depth], label, *leak.path[depth + 1 :])
                leaks.append(Leak(relocated, leak.value, leak.environment, leak.var))
        return keyed

    def _scalar_list(
        self, items: list[Any], path: Path, secrets: dict[Path, str], leaks: list[Leak]
    ) -> dict[str, Any]:
        """The common case, a list of plain values: each is its own label."""
        depth = len(path)
        labelled = []
        for item in items:
            item_secrets: dict[Path, str] = {}
            item_leaks: list[Leak] = []
            if type(item) is str and SECRET_PREFIX not in item:  # the common case, inline
                item_leaks = [Leak((*path, "[]"), item, e, v) for e, v in self.leaks_in(item)]
                normalized = self.value(item)
            else:
                normalized = self._walk(item, (*path, "[]"), item_secrets, item_leaks)
            labelled.append((_scalar_label(normalized), normalized, item_secrets, item_leaks))
        labelled.sort(key=lambda entry: (entry[0], type(entry[1]).__name__))
        keyed: dict[str, Any] = {}
        for text, normalized, item_secrets, item_leaks in labelled:
            label = _free_label(keyed, text)
            keyed[label] = normalized
            for p, marker in item_secrets.items():
                secrets[(*p[:depth], label)] = marker
            for leak in item_leaks:
                leaks.append(
                    Leak((*leak.path[:depth], label), leak.value, leak.environment, leak.var)
                )
        return keyed


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(values: Iterable[str]) -> list[IPNetwork]:
    out: list[IPNetwork] = []
    for value in values:
        if "/" in value:
            with contextlib.suppress(ValueError):
                out.append(ipaddress.ip_network(value, strict=False))
    return out


LABEL_MAX = 96  # a longer label keeps its start and a hash of the whole


def short_label(text: str) -> str:
    """A label no longer than LABEL_MAX: past it, the start and a hash of the whole. A list
    item's label is a key of its parent: were it the item's whole JSON, every level of a
    nested list would hold its child twice over (exponential in the depth)."""
    if len(text) <= LABEL_MAX:
        return text
    return text[:64] + "…#" + hashlib.sha256(text.encode()).hexdigest()[:16]


def _free_label(keyed: dict[str, Any], text: str) -> str:
    """A list item's key: `[text]`, or `[text (2)]`, `[text (3)]`... for the items after the
    first with the same label, the first that `keyed` does not hold yet."""
    label = base = "[" + text + "]"
    n = 2
    while label in keyed:
        label = f"{base[:-1]} ({n})]"
        n += 1
    return label


def _scalar_label(item: Any) -> str:
    return short_label(item if isinstance(item, str) else canonical(item))


def own_label(item: Any) -> str | None:
    """An item's label when it names itself (a name, key, label or id field, or a string);
    None when its label is its canonical JSON."""
    if isinstance(item, dict):
        for name in _LABEL_FIELDS:
            value = item.get(name)
            if isinstance(value, str | int) and not isinstance(value, bool):
                return short_label(str(value))
    elif isinstance(item, str):
        return short_label(item)
    return None


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def doc_hash(value: Any) -> str:
    return hashlib.sha256(canonical(value).encode()).hexdigest()


def drop_paths(doc: Any, patterns: tuple[str, ...]) -> Any:
    """A copy of `doc` without the dotted paths (`*` matches any key) in `patterns`."""
    split = [p.split(".") for p in patterns]
    return _drop(doc, split)


def _drop(doc: Any, patterns: list[list[str]]) -> Any:
    if not isinstance(doc, dict) or not patterns:
        return doc
    out = {}
    for key, value in doc.items():
        matching = [p for p in patterns if fnmatch.fnmatchcase(str(key), p[0])]
        if any(len(p) == 1 for p in matching):
            continue
        deeper = [p[1:] for p in matching]
        if isinstance(value, list):
            out[key] = [_drop(v, deeper) for v in value]
        else:
            out[key] = _drop(value, deeper)
    return out


def render_path(path: Path) -> str:
    """`database.pool_size`, `ingress[tcp/22 from 0.0.0.0/0]`: readable at a glance."""
    out = ""
    for part in path:
        if part.startswith("["):
            out += part
        else:
            out += ("." if out else "") + part
    return out


def distinctive_vars(
    environments: Mapping[str, Mapping[str, str]], own: str
) -> dict[str, dict[str, str]]:
    """For each other environment, the vars that identify it: declared by `own` too, with
    another value. A var only one environment declares (a shared region, say) is not proof
    that a value names that environment."""
    own_vars = environments.get(own, {})
    out: dict[str, dict[str, str]] = {}
    for env, env_vars in environments.items():
        if env == own:
            continue
        picked = {
            name: value
            for name, value in env_vars.items()
            if name in own_vars and own_vars[name].lower() != value.lower()
        }
        if picked:
            out[env] = picked
    return out
