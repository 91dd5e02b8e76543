"""Where secrets stand inside a string: each rule yields (start, end, rule) spans.

Every pattern here runs in linear time: quantifiers are bounded or possessive, and a pattern
that could start anywhere starts only at a word boundary (a lookbehind), so a failed match is
never retried from every position of a long run. The URL, PEM and connection-string rules
walk the text with `str.find`. A rule's name is what the audit reports.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from collectors.secrets.hashing import MARKER_IN_TEXT, SECRET_PREFIX, is_secret_marker

Span = tuple[int, int, str]
Judge = Callable[[str], bool]

MAX_URL = 8192  # a URL longer than this is read up to here
_MARKER_LEN = len(SECRET_PREFIX) + 32

# ----------------------------------------------------------------------------- vendor tokens


@dataclass(frozen=True)
class Detector:
    """A secret recognised by its shape alone: a vendor's token format."""

    name: str
    hints: tuple[str, ...]  # substrings one of which every match contains (a cheap pre-check)
    pattern: re.Pattern[str]
    valid: Callable[[str], bool] | None = None


_B = r"(?<![A-Za-z0-9_])"  # starts only where a token can start
_E = r"(?![A-Za-z0-9_])"


def _jwt_header(token: str) -> bool:
    """A JWT's first part is base64url JSON with an `alg` (or `typ`): not any `eyJ` string."""
    head = token.split(".", 1)[0]
    try:
        decoded = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return False
    return isinstance(decoded, dict) and ("alg" in decoded or "typ" in decoded)


# The vendor formats detect-secrets' plugins recognise, written as linear patterns, and a few
# more. Each has a literal hint, so a value without one costs a substring test per detector.
DETECTORS: tuple[Detector, ...] = (
    Detector(
        "aws_access_key_id",
        ("AKIA", "ASIA", "ABIA", "ACCA", "A3T"),
        re.compile(_B + r"(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}" + _E),
    ),
    Detector(
        "jwt",
        ("eyJ",),
        re.compile(
            r"(?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{8,8192}+\.[A-Za-z0-9_\-]{2,65536}+"
            r"(?:\.[A-Za-z0-9_\-]{0,8192}+)?"
        ),
        _jwt_header,
    ),
    Detector(
        "slack_token",
        ("xox", "xapp-"),
        re.compile(_B + r"(?:xox[abposr]|xapp)-[0-9A-Za-z\-]{10,250}+"),
    ),
    Detector(
        "slack_webhook",
        ("hooks.slack.com",),
        re.compile(
            r"https?://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/\-]{8,300}+"
        ),
    ),
    Detector(
        "github_token",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        re.compile(_B + r"(?:gh[pousr]_[A-Za-z0-9]{36,251}+|github_pat_[A-Za-z0-9_]{22,255}+)"),
    ),
    Detector(
        "gitlab_token",
        ("gl", "GR1348941"),
        re.compile(
            _B + r"(?:(?:glpat|gldt|glft|glsoat|glrt|glcbt|glimt|glptt|glagent|gloas)-"
            r"[A-Za-z0-9_\-]{20,64}+|GR1348941[A-Za-z0-9_\-]{20,64}+)" + _E
        ),
    ),
    Detector(
        "stripe_key",
        ("k_live_", "k_test_"),
        re.compile(_B + r"[rs]k_(?:live|test)_[0-9A-Za-z]{16,247}+"),
    ),
    Detector(
        "sendgrid_key",
        ("SG.",),
        re.compile(_B + r"SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}" + _E),
    ),
    Detector("square_token", ("sq0",), re.compile(_B + r"sq0(?:csp|atp)-[0-9A-Za-z_\-]{22,60}+")),
    Detector("pypi_token", ("pypi-AgE",), re.compile(_B + r"pypi-AgE[A-Za-z0-9_\-]{50,}+")),
    Detector("npm_token", ("npm_",), re.compile(_B + r"npm_[A-Za-z0-9]{36}" + _E)),
    Detector(
        "openai_key",
        ("sk-",),
        re.compile(
            _B + r"sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{40,300}+"
            r"|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20})"
        ),
    ),
    Detector("anthropic_key", ("sk-ant-",), re.compile(_B + r"sk-ant-[A-Za-z0-9_\-]{20,300}+")),
    Detector("google_api_key", ("AIza",), re.compile(_B + r"AIza[0-9A-Za-z_\-]{35}" + _E)),
    Detector(
        "telegram_bot_token",
        (":AA",),
        re.compile(r"(?<![0-9])[0-9]{8,10}:AA[0-9A-Za-z_\-]{33}" + _E),
    ),
    Detector("twilio_key", ("AC", "SK"), re.compile(_B + r"(?:AC|SK)[0-9a-f]{32}" + _E)),
    Detector("mailchimp_key", ("-us",), re.compile(_B + r"[0-9a-f]{32}-us[0-9]{1,2}" + _E)),
    Detector(
        "discord_bot_token",
        (".",),
        re.compile(
            r"(?<![A-Za-z0-9_\-.])[MNO][A-Za-z0-9_\-]{23,25}\.[A-Za-z0-9_\-]{6}\."
            r"[A-Za-z0-9_\-]{27,38}" + _E
        ),
    ),
    Detector("artifactory_token", ("AKC",), re.compile(_B + r"AKC[A-Za-z0-9]{10,128}+" + _E)),
    Detector("age_secret_key", ("AGE-SECRET-KEY-",), re.compile(r"AGE-SECRET-KEY-1[0-9A-Z]{58}")),
    Detector("vault_token", ("hvs.", "hvb."), re.compile(_B + r"hv[sb]\.[A-Za-z0-9_\-]{24,}+")),
    Detector(
        "digitalocean_token", ("do", "dop_"), re.compile(_B + r"do[por]_v1_[0-9a-f]{64}" + _E)
    ),
    Detector(
        "shopify_token", ("shp",), re.compile(_B + r"shp(?:at|ca|pa|ss)_[0-9a-fA-F]{32}" + _E)
    ),
)
MIN_TOKEN = 20  # no detector matches fewer characters


