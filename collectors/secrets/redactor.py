"""The redactor: every rule applied to attribute documents, resource keys and error texts."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from collectors.limits import Limits, check_document
from collectors.secrets import rules
from collectors.secrets.hashing import SECRET_PREFIX, SecretHasher
from collectors.secrets.lexicon import KeyLexicon, Verdict

Path = tuple[str | int, ...]
JSON_STRING_LIMIT = 1 << 20  # a string that holds a JSON document is parsed up to this size
# Past this a value is not scanned: it is hashed whole (a value this size is no setting one
# compares by eye, and scanning it would hold up the source). Error texts are cut to
# MAX_ERROR before they are scrubbed.
MAX_SCAN = 1 << 20
MAX_ERROR = 64 << 10

RULES_VERSION = 2  # bump when a rule changes what counts as a secret (see `db rescrub`)

# Every rule, by the name the audit and `secrets.disable` use.
RULES: dict[str, str] = {
    "key": "the attribute's name is in the key lexicon (or matches secrets.key_pattern)",
    "source": "the source marked the path secret (SSM SecureString, Secrets Manager, ...)",
    "url_password": "the password of a URL's userinfo (scheme://user:PASSWORD@host)",
    "url_token": "a token standing as a URL's user (the key of a Sentry DSN)",
    "query_param": "a secret-named query parameter (?password=, &token=, X-Amz-Signature=)",
    "assignment": "the value of a secret-named key=value / key: value inside a value "
    "(connection strings: Password=...;, JSON or YAML text)",
    "authorization": "an Authorization value: Bearer token, Basic user:password",
    "private_key": "a PEM private key block (certificates and public keys stay readable)",
    "phrase": "free text only: `password 'X'`, `using key X`",
    "marker": "already a keyed hash when read (hashed by a source, an earlier scan or an "
    "exported snapshot pushed back)",
    "oversized": f"a value (or resource key) over {MAX_SCAN >> 20} MiB, hashed whole, not scanned",
    **{d.name: f"value detector: {d.name.replace('_', ' ')}" for d in rules.DETECTORS},
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One secret the redactor hashed: where (attribute path) and which rule found it."""

    path: Path
    rule: str


