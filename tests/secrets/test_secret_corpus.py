"""The secret corpus end to end: every shape of secret, read by every kind of source, appears
in plain text nowhere: not in the database's bytes, the logs at DEBUG, any `diff` or `gate`
format, `export`, `validate`, `alerts list`, the dashboard's pages (overview, comparisons,
environments and their timelines, the snapshot browser and its search), the API's reports and
snapshots, or the Slack and webhook messages (a local recorder, every severity posted).

One installation serves the module (one scan, one push, then every command once):
- `dev`: one small file, so that staging's resources are all new to it: every secret of
  staging sits in a drift item of dev->staging, in its reports, pages and alerts;
- `staging`: every scanned shape, in .env, YAML, JSON, INI, .properties and TOML files,
  `key_value`, `json` and `lines` commands, an `http` source (a local server) and the
  sources' own settings (`env:`, a URL token, an Authorization header);
- `production`: the same with every secret different (secrets compared by presence, so
  staging->production has little drift), plus sources that fail with secrets in what their
  errors could quote: a command's standard error, files that do not parse, an http URL;
- `fleet`: push-only, the pushed shapes, a secret in a resource key and in a failed
  source's error; dev->fleet puts them in reports and alerts.

`scan` and `push` run as `envparity` subprocesses; the other commands run through the same
CLI, several to a subprocess (see Installation.run_batch), which keeps the module near 10
seconds on SQLite. Each shape is its own test case: its failure lists every place where its
secret, or a 16-character piece of it, was found.

All of that runs on SQLite. On PostgreSQL (where one is reachable) the same installation is
scanned and pushed, and only the database's bytes are searched: what every other place shows
is read back through the same code on either backend.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from app.reports import FORMATS
from tests.alerts.recorder import Recorder
from tests.secrets.corpus_data import (
    POSITIVE,
    by_shape,
    render_object,
    render_text,
)
from tests.secrets.secret_harness import (
    Installation,
    JsonServer,
    Needles,
    Run,
    as_text,
    captured_logs,
)

# One installation, scanned through subprocesses, serves the module: all of it is slow.
pytestmark = pytest.mark.slow

MARKER = "secret:hmac-sha256:"
PAIRS = [("dev", "staging"), ("staging", "production"), ("dev", "fleet")]
ENVIRONMENTS = ("dev", "staging", "production", "fleet")
PRINT = "import sys; sys.stdout.write(open(sys.argv[1], encoding='utf-8').read())"
FAIL = "import sys; sys.stderr.write(open(sys.argv[1], encoding='utf-8').read()); sys.exit(3)"
SLACK_PATH = "/services/T0ALERTS1/B0ALERTS2/"
# Plain data next to the secrets: it must reach the database and `export`.
NEIGHBOURS = (
    "orders-db.internal",
    "shop-uploads",
    "smtp.example.com",
    "web-portal",
    "cn=svc-web,dc=example,dc=com",
    "mq.internal",
    "cluster0.ab1cd.mongodb.net",
    "agent-host-07.example.net",
)
SEARCHES = ("password", "postgres", "hooks.slack.com", "secret", "BEGIN", "AKIA", "token")


def flow(items: list[str]) -> str:
    """A YAML flow list of strings (JSON strings are valid YAML)."""
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def config_value(shape: str, env: str) -> str:
    return by_shape(shape).values(env)[0]


def sources(env: str, server: JsonServer) -> list[str]:
    """The environment's sources, as lines of YAML under `sources:`."""
    command = [sys.executable, "-c", PRINT]
    query = "?access_token=${HTTP_QUERY_TOKEN_" + env.upper() + "}"
    lines = [
        f"- {{type: file, name: dotenv, path: deploy/{env}/app.env}}",
        f"- {{type: file, name: app-yaml, path: deploy/{env}/app.yaml}}",
        f"- {{type: file, name: settings, path: deploy/{env}/settings.json}}",
        f"- {{type: file, name: ini, path: deploy/{env}/app.ini}}",
        f"- {{type: file, name: properties, path: deploy/{env}/application.properties}}",
        f"- {{type: file, name: toml, path: deploy/{env}/app.toml}}",
        "- {type: command, name: kv, parser: key_value, command: "
        + flow([*command, f"cmd/{env}/kv.txt"])
        + ', env: {SERVICE_TOKEN: "${CMD_ENV_TOKEN_'
        + env.upper()
        + '}"}}',
        "- {type: command, name: json-out, parser: json, command: "
        + flow([*command, f"cmd/{env}/out.json"])
        + "}",
        "- {type: command, name: lines-out, parser: lines, command: "
        + flow([*command, f"cmd/{env}/lines.txt"])
        + "}",
        "- type: http",
        "  name: http-config",
        f'  url: "{server.url(f"/{env}/config.json")}{query}"',
        '  headers: {Authorization: "Bearer ${HTTP_BEARER_' + env.upper() + '}"}',
    ]
    if env == "production":
        fail = [sys.executable, "-c", FAIL, "cmd/production/stderr.txt"]
        missing = server.url("/missing.json").replace("://", "://svc:${HTTP_FAIL_PW}@")
        lines += [
            "- {type: command, name: vault-login, parser: key_value, command: " + flow(fail) + "}",
            "- {type: file, name: broken-yaml, path: deploy/production/broken.yaml}",
            "- {type: file, name: broken-json, path: deploy/production/broken.json}",
            "- {type: file, name: broken-ini, path: deploy/production/broken.ini}",
            f'- {{type: http, name: http-missing, url: "{missing}?token=${{HTTP_FAIL_TOKEN}}"}}',
        ]
    return lines


