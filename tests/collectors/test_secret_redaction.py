"""Secret values become keyed hashes; everything else passes through untouched."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collectors.secrets import Redactor, SecretHasher, is_secret_marker
from tests.support import HASH_KEY

KEY = HASH_KEY
redactor = Redactor(SecretHasher(KEY))
h = redactor.hash


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"db": {"password": "hunter2"}}, {"db": {"password": h("hunter2")}}),
        ({"DB_PASSWD": "x1"}, {"DB_PASSWD": h("x1")}),
        ({"dbPassword": "x2"}, {"dbPassword": h("x2")}),
        (
            {"client_secret": "x3", "apiKey": "x4", "api-key": "x5"},
            {"client_secret": h("x3"), "apiKey": h("x4"), "api-key": h("x5")},
        ),
        (
            {"AUTH_TOKEN": "x6", "db_auth": "x7", "Authorization": "Bearer x8"},
            {"AUTH_TOKEN": h("x6"), "db_auth": h("x7"), "Authorization": h("Bearer x8")},
        ),
        (
            {"private_key": "-----BEGIN", "credentials": {"user": "u", "pass": "p"}},
            {"private_key": h("-----BEGIN"), "credentials": {"user": h("u"), "pass": h("p")}},
        ),
        # numbers are hashed too; booleans and nulls only say whether something is set
        (
            {"token": 12345, "password": None, "auth": True},
            {"token": h("12345"), "password": None, "auth": True},
        ),
        # lists under a secret key are hashed element by element
        ({"tokens": ["a", "b"]}, {"tokens": [h("a"), h("b")]}),
        # not secrets: author, authority, passenger, keyboard
        (
            {"author": "ann", "authority": "ca", "passenger": "p", "keyboard": "us"},
            {"author": "ann", "authority": "ca", "passenger": "p", "keyboard": "us"},
        ),
        # a password inside a URL, whatever its key
        (
            {"database_url": "postgres://app:hunter2@db:5432/orders"},
            {"database_url": f"postgres://app:{h('hunter2')}@db:5432/orders"},
        ),
        (
            {"sentry": "https://public@sentry.internal/12"},
            {"sentry": "https://public@sentry.internal/12"},
        ),
    ],
)
def test_redaction(attributes: dict[str, Any], expected: dict[str, Any]) -> None:
    assert redactor.redact(attributes) == expected


def test_paths_a_source_marks_secret_are_hashed_whatever_their_key() -> None:
    attributes = {"name": "/app/db", "value": "plain-looking", "type": "SecureString"}
    assert redactor.redact(attributes, [("value",)]) == {
        "name": "/app/db",
        "value": h("plain-looking"),
        "type": "SecureString",
    }


def test_hash_is_keyed_stable_and_idempotent() -> None:
    other = SecretHasher(b"o" * 32)
    assert h("hunter2") == h("hunter2")
    assert h("hunter2") != other("hunter2")
    assert h(h("hunter2")) == h("hunter2")
    assert is_secret_marker(h("x"))
    assert "hunter2" not in h("hunter2")
    assert "k" * 32 not in repr(SecretHasher(KEY))


def test_custom_key_pattern() -> None:
    custom = Redactor(SecretHasher(KEY), r"^pin$")
    assert custom.redact({"pin": "1234", "password": "x"}) == {"pin": h("1234"), "password": "x"}


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("cannot connect: password=hunter2 host=db", "hunter2"),
        ('line 3: {"api_key": "abc123xyz"}', "abc123xyz"),
        ("DB_PASSWORD: s3cr3t", "s3cr3t"),
        ("GET postgres://u:pw42@db/x failed", "pw42"),
        ("Authorization: Bearer abc123", "abc123"),
        ('PGPASSWORD="a b c" psql', "b c"),
        ("mysql --password hunter2 --user app", "hunter2"),
    ],
)
def test_scrub_masks_secrets_in_free_text(text: str, hidden: str) -> None:
    scrubbed = redactor.scrub(text)
    assert hidden not in scrubbed
    assert "***" in scrubbed


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(st.dictionaries(st.text(max_size=12), json_values, max_size=6))
def test_redaction_is_idempotent(attributes: dict[str, Any]) -> None:
    once = redactor.redact(attributes)
    assert redactor.redact(once) == once


def test_secret_values_in_free_text_become_hashes_for_keys() -> None:
    key = redactor.redact_text("API_TOKEN=abc123")
    assert key == "API_TOKEN=" + h("abc123")
    assert redactor.redact_text(key) == key
    assert redactor.redact_text("LOG_LEVEL=info") == "LOG_LEVEL=info"


def test_an_iam_permission_in_an_error_is_kept() -> None:
    message = "AccessDenied: the credentials lack the IAM permission secretsmanager:GetSecretValue"
    assert redactor.scrub(message) == message
    assert redactor.scrub("secret:Abc") == "secret:***"
