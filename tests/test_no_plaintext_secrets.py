"""A secret read by a collector appears nowhere: database bytes, logs, output, exports."""

from __future__ import annotations

import sys

import pytest

from tests.support import Project, database_bytes

SECRET = "hunter2-7f3a"


@pytest.mark.slow
def test_secret_from_a_yaml_file_never_appears_in_plain_text(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.write_config(
        f"""
        environments:
          staging:
            sources:
              - {{type: file, name: app, path: app.yaml}}
              - type: command
                name: noisy
                command: [{sys.executable}, noisy.py]
                parser: lines
              - type: command
                name: dump
                command: [{sys.executable}, -c, "print('db_password={SECRET}')"]
                parser: key_value
        """
    )
    project.write(
        "noisy.py",
        f"""
        import sys
        sys.stderr.write("login failed: password={SECRET}\\n")
        sys.exit(3)
        """,
    )
    project.write(
        "app.yaml",
        f"""
        db:
          host: orders-db-staging.internal
          password: {SECRET}
          url: postgres://orders:{SECRET}@orders-db-staging.internal/orders
        """,
    )
    monkeypatch.setenv("ENVPARITY_LOG_LEVEL", "DEBUG")
    outputs = [
        project.run("scan", "staging"),
        project.run("export", "staging"),
        project.run("validate"),
    ]
    scan, export = outputs[:2]
    assert scan.returncode == 1  # the noisy command failed; the rest was stored
    assert "noisy failed: command" in scan.stdout
    assert "password=***" in scan.stdout
    assert '"password": "secret:hmac-sha256:' in export.stdout
    for result in outputs:
        assert SECRET not in result.stdout
        assert SECRET not in result.stderr
    raw = database_bytes(project.database_url)
    assert b"orders-db-staging.internal" in raw  # the data is there...
    assert SECRET.encode() not in raw  # ...but not the secret