def write_environment(inst: Installation, env: str) -> None:
    inst.write(f"deploy/{env}/app.env", render_text("env", env))
    inst.write(f"deploy/{env}/app.yaml", render_text("yaml", env))
    inst.write(f"deploy/{env}/settings.json", json.dumps(render_object("json", env), indent=2))
    inst.write(f"deploy/{env}/app.ini", render_text("ini", env))
    inst.write(f"deploy/{env}/application.properties", render_text("properties", env))
    inst.write(f"deploy/{env}/app.toml", render_text("toml", env))
    inst.write(f"cmd/{env}/kv.txt", render_text("key_value", env))
    inst.write(f"cmd/{env}/out.json", json.dumps(render_object("json_command", env)))
    inst.write(f"cmd/{env}/lines.txt", render_text("lines", env))
    if env == "production":
        inst.write("cmd/production/stderr.txt", render_text("stderr", env))
        for kind in ("yaml", "json", "ini"):
            inst.write(f"deploy/production/broken.{kind}", render_text(f"broken_{kind}", env))
        failing = by_shape("http_fail user:password and ?token= in a failing http source's URL")
        inst.extra_env["HTTP_FAIL_PW"], inst.extra_env["HTTP_FAIL_TOKEN"] = failing.secrets
        inst.inputs += failing.secrets
    for name, shape in (
        ("HTTP_QUERY_TOKEN", "http_config access_token in the source URL"),
        ("HTTP_BEARER", "http_config Authorization header"),
        ("CMD_ENV_TOKEN", "command_env token in a command source's env:"),
    ):
        inst.extra_env[f"{name}_{env.upper()}"] = config_value(shape, env)
        inst.inputs.append(config_value(shape, env))


def push_document() -> dict[str, object]:
    """The push format (tests/snapshots/test_push.py): a failed source with its error, a
    resource holding the pushed shapes, and one whose key holds a URL password."""
    return {
        "taken_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "sources": [
            {"name": "agent", "type": "push", "status": "ok", "error": None},
            {
                "name": "inventory",
                "type": "push",
                "status": "failed",
                "error": render_text("push_error", "fleet").strip(),
            },
        ],
        "resources": [
            {
                "source": "agent",
                "category": "config",
                "resource_type": "file",
                "key": "/etc/shop/agent.json",
                "attributes": {
                    "hostname": "agent-host-07.example.net",
                    "agent_version": "3.2.1",
                    **render_object("push", "fleet"),
                },
            },
            {
                "source": "agent",
                "category": "config",
                "resource_type": "git.remote",
                "key": render_text("push_key", "fleet").strip(),
                "attributes": {"branch": "main", "shallow": True},
            },
        ],
    }


@dataclass
class Corpus:
    inst: Installation
    runs: dict[str, Run]
    pages: dict[str, tuple[int, str]]  # path -> (status, body)
    messages: dict[str, str]  # "slack message #1" -> headers and body
    artifacts: dict[str, str]
    reports: list[str]  # the artifacts that are reports: (secret), never a marker
    leaks: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Stored:
    """The installation scanned and pushed on PostgreSQL: its runs and its database's bytes."""

    inst: Installation
    runs: dict[str, Run]
    database: str
    leaks: dict[str, list[str]]


