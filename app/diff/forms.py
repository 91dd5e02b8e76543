"""Normal forms: what a resource becomes under its own environment's vars, worked out once,
when its snapshot is stored, and reused by every comparison with another environment after.

Normalizing a document across environments depends on its own environment only: its vars
become placeholders, and the distinctive vars of every *other* declared environment are
looked for as leaks. So the normalized key and the hash of the normalized document are fixed
for a document under a **context**: those vars, the source type's volatile paths and the
version of the normalization rules. The context's digest names it; a change of any var of
any environment, or of the rules, gives another digest, and forms under the old one are
simply not used (the comparison works them out again, once).

A form is `plain` when normalization found nothing in the document that depends on the
other side of a comparison: no secret (secret reuse compares keyed hashes across sides) and
no leak. Two resources with the same normalized key and the same form, both plain, cannot
give a drift item: the engine skips them without loading either document.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, NamedTuple

from app.diff.normalize import (
    SECRET_PLACEHOLDER,
    Normalizer,
    canonical,
    distinctive_vars,
)
from collectors.secrets import SECRET_PREFIX, show_markers

# Bump whenever normalization gives another result for the same input: stored forms made
# under the old rules then name another context and are never used.
FORMS_VERSION = 1


class Form(NamedTuple):
    """A resource's normal form: its normalized key, the hash of its normalized document,
    and whether the document holds nothing the other side's findings depend on. (A tuple:
    a side of a million resources makes a million of them, as fast as tuples are made.)"""

    key: str
    digest: str
    plain: bool


@dataclass(frozen=True)
class FormContext:
    """Everything a normal form depends on (see the module's docstring)."""

    vars: Mapping[str, str]
    foreign: Mapping[str, Mapping[str, str]]
    volatile: tuple[str, ...] = ()

    @cached_property
    def digest(self) -> str:
        material = canonical(
            [
                FORMS_VERSION,
                dict(self.vars),
                {env: dict(v) for env, v in self.foreign.items()},
                list(self.volatile),
            ]
        )
        return hashlib.sha256(material.encode()).hexdigest()


def context_for(
    environments: Mapping[str, Mapping[str, str]],
    environment: str,
    vars: Mapping[str, str],
    volatile: tuple[str, ...] = (),
) -> FormContext:
    """The context of `environment`'s documents of one source type, among every declared
    environment's vars (the leak candidates)."""
    every = {**environments, environment: vars}
    return FormContext(dict(vars), distinctive_vars(every, environment), volatile)


def matching_key(normalizer: Normalizer, key: str, *, masked: bool) -> str:
    """A resource key as a comparison matches it: across environments (`masked`) a secret
    inside it (a `lines` command's `TOKEN=...`) compares by presence, like one inside a
    value; the environment's var values become placeholders."""
    if masked and SECRET_PREFIX in key:
        key = show_markers(key, SECRET_PLACEHOLDER)
    return normalizer.substitute_key(key)


class FormMaker:
    """Normal forms under one context; each distinct document is normalized once.

    The normalized document of a plain form is kept too, as canonical JSON by its digest
    (`made`), until the store writes it beside the raw documents: a comparison then reads
    the normalized documents of the resources whose forms differ instead of normalizing
    them again. (A plain form's document depends on nothing but the context: environments
    whose documents normalize alike share one stored copy.)"""

    def __init__(self, context: FormContext) -> None:
        self.context = context
        self.normalizer = Normalizer(vars=context.vars, foreign=context.foreign, mask_secrets=True)
        self._memo: dict[str, tuple[str, bool]] = {}
        self.made: dict[str, str] = {}  # digest -> canonical normalized document, not written

    def key(self, key: str) -> str:
        return matching_key(self.normalizer, key, masked=True)

    def knows(self, content_hash: str) -> bool:
        return content_hash in self._memo

    def form(self, key: str, content_hash: str, doc: Any) -> Form:
        """`doc` is the document whose content hash is `content_hash` (worked out once; a
        document the maker `knows` need not be given)."""
        known = self._memo.get(content_hash)
        if known is None:
            normalized, secrets, leaks = self.normalizer.document(doc, self.context.volatile)
            text = canonical(normalized)
            digest = hashlib.sha256(text.encode()).hexdigest()
            plain = not secrets and not leaks
            known = self._memo[content_hash] = (digest, plain)
            if plain:
                self.made[digest] = text
        return Form(self.key(key), *known)

    def take_made(self) -> dict[str, str]:
        """The normalized documents made since the last call (the caller writes them)."""
        made, self.made = self.made, {}
        return made
