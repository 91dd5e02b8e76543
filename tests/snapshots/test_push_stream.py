"""A push is read as it arrives: its text in blocks, its resources one at a time. Whatever the
blocks' size and the encoding, the document read is the document sent, a bad one is refused
with the message the whole-document parser gives, and the memory a push holds grows with its
resources' rows, not with their documents."""

from __future__ import annotations

import codecs
import io
import json
import tracemalloc
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import runtime
from app.config.loader import NotText, decode_text
from app.errors import InvalidInput
from app.snapshots import jsonstream, service
from app.snapshots.schemas import load_json
from tests.support import Project

ENCODINGS = {
    "utf-8": b"",
    "utf-8-sig": codecs.BOM_UTF8,
    "utf-16-le": codecs.BOM_UTF16_LE,
    "utf-16-be": b"",  # no mark: told by where the NUL bytes fall
    "utf-32-le": codecs.BOM_UTF32_LE,
}

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)
documents = (
    st.dictionaries(
        st.sampled_from(["taken_at", "sources", "resources", "environment", "x"]),
        values | st.lists(values, max_size=5),
        max_size=5,
    )
    | values
)


def read(raw: bytes, block: int, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The document as the events give it back."""
    monkeypatch.setattr(jsonstream, "BLOCK", block)
    out: dict[str, Any] = {}
    for kind, value in jsonstream.events(io.BytesIO(raw)):
        if kind == "document":
            return value
        if kind == "field":
            out[value[0]] = value[1]
        elif kind == "resources":
            out["resources"] = []
        else:
            out["resources"].append(value.value)
    return out


def whole(raw: bytes) -> Any:
    """The document read whole, as pushes were read before they were streamed."""
    return load_json(decode_text(raw))


def outcome(reader: Any, *args: Any) -> Any:
    """What the reader gives, or the message it refuses the bytes with."""
    try:
        return reader(*args)
    except InvalidInput as exc:
        return str(exc)
    except NotText as exc:
        return f"the body: {exc}; nothing stored"


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    document=documents,
    encoding=st.sampled_from(sorted(ENCODINGS)),
    block=st.integers(min_value=1, max_value=40),
    indent=st.sampled_from([None, 1]),
)
def test_a_document_read_in_blocks_is_the_document_sent(
    document: Any, encoding: str, block: int, indent: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = json.dumps(document, indent=indent, ensure_ascii=False)
    raw = ENCODINGS[encoding] + text.encode(encoding.removesuffix("-sig"))
    assert outcome(read, raw, block, monkeypatch) == outcome(whole, raw)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    document=documents,
    cut=st.integers(min_value=0, max_value=10_000),
    damage=st.sampled_from(["", "}", "]", ",", '"', ":", "x", "NaN", '{"a":1,"a":2}', "\n"]),
    block=st.integers(min_value=1, max_value=40),
)
def test_a_damaged_document_is_refused_with_the_whole_parsers_message(
    document: Any, cut: int, damage: str, block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = json.dumps(document, indent=1)
    cut %= len(text) + 1
    damaged = (text[:cut] + damage + text[cut + 1 :]).encode()
    assert outcome(read, damaged, block, monkeypatch) == outcome(whole, damaged)


def test_bytes_that_are_not_text_are_named_with_their_line_and_offset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    raw = b'{"taken_at": "x",\n "sources": [],\n "resources": ["caf\xe9"]}'
    monkeypatch.setattr(jsonstream, "BLOCK", 5)
    with pytest.raises(InvalidInput) as refused:
        list(jsonstream.events(io.BytesIO(raw)))
    assert str(refused.value) == (
        "the body: not valid UTF-8 text (another encoding, such as Latin-1 or Windows-1252?): "
        "invalid continuation byte at line 3, byte 53 (e9); save it as UTF-8; nothing stored"
    )


# --------------------------------------------------------------------------- the push


CONFIG = """
environments:
  staging:
    vars: {env: staging, domain: staging.internal}
"""


def resources(count: int) -> list[dict[str, Any]]:
    """Resources shaped like an inventory's: named for their environment, with hosts and tags."""
    return [
        {
            "source": "inventory",
            "category": "instances",
            "resource_type": "aws.ec2.instance",
            "key": f"web-staging-{i:05d}",
            "attributes": {
                "instance_id": f"i-{i:017x}",
                "instance_type": "t3.medium",
                "private_dns_name": f"web-{i}.staging.internal",
                "subnet_cidr": "10.1.32.0/20",
                "security_groups": ["base-staging", f"web-staging-{i}"],
                "root_volume": {"type": "gp3", "size": 20, "encrypted": True},
                "tags": {"Name": f"web-staging-{i}", "env": "staging", "team": "platform"},
            },
        }
        for i in range(count)
    ]


def document(count: int, sources_first: bool = True) -> dict[str, Any]:
    head = {"taken_at": "2026-11-22T04:00:00Z"}
    sources = {"sources": [{"name": "inventory", "type": "push", "status": "ok", "error": None}]}
    body = {"resources": resources(count)}
    return {**head, **sources, **body} if sources_first else {**head, **body, **sources}


@pytest.fixture
def staging(project: Project) -> Any:
    project.write_config(CONFIG)
    rt = runtime.load(project.config)
    yield rt
    rt.close()


def pushed(rt: Any, raw: bytes) -> dict[str, Any]:
    with rt.sessions.begin() as session:
        snapshot_id, _ = service.push_stream(
            session, rt.config, "staging", io.BytesIO(raw), rt.redactor
        )
    with rt.sessions.begin() as session:
        return service.export(session, "staging", snapshot_id)


def test_resources_sent_before_their_sources_are_stored_the_same(staging: Any) -> None:
    first = pushed(staging, json.dumps(document(300)).encode())
    later = pushed(staging, json.dumps(document(300, sources_first=False)).encode())
    assert later["snapshot_id"] != first["snapshot_id"]
    assert later["resources"] == first["resources"]
    assert len(first["resources"]) == 300


def test_a_bad_resource_late_in_a_stream_stores_nothing(staging: Any) -> None:
    doc = document(2000)
    doc["resources"][1999]["category"] = "furniture"
    with pytest.raises(InvalidInput) as refused:
        pushed(staging, json.dumps(doc).encode())
    assert "$.resources[1999].category" in str(refused.value)
    with staging.sessions.begin() as session, pytest.raises(Exception, match="no snapshot"):
        service.export(session, "staging")


@pytest.mark.parametrize(
    ("limits", "attributes", "says"),
    [
        ("{max_string_length: 1024}", {"motd": "x" * 1025}, "limits.max_string_length is 1,024"),
        ("{max_key_length: 64}", {"k" * 65: 1}, "limits.max_key_length is 64"),
        ("{max_depth: 4}", {"a": {"b": {"c": {"d": {"e": 1}}}}}, "nested deeper than 4 levels"),
    ],
)
def test_a_streamed_resource_over_a_limit_is_refused_naming_it(
    project: Project, limits: str, attributes: dict[str, Any], says: str
) -> None:
    project.write_config(CONFIG + f"limits: {limits}\n")
    doc = document(3)
    doc["resources"][2]["attributes"] = attributes
    rt = runtime.load(project.config)
    try:
        with pytest.raises(InvalidInput) as refused:
            pushed(rt, json.dumps(doc).encode())
    finally:
        rt.close()
    assert "$.resources[2].attributes" in str(refused.value)
    assert says in str(refused.value)


def test_a_number_too_large_for_a_float_is_refused(staging: Any) -> None:
    raw = json.dumps(document(2)).replace('"size": 20', '"size": 1e999', 1).encode()
    with pytest.raises(InvalidInput, match="1e999 is too large for a number"):
        pushed(staging, raw)


def peak_of(rt: Any, raw: bytes) -> int:
    tracemalloc.start()
    try:
        with rt.sessions.begin() as session:
            service.push_stream(session, rt.config, "staging", io.BytesIO(raw), rt.redactor)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_push_holds_its_rows_not_its_documents(staging: Any) -> None:
    """A push of large documents (a few hundred rendered config files of 20 KB) holds less
    Python memory at its peak than the JSON it was sent as: one document at a time, not all
    of them parsed, redacted and normalized at once (which took several times the JSON)."""
    settings = {f"setting_{j}": f"value-{j % 40}.staging.internal" for j in range(700)}
    doc = document(300)
    for i, resource in enumerate(doc["resources"]):
        resource["attributes"] = {"settings": settings, "serial": i}
    raw = json.dumps(doc).encode()
    assert len(raw) > 6_000_000
    peak_of(staging, json.dumps(document(50)).encode())  # imports and first-use caches
    peak = peak_of(staging, raw)
    assert peak < len(raw), (peak, len(raw))
