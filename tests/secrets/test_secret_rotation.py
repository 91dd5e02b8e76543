"""Over time: an environment scanned twice, with the passwords inside its URLs rotated in
between, shows each rotation as exactly one `info` item (never a warning), whether the two
snapshots are named by id or one is the baseline."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from tests.secrets.secret_harness import Installation, Needles, Run, as_text

# One installation, scanned through subprocesses, serves the module: all of it is slow.
pytestmark = pytest.mark.slow

ROTATIONS = {  # name: (file, attribute path, template, password before, password after)
    "postgres URL in YAML": (
        "deploy/production/app.yaml",
        "database.url",
        "database:\n  url: postgres://app:{pw}@db.internal/app\n  pool_size: 20\n",
        "Rot-Pg-7Kq2-Lm81",
        "Rot-Pg-4Wz9-Xc56",
    ),
    "amqp URL in .env": (
        "deploy/production/app.env",
        "BROKER_URL",
        "BROKER_URL=amqp://orders:{pw}@mq.internal:5672/orders\nLOG_LEVEL=info\n",
        "Rot-Mq-3Hd8-Pq20",
        "Rot-Mq-9Tb1-Vy47",
    ),
    "redis URL with / in the password in JSON": (
        "deploy/production/settings.json",
        "cache.url",
        '{{"cache": {{"url": "redis://:{pw}@cache.internal:6379/0", "ttl": 300}}}}\n',
        "Rot/Rd/5Ns6-Jk3",
        "Rot/Rd/8Gf2-Qw9",
    ),
}
KEYS = {"app.yaml": "yaml", "app.env": "env", "settings.json": "json"}


@dataclass
class Rotation:
    inst: Installation
    scans: list[Run]
    first: int
    second: int
    runs: dict[str, Run]

    def report(self, left: str, right: str) -> dict[str, Any]:
        report: dict[str, Any] = self.runs[f"envparity diff {left} {right} --format json"].json()
        return report


def write(inst: Installation, after: bool) -> None:
    for file, _, template, before, rotated in ROTATIONS.values():
        inst.write(file, template.format(pw=rotated if after else before))


@pytest.fixture(scope="module")
def rotation(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Rotation:
    inst = Installation(tmp_path_factory.mktemp("rotation"), module_database_url)
    inst.write(
        "envparity.yaml",
        "environments:\n  production:\n    vars: {env: production}\n    sources:\n"
        + "".join(
            f"      - {{type: file, name: {name}, path: deploy/production/{file}}}\n"
            for file, name in KEYS.items()
        ),
    )
    write(inst, after=False)
    scans = [inst.run("scan", "production")]
    [first] = inst.run_batch([("export", "production")], processes=1)
    write(inst, after=True)
    scans.append(inst.run("scan", "production"))
    ids = [first.json()["snapshot_id"]]
    [second] = inst.run_batch([("export", "production")], processes=1)
    ids.append(second.json()["snapshot_id"])
    a, b = (f"production@{i}" for i in ids)
    commands = [
        ("baseline", "set", "production", str(ids[0])),
        ("diff", a, b, "--format", "json"),
        ("diff", "production@baseline", "production", "--format", "json"),
        ("diff", a, b, "--format", "table"),
        ("diff", a, b, "--format", "markdown"),
        ("diff", a, b, "--format", "junit"),
    ]
    runs = {run.name: run for run in inst.run_batch(commands, processes=1)}
    return Rotation(inst, scans, ids[0], ids[1], runs)


def refs(rotation: Rotation) -> dict[str, tuple[str, str]]:
    return {
        "by id": (f"production@{rotation.first}", f"production@{rotation.second}"),
        "from the baseline": ("production@baseline", "production"),
    }


def test_both_scans_are_complete_and_distinct(rotation: Rotation) -> None:
    for scan in rotation.scans:
        assert scan.returncode == 0, scan.describe()
    assert rotation.first != rotation.second
    baseline = rotation.runs[f"envparity baseline set production {rotation.first}"]
    assert baseline.returncode == 0, baseline.describe()


@pytest.mark.parametrize("ref", ["by id", "from the baseline"])
@pytest.mark.parametrize("name", list(ROTATIONS))
def test_a_rotated_password_is_one_info_item(rotation: Rotation, name: str, ref: str) -> None:
    file, path, *_ = ROTATIONS[name]
    left, right = refs(rotation)[ref]
    report = rotation.report(left, right)
    key = file.replace("/production/", "/{env}/")  # keys are compared with vars replaced
    items = [i for i in report["items"] if i["key"] == key and i["path"] == path]
    described = [(i["change"], i["severity"], i["left"], i["right"]) for i in items]
    assert len(items) == 1, f"{name} ({ref}): {described}"
    assert items[0]["severity"] == "info", f"{name} ({ref}): {described}"
    assert items[0]["change"] == "changed", f"{name} ({ref}): {described}"


@pytest.mark.parametrize("ref", ["by id", "from the baseline"])
def test_rotations_are_never_warnings(rotation: Rotation, ref: str) -> None:
    left, right = refs(rotation)[ref]
    report = rotation.report(left, right)
    loud = [
        f"{i['severity']} {i['change']} {i['key']} {i['path']}"
        for i in report["items"]
        if i["severity"] != "info"
    ]
    assert not loud
    assert len(report["items"]) == len(ROTATIONS), json.dumps(report["items"], indent=1)


def test_rotated_passwords_appear_nowhere(rotation: Rotation) -> None:
    needles = Needles()
    for name, (*_, before, after) in ROTATIONS.items():
        needles.add(f"{name} (before)", before)
        needles.add(f"{name} (after)", after)
    artifacts = {"database": as_text(rotation.inst.database_bytes())}
    artifacts.update({run.name: run.output for run in rotation.inst.runs})
    leaks = needles.find(artifacts)
    assert not leaks, "\n".join(f"{case}: {where}" for case, where in sorted(leaks.items()))
    reports = [r for name, r in rotation.runs.items() if name.startswith("envparity diff")]
    assert not [r.name for r in reports if "secret:hmac-sha256:" in r.stdout]
    assert (
        "(secret)"
        in rotation.runs[
            f"envparity diff production@{rotation.first} production@{rotation.second} --format json"
        ].stdout
    )
