"""Normal forms made at store time change no result: a comparison of stored snapshots (forms
read from the database, documents read only where forms differ) gives exactly the report
the engine gives on the same documents held in memory, on random inputs, and again after
the environments' vars change (the stored forms no longer apply and are made afresh)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app import runtime
from app.config import Config, load_config
from app.db.models import Document, NormalForms
from app.diff.engine import compare
from app.diff.model import DiffResult, ResourceColumns, Rules, Side, SideResource, SourceState
from app.diff.normalize import canonical
from app.reports.service import rules_of, side_of
from app.snapshots.repository import SnapshotRepository
from app.snapshots.service import push, remove_snapshot
from app.snapshots.store import DocumentStore, collect_garbage
from collectors.secrets import Census, Redactor
from collectors.secrets.census import redact_resource
from tests.support import Project, make_redactor

NOW = datetime(2026, 11, 22, tzinfo=UTC)
TAKEN = "2026-11-21T10:00:00Z"
# Words that normalization acts on: vars, another environment's name and address (leaks), a
# key whose value the secret rules hash (reuse across environments), cloud ids.
words = st.sampled_from(
    [
        "web",
        "staging",
        "production",
        "db.production.internal",
        "10.2.0.5",
        "10.1.0.0/16",
        "password",
        "i-0123456789abcdef0",
        "x",
    ]
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), words)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(words, inner, max_size=3),
    max_leaves=8,
)
documents = st.dictionaries(words, values, max_size=4)
KEYS = st.sampled_from(["a", "b", "web-{env}", "db-{env}.internal", "staging-x", "10.1.0.7"])
resource_sets = st.dictionaries(KEYS, documents, max_size=6)

VARS = {
    "first": {
        "staging": {"env": "staging", "cidr": "10.1.0.0/16"},
        "production": {"env": "production", "cidr": "10.2.0.0/16"},
    },
    # another morning: production's vars changed, so every stored form is out of date
    "changed": {
        "staging": {"env": "staging", "cidr": "10.1.0.0/16"},
        "production": {"env": "prod", "cidr": "10.9.0.0/16"},
    },
}


def write_config(project: Project, envs: dict[str, dict[str, str]]) -> Path:
    lines = ["environments:"]
    for name, env_vars in envs.items():
        lines += [f"  {name}:", f"    vars: {json.dumps(env_vars)}", "    sources: []"]
    lines += ["comparisons: []"]
    return project.write_config("\n".join(lines) + "\n")


def renamed(value: Any) -> Any:
    """Staging's value as production would hold it: its name and network swapped."""
    if isinstance(value, str):
        return value.replace("staging", "production").replace("10.1.", "10.2.")
    if isinstance(value, dict):
        return {renamed(k): renamed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [renamed(v) for v in value]
    return value


def expanded(docs: dict[str, Any], env: str) -> dict[str, Any]:
    return {key.replace("{env}", env): doc for key, doc in docs.items()}


def pushed(docs: dict[str, Any]) -> dict[str, Any]:
    return typed_push([("file", key, doc) for key, doc in docs.items()])


def typed_push(resources: list[tuple[str, str, dict[str, Any]]]) -> dict[str, Any]:
    """A push of (resource type, key, document) triples, all from one source."""
    return {
        "taken_at": TAKEN,
        "sources": [{"name": "main", "type": "push"}],
        "resources": [
            {"source": "main", "category": "config", "resource_type": t, "key": k, "attributes": d}
            for t, k, d in resources
        ],
    }


def push_both(
    session: Session,
    config: Config,
    redactor: Redactor,
    staging: dict[str, Any],
    production: dict[str, Any],
) -> list[int]:
    """Stores staging's push, then production's; their snapshot ids."""
    return [
        push(session, config, env, document, redactor)[0]
        for env, document in (("staging", staging), ("production", production))
    ]


def in_memory(env: str, docs: dict[str, Any], envs: dict[str, dict[str, str]]) -> Side:
    """The side as the engine took it before forms: documents redacted as a push redacts
    them, held in memory, no hashes."""
    return typed_in_memory(env, [("file", k, d) for k, d in docs.items()], envs)


def typed_in_memory(
    env: str, resources: list[tuple[str, str, dict[str, Any]]], envs: dict[str, dict[str, str]]
) -> Side:
    """`in_memory` of (resource type, key, document) triples."""
    redactor = make_redactor()
    census = Census(redactor.rules_id)
    side = [
        SideResource("main", "config", t, *redact_resource(redactor, census, t, k, d))
        for t, k, d in resources
    ]
    sources = {"main": SourceState("main", "push", "ok")}
    return Side(env, None, NOW, "complete", envs[env], sources, side)


def seen(result: DiffResult) -> Any:
    items = sorted(
        (i.key, i.path, i.change, canonical(i.left), canonical(i.right), i.severity, i.fingerprint)
        for i in result.items
    )
    return items, result.compared, result.differing, sorted(result.resources)


@pytest.mark.slow
def test_stored_forms_give_the_reports_of_the_in_memory_engine(project: Project) -> None:
    write_config(project, VARS["first"])
    rt = runtime.load(project.config)
    redactor = make_redactor()

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(resource_sets, resource_sets, st.sets(KEYS))
    def check(a: dict[str, Any], b: dict[str, Any], kept: set[str]) -> None:
        # production holds some of staging's resources as it would (names swapped), and
        # others of its own: resources equal after normalization, and ones that differ
        left = expanded(a, "staging")
        right = {
            **renamed(expanded({k: v for k, v in a.items() if k in kept}, "staging")),
            **expanded(b, "production"),
        }
        with rt.sessions.begin() as session:
            ids = push_both(session, rt.config, redactor, pushed(left), pushed(right))
        for name in ("first", "changed"):
            config = load_config(write_config(project, VARS[name]))
            envs = VARS[name]
            with rt.sessions.begin() as session:
                repo = SnapshotRepository(session)
                stored = compare(
                    side_of(repo, config, repo.snapshot(ids[0])),
                    side_of(repo, config, repo.snapshot(ids[1])),
                    rules_of(config, session, NOW),
                    NOW,
                )
            expected = compare(
                in_memory("staging", left, envs),
                in_memory("production", right, envs),
                Rules(environments=envs),
                NOW,
            )
            assert seen(stored) == seen(expected), name
        write_config(project, VARS["first"])

    check()
    with rt.sessions.begin() as session:  # the forms were stored, under both contexts
        contexts = session.scalar(select(func.count(NormalForms.context.distinct())))
    assert contexts is not None
    assert contexts >= 2
    rt.engine.dispose()


def _normalized_documents(session: Any) -> dict[str, Any]:
    """The stored normalized documents: those under the digests of plain forms."""
    digests = {
        digest
        for body in session.scalars(select(NormalForms.body))
        for _, digest, plain in json.loads(body)
        if plain
    }
    return DocumentStore(session).attributes(digests)


def test_a_comparison_reads_the_normalized_documents_stored_with_the_snapshot(
    project: Project,
) -> None:
    write_config(project, VARS["first"])
    rt = runtime.load(project.config)
    redactor = make_redactor()
    staging = {
        "web-staging": {"host": "web.staging.internal", "size": 2, "ports": [443, 80]},
        "db-staging": {"host": "db.staging.internal", "engine": "15.4"},
        "cache-staging": {"host": "cache.staging.internal", "nodes": 1},
    }
    production = renamed(staging)
    production["db-production"]["engine"] = "15.6"  # drift, in a plain document
    production["cache-production"]["peer"] = "10.1.0.9"  # an address of staging's: a leak
    with rt.sessions.begin() as session:
        ids = push_both(session, rt.config, redactor, pushed(staging), pushed(production))
    with rt.sessions.begin() as session:
        normalized = _normalized_documents(session)
    # each environment's documents normalize alike where they do not differ: stored once
    assert {"host": "web.{env}.internal", "size": 2, "ports": {"[443]": 443, "[80]": 80}} in (
        normalized.values()
    )
    assert len(normalized) == 4  # web and cache of both, db of each (the leaky one is not plain)
    assert not any("staging" in json.dumps(doc) for doc in normalized.values())

    def diff() -> tuple[Any, list[str]]:
        asked: list[str] = []
        with rt.sessions.begin() as session:
            repo = SnapshotRepository(session)
            sides = [side_of(repo, rt.config, repo.snapshot(i)) for i in ids]

            def fetch(hashes: Any) -> dict[str, str]:
                asked.extend(hashes)
                return repo.documents.get(hashes)

            result = compare(
                replace(sides[0], fetch=fetch),
                replace(sides[1], fetch=fetch),
                rules_of(rt.config, session, NOW),
                NOW,
            )
        return seen(result), asked

    report, asked = diff()
    changes = {(i[0], i[1], i[2]) for i in report[0]}
    assert ("db-{env}", "engine", "changed") in changes
    assert any(i[2] == "leak" for i in report[0])
    # the pairs that differ were read normalized, but for the one document with a leak
    assert sum(h in normalized for h in asked) == 3
    with rt.sessions.begin() as session:
        raw = {
            r.hash
            for rs in SnapshotRepository(session)
            .documents.read_manifests(
                [s.manifest for i in ids for s in SnapshotRepository(session).snapshot(i).sources]
            )
            .values()
            for r in rs
        }
    assert sum(h in raw for h in asked) == 1  # production's cache, which names staging
    # Normalized documents missing (stored by an earlier release): the same report, read raw.
    with rt.sessions.begin() as session:
        session.execute(delete(Document).where(Document.hash.in_(list(normalized))))
    again, asked = diff()
    assert again == report
    assert sum(h in raw for h in asked) == 4
    rt.engine.dispose()


def test_normalized_documents_go_with_the_last_snapshot_that_needs_them(project: Project) -> None:
    write_config(project, VARS["first"])
    rt = runtime.load(project.config)
    redactor = make_redactor()
    docs = {"web-staging": {"host": "web.staging.internal"}}
    with rt.sessions.begin() as session:
        first = push(session, rt.config, "staging", pushed(docs), redactor)[0]
        second = push(session, rt.config, "production", pushed(renamed(docs)), redactor)[0]
        kept = _normalized_documents(session)
    assert len(kept) == 1  # both environments' one document, normalized alike
    with rt.sessions.begin() as session:
        remove_snapshot(session, first)
        collect_garbage(session)  # a second pass removes nothing more
        assert _normalized_documents(session) == kept  # production still needs it
        remove_snapshot(session, second)
        assert session.scalar(select(func.count()).select_from(Document)) == 0
    rt.engine.dispose()


@pytest.mark.parametrize(
    ("staging_extra", "production_extra"),
    [
        ([], []),
        # one key under two types on both sides: each type its own resource
        ([("sg", "web-staging", {"port": 443})], [("sg", "web-production", {"port": 8443})]),
        # two staging resources with one identity (`db-staging` and `db-{env}` normalize alike)
        ([("vm", "db-{env}", {"size": 9})], []),
        # and two in production
        ([], [("vm", "db-{env}", {"size": 7})]),
    ],
)
def test_stored_sides_compared_by_their_columns_give_the_in_memory_report(
    project: Project,
    staging_extra: list[tuple[str, str, dict[str, Any]]],
    production_extra: list[tuple[str, str, dict[str, Any]]],
) -> None:
    """A stored side is columns (app.diff.model.ResourceColumns) and is matched on them:
    the same report as the engine gives on the same resources held as records, with keys
    that two resource types share and identities that two resources of one side share."""
    write_config(project, VARS["first"])
    rt = runtime.load(project.config)
    redactor = make_redactor()
    common = [
        ("vm", "web-{env}", {"size": 2, "host": "web.{env}.internal"}),
        ("vm", "db-{env}", {"size": 4}),
        ("vm", "cache-{env}", {"size": 1}),
    ]
    staging = [(t, k.replace("{env}", "staging"), renamed_back(d, "staging")) for t, k, d in common]
    production = [
        (t, k.replace("{env}", "production"), renamed_back(d, "production")) for t, k, d in common
    ]
    production[2] = ("vm", "cache-production", {"size": 3})  # drift
    production.append(("vm", "queue-production", {"size": 1}))  # production only
    staging, production = staging + staging_extra, production + production_extra
    with rt.sessions.begin() as session:
        ids = push_both(session, rt.config, redactor, typed_push(staging), typed_push(production))
    with rt.sessions.begin() as session:
        repo = SnapshotRepository(session)
        sides = [side_of(repo, rt.config, repo.snapshot(i)) for i in ids]
        assert all(isinstance(side.resources, ResourceColumns) for side in sides)
        stored = compare(*sides, rules_of(rt.config, session, NOW), NOW)
    expected = compare(
        typed_in_memory("staging", staging, VARS["first"]),
        typed_in_memory("production", production, VARS["first"]),
        Rules(environments=VARS["first"]),
        NOW,
    )
    assert seen(stored) == seen(expected)
    assert ("cache-{env}", "size", "changed") in {(i[0], i[1], i[2]) for i in seen(stored)[0]}
    rt.engine.dispose()


def renamed_back(doc: dict[str, Any], env: str) -> dict[str, Any]:
    return {k: v.replace("{env}", env) if isinstance(v, str) else v for k, v in doc.items()}


def test_columns_read_as_a_sequence_of_resources() -> None:
    from app.diff.forms import Form

    columns = ResourceColumns(with_forms=True)
    digests = [hashlib.sha256(bytes([n])).hexdigest() for n in range(4)]
    columns.extend_formed(
        "s",
        [("config", "file", "web-staging", digests[0]), ("packages", "pkg", "openssl", digests[2])],
        [Form("web-{env}", digests[1], True), Form("openssl", digests[3], False)],
    )
    first, second = columns
    assert first == SideResource(
        "s",
        "config",
        "file",
        "web-staging",
        None,
        digests[0],
        form=Form("web-{env}", digests[1], True),
    )
    assert second.form == Form("openssl", digests[3], False)
    assert columns.form_keys is not None
    assert columns.form_keys[1] is columns.keys[1]
    assert columns[-1] == second
    assert columns[0:1] == [first]
    assert len(columns) == 2
    assert columns.source_names == {"s"}
    bare = ResourceColumns(with_forms=False)
    bare.extend("s", [("config", "file", "a", digests[0])])
    assert bare[0].form is None
    assert bare[0].hash == digests[0]
