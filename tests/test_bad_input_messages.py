"""Bad input a person gives the CLI or the push endpoint: a message that names the problem and
the way out, exit 2 (422 / 404 over HTTP), never a traceback.

- a push file in UTF-16 (PowerShell's `>`) or with a BOM is read; undecodable bytes are named;
- a missing config names the folder searched, `--config FILE` and `$ENVPARITY_CONFIG`;
- an undeclared environment in a ref or `export` is refused as `scan` refuses it;
- a ref that is no ref form lists the forms and suggests `ENV@baseline`;
- an unknown key in envparity.yaml suggests the close known key."""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from app.config import load_config
from app.errors import ConfigError
from tests.support import PUSH, Api, Invocation, Project, api_client, invoke

CONFIG = """
environments:
  staging: {}
  production: {}
  dev: {}
comparisons:
  - {source: staging, target: production}
"""

# Not ASCII, so that a wrong decoding would show in the stored values.
DOCUMENT: dict[str, Any] = {
    **PUSH,
    "resources": [
        {**PUSH["resources"][0], "attributes": {"version": "2.32.3", "note": "café ✓ ünïcode"}}
    ],
}
TEXT = json.dumps(DOCUMENT, indent=2, ensure_ascii=False)
NOTE_LINE = next(n for n, line in enumerate(TEXT.splitlines(), 1) if "café" in line)
DECLARED = "(declared: staging, production, dev)"


@pytest.fixture
def pushing(project: Project) -> Project:
    project.write_config(CONFIG)
    return project


def push_bytes(project: Project, raw: bytes, env: str = "staging") -> Invocation:
    path = project.root / "push.json"
    path.write_bytes(raw)
    return project.invoke("push", env, str(path))


def refused(result: Invocation, *parts: str) -> None:
    """Exit 2, every part in the message, and no traceback."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    message = " ".join(result.stderr.split())  # Rich may wrap a long line
    for part in parts:
        assert part in message, message
    assert "Traceback" not in result.stderr + result.stdout


# --------------------------------------------------------------------------- push encodings

ENCODED = {
    "utf-8 with BOM": codecs.BOM_UTF8 + TEXT.encode("utf-8"),
    "utf-16 le with BOM (PowerShell >)": codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"),
    "utf-16 be with BOM": codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"),
    "utf-32 le with BOM": codecs.BOM_UTF32_LE + TEXT.encode("utf-32-le"),
    "utf-32 be with BOM": codecs.BOM_UTF32_BE + TEXT.encode("utf-32-be"),
}


@pytest.mark.parametrize("raw", list(ENCODED.values()), ids=list(ENCODED))
def test_push_reads_the_encoding_its_bom_names(pushing: Project, raw: bytes) -> None:
    result = push_bytes(pushing, raw)
    assert result.returncode == 0, result.stderr
    assert "stored snapshot #1" in result.stdout
    exported = json.loads(pushing.invoke("export", "staging").stdout)
    assert exported["resources"][0]["attributes"] == DOCUMENT["resources"][0]["attributes"]


def test_push_from_stdin_reads_utf16(pushing: Project) -> None:
    from app.cli import app

    raw = codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le")
    result = CliRunner().invoke(
        app, ["push", "staging", "-", "--config", str(pushing.config)], input=raw
    )
    assert result.exit_code == 0, result.stderr
    assert "stored snapshot #1" in result.stdout


def test_push_of_undecodable_bytes_names_the_encoding(pushing: Project) -> None:
    latin1 = TEXT.replace("✓", "").encode("latin-1")  # `é` as one byte: not UTF-8
    refused(
        push_bytes(pushing, latin1),
        "push.json: not valid UTF-8 text",
        "Latin-1",
        f"at line {NOTE_LINE},",
        "save it as UTF-8; nothing stored",
    )
    truncated = (codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"))[:-1]
    refused(push_bytes(pushing, truncated), "not valid UTF-16 LE text", "truncated data")
    assert "has no snapshot yet" in pushing.invoke("export", "staging").stderr


@pytest.mark.slow  # a subprocess: about 5 s on a busy machine
def test_push_of_undecodable_bytes_prints_no_traceback(pushing: Project) -> None:
    """As a user runs it (a subprocess): the message, exit 2, not Python's traceback."""
    path = pushing.root / "push.json"
    path.write_bytes(TEXT.encode("latin-1", errors="replace"))
    result = pushing.run("push", "staging", str(path))
    assert result.returncode == 2, result.stderr
    assert "not valid UTF-8 text" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture
