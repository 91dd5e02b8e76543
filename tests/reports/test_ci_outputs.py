"""What CI shows of `diff` and `gate` (issue 14): tables that keep one line per item and never
cut a word, Markdown that fits a pull request comment and shows values literally, the same
counts in every format, baseline columns named by their refs, GitHub Actions workflow
commands and step summary, and a gate that says when it compared nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt

from app.reports.render import command_data, command_property, md_code, wrap_on_boundaries
from tests.support import Project

PUSH_ONLY = """
environments:
  staging: {vars: {env: staging}}
  production: {vars: {env: production}}
comparisons:
  - {source: staging, target: production, gate: {fail_on: %s}}
"""


def push(project: Project, env: str, values: dict[str, Any], category: str = "config") -> None:
    """A snapshot of `env` holding one `aws.ssm.parameter` per key of `values`."""
    document = {
        "taken_at": "2026-11-22T04:00:00Z",
        "sources": [{"name": "agent", "type": "push", "status": "ok", "error": None}],
        "resources": [
            {
                "source": "agent",
                "category": category,
                "resource_type": "aws.ssm.parameter",
                "key": key.replace("{env}", env),
                "attributes": {"value": value},
            }
            for key, value in values.items()
        ],
    }
    path = project.root / f"{env}.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    pushed = project.invoke("push", env, str(path))
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr


def pushed(
    project: Project,
    staging: dict[str, Any],
    production: dict[str, Any],
    fail_on: str = "warning",
) -> Project:
    project.write_config(PUSH_ONLY % fail_on)
    push(project, "staging", staging)
    push(project, "production", production)
    return project


def html(markdown: str) -> str:
    """The Markdown as a CommonMark renderer with GitHub's tables shows it."""
    return MarkdownIt("commonmark").enable("table").render(markdown)


# ----------------------------------------------------------------------------- tables


def test_table_keeps_an_item_on_one_line_in_a_ci_log(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)  # not a terminal, no $COLUMNS: 160 wide
    pushed(
        project,
        {"/app/{env}/db/host": "orders-db.internal", "/app/{env}/db/pool_size": "20"},
        {"/app/{env}/db/host": "orders-db-primary.internal", "/app/{env}/db/pool_size": "40"},
    )
    table = project.invoke("diff", "staging", "production", "--format", "table")
    assert table.returncode == 1
    [row] = [line for line in table.stdout.splitlines() if "db/host" in line]
    assert "aws.ssm.parameter /app/{env}/db/host value" in row
    assert "orders-db.internal" in row
    assert "orders-db-primary.internal" in row
    assert max(map(len, table.stdout.splitlines())) <= 160