@contextmanager
def peers() -> Iterator[tuple[Recorder, JsonServer]]:
    """The alert recorder and the JSON server of the `http` sources."""
    recorder = Recorder()
    server = JsonServer(
        {
            f"/{env}/config.json": render_object("http_body", env)
            for env in ("staging", "production")
        }
    )
    try:
        yield recorder, server
    finally:
        server.close()
        recorder.close()


@pytest.fixture(scope="module")
def corpus(
    sqlite_module_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Corpus]:
    inst = Installation(tmp_path_factory.mktemp("corpus"), sqlite_module_database_url)
    with peers() as (recorder, server):
        yield build(inst, recorder, server)


@pytest.fixture(scope="module")
def stored_on_postgres(
    postgres_module_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stored]:
    inst = Installation(tmp_path_factory.mktemp("corpus-pg"), postgres_module_database_url)
    with peers() as (recorder, server):
        runs = install(inst, recorder, server)
        database = as_text(inst.database_bytes())
        yield Stored(inst, runs, database, corpus_needles().find({"database": database}))


def corpus_needles() -> Needles:
    needles = Needles()
    for secret in POSITIVE:
        for needle in secret.needles():
            needles.add(secret.shape, needle)
    return needles


def install(inst: Installation, recorder: Recorder, server: JsonServer) -> dict[str, Run]:
    """Every input written, the config, then `scan --all` and the push (subprocesses)."""
    for env in ("staging", "production"):
        write_environment(inst, env)
        inst.inputs.append(json.dumps(render_object("http_body", env)))
    inst.write("deploy/dev/app.yaml", "service: web\nreplicas: 2\nlog_level: info\n")
    slack_token = config_value("alerts_config Slack webhook URL token", "config")
    signing_key = config_value("alerts_config webhook signing key", "config")
    inst.extra_env["SLACK_HOOK"] = recorder.url(SLACK_PATH + slack_token)
    inst.extra_env["HOOK_SIGNING_KEY"] = signing_key
    inst.inputs += [slack_token, signing_key]
    config = [
        "environments:",
        "  dev:",
        "    vars: {env: dev}",
        "    sources:",
        "      - {type: file, name: app-yaml, path: deploy/dev/app.yaml}",
        "  staging:",
        "    vars: {env: staging}",
        "    sources:",
        *("      " + line for line in sources("staging", server)),
        "  production:",
        "    vars: {env: production}",
        "    sources:",
        *("      " + line for line in sources("production", server)),
        "  fleet:",
        "    vars: {env: fleet}",
        "comparisons:",
        *(f"  - {{source: {left}, target: {right}}}" for left, right in PAIRS),
        "alerts:",
        '  slack: {webhook_url: "${SLACK_HOOK}", min_severity: info}',
        "  webhooks:",
        "    - name: ops",
        f'      url: "{recorder.url("/hook")}"',
        '      secret: "${HOOK_SIGNING_KEY}"',
        "      min_severity: info",
        "  deliver_timeout: 20s",
        "server: {auth: false}",
    ]
    inst.write("envparity.yaml", "\n".join(config) + "\n")
    pushed = inst.write("push.json", json.dumps(push_document(), indent=2))

    runs: dict[str, Run] = {}
    for run in (inst.run("scan", "--all"), inst.run("push", "fleet", str(pushed))):
        runs[run.name] = run
    return runs