# Where any detector's match could start: one search, so that a value holding none (nearly
# every value) costs one pass of C, not a test per detector.
_ANY_TOKEN = re.compile(
    r"AKIA|ASIA|ABIA|ACCA|A3T|eyJ|xox[abposr]-|xapp-|hooks\.slack\.com|gh[pousr]_|github_pat_"
    r"|gl(?:pat|dt|ft|soat|rt|cbt|imt|ptt|agent|oas)-|GR1348941|[rs]k_(?:live|test)_|SG\."
    r"|sq0(?:csp|atp)-|pypi-AgE|npm_|sk-|AIza|[0-9]:AA|AC[0-9a-f]{32}|SK[0-9a-f]{32}"
    r"|[0-9a-f]-us[0-9]|(?<![A-Za-z0-9_\-.])[MNO][A-Za-z0-9_\-]{23,25}\.|AKC|AGE-SECRET-KEY-"
    r"|hv[sb]\.|do[por]_v1_|shp(?:at|ca|pa|ss)_"
)


def vendor_tokens(text: str, enabled: frozenset[str] | None = None) -> Iterator[Span]:
    if _ANY_TOKEN.search(text) is None:
        return
    for detector in DETECTORS:
        if enabled is not None and detector.name not in enabled:
            continue
        if not any(hint in text for hint in detector.hints):
            continue
        for m in detector.pattern.finditer(text):
            if detector.valid is None or detector.valid(m[0]):
                yield m.start(), m.end(), detector.name


# ----------------------------------------------------------------------------- PEM blocks

_PEM_BEGIN = re.compile(r"-----BEGIN ([A-Z0-9 ]{1,64}+)-----")


def private_keys(text: str) -> Iterator[Span]:
    """A private key's PEM block, BEGIN to END (to the end of the value if it is cut off).
    Certificates and public keys are public: they stay readable."""
    pos = 0
    while (i := text.find("-----BEGIN ", pos)) >= 0:
        m = _PEM_BEGIN.match(text, i)
        if m is None:
            pos = i + 11
            continue
        label = m[1]
        if not any(word in label for word in ("PRIVATE", "SECRET", "ENCRYPTED")):
            pos = m.end()
            continue
        end_marker = f"-----END {label}-----"
        j = text.find(end_marker, m.end())
        end = j + len(end_marker) if j >= 0 else len(text)
        yield i, end, "private_key"
        pos = end
    i = text.find("PuTTY-User-Key-File-")
    if i >= 0:
        yield i, len(text), "private_key"


# ----------------------------------------------------------------------------- URLs