def test_table_width_follows_columns(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    wide = "x" * 40
    pushed(project, {"/app/{env}/a": wide + "1"}, {"/app/{env}/a": wide + "2"})

    def one_line(table: str) -> bool:
        return any(wide + "1" in line and wide + "2" in line for line in table.splitlines())

    monkeypatch.delenv("COLUMNS", raising=False)  # 160: room for the whole row
    roomy = project.invoke("diff", "staging", "production", "--format", "table").stdout
    assert one_line(roomy), roomy
    monkeypatch.setenv("COLUMNS", "100")
    narrow = project.invoke("diff", "staging", "production", "--format", "table").stdout
    assert not one_line(narrow), narrow
    assert max(map(len, narrow.splitlines())) <= 100


def test_narrow_tables_break_keys_at_path_boundaries_only(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "/app/{env}/payments/provider/endpoint_url"
    pushed(
        project,
        {key: "https://pay.internal/v1"},
        {key: "https://pay-eu.internal/v2"},
    )
    monkeypatch.setenv("COLUMNS", "70")
    table = project.invoke("diff", "staging", "production", "--format", "table").stdout
    resource = [line.split("│")[3].strip() for line in table.splitlines() if line.startswith("│ ")]
    assert len(resource) > 1, table  # it had to wrap
    for piece in ("aws.", "ssm.", "parameter", "payments/", "provider/", "endpoint_url", "value"):
        assert any(piece in line for line in resource), table  # whole, never folded


def test_wrapping_breaks_after_separators_and_folds_only_overlong_words() -> None:
    assert wrap_on_boundaries("aws.ssm.parameter /app/{env}/db/host", 22) == [
        "aws.ssm.parameter",
        "/app/{env}/db/host",
    ]
    assert wrap_on_boundaries("/app/{env}/db/host", 12) == ["/app/{env}/", "db/host"]
    assert wrap_on_boundaries("abcdefghij", 4) == ["abcd", "efgh", "ij"]


# ----------------------------------------------------------------------------- markdown


@pytest.mark.slow
def test_markdown_of_1500_items_fits_a_pull_request_comment(project: Project) -> None:
    staging = {f"/app/{{env}}/settings/key_{n:04}": f"value-a-{n}" for n in range(1500)}
    production = {f"/app/{{env}}/settings/key_{n:04}": f"value-b-{n}" for n in range(1500)}
    # Five of them critical (staging names production: a leak), listed first.
    for n in range(1495, 1500):
        staging[f"/app/{{env}}/settings/key_{n:04}"] = "db.production.internal"
    pushed(project, staging, production)
    result = project.invoke("diff", "staging", "production", "--format", "markdown")
    assert result.returncode == 1
    markdown = result.stdout
    assert len(markdown) < 65_536
    rows = [line for line in markdown.splitlines() if line.startswith(("| warning", "| critical"))]
    assert [r.split(" | ")[0] for r in rows[:5]] == ["| critical"] * 5
    last = markdown.rstrip("\n").splitlines()[-1]
    found = re.search(r"\*\*([\d,]+) of 1,500 items left out\*\*", last)
    assert found, last
    assert int(found[1].replace(",", "")) == 1500 - len(rows)
    assert "--format json" in last
    assert len(rows) > 100  # the room is used


def test_gate_markdown_of_1500_failing_items_fits_too() -> None:
    from datetime import UTC, datetime

    from app.diff.model import DiffResult, DriftItem
    from app.gate.service import GateResult
    from app.reports.model import Report, SnapshotMeta, item_json
    from app.states import Change, GateStatus, Severity, SnapshotStatus

    now = datetime(2026, 11, 22, tzinfo=UTC)
    items = [
        DriftItem("config", "aws.ssm.parameter", f"/app/{{env}}/key_{n:04}", "value",
                  Change.CHANGED, f"a-{n}", f"b-{n}",
                  Severity.CRITICAL if n % 100 == 0 else Severity.WARNING, fingerprint=str(n))
        for n in range(1500)
    ]  # fmt: skip
    resources = [("config", "aws.ssm.parameter", i.key) for i in items]
    report = Report(
        SnapshotMeta("staging", 1, now, SnapshotStatus.COMPLETE),
        SnapshotMeta("production", 2, now, SnapshotStatus.COMPLETE),
        DiffResult("staging->production", items, [], 1500, 1500, resources),
        now,
    )
    failing = [item_json(i) for i in report.counting]
    result = GateResult(
        "staging", "production", GateStatus.FAIL, ["1500 unwaived drift item(s)"],
        report.as_json()["summary"], failing, report, None, Severity.WARNING, ["config"],
    )  # fmt: skip
    from app.reports.render import gate_text

    markdown = gate_text(result, "markdown")
    assert len(markdown) < 65_536
    assert markdown.startswith("## ❌ envparity gate staging → production: **FAIL**")
    rows = [line for line in markdown.splitlines() if line.startswith(("| warning", "| critical"))]
    assert [r.split(" | ")[0] for r in rows[:15]] == ["| critical"] * 15  # the worst first
    last = markdown.rstrip("\n").splitlines()[-1]
    assert f"**{1500 - len(rows):,} of 1,500 items left out**" in last
    assert "`envparity diff staging production --format json`" in last


def test_markdown_shows_values_literally(project: Project) -> None:
    pushed(
        project,
        {"/app/{env}/a": "**x** <img src=x>", "/app/{env}/b": "a`b``c", "/app/{env}/c": "x|y"},
        {"/app/{env}/a": "plain", "/app/{env}/b": "`", "/app/{env}/c": "z"},
    )
    markdown = project.invoke("diff", "staging", "production", "--format", "markdown").stdout
    page = html(markdown)
    assert "<img" not in page
    assert "<strong>x</strong>" not in page
    assert "<code>**x** &lt;img src=x&gt;</code>" in page
    assert "<code>a`b``c</code>" in page
    assert "<code>`</code>" in page
    assert "<code>x|y</code>" in page  # the pipe escaped: the row keeps its cells
    assert "<code>/app/{env}/a</code>" in page
    assert "<code>value</code>" in page  # the path
    assert page.count("<td>warning</td>") == 3


def test_markdown_keeps_leak_and_secret_reuse_notes(examples: Project) -> None:
    markdown = examples.invoke("diff", "staging", "production", "--format", "markdown").stdout
    page = html(markdown)
    assert "names production (its env)" in page
    assert "same secret as deploy/{env}/app.env PAYMENTS_API_TOKEN" in page
    gate = html(examples.invoke("gate", "staging", "production", "--format", "markdown").stdout)
    assert "names production (its env)" in gate
    assert "same secret as deploy/{env}/app.env PAYMENTS_API_TOKEN" in gate


def test_markdown_notes_are_the_tables_notes() -> None:
    from datetime import UTC, datetime

    from app.diff.model import DiffResult, DriftItem
    from app.reports.model import Report, SnapshotMeta
    from app.reports.render import to_markdown, to_table
    from app.states import Change, Severity, SnapshotStatus

    now = datetime(2026, 11, 22, tzinfo=UTC)
    reuse = "same secret as /app/{env}/key value"
    items = [
        DriftItem("config", "p", "/app/{env}/key", "value", Change.SECRET_REUSED, "(secret)",
                  "(secret)", Severity.CRITICAL, detail=reuse, fingerprint="1"),
        DriftItem("config", "p", "/app/{env}/host", "value", Change.LEAK, "db.production",
                  "db.{env}", Severity.CRITICAL, detail="names production (its env)",
                  fingerprint="2"),
        DriftItem("config", "p", "/app/{env}/old", "value", Change.LEAK, "x.production", "x",
                  Severity.CRITICAL, waived=True, waiver={"reason": "moving"},
                  detail="names production (its env)", fingerprint="3"),
    ]  # fmt: skip
    side = SnapshotMeta("staging", 1, now, SnapshotStatus.COMPLETE)
    other = SnapshotMeta("production", 2, now, SnapshotStatus.COMPLETE)
    report = Report(side, other, DiffResult("staging->production", items, [], 3, 2), now)
    page = html(to_markdown(report))
    table = to_table(report, width=200)
    for note in (reuse, "names production (its env)", "waived: moving; names production (its env)"):
        assert note in page
        assert note in table


def test_gate_markdown_starts_with_the_gate(examples: Project) -> None:
    gate = examples.invoke("gate", "staging", "production", "--format", "markdown")
    diff = examples.invoke("diff", "staging", "production", "--format", "markdown")
    assert gate.returncode == 1
    assert gate.stdout != diff.stdout
    head = gate.stdout.splitlines()
    assert head[0] == "## ❌ envparity gate staging → production: **FAIL**"
    assert "fail_on `warning`" in gate.stdout.split("###")[0]
    unwaived = json.loads(examples.invoke("gate", "staging", "production", "-f", "json").stdout)[
        "summary"
    ]["unwaived"]
    assert (
        f"- {unwaived} unwaived drift item(s) at or above warning between staging and production"
        in gate.stdout.split("###")[0]
    )
    assert diff.stdout.split("\n\n", 1)[1].split("|")[0] in gate.stdout  # then the report


def test_gate_markdown_of_a_gate_that_could_not_judge(project: Project) -> None:
    project.write_config(PUSH_ONLY % "warning")
    gate = project.invoke("gate", "staging", "production", "--format", "markdown")
    assert gate.returncode == 2
    assert gate.stdout.startswith("## ⚠️ envparity gate staging → production: **MISSING**")
    assert "- staging has no snapshot" in gate.stdout


def test_code_spans_follow_commonmark() -> None:
    assert md_code("plain") == "`plain`"
    assert md_code("a`b") == "``a`b``"
    assert md_code("`edge`") == "`` `edge` ``"
    assert md_code("x|y") == "`x\\|y`"
    assert md_code("") == "—"


# ----------------------------------------------------------------------------- counts


def summary_of_table(text: str) -> dict[str, float]:
    found = re.search(
        r"parity ([\d.]+)% of (\d+) resources · (\d+) unwaived · .*?(?: · (\d+) waived)? · "
        r"(\d+) tolerated",
        text,
    )
    assert found, text
    parity, compared, unwaived, waived, tolerated = found.groups()
    return {
        "parity": float(parity),
        "compared": int(compared),
        "unwaived": int(unwaived),
        "waived": int(waived or -1),
        "tolerated": int(tolerated),
    }


def summary_of_json(summary: dict[str, Any]) -> dict[str, float]:
    return {
        "parity": round(summary["parity"] * 100, 1),
        "compared": summary["compared"],
        "unwaived": summary["unwaived"],
        "waived": summary["items"] - summary["unwaived"],
        "tolerated": summary["tolerated"],
    }


def test_gate_table_and_json_give_the_same_counts(examples: Project) -> None:
    # One waived item, one tolerated, and drift below fail_on: every count differs from the
    # failing items' own.
    examples.write_config(
        examples.config.read_text().replace("fail_on: warning", "fail_on: critical")
    )
    added = examples.invoke("waiver", "add", "--key", "requests", "--reason", "rolling out")
    assert added.returncode == 0, added.stderr
    table = examples.invoke("gate", "staging", "production", "--format", "table")
    answer = examples.invoke("gate", "staging", "production", "--format", "json")
    assert table.returncode == answer.returncode == 1
    body = json.loads(answer.stdout)
    expected = summary_of_json(body["summary"])
    assert expected["tolerated"] == 1
    assert expected["waived"] == 1
    assert expected["unwaived"] > len(body["failing"]) > 0  # drift below fail_on too
    assert summary_of_table(table.stdout) == expected
    assert f"{len(body['failing'])} item(s) fail the gate" in table.stdout
    diff = examples.invoke("diff", "staging", "production", "--format", "table").stdout
    assert summary_of_table(diff) == expected
    markdown = examples.invoke("gate", "staging", "production", "--format", "markdown").stdout
    assert f"**{expected['unwaived']}** unwaived drift item(s)" in markdown
    assert f"; {expected['waived']} waived; {expected['tolerated']} tolerated." in markdown
    assert f"Parity **{expected['parity']}%** of {expected['compared']} resources" in markdown


# ----------------------------------------------------------------------------- baseline labels


def test_a_diff_over_time_names_its_columns_by_their_refs(examples: Project) -> None:
    assert examples.invoke("baseline", "set", "production").returncode == 0
    path = examples.root / "deploy/production/app.yaml"
    path.write_text(path.read_text().replace("pool_size: 20", "pool_size: 25"))
    assert examples.invoke("scan", "production").returncode == 0
    refs = ("diff", "production@baseline", "production")

    table = examples.invoke(*refs, "--format", "table").stdout
    assert re.search(r"┃ production@baseline\s+┃ production\s+┃", table), table
    assert table.startswith("production@baseline #")

    page = html(examples.invoke(*refs, "--format", "markdown").stdout)
    assert "<th>production@baseline</th>\n<th>production</th>" in page
    assert "envparity: production@baseline → production" in page

    junit = examples.invoke(*refs, "--format", "junit").stdout
    assert 'name="envparity production@baseline-&gt;production"' in junit

    body = json.loads(examples.invoke(*refs, "--format", "json").stdout)
    assert (body["left"]["label"], body["right"]["label"]) == ("production@baseline", "production")
    assert body["left"]["environment"] == body["right"]["environment"] == "production"

    # Across environments the columns keep the environments' names.
    across = json.loads(examples.invoke("diff", "staging", "production", "-f", "json").stdout)
    assert (across["left"]["label"], across["right"]["label"]) == ("staging", "production")

    # The API's /diff labels them the same way.
    from fastapi.testclient import TestClient

    from app.main import create_app

    examples.write_config(examples.config.read_text() + "server: {auth: false}\n")
    with TestClient(create_app(examples.config)) as client:
        answer = client.get(
            "/api/v1/diff", params={"left": "production@baseline", "right": "production"}
        )
    assert answer.status_code == 200, answer.text
    sides = answer.json()["left"]["label"], answer.json()["right"]["label"]
    assert sides == ("production@baseline", "production")


# ----------------------------------------------------------------------------- github


def test_github_format_annotates_each_unwaived_item(
    project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    pushed(
        project,
        {"/app/{env}/db/host": "db.production.internal", "/app/{env}/rate": "50%"},
        {"/app/{env}/db/host": "db.internal", "/app/{env}/rate": "75%"},
    )
    result = project.invoke("diff", "staging", "production", "--format", "github")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "::error title=envparity staging → production%3A critical leak::"
        "aws.ssm.parameter /app/{env}/db/host value: staging db.production.internal, "
        "production db.internal (names production (its env))"
    )
    assert lines[1] == (
        "::warning title=envparity staging → production%3A warning changed::"
        "aws.ssm.parameter /app/{env}/rate value: staging 50%25, production 75%25"
    )
    assert lines[2].startswith("::notice title=envparity staging → production::parity 0.0%25")
    written = summary.read_text(encoding="utf-8")
    assert written.startswith("earlier step\n### 🔴 envparity: staging → production")
    assert "`50%`" in written

    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "gate.md"))
    gate = project.invoke("gate", "staging", "production", "--format", "github")
    assert gate.returncode == 1
    first, *items = gate.stdout.splitlines()
    assert first.startswith("::error title=envparity gate staging → production%3A FAIL::2 unwaived")
    assert [i.split(" ", 1)[0] for i in items] == ["::error", "::warning"]
    assert (tmp_path / "gate.md").read_text().startswith("## ❌ envparity gate staging")