def build(inst: Installation, recorder: Recorder, server: JsonServer) -> Corpus:
    runs = install(inst, recorder, server)
    commands: list[tuple[str, ...]] = []
    for left, right in PAIRS:
        for fmt in FORMATS:
            commands.append(("diff", left, right, "--format", fmt))
            commands.append(("gate", left, right, "--format", fmt))
    commands += [("export", env) for env in ENVIRONMENTS]
    commands += [("alerts", "list"), ("validate",), ("waiver", "list")]
    for run in inst.run_batch(commands):
        runs[run.name] = run

    snapshot_ids = []
    for env in ENVIRONMENTS:
        export = runs[f"envparity export {env}"]
        assert export.returncode == 0, export.describe()
        snapshot_ids.append(export.json()["snapshot_id"])

    paths = ["/"]
    paths += [f"/comparisons/{left}/{right}" for left, right in PAIRS]
    paths += ["/comparisons/production/staging", "/comparisons/dev/staging?waived=hide"]
    paths += [f"/environments/{env}" for env in ENVIRONMENTS]
    for sid in snapshot_ids:
        paths.append(f"/snapshots/{sid}")
        paths += [f"/snapshots/{sid}?q={q}" for q in SEARCHES]
    for left, right in PAIRS:
        paths.append(f"/api/v1/comparisons/{left}/{right}/report")
        paths += [
            f"/api/v1/gate?source={left}&target={right}&format={f}"
            for f in ("json", "junit", "markdown")
        ]
    paths += ["/api/v1/environments", "/api/v1/alerts"]
    paths += [f"/api/v1/environments/{env}/snapshots" for env in ENVIRONMENTS]
    for sid in snapshot_ids:
        paths += [f"/api/v1/snapshots/{sid}", f"/api/v1/snapshots/{sid}/resources"]
    pages: dict[str, tuple[int, str]] = {}
    with captured_logs() as logs, inst.client() as client:
        for path in paths:
            answer = client.get(path)
            pages[path] = (answer.status_code, answer.text)

    messages: dict[str, str] = {}
    for n, request in enumerate(recorder.requests, start=1):
        kind = "webhook" if request.path == "/hook" else "slack"
        headers = "\n".join(f"{k}: {v}" for k, v in request.headers.items())
        messages[f"{kind} message #{n}"] = headers + "\n\n" + request.body.decode()

    artifacts: dict[str, str] = {"database": as_text(inst.database_bytes())}
    artifacts.update({name: run.output for name, run in runs.items()})
    artifacts.update({f"GET {path}": body for path, (_, body) in pages.items()})
    artifacts["app logs (dashboard and API in process)"] = "\n".join(logs)
    artifacts.update(messages)
    reports = [name for name in runs if name.startswith(("envparity diff", "envparity gate"))]
    reports += [f"GET /comparisons/{left}/{right}" for left, right in PAIRS]
    reports += ["GET /comparisons/production/staging", "GET /comparisons/dev/staging?waived=hide"]
    reports += [f"GET {p}" for p in paths if p.startswith(("/api/v1/comparisons", "/api/v1/gate"))]
    reports += list(messages)

    corpus = Corpus(inst, runs, pages, messages, artifacts, reports)
    corpus.leaks = corpus_needles().find(artifacts)
    return corpus


# --------------------------------------------------------------------------- the corpus itself


REQUIRED = [
    "SMTP_PASS",
    "DB_PASS",
    "MYSQL_PWD",
    "passphrase",
    "encryption_key",
    "SENTRY_DSN",
    "Slack webhook URL under notify",
    "DB_PWD",
    "GPG_PASSPHRASE",
    "SESSION_COOKIE",
    "BEARER",
    "JDBC URL with password query parameter",
    "ADO.NET",
    "PEM private key under tls.key",
    "JWT under session",
    "AWS access key id AKIA",
    "?token= query string in a file value",
    "?api_key= query string in a file value",
    "http_body ?token=",
    "http_body ?api_key=",
    "URL password containing /",
    "URL with a password as a mapping key",
    "JSON in a string value",
    "lines DB_PASS=",
    "Authorization: Bearer inside a value",
    "GitHub token",
    "Stripe sk_live_",
    "Slack bot token xoxb-",
    "GitLab glpat-",
    "Google API key AIza",
    "SendGrid SG.",
    "amqp URL password",
    "mongodb+srv URL password",
    "X-Amz-Signature",
    "Azure SAS URL sig=",
    "stderr password 'X'",
    "stderr using key X",
    "stderr password=X",
]
SHAPES = {
    "ghp_": r"ghp_[A-Za-z0-9]{36}",
    "sk_live_": r"sk_live_[A-Za-z0-9]{24}",
    "rk_live_": r"rk_live_[A-Za-z0-9]{24}",
    "xoxb-": r"xoxb-\d+-\d+-[A-Za-z0-9]+",
    "glpat-": r"glpat-[A-Za-z0-9_-]{20}",
    "AIza": r"AIza[A-Za-z0-9_-]{35}",
    "SG.": r"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}",
    "AKIA": r"AKIA[A-Z0-9]{16}",
}