_URL_END = re.compile(r"[\s\"'<>`\\]")
_TOKEN_USER = re.compile(r"[A-Za-z0-9_\-]{16,256}")
# Query parameters that carry secrets whatever the key lexicon says of them.
QUERY_SECRETS = frozenset(
    (
        "sig",
        "signature",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
        "x-goog-signature",
        "x-goog-credential",
        "key",
        "code",
        "access_token",
        "id_token",
        "refresh_token",
        "client_secret",
        "private_token",
        "sas",
        "sv_sig",
    )
)


def urls(text: str, judge: Judge) -> Iterator[Span]:
    """Userinfo (`scheme://user:PASSWORD@host`, a token as the user of a DSN) and secret-named
    query parameters (`?password=`, `&token=`, `X-Amz-Signature=`) of every URL in `text`."""
    pos = 0
    while (i := text.find("://", pos)) >= 0:
        start = i + 3
        pos = start
        if i == 0 or not (text[i - 1].isalnum() or text[i - 1] in "+.-"):
            continue
        limit = min(len(text), start + MAX_URL)
        stop = _URL_END.search(text, start, limit)
        end = stop.start() if stop else limit
        yield from _userinfo(text, start, end)
        yield from _query(text, start, end, judge)
        pos = max(end, start)


def _userinfo(text: str, start: int, end: int) -> Iterator[Span]:
    rest = text[start:end]
    # The userinfo ends at the last `@` (a password may hold one: `user:M@il:pw@host`); an `@`
    # in the path or query is told apart below.
    at = rest.rfind("@")
    if at < 0:
        return
    userinfo = rest[:at]
    if userinfo.startswith(SECRET_PREFIX):
        colon = _MARKER_LEN if len(userinfo) > _MARKER_LEN and userinfo[_MARKER_LEN] == ":" else -1
    else:
        colon = userinfo.find(":")
    slash = userinfo.find("/")
    if "?" in userinfo or (
        slash >= 0 and (colon < 0 or colon > slash or userinfo[colon + 1 : slash].isdigit())
    ):
        # `/` before the `@` belongs to a path (`host:443/users/@me`), not to a password:
        # the authority ends at the first `/`, `?` or `#`.
        cuts = [c for c in (rest.find("/"), rest.find("?"), rest.find("#")) if c >= 0]
        authority = rest[: min(cuts)] if cuts else rest
        at = authority.rfind("@")
        if at < 0:
            return
        userinfo = authority[:at]
        colon = userinfo.find(":")
    if colon >= 0:
        password = userinfo[colon + 1 :]
        if password and not is_secret_marker(password):
            yield start + colon + 1, start + at, "url_password"
        return
    # No password: a long random user is a token (the key of a Sentry DSN, a token as user).
    if (
        _TOKEN_USER.fullmatch(userinfo)
        and any(c.isdigit() for c in userinfo)
        and any(c.isalpha() for c in userinfo)
    ):
        yield start, start + at, "url_token"


def _query(text: str, start: int, end: int, judge: Judge) -> Iterator[Span]:
    q = text.find("?", start, end)
    if q < 0:
        return
    fragment = text.find("#", q, end)
    stop = fragment if fragment >= 0 else end
    pos = q + 1
    while pos < stop:
        amp = text.find("&", pos, stop)
        part_end = amp if amp >= 0 else stop
        eq = text.find("=", pos, part_end)
        if eq > pos and eq + 1 < part_end:
            name = text[pos:eq]
            value = text[eq + 1 : part_end]
            if (name.lower() in QUERY_SECRETS or judge(name)) and not is_secret_marker(value):
                yield eq + 1, part_end, "query_param"
        pos = part_end + 1


# ----------------------------------------------------------------------------- assignments

# `--key value` / `--key=value`, or `key=value`, `key: value`, `"key": value`, starting only
# at a word's start (the lookbehind), each name at most 128 characters.
_ASSIGNMENT = re.compile(
    r"""(?<![\w.\-])(?:(?P<flag>--?[A-Za-z][\w\-]{0,127}+)(?:[ \t]++|=)"""
    r"""|(?P<k>[A-Za-z_][\w.\-]{0,127}+)["']?[ \t]{0,8}+(?P<sep>[=:])(?![:/]))"""
)
_IAM_ACTION = re.compile(
    r"(?:secretsmanager|ssm|kms|sts|iam|ec2|rds|lambda|ecs|acm|autoscaling|elasticloadbalancing)"
    r":[A-Z][A-Za-z0-9]*(?![A-Za-z0-9:=])"
)
_SCHEME = re.compile(r"(?:Bearer|Basic|Token|Digest|Bot|bearer|basic|token|BEARER|BASIC)[ \t]+")
_PLAIN_END = re.compile(r"[\s,;&}\]\"'<>]")
_FLAG_END = re.compile(r"[\s\"']")


