"""The config file: valid files load, and every mistake names file, line and key (exit 2)."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

import app as app_module
from app.cli import app
from app.clock import format_duration, parse_duration
from app.config import DatabaseConfig, load_config, schedule_text
from app.errors import ConfigError

VALID = """
database_url: sqlite:///envparity.db
environments:
  staging:
    vars: {env: staging, vpc_cidr: 10.1.0.0/16}
    schedule: 15m
    sources:
      - type: file
        name: app-config
        path: deploy/staging/app.yaml
      - type: command
        command: [pip, freeze]
        parser: pip_freeze
  production:
    vars: {vpc_cidr: 10.2.0.0/16}
    schedule: "*/5 * * * *"
    sources: []
comparisons:
  - source: staging
    target: production
    gate: {fail_on: warning, max_age: 1h}
tolerate:
  - {category: instances, path: instance_type, allow: same_family}
  - {category: packages, path: version, allow: patch}
ignore:
  - comparison: staging->production
    category: instances
    key: "web*"
    path: count
    reason: staging runs fewer replicas by design
    expires: 2027-03-01
severity:
  - {category: config, path: "features.*", severity: info}
alerts:
  slack: {webhook_url: "${SLACK_WEBHOOK_URL}", min_severity: warning}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "envparity.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={"SLACK_WEBHOOK_URL": "http://x"} if environ is None else environ)
    return str(caught.value)