def test_the_corpus_is_big_varied_and_unambiguous() -> None:
    names = [s.shape for s in POSITIVE]
    assert len(set(names)) == len(names) >= 60
    for wanted in REQUIRED:
        assert any(wanted in name for name in names), f"no shape for {wanted!r}"
    sources = {s.source for s in POSITIVE}
    for wanted in ("env", "yaml", "json", "ini", "properties", "toml", "key_value"):
        assert wanted in sources
    assert {"json_command", "lines", "http_body", "push", "stderr", "http_config"} <= sources
    needles = [n for s in POSITIVE for n in s.needles()]
    assert len(set(needles)) == len(needles), "two shapes share a secret"
    for secret in POSITIVE:
        for value in {v for env in secret.envs for v in secret.values(env)}:
            assert secret.production or re.search(r"\d", value), (
                f"{secret.shape}: no digit, so no production variant"
            )
            assert not re.search(r"""[&<>"'\\\s]""", value.replace("\n", "")), (
                f"{secret.shape}: characters that HTML or JSON would escape hide a leak"
            )
            for prefix, pattern in SHAPES.items():
                if value.startswith(prefix):
                    assert re.fullmatch(pattern, value), f"{secret.shape}: not a {prefix} shape"
        assert all(len(n) >= 8 for n in secret.needles()), secret.shape
        if "staging" in secret.envs:
            assert secret.values("staging") != secret.values("production"), secret.shape


def test_every_secret_was_written_into_a_source(corpus: Corpus) -> None:
    """No shape passes for having been left out of the inputs."""
    written = "\n".join(corpus.inst.inputs)
    missing = [f"{s.shape}: {n[:30]}" for s in POSITIVE for n in s.needles() if n not in written]
    assert not missing


# --------------------------------------------------------------------------- it all ran


def test_the_scans_push_and_commands_ran(corpus: Corpus) -> None:
    scan = corpus.runs["envparity scan --all"]
    assert scan.returncode == 1, scan.describe()  # production's vault-login fails: partial
    assert "production: vault-login failed" in scan.stdout, scan.describe()
    for env in ("dev", "staging"):
        assert re.search(rf"{env}\s.*complete", scan.stdout), scan.describe()
    push = next(r for name, r in corpus.runs.items() if name.startswith("envparity push"))
    assert push.returncode == 0, push.describe()
    for left, right in PAIRS:
        for fmt in FORMATS:
            diff = corpus.runs[f"envparity diff {left} {right} --format {fmt}"]
            assert diff.returncode in (0, 1), diff.describe()
            gate = corpus.runs[f"envparity gate {left} {right} --format {fmt}"]
            assert gate.returncode in (0, 1, 2), gate.describe()
            assert gate.stdout.strip(), gate.describe()
    assert corpus.runs["envparity gate dev staging --format json"].json()["status"] == "fail"
    exported = corpus.runs["envparity export staging"].json()
    keys = {r["key"] for r in exported["resources"]}
    assert "deploy/staging/app.yaml" in keys
    assert any(r["resource_type"] == "http.json" for r in exported["resources"])
    assert sum(r["resource_type"] == "command.lines" for r in exported["resources"]) == 5
    assert len(exported["resources"]) >= 10
    assert [s["status"] for s in exported["sources"]] == ["ok"] * len(exported["sources"])


def test_every_page_answers(corpus: Corpus) -> None:
    failed = [f"{path}: {status}" for path, (status, _) in corpus.pages.items() if status != 200]
    assert not failed


def test_alerts_were_posted_to_slack_and_the_webhook(corpus: Corpus) -> None:
    slack = [name for name in corpus.messages if name.startswith("slack")]
    hooks = [name for name in corpus.messages if name.startswith("webhook")]
    assert slack, "no Slack message"
    assert hooks, "no webhook message"
    bodies = "\n".join(corpus.messages[name] for name in hooks)
    assert "dev->staging" in bodies
    assert "deploy/{env}/settings.json" in bodies  # the items that carry secrets were sent
    assert "dev->fleet" in bodies


# --------------------------------------------------------------------------- no plain text


