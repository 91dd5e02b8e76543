"""The secret rules one by one: the key lexicon, secrets inside values, vendor tokens, free
text, what must stay plain, and time that grows linearly with the input."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest

from collectors.secrets import RULES, Redactor, SecretHasher, is_secret_marker
from collectors.secrets.lexicon import KeyLexicon
from tests.support import HASH_KEY

KEY = HASH_KEY
redactor = Redactor(SecretHasher(KEY))
h = redactor.hash
lexicon = KeyLexicon()


@pytest.mark.parametrize(
    "key",
    [
        "SMTP_PASS",
        "DB_PASS",
        "DB_PASS_1",
        "MYSQL_PWD",
        "DB_PWD",
        "passphrase",
        "GPG_PASSPHRASE",
        "encryption_key",
        "signing_key",
        "master_key",
        "x-api-key",
        "apiKey",
        "dbPassword",
        "clientSecret",
        "SESSION_COOKIE",
        "cookie_secret",
        "BEARER",
        "salt",
        "webhook_url",
        "SLACK_WEBHOOK_URL",
        "secret_key_base",
        "AUTH",
        "db_auth",
        "spring.datasource.password",
        "license_key",
    ],
)
def test_secret_keys(key: str) -> None:
    assert lexicon.is_secret(key), key


@pytest.mark.parametrize(
    "key",
    [
        "author",
        "authority",
        "passage",
        "compass",
        "keyboard",
        "bypass_cache",
        "passenger",
        "kms_key_id",
        "access_key_id",
        "token_ttl",
        "password_min_length",
        "secret_name",
        "private_key_path",
        "cookie_domain",
        "oauth_enabled",
        "key",
        "primary_key",
        "host",
        "token_url",
    ],
)
def test_plain_keys(key: str) -> None:
    assert not lexicon.is_secret(key), key


def test_container_keys_hash_parts_or_the_whole() -> None:
    doc = {
        "SENTRY_DSN": "https://0123456789abcdef0123456789abcdef@o1.ingest.sentry.io/42",
        "PUBLIC_DSN": "https://public@sentry.internal/12",  # nothing secret in it: kept
        "connection_string": "opaque-blob-without-parts",
    }
    out = redactor.redact(doc)
    assert (
        out["SENTRY_DSN"]
        == f"https://{h('0123456789abcdef0123456789abcdef')}@o1.ingest.sentry.io/42"
    )
    assert out["PUBLIC_DSN"] == doc["PUBLIC_DSN"]
    assert out["connection_string"] == h("opaque-blob-without-parts")


@pytest.mark.parametrize(
    ("value", "secrets", "rule"),
    [
        ("postgres://app:Pw-1@db.internal/app", ["Pw-1"], "url_password"),
        ("redis://:Pw/With/Slash@cache:6379/0", ["Pw/With/Slash"], "url_password"),
        ("amqp://u:p#ss@mq:5672/", ["p#ss"], "url_password"),
        ("mongodb+srv://u:Mg-3@cluster0.example.net/db", ["Mg-3"], "url_password"),
        ("jdbc:postgresql://db/app?user=app&password=Jd-4", ["Jd-4"], "query_param"),
        ("https://api.example.com/v1?api_key=Ak-5&limit=10", ["Ak-5"], "query_param"),
        ("https://files.example.com/x?token=Tk-6#top", ["Tk-6"], "assignment"),
        (
            "https://b.s3.amazonaws.com/k?X-Amz-Credential=AK%2F1&X-Amz-Signature=ab12cd",
            ["AK%2F1", "ab12cd"],
            "query_param",
        ),
        (
            "https://acct.blob.core.windows.net/c?sv=2022&sig=Sg%2B7%3D",
            ["Sg%2B7%3D"],
            "query_param",
        ),
        ("Server=db;User Id=app;Password=Ad-8 x;", ["Ad-8"], "assignment"),
        (
            "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=Az9/+k==;EndpointSuffix=x",
            ["Az9/+k=="],
            "assignment",
        ),
        ("host=db port=5432 password=Lp-9 dbname=app", ["Lp-9"], "assignment"),
        ('{"user": "app", "password": "Js-10"}', ["Js-10"], "key"),
        ("Authorization: Bearer Br-11.abc", ["Br-11.abc"], "assignment"),
        ("Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", ["eyJhbGci"], "authorization"),
        ("session=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", ["eyJhbGci"], "jwt"),
        ("Basic YXBwOnMzY3IzdA==", ["YXBwOnMzY3IzdA=="], "authorization"),
        ("key id AKIAIOSFODNN7EXAMPLE in use", ["AKIAIOSFODNN7EXAMPLE"], "aws_access_key_id"),
        ("ghp_" + "a1B2c3D4e5" * 3 + "a1B2c3", ["ghp_"], "github_token"),
        (
            "https://hooks.slack.com/services/T0001/B0002/XyZ1234567890abc",
            ["T0001"],
            "slack_webhook",
        ),
        ("xoxb-123456789012-1234567890123-AbCdEfGhIjKl", ["xoxb-"], "slack_token"),
        ("sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc", ["sk_live_"], "stripe_key"),
        ("glpat-" + "x1Y2z3W4v5U6t7S8r9Q0", ["glpat-"], "gitlab_token"),
        ("AIza" + "SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY", ["AIza"], "google_api_key"),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
            ["MIIEpAIBAAKCAQEA"],
            "private_key",
        ),
    ],
)
def test_secrets_inside_values(value: str, secrets: list[str], rule: str) -> None:
    out, found = redactor.redact_found({"value": value})
    for secret in secrets:
        assert secret not in out["value"], (value, out)
    assert rule in {f.rule for f in found}
    assert "secret:hmac-sha256:" in out["value"]
    assert redactor.redact(out) == out  # idempotent: a marker is never hashed again


@pytest.mark.parametrize(
    "value",
    [
        "1.27.3",
        "v2.4.0-rc1",
        "db-staging.internal:5432",
        "sha256:" + "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "registry.example.com/app:1.4.2@sha256:" + "a" * 64,
        "3f786850e387550fdab836ed7e6dc881de23001b",
        "123e4567-e89b-12d3-a456-426614174000",
        "d41d8cd98f00b204e9800998ecf8427e",
        "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01",
        "arn:aws:iam::123456789012:role/web-staging",
        "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
        "https://example.com/users/@me",
        "https://host:8443/path?page=2&sort=name",
        "support+staging@example.com",
        "0 3 * * *",
        "10.1.0.0/16",
        "Basic auth is enabled",
        "Bearer authentication only",
        "ssh://git@github.com/org/repo.git",
        "eyJustAWord",
        "The token expired at 10:30",
        "key: value",
    ],
)
def test_plain_values_stay_plain(value: str) -> None:
    assert redactor.redact({"value": value}) == {"value": value}


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("login failed: password 'Ph-12' rejected", "Ph-12"),
        ('auth error: token is "Ph-13"', "Ph-13"),
        ("using key s3cr3tK3y-14 for upload", "s3cr3tK3y-14"),
        ("DB_PASS=Ph-15 psql", "Ph-15"),
    ],
)
def test_free_text_phrasings_are_masked(text: str, hidden: str) -> None:
    assert hidden not in redactor.scrub(text)
    assert hidden not in redactor.redact_text(text)


def test_every_rule_can_be_turned_off_and_is_named() -> None:
    off = Redactor(SecretHasher(KEY), disabled=["url_password", "query_param", "assignment"])
    url = "postgres://app:Pw-1@db/app?password=x"
    assert off.redact({"v": url}) == {"v": url}
    assert "postgres://app:Pw-1@" not in redactor.redact({"v": url})["v"]
    with pytest.raises(ValueError, match="unknown secret rule"):
        Redactor(SecretHasher(KEY), disabled=["no-such-rule"])
    assert {"key", "source", "url_password", "jwt", "private_key", "marker"} <= RULES.keys()


def test_extra_words_and_plain_keys() -> None:
    custom = Redactor(SecretHasher(KEY), extra_words=["seed"], plain_keys=["token_bucket"])
    out = custom.redact({"seed": "s-1", "token_bucket": 10, "token": "t"})
    assert is_secret_marker(out["seed"])
    assert out["token_bucket"] == 10
    assert is_secret_marker(out["token"])


def test_json_inside_a_string_is_redacted_as_a_document() -> None:
    out = redactor.redact({"SETTINGS": '{"db": {"password": "Js-16"}, "pool": 5}'})
    assert "Js-16" not in out["SETTINGS"]
    assert '"pool": 5' in out["SETTINGS"]


def test_a_url_with_a_password_as_a_mapping_key() -> None:
    key = redactor.redact_text("postgres://u:Mk-17@db/app")
    assert "Mk-17" not in key
    assert key.startswith("postgres://u:secret:hmac-sha256:")


# ----------------------------------------------------------------------------- linear time

HOSTILE: dict[str, Any] = {
    "letters": lambda n: "a" * n,
    "assignments": lambda n: ("password=" * (n // 9 + 1))[:n],
    "open quotes": lambda n: ('password="' * (n // 10 + 1))[:n],
    "schemes": lambda n: ("://" * (n // 3 + 1))[:n],
    "jwt starts": lambda n: ("eyJ" * (n // 3 + 1))[:n],
    "pem starts": lambda n: ("-----BEGIN " * (n // 11 + 1))[:n],
    "userinfo": lambda n: ("http://a:b@" * (n // 11 + 1))[:n],
    "query": lambda n: ("?a=b&" * (n // 5 + 1))[:n],
}


def _per_char(fn: Any, text: str) -> float:
    started = time.perf_counter()
    fn(text)
    return (time.perf_counter() - started) / len(text)


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_time_per_character_does_not_grow_with_the_input(case: str) -> None:
    make = HOSTILE[case]
    fresh = Redactor(SecretHasher(KEY))
    small = min(_per_char(fresh.redact_text, make(20_000)) for _ in range(3))
    large = _per_char(fresh.redact_text, make(800_000))
    # Quadratic work would make the large input 40x slower per character; allow noise.
    assert large < small * 6 + 2e-7, (case, small, large)


def test_ten_megabytes_in_under_a_second() -> None:
    text = "k=v password=" * 800_000  # 10.4 MB
    for fn in (
        Redactor(SecretHasher(KEY)).redact_text,
        Redactor(SecretHasher(KEY)).scrub,
        lambda t: Redactor(SecretHasher(KEY)).redact({"v": t}),
    ):
        started = time.perf_counter()
        fn(text)
        assert time.perf_counter() - started < 1.0


def test_a_command_printing_a_long_line_finishes_within_its_timeout(tmp_path: Path) -> None:
    from collectors.base import FetchContext
    from collectors.commands import CommandOptions
    from collectors.runner import run_source

    line = ",".join(f"k{i}=v{i} token=t{i}" for i in range(1_800))[:30_000]
    script = tmp_path / "long.py"
    script.write_text(f"print({line!r})\n", encoding="utf-8")
    options = CommandOptions(
        type="command",
        name="long",
        command=[sys.executable, str(script)],
        parser="lines",
        timeout=5,
    )
    started = time.monotonic()
    outcome = run_source(options, FetchContext("staging", tmp_path), redactor)
    assert time.monotonic() - started < 5
    assert outcome.status == "ok"
    (resource,) = outcome.resources
    assert "token=t1," not in resource.key  # each token hashed, the line kept whole
    assert "k1=v1" in resource.key
