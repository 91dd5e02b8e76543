"""Errors a user meets at the command line: clear messages, exit 2, nothing left behind."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.support import Project


def test_unreachable_database_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support import invoke

    (tmp_path / "envparity.yaml").write_text("environments:\n  staging: {}\n")
    monkeypatch.setenv("ENVPARITY_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    result = invoke("export", "staging", "--config", str(tmp_path / "envparity.yaml"))
    assert result.returncode == 2
    assert "error: database:" in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_does_not_create_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support import invoke

    config = tmp_path / "envparity.yaml"
    config.write_text("environments:\n  staging: {}\n")
    monkeypatch.setenv("ENVPARITY_DATABASE_URL", f"sqlite:///{tmp_path / 'new.db'}")
    result = invoke("validate", "--config", str(config))
    assert result.returncode == 0
    assert "will be created on first use" in result.stdout
    assert not (tmp_path / "new.db").exists()


def test_validate_without_offline_reports_failing_sources(project: Project) -> None:
    project.write_config(
        """
        environments:
          staging:
            sources:
              - {type: file, name: app, path: missing.yaml}
        """
    )
    result = project.invoke("validate")
    assert result.returncode == 2
    assert "app failed: file not found: missing.yaml" in result.stdout


PRINT_ENVIRON = "import json, os; print(json.dumps(sorted(os.environ)))"


def test_commands_do_not_inherit_envparity_settings(project: Project) -> None:
    project.write_config(
        f"""
        environments:
          staging:
            sources:
              - type: command
                name: environ
                command: [{sys.executable}, -c, "{PRINT_ENVIRON}"]
                parser: json
                env: {{EXTRA: "$${{NOT_EXPANDED}}"}}
        """
    )
    assert project.invoke("scan", "staging").returncode == 0
    exported = json.loads(project.invoke("export", "staging").stdout)
    names = exported["resources"][0]["attributes"]["value"]
    assert "EXTRA" in names
    assert not [n for n in names if n.startswith("ENVPARITY_")]


def test_dollar_dollar_is_a_literal(tmp_path: Path) -> None:
    from app.config import load_config

    path = tmp_path / "envparity.yaml"
    path.write_text(
        "environments:\n  s:\n    sources:\n"
        "      - {type: command, command: \"dpkg-query -W -f '$${Package}'\", parser: lines}\n"
    )
    config = load_config(path, environ={})
    assert (
        config.environment("s").sources[0].model_dump()["command"]
        == "dpkg-query -W -f '${Package}'"
    )


def test_scan_of_a_push_only_environment_stores_nothing(project: Project) -> None:
    project.write_config(
        """
        environments:
          staging:
            sources:
              - {type: command, command: [echo, hi], parser: lines}
          pushed: {}
        """
    )
    result = project.invoke("scan", "staging", "pushed")
    assert result.returncode == 2
    assert "push-only" in result.stderr
    assert project.invoke("export", "staging").returncode == 2  # nothing was scanned


def test_iam_policy_lists_the_actions_of_the_configured_aws_sources(tmp_path: Path) -> None:
    from tests.support import invoke

    config = tmp_path / "envparity.yaml"
    config.write_text(
        "environments:\n  s:\n    sources:\n"
        "      - {type: aws.ec2.security_groups, region: us-east-1}\n"
        "      - {type: file, path: x.yaml}\n"
    )
    result = invoke("iam-policy", "--config", str(config))
    assert result.returncode == 0
    statement = json.loads(result.stdout)["Statement"][0]
    assert statement["Action"] == [
        "ec2:DescribeManagedPrefixLists",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeVpcs",
    ]
    assert statement["Effect"] == "Allow"


def test_iam_policy_follows_each_source_s_options(tmp_path: Path) -> None:
    from tests.support import invoke

    config = tmp_path / "envparity.yaml"
    config.write_text(
        "environments:\n  s:\n    sources:\n"
        "      - {type: aws.secretsmanager.secrets, region: us-east-1}\n"
        "      - {type: aws.ssm.parameters, region: us-east-1, path: /app/s/, secrets: hash}\n"
    )
    actions = json.loads(invoke("iam-policy", "--config", str(config)).stdout)["Statement"][0][
        "Action"
    ]
    # metadata mode never reads secret values; hash mode on SSM needs kms:Decrypt
    assert "secretsmanager:GetSecretValue" not in actions
    assert actions == [
        "kms:Decrypt",
        "secretsmanager:ListSecrets",
        "ssm:DescribeParameters",
        "ssm:GetParametersByPath",
    ]


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--reason", "a\x00b", "--reason holds a NUL character"),
        ("--key", "web-\x00", "--key holds a NUL character"),
        (
            "--owner",
            "o" * 201,
            "--owner is longer than its column holds (201 characters, at most 200)",
        ),
        ("--comparison", "c" * 211, "--comparison is longer than its column holds"),
        ("--resource-type", "t" * 201, "--resource-type is longer than its column holds"),
        # UTC is a day before year 1
        ("--expires", "0001-01-01T00:00:00+14:00", "--expires lies outside the years 1 to 9999"),
    ],
)
def test_waiver_add_refuses_what_the_database_cannot_hold(
    project: Project, option: str, value: str, message: str
) -> None:
    """The API's rule for a waiver (tests/api/test_unstorable_input.py), at the command line."""
    from app import runtime
    from app.waivers.repository import WaiverRepository

    project.write_config("environments:\n  staging: {}\n")
    extra = [] if option == "--reason" else ["--reason", "r"]
    result = project.invoke("waiver", "add", *extra, option, value)
    assert result.returncode == 2
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    rt = runtime.load(project.config)
    with rt.sessions.begin() as session:
        assert WaiverRepository(session).all() == []
    rt.close()