def api(pushing: Project) -> Iterator[Api]:
    with api_client(pushing, ["write"]) as api:
        yield api


def post(api: Api, raw: bytes) -> Any:
    return api.client.post(
        "/api/v1/environments/staging/snapshots",
        content=raw,
        headers={
            "Authorization": f"Bearer {api.tokens['write']}",
            "Content-Type": "application/json",
        },
    )


def test_push_endpoint_reads_a_body_by_its_bom(api: Api) -> None:
    for raw in ENCODED.values():
        answer = post(api, raw)
        assert answer.status_code == 201, answer.text


def test_push_endpoint_names_the_encoding_of_undecodable_bytes(api: Api) -> None:
    answer = post(api, TEXT.replace("✓", "").encode("latin-1"))
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error.startswith("the body: not valid UTF-8 text"), error
    assert "nothing stored" in error
    lone = codecs.BOM_UTF16_LE + TEXT.replace("✓", "X").encode("utf-16-le").replace(
        "X".encode("utf-16-le"), b"\x00\xd8"
    )
    answer = post(api, lone)
    assert answer.status_code == 422
    assert "not valid UTF-16 LE text: illegal UTF-16 surrogate" in answer.json()["error"]


def test_push_endpoint_keeps_strict_json_after_decoding(api: Api) -> None:
    twice = '{"taken_at": "2026-11-22T04:00:00Z", "taken_at": "2026-11-22T04:00:00Z"}'
    answer = post(api, codecs.BOM_UTF16_LE + twice.encode("utf-16-le"))
    assert answer.status_code == 422
    assert "duplicate key 'taken_at'" in answer.json()["error"]


# --------------------------------------------------------------------------- missing config


def test_missing_config_names_the_folder_and_the_ways_to_name_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    refused(
        invoke("diff", "staging", "production"),
        f"no envparity.yaml in {Path.cwd()} (the current folder)",
        "--config FILE",
        "$ENVPARITY_CONFIG",
        "envparity init",
    )


def test_missing_config_says_what_named_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ENVPARITY_CONFIG", str(tmp_path / "from-env.yaml"))
    refused(
        invoke("diff", "staging", "production"),
        f"{tmp_path / 'from-env.yaml'}: no such config file (named by $ENVPARITY_CONFIG)",
        "unset $ENVPARITY_CONFIG",
    )
    # --config wins over $ENVPARITY_CONFIG, and the message says it was --config
    refused(
        invoke("gate", "staging", "production", "--config", "ops/envparity.yaml"),
        f"{tmp_path / 'ops' / 'envparity.yaml'}: no such config file",
        "(named by --config ops/envparity.yaml)",
        "`envparity init ops/envparity.yaml`",
    )


# --------------------------------------------------------------------------- undeclared


@pytest.fixture
def pushed(pushing: Project) -> Project:
    for env in ("staging", "production"):
        assert push_bytes(pushing, TEXT.encode(), env).returncode == 0
    return pushing


def test_an_undeclared_environment_is_named_with_the_declared_ones(pushed: Project) -> None:
    for args in (
        ("diff", "staging", "prod"),
        ("diff", "prod@baseline", "staging"),
        ("gate", "staging", "prod"),
        ("export", "prod"),
    ):
        refused(
            pushed.invoke(*args),
            "environment 'prod' is not declared in",
            DECLARED,
            "did you mean `production`?",
        )
    refused(pushed.invoke("diff", "stagin", "production"), "did you mean `staging`?")
    result = pushed.invoke("diff", "qa", "production")
    refused(result, "environment 'qa' is not declared", DECLARED)
    assert "did you mean" not in result.stderr


def test_a_push_only_environment_without_snapshot_says_push(pushed: Project) -> None:
    refused(
        pushed.invoke("diff", "dev", "staging"),
        "'dev' has no snapshot yet: it is push-only: push one with `envparity push dev FILE`",
    )