class Redactor:
    """Replaces secret values in attribute documents and error texts with keyed hashes."""

    def __init__(
        self,
        hasher: SecretHasher,
        key_pattern: str | None = None,
        *,
        extra_words: Iterable[str] = (),
        plain_keys: Iterable[str] = (),
        disabled: Iterable[str] = (),
    ) -> None:
        self.hash = hasher
        extra_words, plain_keys = tuple(extra_words), tuple(plain_keys)
        self.lexicon = KeyLexicon(extra_words, plain_keys, key_pattern)
        self.disabled = frozenset(disabled)
        # Names this rule set: the rules' version and every setting that changes them. A
        # stored snapshot redacted under another is what `db rescrub` brings up to date.
        settings = json.dumps(
            [key_pattern, sorted(extra_words), sorted(plain_keys), sorted(self.disabled)]
        )
        self.rules_id = f"{RULES_VERSION}:{hashlib.sha256(settings.encode()).hexdigest()[:12]}"
        unknown = self.disabled - RULES.keys()
        if unknown:
            raise ValueError(f"unknown secret rule(s): {', '.join(sorted(unknown))}")
        enabled = {d.name for d in rules.DETECTORS} - self.disabled
        self._detectors = frozenset(enabled) if self.disabled else None
        self._on = {name: name not in self.disabled for name in RULES}
        # Values repeat across resources (versions, flags, hosts): each is worked out once.
        self._values: Memo = {}
        self._keys: Memo = {}

    def __repr__(self) -> str:
        return "Redactor(<key>)"

    def is_secret_key(self, key: str) -> bool:
        return self._on["key"] and self.lexicon.is_secret(key)

    # ------------------------------------------------------------------ documents
    def redact(
        self, attributes: dict[str, Any], secret_paths: Iterable[Path] = ()
    ) -> dict[str, Any]:
        """A copy of `attributes` with every secret value hashed."""
        return self.redact_found(attributes, secret_paths)[0]

    def redact_found(
        self, attributes: dict[str, Any], secret_paths: Iterable[Path] = ()
    ) -> tuple[dict[str, Any], list[Finding]]:
        """The redacted copy, and which path each secret was at and which rule found it."""
        found: list[Finding] = []
        doc: dict[str, Any] = self._walk(attributes, None, found)
        for path in secret_paths:

            def mark(value: Any, at: Path = path) -> Any:
                return self._secret_tree(value, _link(at), found, "source")

            doc = _replace_at(doc, path, mark)
        return doc, found

    # Paths are built as (parent, key) links and made into tuples only for a finding: most
    # values hold no secret, and a tuple per value would cost more than judging it.
    def _walk(self, value: Any, link: Link, found: list[Finding]) -> Any:
        kind = type(value)
        if kind is str:
            return self._string(value, link, found) if len(value) > 5 else value
        if kind is dict:
            out = {}
            judge = self.lexicon.judge if self._on["key"] else _never
            values = self._values
            paired = self._paired_value(value, judge)
            for k, v in value.items():
                if type(k) is str and len(k) > 7:
                    k = self._mapping_key(k, link, found)
                verdict: Verdict = judge(k) if type(k) is str else _PLAIN
                if verdict.secret or k == paired:
                    out[k] = self._secret_tree(v, (link, k), found, "key")
                elif verdict.container and type(v) in (str, int, float):
                    out[k] = self._container(v, (link, k), found)
                elif type(v) is str:
                    if len(v) <= 5:
                        out[k] = v
                        continue
                    cached = values.get(v)
                    if cached is not None and not cached[1]:
                        out[k] = cached[0]  # the common case: worked out before, no secret
                    else:
                        out[k] = self._string(v, (link, k), found)
                elif type(v) in (dict, list):
                    out[k] = self._walk(v, (link, k), found)
                else:
                    out[k] = v
            return out
        if kind is list:
            out_list = [self._walk(v, (link, i), found) for i, v in enumerate(value)]
            for i in self._flag_values(value):
                out_list[i] = self._secret_tree(value[i], (link, i), found, "assignment")
            return out_list
        return value

    def _paired_value(self, doc: dict[str, Any], judge: Callable[[str], Verdict]) -> str | None:
        """`{name: DB_PASSWORD, value: ...}` (Kubernetes and ECS env lists, header lists): the
        value field is secret when the name field names a secret."""
        for value_field, name_fields in _PAIRS:
            if value_field in doc:
                for name_field in name_fields:
                    name = doc.get(name_field)
                    if type(name) is str and judge(name).secret:
                        return value_field
        return None

    def _flag_values(self, items: list[Any]) -> Iterator[int]:
        """`[--api-key, X]` in an argument list: the item after a secret-named flag."""
        for i, item in enumerate(items[:-1]):
            if (
                type(item) is str
                and item.startswith("-")
                and "=" not in item
                and _FLAG.fullmatch(item)
                and self.is_secret_key(item.lstrip("-"))
                and type(items[i + 1]) is str
                and not items[i + 1].startswith("-")
            ):
                yield i + 1

    def _mapping_key(self, key: str, link: Link, found: list[Finding]) -> str:
        """A mapping key holding a secret (a URL with a password used as a key): hashed in
        place, like a resource key."""
        redacted, fired = _remembered(self._keys, key, self.redact_text_found)
        if fired:
            path = (*_path(link), redacted)
            found.extend(Finding(path, rule) for rule in fired)
        return redacted

    def _secret_tree(self, value: Any, link: Link, found: list[Finding], rule: str) -> Any:
        if isinstance(value, dict):
            return {k: self._secret_tree(v, (link, k), found, rule) for k, v in value.items()}
        if isinstance(value, list):
            return [self._secret_tree(v, (link, i), found, rule) for i, v in enumerate(value)]
        # Booleans and nulls say whether something is set, never what it is: kept for diffing.
        if value is None or isinstance(value, bool):
            return value
        text = repr(value) if isinstance(value, int | float) else str(value)
        found.append(Finding(_path(link), rule))
        return self.hash(text)

    def _container(self, value: Any, link: Link, found: list[Finding]) -> Any:
        """A DSN, a connection string: its secret parts if any is found; else a URL stays as it
        is (its userinfo and query were looked at), and anything else is hashed whole (when in
        doubt, a secret)."""
        if isinstance(value, str):
            before = len(found)
            redacted = self._string(value, link, found)
            if len(found) > before or redacted != value or "://" in value:
                return redacted
        return self._secret_tree(value, link, found, "key")

    def _string(self, text: str, link: Link, found: list[Finding]) -> str:
        redacted, fired = _remembered(self._values, text, self._compute)
        if fired:
            path = _path(link)
            found.extend(Finding(path, rule) for rule in fired)
        return redacted

    def _compute(self, text: str) -> tuple[str, tuple[str, ...]]:
        if len(text) > MAX_SCAN:
            return (self.hash(text), ("oversized",)) if self._on["oversized"] else (text, ())
        stripped = text.strip()
        if (
            self._on["assignment"]
            and len(stripped) <= JSON_STRING_LIMIT
            and stripped[:1] in "{["
            and stripped[-1:] in "}]"
        ):
            embedded = self._json_string(stripped)
            if embedded is not None:
                return embedded
        spans = self.spans(text, free=False)
        kept = ("marker",) * len(rules.marker_spans(text)) if SECRET_PREFIX in text else ()
        if not spans:
            return text, kept
        return _replace(text, spans, self.hash), (*kept, *(rule for _, _, rule in spans))

    def _json_string(self, text: str) -> tuple[str, tuple[str, ...]] | None:
        """JSON inside a string (`SETTINGS={"password": "..."}`): redacted as a document."""
        try:
            parsed = json.loads(text)
            check_document(parsed, _JSON_STRING_LIMITS)
        except (ValueError, RecursionError):  # LimitExceeded is a ValueError
            return None  # not a document we walk: the text rules read it
        if not isinstance(parsed, dict | list):
            return None
        inner: list[Finding] = []
        redacted = self._walk(parsed, None, inner)
        if not inner:
            return text, ()
        return json.dumps(redacted, ensure_ascii=False), tuple(f.rule for f in inner)

    # ------------------------------------------------------------------ strings
    def spans(self, text: str, free: bool) -> list[rules.Span]:
        """The secret parts of `text`, without overlaps, in order."""
        on = self._on
        found: list[rules.Span] = []
        markers = rules.marker_spans(text)
        judge = self.is_secret_key
        if "://" in text and (on["url_password"] or on["url_token"] or on["query_param"]):
            found += (s for s in rules.urls(text, judge) if on[s[2]])
        if on["assignment"] and ("=" in text or ":" in text or (free and "--" in text)):
            found += rules.assignments(text, judge, markers)
        if on["private_key"] and ("-----BEGIN " in text or "PuTTY" in text):
            found += rules.private_keys(text)
        if on["authorization"] and (
            "earer " in text or "asic " in text or "oken " in text or "EARER " in text
        ):
            found += rules.authorization(text)
        if len(text) >= rules.MIN_TOKEN:
            found += rules.vendor_tokens(text, self._detectors)
        if free and on["phrase"]:
            found += rules.phrases(text)
        if not found:
            return []
        return _resolve(found, markers)

    def redact_text(self, text: str) -> str:
        """Free text (resource keys, the lines of a `lines` command): each secret becomes its
        keyed hash, so distinct values stay distinct (resource keys must stay unique)."""
        return self.redact_text_found(text)[0]

    def redact_text_found(self, text: str) -> tuple[str, tuple[str, ...]]:
        """`redact_text`, and the rules that fired (one scan for both)."""
        if len(text) > MAX_SCAN:
            return self.hash(text), ("oversized",)
        spans = self.spans(text, free=True)
        if not spans:
            return text, ()
        return _replace(text, spans, self.hash), tuple(rule for _, _, rule in spans)

    def mask(self, text: str, mark: str, free: bool = False) -> str:
        """`text` with every secret part the rules find replaced by `mark` (`***` in errors,
        `(secret)` in values as reports show them)."""
        spans = self.spans(text, free=free)
        return _replace(text, spans, lambda _value: mark) if spans else text

    def scrub(self, text: str) -> str:
        """Error texts: every secret part becomes `***`. Over-masking beats a leak."""
        if len(text) > MAX_ERROR:
            text = text[:MAX_ERROR] + " [cut]"
        return self.mask(text, "***", free=True)