def assignments(text: str, judge: Judge, markers: list[tuple[int, int]]) -> Iterator[Span]:
    """The value of every secret-named `key=value` (connection strings: `Password=...;`,
    `AccountKey=...`), `key: value`, `"key": "value"` and `--key value` in `text`."""
    pos = 0
    n = len(text)
    while (m := _ASSIGNMENT.search(text, pos)) is not None:
        pos = m.end()
        name = m["flag"] or m["k"]
        if not judge(name.lstrip("-")):
            continue
        if any(s <= m.start() < e for s, e in markers):
            continue  # the word `secret` of a marker already made
        if _IAM_ACTION.match(text, m.start()):
            continue  # `secretsmanager:GetSecretValue` names a permission, holds no secret
        v = m.end()
        while v < n and text[v] in " \t":
            v += 1
        if v >= n:
            break
        quote = text[v]
        if quote in "\"'":
            # The closing quote on the same line; without one, the value runs to the line's end.
            close = text.find(quote, v + 1)
            newline = text.find("\n", v + 1, close if close >= 0 else n)
            if close < 0 or newline >= 0:
                close = newline if newline >= 0 else n
            start, end = v + 1, close
            pos = min(n, close + 1)
        elif quote in "{[":
            continue  # a nested document: its own keys are judged as the scan goes on
        else:
            start = v
            scheme = _SCHEME.match(text, v)
            if scheme is not None:
                v = scheme.end()
            stop = (_FLAG_END if m["flag"] else _PLAIN_END).search(text, v)
            end = stop.start() if stop else n
            pos = end
        value = text[start:end]
        if value.strip() and not is_secret_marker(value) and not value.startswith(SECRET_PREFIX):
            yield start, end, "assignment"


# ----------------------------------------------------------------------------- auth headers

_AUTH_VALUE = re.compile(
    r"(?<![A-Za-z0-9])(?P<scheme>Bearer|Basic|Token|bearer|BEARER)[ \t]++"
    r"(?P<v>[A-Za-z0-9\-._~+/]{8,8192}+=*+)"
)


def authorization(text: str) -> Iterator[Span]:
    """`Bearer <token>` and `Basic <base64 user:password>` inside a value."""
    for m in _AUTH_VALUE.finditer(text):
        value = m["v"]
        if m["scheme"] == "Basic":
            try:
                decoded = base64.b64decode(value, validate=True).decode("utf-8")
            except (ValueError, binascii.Error, UnicodeDecodeError):
                continue
            if ":" not in decoded:
                continue
        elif value.isalpha() and len(value) < 20:
            continue  # `Bearer authentication`: a word, not a token
        yield m.start("v"), m.end("v"), "authorization"


# ----------------------------------------------------------------------------- free text

_PHRASE = re.compile(
    r"(?<![A-Za-z])(?:password|passwd|passphrase|secret|token|key|pwd|credentials?)"
    r"(?:[ \t]++(?:is|was|of|for|=))?[ \t]++"
    r"""(?P<v>'[^'\n]{1,512}+'|"[^"\n]{1,512}+"|`[^`\n]{1,512}+`|[^\s'"`,;]{6,512}+)""",
    re.IGNORECASE,
)


def phrases(text: str) -> Iterator[Span]:
    """Free text only (errors, stderr): `password 'X'`, `using key X`, `token is "X"`."""
    for m in _PHRASE.finditer(text):
        value = m["v"]
        if value[0] in "'\"`":
            yield m.start("v") + 1, m.end("v") - 1, "phrase"
        elif not value.isalpha() and not is_secret_marker(value):
            yield m.start("v"), m.end("v"), "phrase"


def marker_spans(text: str) -> list[tuple[int, int]]:
    if SECRET_PREFIX not in text:
        return []
    return [(m.start(), m.end()) for m in MARKER_IN_TEXT.finditer(text)]
