"""Across environments a secret is compared by presence: staging and production whose
database, cache and queue URLs differ only in their passwords and their environment's name
show no drift and pass the gate; the same password in two environments is one
`secret_reused` item (critical) per shared password."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from tests.secrets.secret_harness import Installation, Needles, Run, as_text

# One installation, scanned through subprocesses, serves the module: all of it is slow.
pytestmark = pytest.mark.slow

YAML = """\
service: orders
database:
  url: postgres://app:{db}@db-{env}.internal/app
  pool_size: 10
cache:
  url: redis://:{cache}@cache-{env}.internal:6379/0
queue:
  url: amqp://app:{mq}@mq-{env}.internal:5672/orders
sessions:
  url: redis://:{sessions}@sessions-{env}.internal:6379/1
"""
ENV = """\
REPORTING_DB_URL=postgres://reporting:{reporting}@db-{env}.internal/reporting
SEARCH_URL=https://elastic:{search}@search-{env}.internal:9200
"""
PASSWORDS = {
    "staging": {
        "db": "PW-staging-1",
        "cache": "pw-cache-stg-41",
        "mq": "pw-mq-stg-77",
        "sessions": "Ss/stg/Kp41",
        "reporting": "Rp-stg-Lq31",
        "search": "Es-stg-Vn52",
    },
    "production": {
        "db": "PW-prod-2",
        "cache": "pw-cache-prd-42",
        "mq": "pw-mq-prd-78",
        "sessions": "Ss/prd/Kp42",
        "reporting": "Rp-prd-Lq32",
        "search": "Es-prd-Vn53",
    },
    # preprod shares production's database and queue passwords
    "preprod": {
        "db": "PW-prod-2",
        "cache": "pw-cache-pre-43",
        "mq": "pw-mq-prd-78",
        "sessions": "Ss/pre/Kp43",
        "reporting": "Rp-pre-Lq33",
        "search": "Es-pre-Vn54",
    },
}
URLS = {  # the attribute of each password
    "db": ("deploy/{env}/app.yaml", "database.url"),
    "cache": ("deploy/{env}/app.yaml", "cache.url"),
    "mq": ("deploy/{env}/app.yaml", "queue.url"),
    "sessions": ("deploy/{env}/app.yaml", "sessions.url"),
    "reporting": ("deploy/{env}/app.env", "REPORTING_DB_URL"),
    "search": ("deploy/{env}/app.env", "SEARCH_URL"),
}
SHARED = ["db", "mq"]


@dataclass
class Presence:
    inst: Installation
    scan: Run
    runs: dict[str, Run]

    def report(self, left: str, right: str) -> dict[str, Any]:
        run = self.runs[f"envparity diff {left} {right} --format json"]
        report: dict[str, Any] = run.json()
        return report


@pytest.fixture(scope="module")
def presence(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Presence:
    inst = Installation(tmp_path_factory.mktemp("presence"), module_database_url)
    config = ["environments:"]
    for env, passwords in PASSWORDS.items():
        inst.write(f"deploy/{env}/app.yaml", YAML.format(env=env, **passwords))
        inst.write(f"deploy/{env}/app.env", ENV.format(env=env, **passwords))
        config += [
            f"  {env}:",
            f"    vars: {{env: {env}}}",
            "    sources:",
            f"      - {{type: file, name: app-yaml, path: deploy/{env}/app.yaml}}",
            f"      - {{type: file, name: dotenv, path: deploy/{env}/app.env}}",
        ]
    config += [
        "comparisons:",
        "  - {source: staging, target: production, gate: {fail_on: info}}",
        "  - {source: preprod, target: production}",
    ]
    inst.write("envparity.yaml", "\n".join(config) + "\n")
    scan = inst.run("scan", "--all")
    commands = [
        ("diff", "staging", "production", "--format", "json"),
        ("diff", "staging", "production", "--format", "table"),
        ("gate", "staging", "production", "--format", "json"),
        ("gate", "staging", "production", "--format", "table"),
        ("diff", "preprod", "production", "--format", "json"),
        ("diff", "preprod", "production", "--format", "markdown"),
    ]
    runs = {run.name: run for run in inst.run_batch(commands)}
    return Presence(inst, scan, runs)


def test_the_files_differ_in_passwords_and_names_only() -> None:
    def neutral(env: str) -> str:
        text = YAML.format(env=env, **PASSWORDS[env]) + ENV.format(env=env, **PASSWORDS[env])
        for password in PASSWORDS[env].values():
            text = text.replace(password, "PASSWORD")
        return text.replace(env, "ENV")

    assert neutral("staging") == neutral("production") == neutral("preprod")


def test_the_scan_is_complete(presence: Presence) -> None:
    assert presence.scan.returncode == 0, presence.scan.describe()


@pytest.mark.parametrize("password", list(URLS))
def test_a_differing_password_is_no_drift(presence: Presence, password: str) -> None:
    key, path = URLS[password]
    report = presence.report("staging", "production")
    items = [i for i in report["items"] if i["key"] == key and i["path"] == path]
    assert not items, f"{path} ({password}): " + json.dumps(items, indent=1)


def test_staging_and_production_show_no_drift(presence: Presence) -> None:
    run = presence.runs["envparity diff staging production --format json"]
    report = run.json()
    assert report["items"] == [], json.dumps(report["items"], indent=1)
    assert report["summary"]["parity"] == 1.0
    assert run.returncode == 0, run.describe()
    assert presence.runs["envparity diff staging production --format table"].returncode == 0


def test_the_gate_passes(presence: Presence) -> None:
    gate = presence.runs["envparity gate staging production --format json"]
    assert gate.returncode == 0, gate.describe()
    assert gate.json()["status"] == "pass", gate.stdout
    table = presence.runs["envparity gate staging production --format table"]
    assert table.returncode == 0, table.describe()
    assert "PASS" in table.stdout


@pytest.mark.parametrize("password", SHARED)
def test_a_shared_password_is_reused_once(presence: Presence, password: str) -> None:
    key, path = URLS[password]
    reused = [i for i in presence.report("preprod", "production")["items"]]
    reused = [i for i in reused if i["change"] == "secret_reused"]
    here = [i for i in reused if i["key"] == key and i["path"] == path]
    assert len(here) == 1, f"{path}: {json.dumps(reused, indent=1)}"
    item = here[0]
    assert item["severity"] == "critical"
    assert (item["left"], item["right"]) == ("(secret)", "(secret)")
    assert path in (item["detail"] or "")


def test_only_shared_passwords_are_reused(presence: Presence) -> None:
    report = presence.report("preprod", "production")
    reused = sorted(i["path"] for i in report["items"] if i["change"] == "secret_reused")
    assert reused == sorted(URLS[p][1] for p in SHARED)
    others = [i for i in report["items"] if i["change"] != "secret_reused"]
    assert not others, json.dumps(others, indent=1)
    markdown = presence.runs["envparity diff preprod production --format markdown"].stdout
    assert markdown.count("secret_reused") == len(SHARED)


def test_no_password_in_plain_text(presence: Presence) -> None:
    needles = Needles()
    for env, passwords in PASSWORDS.items():
        for name, password in passwords.items():
            needles.add(f"{env} {name} password", password)
    artifacts = {"database": as_text(presence.inst.database_bytes())}
    artifacts.update({run.name: run.output for run in presence.inst.runs})
    leaks = needles.find(artifacts)
    assert not leaks, "\n".join(f"{case}: {where}" for case, where in sorted(leaks.items()))
    assert b"db-staging.internal" in presence.inst.database_bytes()