_PLAIN = Verdict()
_JSON_STRING_LIMITS = Limits()  # a JSON document inside a string: as deep as any other
_PAIRS = (("value", ("name", "key")), ("Value", ("Name", "Key")))
_FLAG = re.compile(r"--?[A-Za-z][\w\-]{0,127}")
VALUE_MEMO = 65_536  # distinct strings remembered (then forgotten all at once)
Link = tuple[Any, str | int] | None  # (parent link, key): a path, built only when needed


Memo = dict[str, tuple[str, tuple[str, ...]]]


def _remembered(
    memo: Memo, text: str, compute: Callable[[str], tuple[str, tuple[str, ...]]]
) -> tuple[str, tuple[str, ...]]:
    """`compute(text)`, worked out once per distinct text (forgotten all at once when full)."""
    cached = memo.get(text)
    if cached is None:
        cached = compute(text)
        if len(memo) >= VALUE_MEMO:
            memo.clear()
        memo[text] = cached
    return cached


def _never(_key: str) -> Verdict:
    return _PLAIN


def _path(link: Link) -> Path:
    parts: list[str | int] = []
    while link is not None:
        link, key = link
        parts.append(key)
    return tuple(reversed(parts))


def _link(path: Path) -> Link:
    link: Link = None
    for part in path:
        link = (link, part)
    return link


def _resolve(spans: list[rules.Span], markers: list[tuple[int, int]]) -> list[rules.Span]:
    """Non-overlapping spans, earliest first, the longest where two start together; none
    inside a marker already made."""
    spans.sort(key=lambda s: (s[0], -s[1]))
    out: list[rules.Span] = []
    last_end = -1
    for start, end, rule in spans:
        if end <= start or start < last_end:
            continue
        if markers and any(s < end and start < e for s, e in markers):
            continue
        out.append((start, end, rule))
        last_end = end
    return out


def _replace(text: str, spans: list[rules.Span], replace: Callable[[str], str]) -> str:
    parts: list[str] = []
    pos = 0
    for start, end, _rule in spans:
        parts += (text[pos:start], replace(text[start:end]))
        pos = end
    parts.append(text[pos:])
    return "".join(parts)


def _replace_at(doc: Any, path: Path, fn: Callable[[Any], Any]) -> Any:
    if not path:
        return fn(doc)
    head, rest = path[0], path[1:]
    if isinstance(doc, dict) and head in doc:
        return {**doc, head: _replace_at(doc[head], rest, fn)}
    if isinstance(doc, list) and isinstance(head, int) and -len(doc) <= head < len(doc):
        copy = list(doc)
        copy[head] = _replace_at(copy[head], rest, fn)
        return copy
    return doc
