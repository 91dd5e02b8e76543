"""The bundled examples: `envparity diff` finds exactly the planted differences, in every format."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

from tests.support import Project

# (resource key, path, change, severity, counts) of every planted difference
PLANTED = {
    ("deploy/{env}/app.env", "PAYMENTS_API_TOKEN", "secret_reused", "critical", True),
    ("deploy/{env}/app.yaml", "cache.host", "leak", "critical", True),
    ("deploy/{env}/app.yaml", "database.pool_size", "changed", "warning", True),
    ("deploy/{env}/app.yaml", "features.new_checkout", "changed", "warning", True),
    ("deploy/{env}/service.properties", "management.endpoints.exposed", "added", "warning", True),
    ("requests", "version", "changed", "warning", True),
    ("urllib3", "version", "changed", "info", False),  # tolerated: a patch level
}


def test_json_finds_exactly_the_planted_differences(examples: Project) -> None:
    result = examples.invoke("diff", "staging", "production", "--format", "json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    found = {
        (i["key"], i["path"], i["change"], i["severity"], not (i["waived"] or i["tolerated"]))
        for i in report["items"]
    }
    assert found == PLANTED
    summary = report["summary"]
    assert summary["unwaived"] == 6
    assert summary["by_severity"] == {"critical": 2, "warning": 4, "info": 0}
    assert summary["compared"] == 8
    assert summary["parity"] == 0.5
    assert report["left"]["environment"] == "staging"
    assert report["right"]["status"] == "complete"
    leak = next(i for i in report["items"] if i["change"] == "leak")
    assert leak["left"] == "cache-production.internal"
    assert leak["first_seen"] is not None
    assert all(len(i["fingerprint"]) == 24 for i in report["items"])
    # secrets are never shown, not even hashed
    assert "hmac-sha256" not in result.stdout
    assert "tok_live" not in result.stdout


def test_table_markdown_and_junit_say_the_same(examples: Project) -> None:
    path = examples.root / "report.txt"
    table = examples.invoke("diff", "staging", "production", "--format", "table", "-o", str(path))
    assert table.returncode == 1
    text = path.read_text()
    for expected in (
        "cache-production.internal",
        "database.pool_size",
        "secret_reused",
        "2.32.3",
        "tolerated (patch on version)",
        "parity 50.0% of 8 resources",
        "2 critical",
    ):
        assert expected in text
    markdown = examples.invoke("diff", "staging", "production", "--format", "markdown").stdout
    assert "### 🔴 envparity: staging → production" in markdown
    assert markdown.count("\n| critical |") == 2
    assert markdown.count("\n| warning |") == 4
    assert "Documented differences" in markdown
    assert "patch on version" in markdown
    junit = examples.invoke("diff", "staging", "production", "--format", "junit").stdout
    suite = ET.fromstring(junit.split("\n", 1)[1]).find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert len(cases) == 8  # one per compared resource
    failed = {c.get("name") for c in cases if c.find("failure") is not None}
    assert failed == {
        "deploy/{env}/app.env",
        "deploy/{env}/app.yaml",
        "deploy/{env}/service.properties",
        "requests",
    }
    assert suite.get("failures") == "4"


def test_output_file_and_category_filter(examples: Project, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = examples.invoke(
        "diff", "staging", "production", "-f", "json", "--category", "packages", "-o", str(out)
    )
    assert result.returncode == 1
    report = json.loads(out.read_text())
    assert {i["key"] for i in report["items"]} == {"requests", "urllib3"}
    assert report["summary"]["compared"] == 5


def test_waiving_everything_gives_exit_0_and_keeps_the_items(examples: Project) -> None:
    added = examples.invoke(
        "waiver",
        "add",
        "--reason",
        "accepted for this test",
        "--comparison",
        "staging->production",
        "--owner",
        "ops",
    )
    assert added.returncode == 0
    result = examples.invoke("diff", "staging", "production", "-f", "json")
    assert result.returncode == 0
    report = json.loads(result.stdout)
    assert len(report["items"]) == 7
    assert all(i["waived"] or i["tolerated"] for i in report["items"])
    waiver = next(i["waiver"] for i in report["items"] if i["waived"])
    assert waiver["reason"] == "accepted for this test"
    assert waiver["owner"] == "ops"
    listed = examples.invoke("waiver", "list")
    assert "accepted for this test" in listed.stdout
    assert examples.invoke("waiver", "rm", "1").returncode == 0
    assert examples.invoke("diff", "staging", "production", "-f", "json").returncode == 1
    assert examples.invoke("waiver", "rm", "1").returncode == 2


def test_an_expired_waiver_stops_applying(examples: Project) -> None:
    from datetime import UTC, datetime

    from app import runtime
    from app.db.models import WaiverRow
    from app.waivers.repository import WaiverRepository

    # Stored while it was in force (`waiver add` refuses an expiry in the past), now expired.
    with runtime.unit_of_work(examples.config) as (_rt, session):
        WaiverRepository(session).add(
            WaiverRow(reason="old", expires_at=datetime(2020, 1, 1, tzinfo=UTC))
        )
    assert examples.invoke("diff", "staging", "production", "-f", "json").returncode == 1


def test_a_waiver_that_expired_before_it_was_added_is_refused(examples: Project) -> None:
    refused = examples.invoke("waiver", "add", "--reason", "old", "--expires", "2020-01-01")
    assert refused.returncode == 2
    assert "expiry 2020-01-01 is in the past" in refused.stderr
    assert "accepted" not in examples.invoke("waiver", "list").stdout


def test_refs_over_time_and_baseline(examples: Project) -> None:
    assert examples.invoke("baseline", "set", "production").returncode == 0
    examples.write(
        "deploy/production/app.yaml",
        (examples.root / "deploy/production/app.yaml")
        .read_text()
        .replace("pool_size: 20", "pool_size: 25"),
    )
    assert examples.invoke("scan", "production").returncode == 0
    result = examples.invoke("diff", "production@baseline", "production", "-f", "json")
    assert result.returncode == 1
    [item] = json.loads(result.stdout)["items"]
    assert (item["path"], item["left"], item["right"]) == ("database.pool_size", 20, 25)
    # the baseline by id and by time give the same snapshot
    baseline = json.loads(result.stdout)["left"]["snapshot_id"]
    by_id = json.loads(
        examples.invoke("diff", f"production@{baseline}", "production", "-f", "json").stdout
    )
    assert by_id["left"]["snapshot_id"] == baseline
    by_time = json.loads(
        examples.invoke(
            "diff", "production@2999-01-01T00:00", "production@baseline", "-f", "json"
        ).stdout
    )
    assert by_time["left"]["snapshot_id"] != baseline  # the latest, not the baseline
    missing = examples.invoke("diff", "production@2000-01-01", "production", "-f", "json")
    assert missing.returncode == 2
    assert "no snapshot taken at or before 2000-01-01" in missing.stderr
    assert examples.invoke("diff", "staging@baseline", "production").returncode == 2


def test_first_seen_stays_with_the_difference(examples: Project) -> None:
    first = json.loads(examples.invoke("diff", "staging", "production", "-f", "json").stdout)
    examples.invoke("scan", "--all")
    second = json.loads(examples.invoke("diff", "staging", "production", "-f", "json").stdout)
    seen = {i["fingerprint"]: i["first_seen"] for i in first["items"]}
    assert {i["fingerprint"]: i["first_seen"] for i in second["items"]} == seen
    assert second["right"]["snapshot_id"] != first["right"]["snapshot_id"]


def test_table_keeps_bracketed_paths(project: Project) -> None:
    project.write_config(
        """
        environments:
          staging: {sources: [{type: file, name: app, path: staging.yaml}]}
          production: {sources: [{type: file, name: app, path: production.yaml}]}
        """
    )
    project.write("staging.yaml", "allowed: [10.0.0.0/8]\n")
    project.write("production.yaml", "allowed: [10.0.0.0/8, 0.0.0.0/0]\n")
    project.invoke("scan", "--all")
    path = project.root / "table.txt"
    project.invoke("diff", "staging", "production", "-f", "table", "-o", str(path))
    assert "allowed[0.0.0.0/0]" in path.read_text()
