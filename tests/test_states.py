"""The vocabulary of states: each set once, the severity order once, members that are their
strings wherever they go, and pydantic fields that validate as the Literals they replace."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, get_args

import pytest
from pydantic import BaseModel, ValidationError

from app.states import (
    DeliveryStatus,
    GateStatus,
    OneOf,
    ScanStatus,
    Scope,
    Severity,
    SnapshotStatus,
    SourceStatus,
    State,
)
from collectors.runner import OutcomeStatus


def test_collectors_and_app_say_the_same_source_statuses() -> None:
    assert SourceStatus.values() == get_args(OutcomeStatus)


def test_a_snapshot_status_is_one_a_scan_can_finish_with() -> None:
    assert set(SnapshotStatus.values()) < set(ScanStatus.values())


def test_severities_in_one_order() -> None:
    assert Severity.best_first() == (Severity.INFO, Severity.WARNING, Severity.CRITICAL)
    assert Severity.worst_first() == Severity.best_first()[::-1]
    assert [s.rank for s in Severity.best_first()] == [0, 1, 2]
    assert [Severity.rank_of(s.value) for s in Severity] == [0, 1, 2]  # plain strings too


@pytest.mark.parametrize(
    ("severities", "worst"),
    [
        (["info", "critical", "warning"], Severity.CRITICAL),
        ([Severity.INFO, "warning"], Severity.WARNING),
        (["info"], Severity.INFO),
        ([], None),
    ],
)
def test_worst(severities: list[str], worst: Severity | None) -> None:
    found = Severity.worst(severities)
    assert found == worst
    assert found is None or type(found) is Severity


@pytest.mark.parametrize(
    ("granted", "needed", "allowed"),
    [
        (Scope.ADMIN, "read", True),
        (Scope.GATE, Scope.READ, True),
        (Scope.GATE, Scope.WRITE, False),
        (Scope.READ, Scope.READ, True),
    ],
)
def test_a_scope_includes_the_ones_before_it(granted: Scope, needed: str, allowed: bool) -> None:
    assert granted.includes(needed) is allowed


@pytest.mark.parametrize(
    ("sources", "status"),
    [
        ([], SnapshotStatus.COMPLETE),
        (["ok", "ok"], SnapshotStatus.COMPLETE),
        (["ok", "failed"], SnapshotStatus.PARTIAL),
        (["failed", "failed"], SnapshotStatus.FAILED),
    ],
)
def test_a_snapshot_status_from_its_sources(sources: list[str], status: SnapshotStatus) -> None:
    assert SnapshotStatus.of_sources(sources) is status


def test_a_member_is_its_string() -> None:
    member = GateStatus.PASS
    assert member == "pass"
    assert {"pass": 0}[member] == 0
    assert {member: 0}["pass"] == 0
    assert f"{member}" == str(member) == "pass"
    assert json.dumps({member: [member]}) == '{"pass": ["pass"]}'
    assert ", ".join(DeliveryStatus) == "pending, delivered, failed"


class Literals(BaseModel):
    severity: Literal["info", "warning", "critical"] = "warning"
    maybe: Literal["info", "warning", "critical"] | None = None
    many: list[Literal["pending", "delivered", "failed"]] = []
    filter: Literal["", "critical", "warning", "info"] = ""


class States(BaseModel):
    severity: Severity = Severity.WARNING
    maybe: Severity | None = None
    many: list[DeliveryStatus] = []
    filter: Annotated[Severity | Literal[""], OneOf("", *Severity.worst_first())] = ""


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    schema.pop("title")
    return schema


def test_a_state_documents_itself_as_its_literal_did() -> None:
    assert _schema(States) == _schema(Literals)


@pytest.mark.parametrize(
    "field", [{"severity": "bad"}, {"maybe": "bad"}, {"many": ["bad"]}, {"filter": "bad"}]
)
def test_a_state_refuses_as_its_literal_did(field: dict[str, Any]) -> None:
    def problems(model: type[BaseModel]) -> list[tuple[Any, ...]]:
        with pytest.raises(ValidationError) as refused:
            model(**field)
        return [(e["type"], e["loc"], e["msg"]) for e in refused.value.errors()]

    assert problems(States) == problems(Literals)


def test_a_state_field_gives_members_and_writes_strings() -> None:
    given = {"severity": "critical", "maybe": "info", "many": ["failed"], "filter": "warning"}
    model = States(**given)
    assert type(model.severity) is Severity
    assert type(model.maybe) is Severity
    assert type(model.many[0]) is DeliveryStatus
    assert type(model.filter) is Severity
    assert States(filter="").filter == ""
    assert json.loads(model.model_dump_json()) == given
    assert model.model_dump(mode="json") == given


def test_every_state_is_a_closed_set_of_distinct_strings() -> None:
    for kind in State.__subclasses__():
        values = kind.values()
        assert values, kind
        assert len(set(values)) == len(values), kind
        assert all(isinstance(v, str) and v for v in values), kind