def test_github_format_without_a_step_summary(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    pushed(project, {"/app/{env}/a": "1"}, {"/app/{env}/a": "1"})
    result = project.invoke("gate", "staging", "production", "--format", "github")
    assert result.returncode == 0
    assert result.stdout.startswith("::notice title=envparity gate staging → production%3A PASS::")


def test_workflow_commands_are_escaped_as_github_documents() -> None:
    assert command_data("50% done\r\nnext: a,b") == "50%25 done%0D%0Anext: a,b"
    assert command_property("50% done\r\nnext: a,b") == "50%25 done%0D%0Anext%3A a%2Cb"


# ----------------------------------------------------------------------------- nothing compared


def test_a_gate_that_compared_nothing_says_so(project: Project) -> None:
    pushed(project, {"/app/{env}/a": "1"}, {"/app/{env}/a": "2"})
    result = project.invoke(
        "gate", "staging", "production", "--format", "json", "--category", "network"
    )
    assert result.returncode == 0
    body = json.loads(result.stdout)
    [warning] = [r for r in body["reasons"] if r.startswith("warning: ")]
    assert "nothing was compared" in warning
    assert "network" in warning
    assert "warning: nothing was compared" in result.stderr
    table = project.invoke("gate", "staging", "production", "-f", "table", "--category", "network")
    assert "warning: nothing was compared" in table.stderr
    # With drift in what was compared, no warning.
    judged = project.invoke("gate", "staging", "production", "-f", "json", "--category", "config")
    assert judged.returncode == 1
    assert "nothing was compared" not in judged.stdout + judged.stderr


def test_a_category_outside_the_gates_categories_compares_nothing(project: Project) -> None:
    project.write_config(
        (PUSH_ONLY % "warning").replace(
            "fail_on: warning", "fail_on: warning, categories: [config]"
        )
    )
    push(project, "staging", {"/app/{env}/a": "1"})
    push(project, "production", {"/app/{env}/a": "2"})
    result = project.invoke("gate", "staging", "production", "-f", "json", "--category", "packages")
    assert result.returncode == 0
    assert "none of the gate's categories (config)" in result.stderr
    assert any("none of the gate's categories" in r for r in json.loads(result.stdout)["reasons"])


def test_a_diff_narrowed_to_nothing_warns(project: Project) -> None:
    pushed(project, {"/app/{env}/a": "1"}, {"/app/{env}/a": "2"})
    result = project.invoke("diff", "staging", "production", "-f", "json", "--category", "network")
    assert result.returncode == 0
    assert "warning: nothing was compared" in result.stderr


@pytest.mark.slow
def test_remote_gate_in_github_and_table_formats(
    project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from app import runtime
    from app.auth.tokens import TokenRepository
    from tests.support import serving

    pushed(project, {"/app/{env}/a": "1"}, {"/app/{env}/a": "2"})
    rt = runtime.load(project.config)
    with rt.sessions.begin() as session:
        _, token = TokenRepository(session).create("gate", "ci", None)
    monkeypatch.setenv("ENVPARITY_TOKEN", token)
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    try:
        with serving(rt) as url:
            github = project.invoke("gate", "staging", "production", "--api", url, "-f", "github")
            monkeypatch.delenv("GITHUB_STEP_SUMMARY")
            table = project.invoke("gate", "staging", "production", "--api", url, "-f", "table")
    finally:
        rt.close()
    assert github.returncode == table.returncode == 1
    first, item = github.stdout.splitlines()
    assert first.startswith("::error title=envparity gate staging → production%3A FAIL::")
    assert item.startswith("::warning title=envparity staging → production%3A warning changed::")
    assert summary.read_text().startswith("## ❌ envparity gate staging → production: **FAIL**")
    assert "parity 0.0% of 1 resources · 1 unwaived · 0 waived · 0 tolerated" in table.stdout
    assert "aws.ssm.parameter /app/{env}/a value" in table.stdout