def test_spec_example_loads_with_typed_sources(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    config = load_config(path, environ={"SLACK_WEBHOOK_URL": "https://hooks.example/T1"})
    staging = config.environment("staging")
    assert [s.name for s in staging.sources] == ["app-config", "command"]
    assert staging.sources[0].type == "file"
    assert staging.sources[1].model_dump()["parser"] == "pip_freeze"
    # env defaults to the environment's own name; declared vars are kept
    assert config.environment("production").vars == {"env": "production", "vpc_cidr": "10.2.0.0/16"}
    assert config.environment("production").push_only
    assert config.model.alerts.slack is not None
    assert config.model.alerts.slack.webhook_url == "https://hooks.example/T1"
    assert config.comparison("staging", "production") is not None
    assert config.base_dir == tmp_path.resolve()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            """
            environments:
              staging:
                sourcez: []
            """,
            ["envparity.yaml:3:", "environments.staging.sourcez", "unknown key"],
            id="misspelt-key",
        ),
        pytest.param(
            """
            environments:
              staging:
                sources:
                  - type: file
                    pathh: app.yaml
            """,
            ["envparity.yaml:5:", "environments.staging.sources[0].pathh", "unknown key"],
            id="misspelt-source-option",
        ),
        pytest.param(
            """
            environments:
              staging:
                sources:
                  - type: file
            """,
            ["envparity.yaml:4:", "environments.staging.sources[0].path", "required"],
            id="missing-source-option",
        ),
        pytest.param(
            """
            environments:
              staging: {}
            comparisons:
              - source: staging
                target: staging
                gate: {fail_on: sometimes}
            """,
            ["envparity.yaml:6:", "comparisons[0].gate.fail_on", "'info', 'warning' or 'critical'"],
            id="wrong-value",
        ),
        pytest.param(
            """
            environments:
              staging:
                sources:
                  - type: command
                    command: [ls]
                    parser: lines
                    timeout: soon
            """,
            ["envparity.yaml:7:", "environments.staging.sources[0].timeout", "number"],
            id="wrong-type",
        ),
        pytest.param(
            """
            environments:
              staging:
                schedule: every day
            """,
            ["envparity.yaml:3:", "environments.staging.schedule", "5-field cron"],
            id="bad-schedule",
        ),
        pytest.param(
            """
            environments:
              staging: {}
            comparisons:
              - source: staging
                target: staging
                gate: {max_age: soon}
            """,
            ["envparity.yaml:6:", "comparisons[0].gate.max_age", "'soon' is not a duration"],
            id="bad-duration",
        ),
        pytest.param(
            """
            environments:
              staging: {}
            alerts:
              repeat_after: 30
            """,
            ["envparity.yaml:4:", "alerts.repeat_after", "valid string"],
            id="duration-without-unit",
        ),
        pytest.param(
            """
            environments:
              staging: {}
            database:
              busy_timeout: 99999999999w
            """,
            ["envparity.yaml:4:", "database.busy_timeout", "longer than any duration"],
            id="duration-too-long",
        ),
        pytest.param(
            """
            environments:
              staging:
                sources:
                  - type: s3.buckets
            """,
            ["envparity.yaml:4:", "sources[0].type", "unknown source type 's3.buckets'", "file"],
            id="unknown-source-type",
        ),
        pytest.param(
            """
            environments:
              staging: {}
            comparisons:
              - source: staging
                target: prod
            """,
            ["envparity.yaml:5:", "comparisons[0].target", "'prod'"],
            id="undeclared-environment",
        ),
        pytest.param(
            """
            environments:
              staging: {}
              staging: {}
            """,
            ["envparity.yaml:3:", "environments.staging", "duplicate key"],
            id="duplicate-key",
        ),
        pytest.param(
            """
            environments:
              staging:
                vars: {env: staging
            """,
            ["envparity.yaml:", "not valid YAML"],
            id="broken-yaml",
        ),
        pytest.param(
            """
            environments:
              staging: {}
              production: {}
            alerts:
              webhooks: [{name: pager, url: "http://x"}]
            comparisons:
              - source: staging
                target: production
                alerts:
                  webhooks: [pagr]
            """,
            ["envparity.yaml:10:", "comparisons[0].alerts.webhooks[0]", "'pagr'", "pager"],
            id="unknown-webhook-route",
        ),
        pytest.param(
            """
            environments:
              staging: {}
            alerts:
              slack: {bot_token: "xoxb-1", min_severity: warning}
            """,
            ["envparity.yaml:4:", "alerts.slack", "bot_token and channel"],
            id="slack-bot-without-channel",
        ),
        pytest.param(
            """
            environments:
              staging: {}
            alerts:
              webhooks:
                - {name: ops, url: "http://a"}
                - {name: ops, url: "http://b"}
            """,
            ["envparity.yaml:", "alerts.webhooks", "two webhooks are named 'ops'"],
            id="duplicate-webhook-name",
        ),
        pytest.param(
            """
            environments:
              staging: {}
            retention:
              evaluations: 90s
            """,
            ["envparity.yaml:4:", "retention.evaluations", "shorter than 1h", "90d, not 90s"],
            id="retention-too-short",
        ),
        pytest.param(
            """
            environments:
              staging: {}
            retention:
              keep_per_comparison: 0
            """,
            ["envparity.yaml:4:", "retention.keep_per_comparison", "greater than or equal to 1"],
            id="retention-keeps-none",
        ),
        pytest.param(
            """
            environments:
              staging: {}
            retention:
              schedule: 10s
            """,
            ["envparity.yaml:4:", "retention.schedule", "at most once a minute"],
            id="retention-prunes-too-often",
        ),
        pytest.param(
            """
            environments:
              staging: {}
            retention:
              keep: 5
            """,
            ["envparity.yaml:4:", "retention.keep", "unknown key"],
            id="retention-unknown-key",
        ),
    ],
)
def test_mistakes_name_file_line_and_key(tmp_path: Path, text: str, expected: list[str]) -> None:
    message = error_of(tmp_path, text)
    for part in expected:
        assert part in message, message


def test_unset_variable_names_itself_line_and_key(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        """
        environments:
          staging: {}
        alerts:
          slack:
            webhook_url: "${SLACK_WEBHOOK_URL}"
        """,
        environ={},
    )
    assert "envparity.yaml:5:" in message
    assert "alerts.slack.webhook_url" in message
    assert "${SLACK_WEBHOOK_URL} is not set" in message


def test_missing_file_suggests_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="envparity init"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("15m", 900), ("1h", 3600), ("2d", 172800)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text).total_seconds() == seconds
    assert parse_duration(format_duration(parse_duration(text))) == parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (30, "30s"),
        (90, "90s"),
        (900, "15m"),
        (3600, "1h"),
        (172800, "2d"),
        (604800, "1w"),
    ],
)
def test_durations_are_written_in_their_largest_whole_unit(seconds: int, text: str) -> None:
    assert format_duration(timedelta(seconds=seconds)) == text


