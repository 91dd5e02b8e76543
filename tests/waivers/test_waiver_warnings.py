"""`waiver add` checks a waiver against the latest stored reports: one that matches nothing,
or that has no comparison (so it also hides drift over time), is stored with a warning on
stderr (exit 0); an expiry in the past is still refused (exit 2)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support import Invocation, Project

CONFIG = """
environments:
  staging: {}
  production: {}
comparisons:
  - {source: staging, target: production}
"""


def document(env: str, version: str, pool: int) -> dict[str, Any]:
    agent = "agent"
    return {
        "taken_at": "2026-11-22T04:00:00Z",
        "sources": [{"name": agent, "type": "push", "status": "ok", "error": None}],
        "resources": [
            {
                "source": agent,
                "category": "packages",
                "resource_type": "pip",
                "key": "requests",
                "attributes": {"version": version},
            },
            {
                "source": agent,
                "category": "config",
                "resource_type": "file",
                "key": f"/etc/app-{env}.yaml",  # `/etc/app-{env}.yaml` once normalized
                "attributes": {"db": {"pool_size": pool}},
            },
        ],
    }


@pytest.fixture
def configured(project: Project) -> Project:
    project.write_config(CONFIG)
    return project


@pytest.fixture
def reported(configured: Project) -> Project:
    """Both sides pushed: the comparison's report is stored (2 drift items)."""
    for env, version, pool in (("staging", "2.32.3", 10), ("production", "2.31.0", 20)):
        path = configured.root / f"{env}.json"
        path.write_text(json.dumps(document(env, version, pool)))
        result = configured.invoke("push", env, str(path))
        assert result.returncode == 0, result.stderr
    return configured


def add(project: Project, *options: str) -> Invocation:
    return project.invoke("waiver", "add", "--reason", "reviewed", *options)


def warnings(result: Invocation) -> list[str]:
    """The warnings on stderr, one per entry, unwrapped; the waiver was added (exit 0)."""
    assert result.returncode == 0, result.stderr
    assert "added" in result.stdout
    assert "Traceback" not in result.stderr
    text = " ".join(result.stderr.split())
    return [f"warning: {part.strip()}" for part in text.split("warning:")[1:]]


def stored(project: Project) -> int:
    listed = project.invoke("waiver", "list")
    return sum(1 for line in listed.stdout.splitlines() if "reviewed" in line)


def test_an_expiry_in_the_past_is_still_refused(reported: Project) -> None:
    result = add(reported, "--comparison", "staging->production", "--expires", "2020-01-01")
    assert result.returncode == 2
    assert "expiry 2020-01-01 is in the past" in result.stderr
    assert "Traceback" not in result.stderr
    assert stored(reported) == 0


def test_a_waiver_that_matches_drift_gives_no_warning(reported: Project) -> None:
    assert warnings(add(reported, "--comparison", "staging->production", "--path", "version")) == []
    assert (
        warnings(add(reported, "--comparison", "staging->*", "--key", "/etc/app-{env}.yaml")) == []
    )


def test_without_comparison_it_warns_of_drift_over_time(reported: Project) -> None:
    [warning] = warnings(add(reported, "--key", "requests"))
    assert "no --comparison: the waiver applies to every comparison, over time too" in warning
    assert "`diff production@baseline production`" in warning
    assert "give --comparison SOURCE->TARGET" in warning
    assert stored(reported) == 1


def test_a_key_that_matches_nothing_warns_with_the_close_one(reported: Project) -> None:
    [warning] = warnings(add(reported, "--comparison", "staging->production", "--key", "reqests"))
    assert (
        "--key 'reqests' matches no drift item in the latest stored report of "
        "staging->production: the waiver is stored but hides nothing there today; "
        "did you mean `requests`?"
    ) in warning
    assert stored(reported) == 1
    # an environment's own name in a key: the report's keys are normalized
    [warning] = warnings(
        add(reported, "--comparison", "staging->production", "--key", "/etc/app-staging.yaml")
    )
    assert "did you mean `/etc/app-{env}.yaml`?" in warning


def test_a_path_that_matches_nothing_warns_with_the_close_one(reported: Project) -> None:
    [warning] = warnings(
        add(reported, "--comparison", "staging->production", "--path", "pool_sise")
    )
    assert "--path 'pool_sise' matches no drift item" in warning
    assert "did you mean `pool_size`?" in warning


def test_options_that_match_only_apart_warn(reported: Project) -> None:
    [warning] = warnings(
        add(
            reported,
            "--comparison",
            "staging->production",
            "--key",
            "requests",
            "--path",
            "pool_size",
        )
    )
    assert "matches --key 'requests', --path 'pool_size' together" in warning


def test_a_comparison_that_matches_nothing_warns(reported: Project) -> None:
    [warning] = warnings(add(reported, "--comparison", "staging->prod", "--key", "requests"))
    assert "--comparison 'staging->prod' matches no comparison of the declared environments" in (
        warning
    )
    assert "did you mean `staging->production`?" in warning
    # a pair of declared environments that no stored report judges: said, not a typo
    [warning] = warnings(add(reported, "--comparison", "production->production"))
    assert "matches no comparison with a stored report (stored: staging->production)" in warning
    assert stored(reported) == 2


def test_before_any_report_only_a_misspelt_comparison_warns(configured: Project) -> None:
    assert warnings(add(configured, "--comparison", "staging->production", "--key", "x")) == []
    [warning] = warnings(add(configured, "--comparison", "stagin->production"))
    assert "matches no comparison of the declared environments" in warning


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        ("db.pool_size", ("db", "pool_size")),
        ("ingress[tcp/22 from 0.0.0.0/0]", ("ingress", "[tcp/22 from 0.0.0.0/0]")),
        ("a.b[x[1]].c", ("a", "b", "[x[1]]", "c")),
        ("count", ("count",)),
    ],
)
def test_path_parts_reads_a_report_path_back(path: str, parts: tuple[str, ...]) -> None:
    from app.waivers.service import path_parts

    assert path_parts(path) == parts