@pytest.mark.parametrize("shape", [s.shape for s in POSITIVE])
def test_secret_appears_nowhere_in_plain_text(corpus: Corpus, shape: str) -> None:
    where = corpus.leaks.get(shape, [])
    assert not where, f"{shape}: plain text found in {len(where)} place(s):\n  " + "\n  ".join(
        where
    )


def test_the_data_next_to_the_secrets_is_stored_and_exported(corpus: Corpus) -> None:
    raw = corpus.artifacts["database"]
    exports = "".join(corpus.runs[f"envparity export {env}"].stdout for env in ENVIRONMENTS)
    missing = [f"database: {n}" for n in NEIGHBOURS if n not in raw]
    missing += [f"export: {n}" for n in NEIGHBOURS if n not in exports]
    assert not missing


def test_export_writes_markers(corpus: Corpus) -> None:
    for env in ("staging", "production", "fleet"):
        exported = corpus.runs[f"envparity export {env}"].stdout
        assert exported.count(MARKER) >= 3, f"export {env}"
        assert "(secret)" not in exported


def test_reports_show_secret_never_a_marker(corpus: Corpus) -> None:
    showing = [name for name in corpus.reports if MARKER in corpus.artifacts[name]]
    assert not showing, "reports that show a keyed hash: " + ", ".join(showing)


def test_reports_of_new_secrets_say_secret(corpus: Corpus) -> None:
    """Staging's secrets are all new to dev: they show, as (secret)."""
    for name in (
        "envparity diff dev staging --format json",
        "envparity diff dev staging --format junit",
        "envparity gate dev staging --format json",
        "envparity diff dev fleet --format json",
        "GET /comparisons/dev/staging",
        "GET /api/v1/comparisons/dev/staging/report",
    ):
        assert "(secret)" in corpus.artifacts[name], name
    hooks = "".join(v for k, v in corpus.messages.items() if k.startswith("webhook"))
    assert "(secret)" in hooks


def test_the_failing_source_is_reported_with_its_error(corpus: Corpus) -> None:
    """The error texts reach the reports (scrubbed): their secrets were put to the test."""
    report = corpus.runs["envparity diff staging production --format json"].json()
    unknown = {u["source"]: u["error"] for u in report["unknown"]}
    for failed in ("vault-login", "broken-yaml", "broken-json", "broken-ini", "http-missing"):
        assert failed in unknown, failed
    assert "exited with status 3" in unknown["vault-login"]
    assert "404" in unknown["http-missing"]
    gate = corpus.runs["envparity gate staging production --format json"].json()
    assert gate["status"] == "partial"
    fleet = corpus.runs["envparity diff dev fleet --format json"].json()
    assert "inventory" in {u["source"] for u in fleet["unknown"]}
    page = corpus.artifacts["GET /environments/production"]
    assert "vault-login" in page


def test_the_snapshot_browser_shows_markers(corpus: Corpus) -> None:
    staging_id = corpus.runs["envparity export staging"].json()["snapshot_id"]
    page = corpus.artifacts[f"GET /snapshots/{staging_id}"]
    assert MARKER in page
    assert "orders-db.internal" in page


# --------------------------------------------------------------------------- on PostgreSQL


@pytest.mark.postgres
def test_the_scan_and_push_stored_the_corpus_on_postgresql(stored_on_postgres: Stored) -> None:
    scan = stored_on_postgres.runs["envparity scan --all"]
    assert scan.returncode == 1, scan.describe()  # production's vault-login fails: partial
    assert "production: vault-login failed" in scan.stdout, scan.describe()
    for env in ("dev", "staging"):
        assert re.search(rf"{env}\s.*complete", scan.stdout), scan.describe()
    push = next(
        r for name, r in stored_on_postgres.runs.items() if name.startswith("envparity push")
    )
    assert push.returncode == 0, push.describe()
    raw = stored_on_postgres.database
    assert not [n for n in NEIGHBOURS if n not in raw]  # the data next to the secrets is there
    assert raw.count(MARKER) >= 60  # and so are the secrets, as markers


@pytest.mark.postgres
@pytest.mark.parametrize("shape", [s.shape for s in POSITIVE])
def test_secret_appears_nowhere_in_the_postgresql_database(
    stored_on_postgres: Stored, shape: str
) -> None:
    where = stored_on_postgres.leaks.get(shape, [])
    assert not where, f"{shape}: plain text found in {len(where)} place(s):\n  " + "\n  ".join(
        where
    )
