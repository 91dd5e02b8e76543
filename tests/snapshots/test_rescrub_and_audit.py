"""`db rescrub` brings data stored under older secret rules up to today's; `secrets audit`
says which paths were treated as secrets and by which rule, never a value."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import text

from app.db.session import make_engine
from tests.support import Project, database_bytes

# What an earlier envparity recognised: one key-name pattern and URL passwords, nothing else.
OLD_PATTERN = (
    r"passw(or)?d|secret|token|api[_-]?key|apikey|private[_-]?key|credential"
    r"|(^|[^a-z])auth(orization)?([^a-z]|$)|^pwd$"
)
OLD_RULES = f"""
secrets:
  key_pattern: '{OLD_PATTERN}'
  disable: [url_token, query_param, assignment, authorization, private_key, aws_access_key_id,
            jwt, slack_token, slack_webhook, github_token, stripe_key]
"""
CONFIG = """
environments:
  staging:
    vars: {env: staging}
    sources: [{type: file, name: app, path: deploy/staging/app.env}]
  production:
    vars: {env: production}
    sources: [{type: file, name: app, path: deploy/production/app.env}]
comparisons:
  - {source: staging, target: production}
"""
PLAIN = ["Smtp-Old-77", "JdbcPw-88", "JdbcPw-81", "AKIAZZZZZZZZZZZZ1234", "LinesPw-5"]


def write_environments(project: Project) -> None:
    for env, jdbc in (("staging", "JdbcPw-88"), ("production", "JdbcPw-81")):
        project.write(
            f"deploy/{env}/app.env",
            f"""
            SMTP_PASS=Smtp-Old-77
            JDBC=jdbc:postgresql://db-{env}/app?user=app&password={jdbc}
            UPLOADER=AKIAZZZZZZZZZZZZ1234
            DB=postgres://app:UrlPw-{env}@db-{env}.internal/app
            POOL=10
            """,
        )


def findings(project: Project) -> set[tuple[Any, ...]]:
    result = project.invoke("diff", "staging", "production", "--format", "json")
    assert result.returncode in (0, 1), result.stderr
    return {
        (
            i["change"],
            i["key"],
            i["path"],
            json.dumps(i["left"]),
            json.dumps(i["right"]),
            i["severity"],
        )
        for i in json.loads(result.stdout)["items"]
    }


@pytest.mark.slow
def test_rescrub_removes_plaintext_stored_under_older_rules(project: Project) -> None:
    write_environments(project)
    project.write_config(CONFIG + OLD_RULES)
    # The commands run in process (the same CLI, faster), but for `db rescrub`: a subprocess,
    # so that its logs are in the stderr searched below.
    assert project.invoke("scan", "--all").returncode == 0
    raw = database_bytes(project.database_url)
    assert b"Smtp-Old-77" in raw  # the old rules let it through: the premise of this test
    # Rows as an older envparity left them: no census.
    engine = make_engine(project.database_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE snapshot_sources SET secrets = NULL"))
    engine.dispose()

    project.write_config(CONFIG)  # today's rules
    upgrade = project.invoke("db", "upgrade")
    assert upgrade.returncode == 0
    assert "envparity db rescrub" in upgrade.stdout
    audit = project.invoke("secrets", "audit")
    assert "stored before the census" in audit.stdout

    rescrub = project.run("db", "rescrub")
    assert rescrub.returncode == 0, rescrub.stderr
    assert "rewritten" in rescrub.stdout
    for secret in PLAIN:
        assert secret not in rescrub.stdout + rescrub.stderr
    raw = database_bytes(project.database_url)
    assert b"db-staging" in raw  # the data is still there
    for secret in PLAIN:
        assert secret.encode() not in raw, secret
    assert "envparity db rescrub" not in project.invoke("db", "upgrade").stdout

    rescrubbed = findings(project)
    assert project.invoke("scan", "--all").returncode == 0  # a fresh scan with today's rules
    assert findings(project) == rescrubbed
    assert ("secret_reused", "deploy/{env}/app.env", "SMTP_PASS") in {f[:3] for f in rescrubbed}
    # Across environments the JDBC and URL passwords compare by presence: no drift.
    assert not {f for f in rescrubbed if f[2] in ("JDBC", "DB") and f[0] == "changed"}


def test_secrets_audit_names_paths_and_rules_never_values(project: Project) -> None:
    write_environments(project)
    project.write_config(CONFIG)
    assert project.invoke("scan", "staging").returncode == 0
    table = project.invoke("secrets", "audit", "staging")
    assert table.returncode == 0, table.stderr
    for secret in PLAIN:
        assert secret not in table.stdout
    assert "staging / app (file" in table.stdout
    as_json = project.invoke("secrets", "audit", "staging", "--format", "json")
    (source,) = json.loads(as_json.stdout)
    by_path = {p["path"]: p["rule"] for p in source["paths"]}
    assert by_path == {
        "SMTP_PASS": "key",
        "JDBC": "query_param",
        "UPLOADER": "aws_access_key_id",
        "DB": "url_password",
    }
    assert source["counts"] == {
        "aws_access_key_id": 1,
        "key": 1,
        "query_param": 1,
        "url_password": 1,
    }
    assert not source["outdated"]
    for secret in PLAIN:
        assert secret not in as_json.stdout
    assert "secret:hmac-sha256:" not in as_json.stdout


def test_secrets_audit_refuses_an_unknown_format(project: Project) -> None:
    project.write_config(CONFIG)
    result = project.invoke("secrets", "audit", "--format", "xml")
    assert result.returncode == 2
    assert "table, json" in result.stderr