def test_diff_endpoint_names_an_undeclared_environment(pushed: Project) -> None:
    with api_client(pushed, ["read"]) as api:
        answer = api.call("GET", "/diff?left=staging&right=prod", "read")
    assert answer.status_code == 404
    assert "not declared" in answer.json()["error"]
    assert "did you mean `production`?" in answer.json()["error"]


def test_an_environment_no_longer_declared_still_diffs_its_snapshots(pushed: Project) -> None:
    pushed.write_config("environments:\n  production: {}\n")
    result = pushed.invoke("diff", "staging", "production", "--format", "json")
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------- refs

FORMS = ("ENV@baseline", "ENV@ID (a snapshot id)", "ENV@TIME", "2026-11-20T10:00")


def test_a_misspelt_baseline_suggests_it_and_lists_the_ref_forms(pushed: Project) -> None:
    refused(
        pushed.invoke("diff", "staging@basline", "production"),
        "'staging@basline' is not a ref",
        "did you mean `staging@baseline`?",
        *FORMS,
    )


def test_a_ref_that_is_no_form_lists_the_forms(pushed: Project) -> None:
    result = pushed.invoke("diff", "staging@next-week", "production")
    refused(result, "'staging@next-week' is not a ref", *FORMS)
    assert "did you mean" not in result.stderr
    refused(
        pushed.invoke("diff", "staging@2026-13-01", "production"),
        "'2026-13-01' is not an ISO 8601 time",
        *FORMS,
    )


# --------------------------------------------------------------------------- unknown keys


def config_error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "envparity.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    return caught.value.message


def test_an_unknown_key_suggests_the_close_known_one(tmp_path: Path) -> None:
    message = config_error(
        tmp_path,
        "environments:\n"
        "  staging:\n"
        "    var: {a: b}\n"
        "comparisons:\n"
        "  - source: staging\n"
        "    target: staging\n"
        "    gate: {fail_onn: warning}\n"
        "    alerts: {slack: {chanel: '#ops'}}\n"
        "databse_url: sqlite:///x.db\n",
    )
    lines = message.splitlines()
    path = tmp_path / "envparity.yaml"
    assert f"{path}:3: environments.staging.var: unknown key; did you mean `vars`?" in lines
    assert any(
        ":7: comparisons[0].gate.fail_onn: unknown key; did you mean `fail_on`?" in line
        for line in lines
    ), lines
    # inside a union (`slack: SlackRoute | bool`): the key is named, not the member's type
    assert any(
        ":8: comparisons[0].alerts.slack.chanel: unknown key; did you mean `channel`?" in line
        for line in lines
    ), lines
    assert any(":9: databse_url: unknown key; did you mean `database_url`?" in x for x in lines)


def test_an_unknown_source_option_suggests_or_lists_the_options(tmp_path: Path) -> None:
    source = "environments:\n  staging:\n    sources:\n      - type: file\n        path: a.yaml\n"
    message = config_error(tmp_path, source + "        formt: yaml\n")
    assert ":6: environments.staging.sources[0].formt: unknown key; did you mean `format`?" in (
        message
    )
    message = config_error(tmp_path, source + "        colour: red\n")
    assert "colour: unknown key (check its spelling; the keys here are type, name" in message
    message = config_error(tmp_path, source.replace("type: file", "type: fiel"))
    assert "unknown source type 'fiel'" in message
    assert "did you mean `file`?" in message


def test_validate_shows_the_suggestion_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "envparity.yaml"
    path.write_text("enviroments:\n  staging: {}\n", encoding="utf-8")
    refused(
        invoke("validate", "--offline", "--config", str(path)),
        "enviroments: unknown key; did you mean `environments`?",
    )


def test_a_config_in_utf16_or_not_text_is_read_or_named(tmp_path: Path) -> None:
    path = tmp_path / "envparity.yaml"
    path.write_bytes(codecs.BOM_UTF16_LE + "environments:\n  staging: {}\n".encode("utf-16-le"))
    assert list(load_config(path).environments) == ["staging"]
    path.write_bytes("environments:\n  st\xe9ging: {}\n".encode("latin-1"))
    refused(
        invoke("validate", "--offline", "--config", str(path)),
        "envparity.yaml: not valid UTF-8 text",
        "at line 2",
    )