def test_retention_defaults_and_values(tmp_path: Path) -> None:
    default = load_config(write(tmp_path, "environments:\n  staging: {}\n")).model.retention
    assert default.evaluations == timedelta(days=90)
    assert default.keep_per_comparison == 10
    assert default.schedule == timedelta(days=1)
    given = load_config(
        write(
            tmp_path,
            """
            environments:
              staging: {}
            retention: {evaluations: 2w, keep_per_comparison: 3, schedule: "0 3 * * *"}
            """,
        )
    ).model.retention
    assert (given.evaluations, given.keep_per_comparison) == (timedelta(weeks=2), 3)
    assert given.schedule == "0 3 * * *"
    off = load_config(
        write(tmp_path, "environments:\n  staging: {}\nretention: {schedule: null}\n")
    ).model.retention
    assert off.schedule is None


def test_durations_and_schedules_are_parsed_once_at_load(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID), environ={"SLACK_WEBHOOK_URL": "http://x"})
    assert config.environment("staging").schedule == timedelta(minutes=15)
    assert config.environment("staging").schedule_text == "15m"
    assert config.environment("production").schedule == "*/5 * * * *"
    assert schedule_text(timedelta(hours=2)) == "2h"
    comparison = config.comparison("staging", "production")
    assert comparison is not None
    assert comparison.gate.max_age == timedelta(hours=1)
    # Written back as the duration the file gave (the API's gate rules, model_dump).
    assert comparison.gate.model_dump()["max_age"] == "1h"
    assert config.model.alerts.deliver_timeout == timedelta(seconds=60)
    assert config.model.database.model_dump()["busy_timeout"] == "30s"
    assert DatabaseConfig(busy_timeout="2m").busy_timeout == timedelta(minutes=2)


def test_validate_command_exits_2_with_location(tmp_path: Path, cli: CliRunner) -> None:
    path = write(tmp_path, "environments:\n  staging:\n    sorces: []\n")
    result = cli.invoke(app, ["validate", "--offline", "--config", str(path)])
    assert result.exit_code == 2
    assert "envparity.yaml:3:" in result.output
    assert "environments.staging.sorces" in result.output


def test_init_writes_a_config_that_validates(
    tmp_path: Path, cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.invoke(app, ["init"]).exit_code == 0
    assert "# envparity configuration" in (tmp_path / "envparity.yaml").read_text()
    assert cli.invoke(app, ["init"]).exit_code == 2  # never overwrites silently
    result = cli.invoke(app, ["validate", "--offline"])
    assert result.exit_code == 0, result.output
    assert "valid (2 environments)" in result.output


def test_yaml_anchors_and_merge_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        environments:
          staging:
            sources:
              - &base {type: aws.ec2.security_groups, name: groups, region: us-east-1}
              - {<<: *base, name: groups-eu, region: eu-west-1}
        """,
    )
    sources = load_config(path, environ={}).environment("staging").sources
    assert [(s.name, s.type, s.model_dump()["region"]) for s in sources] == [
        ("groups", "aws.ec2.security_groups", "us-east-1"),
        ("groups-eu", "aws.ec2.security_groups", "eu-west-1"),
    ]


def test_starter_alerts_example_validates_once_uncommented(tmp_path: Path) -> None:
    starter = (Path(app_module.__file__).parent / "starter.yaml").read_text()
    lines = starter.splitlines()
    start = lines.index("# alerts:")
    block = []
    for line in lines[start:]:
        if not line.startswith("#"):
            break
        block.append(line[2:])
    text = "\n".join([*lines[:start], *block, *lines[start + len(block) :]])
    path = tmp_path / "envparity.yaml"
    path.write_text(text)
    environ = {
        "SLACK_WEBHOOK_URL": "https://hooks.slack.example/T/B/x",
        "OPS_WEBHOOK_URL": "https://ops.example/hook",
        "OPS_WEBHOOK_SECRET": "s3cret",
    }
    model = load_config(path, environ=environ).model
    assert model.alerts.slack is not None
    assert model.alerts.webhook_names() == ["ops"]
    assert model.alerts.repeat_after == timedelta(hours=24)
    assert model.server.public_url == "https://envparity.internal.example"