def test_waiver_at_the_column_limits_is_stored(project: Project) -> None:
    project.write_config("environments:\n  staging: {}\n")
    result = project.invoke(
        "waiver", "add", "--reason", "r", "--owner", "o" * 200, "--comparison", "c" * 210,
        "--resource-type", "t" * 200, "--key", "k" * 5000,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "waiver #1 added" in result.stdout


@pytest.mark.parametrize("expires", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-14:00"])
def test_token_expiry_outside_the_years_a_database_holds_is_refused(
    project: Project, expires: str
) -> None:
    project.write_config("environments:\n  staging: {}\n")
    result = project.invoke("token", "create", "--scope", "read", "--expires", expires)
    assert result.returncode == 2
    assert "lies outside the years 1 to 9999 in UTC" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_version() -> None:
    from app import __version__
    from tests.support import invoke

    result = invoke("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"envparity {__version__}"


@pytest.mark.parametrize("url", ["mysql://ops:hunter2@db.internal/envparity", "hunter2 no url"])
def test_an_unsupported_database_url_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    from tests.support import invoke

    (tmp_path / "envparity.yaml").write_text("environments:\n  staging: {}\n")
    monkeypatch.setenv("ENVPARITY_DATABASE_URL", url)
    result = invoke("export", "staging", "--config", str(tmp_path / "envparity.yaml"))
    assert result.returncode == 2
    assert "error: database URL:" in result.stderr
    assert "sqlite:///" in result.stderr
    assert "postgresql+psycopg://" in result.stderr
    assert "hunter2" not in result.stderr  # a URL may hold a password: never repeated
    assert "Traceback" not in result.stderr


def test_output_into_a_folder_that_does_not_exist_yet(project: Project) -> None:
    project.write_config(
        "environments:\n  staging:\n    sources:\n      - {type: file, path: a.yaml}\n"
    )
    project.write("a.yaml", "replicas: 2\n")
    assert project.invoke("scan", "staging").returncode == 0
    result = project.invoke(
        "export", "staging", "--output", str(project.root / "reports/ci/staging.json")
    )
    assert result.returncode == 0, result.stderr
    written = json.loads((project.root / "reports/ci/staging.json").read_text())
    assert written["environment"] == "staging"
    result = project.invoke(
        "diff", "staging", "staging", "--output", str(project.root / "reports/diff/r.txt")
    )
    assert result.returncode == 0, result.stderr
    assert (project.root / "reports/diff/r.txt").read_text()


def test_output_onto_a_folder_is_a_usage_error(project: Project) -> None:
    project.write_config(
        "environments:\n  staging:\n    sources:\n      - {type: file, path: a.yaml}\n"
    )
    project.write("a.yaml", "replicas: 2\n")
    assert project.invoke("scan", "staging").returncode == 0
    (project.root / "reports").mkdir()
    for command in (["export", "staging"], ["diff", "staging", "staging"]):
        result = project.invoke(*command, "--output", str(project.root / "reports"))
        assert result.returncode == 2
        assert "reports is a folder: give a file name" in result.stderr
        assert "Traceback" not in result.stderr + result.stdout


def test_init_into_a_folder_that_does_not_exist_yet(tmp_path: Path) -> None:
    from tests.support import invoke

    target = tmp_path / "ops" / "envparity" / "envparity.yaml"
    result = invoke("init", str(target))
    assert result.returncode == 0, result.stderr
    assert "environments:" in target.read_text()
    result = invoke("init", str(tmp_path / "ops"))
    assert result.returncode == 2
    assert "is a folder" in result.stderr or "exists" in result.stderr
