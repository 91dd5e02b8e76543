"""The key lexicon: which attribute names hold secrets, judged word by word.

A key is split into words (`dbPassword` -> db, password; `SMTP_PASS` -> smtp, pass;
`x-api-key` -> x, api, key), so matching is on word boundaries and runs in linear time:
`author`, `passage`, `compass` and `keyboard` hold none of the words below.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

# Words that make a key secret wherever they stand in it, also inside a longer word
# (`dbpassword`, `clientsecret`, `accesstoken`).
STRONG = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "credential",
    "apikey",
    "privatekey",
    "secretkey",
    "accesskey",
    "masterkey",
    "signingkey",
    "encryptionkey",
)
# Short words that are secret as words of their own only: `SMTP_PASS`, `MYSQL_PWD`, `db_auth`,
# `SESSION_COOKIE`, `BEARER`, `salt`; never `bypass`, `author` or `passage`.
WORDS = (
    "pass",
    "pwd",
    "pw",
    "creds",
    "auth",
    "authorization",
    "bearer",
    "cookie",
    "cookies",
    "salt",
    "pepper",
    "signature",
    "sig",
    "otp",
    "pin",
    "jwt",
    "webhook",
)
# Keys whose value usually *contains* a secret (a URL with a password, a connection string):
# the embedded-part rules hash the parts; a value that is no URL and in which none of them
# finds a part is hashed whole. (A webhook URL is a credential as a whole: see WORDS.)
CONTAINERS = (
    "dsn",
    "connection_string",
    "connectionstring",
    "conn_str",
    "connstr",
    "connection_uri",
)
# `*_key` is secret where the word before it says so: `encryption_key`, `signing_key`.
KEY_QUALIFIERS = frozenset(
    (
        "api",
        "access",
        "secret",
        "private",
        "encryption",
        "encrypt",
        "signing",
        "sign",
        "master",
        "client",
        "aes",
        "hmac",
        "jwt",
        "session",
        "license",
        "licence",
        "account",
        "shared",
        "storage",
        "app",
        "auth",
        "crypto",
        "cipher",
        "gpg",
        "pgp",
        "ssh",
        "tls",
        "ssl",
        "service",
        "deploy",
        "server",
        "root",
        "admin",
        "write",
        "read",
        "ingest",
        "webhook",
        "cookie",
    )
)
# A last word that says the value is *about* a secret, not the secret: `password_file`,
# `token_ttl`, `secret_name`, `kms_key_id`, `password_min_length`.
METADATA = frozenset(
    (
        "file",
        "files",
        "path",
        "paths",
        "dir",
        "directory",
        "name",
        "names",
        "arn",
        "arns",
        "id",
        "ids",
        "ttl",
        "expiry",
        "expires",
        "expiration",
        "lifetime",
        "length",
        "len",
        "size",
        "min",
        "max",
        "enabled",
        "disabled",
        "required",
        "type",
        "version",
        "rotation",
        "algorithm",
        "algorithms",
        "policy",
        "header",
        "format",
        "count",
        "env",
        "var",
        "ref",
        "endpoint",
        "issuer",
        "audience",
        "scope",
        "scopes",
        "domain",
        "secure",
        "samesite",
        "httponly",
        "mode",
        "method",
        "provider",
        "store",
        "manager",
        "field",
        "url",
        "uri",
        "timeout",
        "interval",
        "age",
        "reset",
        "strength",
        "complexity",
        "hash",
        "hashing",
    )
)
# `url` after `connection` still holds the secret (`DB_CONNECTION_URI`).
_CONTAINER_TAILS = frozenset(("url", "uri"))
# ... and after `webhook` it is the secret (`SLACK_WEBHOOK_URL`).
_SECRET_TAILS = {"webhook": frozenset(("url", "uri"))}

_QUANTITIES = frozenset(("max", "min", "num", "number", "count", "total"))
_CONTAINER_WORDS = tuple(f"_{c}_" for c in CONTAINERS)
_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def words(key: str) -> tuple[str, ...]:
    """The words of a key, lowercased; digits are words of their own."""
    return tuple(w.lower() for w in _WORD.findall(key))


@dataclass(frozen=True)
class Verdict:
    """Whether a key holds a secret: wholly (`secret`), or inside its value (`container`)."""

    secret: bool = False
    container: bool = False


PLAIN = Verdict()
SECRET = Verdict(secret=True)
CONTAINER = Verdict(container=True)


class KeyLexicon:
    """Judges attribute names; every judgement is cached (keys repeat across resources)."""

    def __init__(
        self,
        extra_words: Iterable[str] = (),
        plain_keys: Iterable[str] = (),
        pattern: str | None = None,
    ) -> None:
        self.extra = frozenset(w.lower() for w in extra_words)
        self.plain = frozenset(k.lower() for k in plain_keys)
        # A user's `key_pattern` replaces the word rules (the documented escape hatch).
        self.pattern = re.compile(pattern, re.IGNORECASE) if pattern else None
        self.judge = lru_cache(maxsize=65536)(self._judge)

    def is_secret(self, key: str) -> bool:
        return self.judge(key).secret

    def _judge(self, key: str) -> Verdict:
        if key.lower() in self.plain:
            return PLAIN
        if self.pattern is not None:
            return SECRET if self.pattern.search(key) else PLAIN
        parts = words(key)
        while parts and parts[-1].isdigit():  # `password2`, `DB_PASS_1`
            parts = parts[:-1]
        if not parts or parts[0] in _QUANTITIES:
            return PLAIN  # `max_tokens`, `min_password_length`: a number about secrets
        joined = "_" + "_".join(parts) + "_"
        tail = parts[-1]
        about = tail in METADATA and len(parts) > 1
        for container in _CONTAINER_WORDS:
            if container in joined and (not about or tail in _CONTAINER_TAILS):
                return CONTAINER
        if about:
            if len(parts) > 1 and tail in _SECRET_TAILS.get(parts[-2], ()):
                return SECRET
            return PLAIN
        flat = "".join(parts)
        for word in STRONG:
            if word in flat:
                return SECRET
        for i, word in enumerate(parts):
            if word in WORDS or word in self.extra:
                return SECRET
            if word in ("key", "keys") and i > 0 and parts[i - 1] in KEY_QUALIFIERS:
                return SECRET
        return PLAIN
