"""The negative corpus: values that look a little like secrets (hex digests, fingerprints,
keys named `author`, `passage`, `kms_key_id`, `token_ttl` ...) stay plain and comparable:
`export` writes them as read, and where staging and production differ, `diff` shows both
values as a `changed` item, never `(secret)`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from tests.secrets.corpus_data import NEGATIVE, Plain, render_plain
from tests.secrets.secret_harness import Installation, Run

# One installation, scanned through subprocesses, serves the module: all of it is slow.
pytestmark = pytest.mark.slow

FILES = {
    "yaml": "app.yaml",
    "env": "app.env",
    "json": "settings.json",
    "ini": "app.ini",
    "properties": "app.properties",
    "toml": "app.toml",
}
CASES = {p.name: p for p in NEGATIVE}


@dataclass
class Plains:
    inst: Installation
    scan: Run
    exports: dict[str, Run]
    diff: Run

    def exported(self, env: str, plain: Plain) -> Any:
        """The value at the plain's path in `export ENV`, or a KeyError naming what is there."""
        key = f"plain/{env}/{FILES[plain.source]}"
        resources = {r["key"]: r["attributes"] for r in self.exports[env].json()["resources"]}
        node: Any = resources[key]
        for part in plain.path:
            node = node[part]
        return node

    def items_at(self, plain: Plain) -> list[dict[str, Any]]:
        key = "plain/{env}/" + FILES[plain.source]
        return [
            i for i in self.diff.json()["items"] if i["key"] == key and i["path"] == plain.diff_path
        ]


@pytest.fixture(scope="module")
def plains(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Plains:
    inst = Installation(tmp_path_factory.mktemp("plain"), module_database_url)
    sources = "\n".join(
        f"      - {{type: file, name: {source}, path: plain/{{env}}/{name}}}"
        for source, name in FILES.items()
    )
    config = ["environments:"]
    for env in ("staging", "production"):
        config += [f"  {env}:", f"    vars: {{env: {env}}}", "    sources:"]
        config.append(sources.replace("{env}", env))
        for source, name in FILES.items():
            inst.write(f"plain/{env}/{name}", render_plain(source, env))
    config += ["comparisons:", "  - {source: staging, target: production}"]
    inst.write("envparity.yaml", "\n".join(config) + "\n")
    scan = inst.run("scan", "--all")
    runs = inst.run_batch(
        [
            ("export", "staging"),
            ("export", "production"),
            ("diff", "staging", "production", "--format", "json"),
        ]
    )
    return Plains(inst, scan, {"staging": runs[0], "production": runs[1]}, runs[2])


def test_the_corpus_is_big_enough() -> None:
    assert len(CASES) == len(NEGATIVE) >= 30
    keys = {p.path[-1] for p in NEGATIVE}
    for key in (
        "author",
        "passage",
        "compass",
        "keyboard",
        "bypass_cache",
        "kms_key_id",
        "password_min_length",
        "token_ttl",
    ):
        assert key in keys
    assert {p.source for p in NEGATIVE} == set(FILES)


def test_the_scan_is_complete(plains: Plains) -> None:
    assert plains.scan.returncode == 0, plains.scan.describe()
    for env, run in plains.exports.items():
        assert run.returncode == 0, run.describe()
        assert {r["key"] for r in run.json()["resources"]} == {
            f"plain/{env}/{name}" for name in FILES.values()
        }
    assert plains.diff.returncode == 1, plains.diff.describe()  # they differ, by design


@pytest.mark.parametrize("name", list(CASES))
def test_value_is_exported_as_written(plains: Plains, name: str) -> None:
    plain = CASES[name]
    problems = []
    for env in ("staging", "production"):
        expected = plain.value(env)
        try:
            found = plains.exported(env, plain)
        except KeyError:
            problems.append(f"export {env}: nothing at {plain.diff_path}")
            continue
        if found != expected:
            problems.append(f"export {env}: {plain.diff_path} is {found!r}, not {expected!r}")
        if isinstance(expected, str) and json.dumps(expected) not in plains.exports[env].stdout:
            problems.append(f"export {env}: {expected!r} is not in the text verbatim")
    assert not problems, f"{name}: " + "; ".join(problems)


@pytest.mark.parametrize("name", list(CASES))
def test_difference_is_shown_with_both_values(plains: Plains, name: str) -> None:
    plain = CASES[name]
    items = plains.items_at(plain)
    if not plain.differs:
        assert not items, f"{name}: the same in both environments, yet reported: {items}"
        return
    left, right = plain.shown or (plain.staging, plain.production)
    described = [(i["change"], i["left"], i["right"]) for i in items]
    assert len(items) == 1, f"{name}: expected one changed item at {plain.diff_path}: {described}"
    assert described == [("changed", left, right)], f"{name}: {described}"
    assert "(secret)" not in json.dumps(items)


def test_no_plain_value_is_taken_for_a_secret(plains: Plains) -> None:
    """All at once: the plain values that were hashed, or that the report hides."""
    hashed = [
        f"export {env}: {r['key']} {path}"
        for env, run in plains.exports.items()
        for r in run.json()["resources"]
        for path in _marker_paths(r["attributes"])
    ]
    hidden = [
        f"diff: {i['key']} {i['path']} ({i['change']})"
        for i in plains.diff.json()["items"]
        if i["change"] == "secret_reused" or "(secret)" in json.dumps([i["left"], i["right"]])
    ]
    assert not hashed + hidden


def _marker_paths(node: Any, path: str = "") -> list[str]:
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _marker_paths(v, f"{path}.{k}".lstrip("."))]
    if isinstance(node, list):
        return [p for n, v in enumerate(node) for p in _marker_paths(v, f"{path}[{n}]")]
    return [path] if isinstance(node, str) and "secret:hmac-sha256:" in node else []
