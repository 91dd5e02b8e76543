"""The diff engine against what an engineer would write: `==` per resource, DeepDiff on the rest.

Run: .venv/bin/python benchmarks/bench_diff.py [--resources 100000] [--process-resources 20000]
     [--strawman]

The reference, in the same run, matches resources by type and key, compares each pair with
`==` and runs DeepDiff only on the pairs that are not equal (a resource on one side only
counts as drifted). `--strawman` also measures the reference the earlier figures used, one
DeepDiff of the two whole documents with no `==` prefilter; it is printed for comparison
with those figures and counts for no target.

Targets (issue 3), against the `==` + DeepDiff reference:
1. engine: 100,000 resources per side, 1% drifted, data already loaded: <= 1 s, and
   >= 50x faster than the reference; both must find the same drifted resources (checked).
2. process: the whole `envparity diff` command on 20,000 pushed resources per side, against
   the reference as a process too (load the two exports, `==` per resource, DeepDiff on the
   unequal ones): >= 10x; both must find the same drifted resources (checked).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deepdiff import DeepDiff

from app import runtime
from app.alerts.evaluate import Evaluator
from app.diff.engine import compare
from app.diff.model import Side
from app.reports.service import resolve, rules_of, side_of
from app.snapshots import service
from app.snapshots.repository import SnapshotRepository

CATEGORIES = ["packages", "config", "instances", "network"]
# The reference process: load both exports, `==` per resource, DeepDiff on the unequal ones;
# prints the keys of the drifted resources.
REFERENCE = """
import json, sys
from deepdiff import DeepDiff
docs = []
for path in sys.argv[1:3]:
    data = json.load(open(path))
    docs.append({(r["resource_type"] + "/" + r["key"]): r["attributes"] for r in data["resources"]})
left, right = docs
diffs = {}
for key in left.keys() | right.keys():
    a, b = left.get(key), right.get(key)
    if a != b:
        diffs[key] = DeepDiff(a, b)
print(json.dumps(sorted(key.split("/", 1)[1] for key, diff in diffs.items() if diff)))
"""
# The earlier reference (`--strawman`): one DeepDiff of the two whole documents.
STRAWMAN = """
import json, sys
from deepdiff import DeepDiff
docs = []
for path in sys.argv[1:3]:
    data = json.load(open(path))
    docs.append({(r["resource_type"] + "/" + r["key"]): r["attributes"] for r in data["resources"]})
diff = DeepDiff(docs[0], docs[1])
print(len(diff))
"""


def attributes(i: int, drifted: bool) -> dict[str, Any]:
    return {
        "version": f"{i % 7}.{i % 13}.{i % 5 + (1 if drifted else 0)}",
        "arch": "amd64" if i % 3 else "arm64",
        "size": (i * 7919) % 100_000,
        "tags": {"team": f"team-{i % 17}", "tier": "web" if i % 2 else "worker"},
        "ports": [80, 443],
        "image": f"registry.internal/app-{i % 50}:1.{i % 9}",
    }


def document(n: int, drifted: set[int]) -> dict[str, Any]:
    return {
        "taken_at": "2026-11-22T04:00:00Z",
        "sources": [{"name": "agent", "type": "push", "status": "ok", "error": None}],
        "resources": [
            {
                "source": "agent",
                "category": CATEGORIES[i % 4],
                "resource_type": f"bench.{CATEGORIES[i % 4]}",
                "key": f"resource-{i:06d}",
                "attributes": attributes(i, i in drifted),
            }
            for i in range(n)
        ],
    }


CONFIG = """
environments:
  staging: {vars: {env: staging, vpc_cidr: 10.1.0.0/16}}
  production: {vars: {env: production, vpc_cidr: 10.2.0.0/16}}
comparisons:
  - {source: staging, target: production}
"""


def seed(work: Path, n: int) -> tuple[set[int], list[Path]]:
    (work / "envparity.yaml").write_text(CONFIG)
    os.environ["ENVPARITY_DATABASE_URL"] = f"sqlite:///{work / 'envparity.db'}"
    os.environ.setdefault("ENVPARITY_SECRET_KEY", "ab" * 32)
    drifted = set(random.Random(7).sample(range(n), n // 100))
    rt = runtime.load(work / "envparity.yaml")
    files = []
    for env, drift in (("staging", set()), ("production", drifted)):
        doc = document(n, drift)
        path = work / f"{env}.json"
        path.write_text(json.dumps(doc))
        files.append(path)
        with rt.sessions.begin() as session:
            service.push(session, rt.config, env, doc, rt.redactor)
        # As `envparity push` and the push endpoint do: the comparison is evaluated and its
        # report stored (time spent at push, not at diff).
        Evaluator(rt.config, rt.sessions).after_snapshot(env)
    rt.close()
    return drifted, files


def documents(repo: SnapshotRepository, side: Side) -> dict[str, Any]:
    """Every document of a side by type and key (the side holds only what the engine needs)."""
    bodies = repo.documents.get(r.hash for r in side.resources if r.attributes is None)
    return {
        f"{r.resource_type}/{r.key}": r.attributes
        if r.attributes is not None
        else json.loads(r.body or bodies[r.hash])
        for r in side.resources
    }


def prefiltered(left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
    """`==` per resource, DeepDiff on the unequal pairs: each drifted resource's differences."""
    diffs = {}
    for key in left.keys() | right.keys():
        a, b = left.get(key), right.get(key)
        if a != b:
            diff = DeepDiff(a, b)
            if diff:
                diffs[key] = diff
    return diffs


def bench_engine(n: int, strawman: bool) -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        drifted, _ = seed(work, n)
        rt = runtime.load(work / "envparity.yaml")
        with rt.sessions.begin() as session:
            repo = SnapshotRepository(session)
            left = side_of(repo, rt.config, resolve(repo, "staging"))
            right = side_of(repo, rt.config, resolve(repo, "production"))
            rules = rules_of(rt.config, session, datetime.now(UTC))
            # The reference gets the same data, loaded: each side's documents by type and key.
            whole_left, whole_right = documents(repo, left), documents(repo, right)
            now = datetime.now(UTC)
            runs, reference_runs = [], []
            for _ in range(3):  # in turns: load on the machine falls on both alike
                # Fresh copies of the sides: nothing the engine normalized in an earlier run
                # is reused (a side caches it). The engine reads the bodies of the resources
                # it cannot prove equal from the database, as the CLI does.
                fresh = replace(left, normalized={}), replace(right, normalized={})
                started = time.perf_counter()
                result = compare(*fresh, rules, now)
                runs.append(time.perf_counter() - started)
                started = time.perf_counter()
                diffs = prefiltered(whole_left, whole_right)
                reference_runs.append(time.perf_counter() - started)
        rt.close()
    engine, reference = min(runs), min(reference_runs)
    ours = {i.key for i in result.items}
    theirs = {key.split("/", 1)[1] for key in diffs}
    expected = {f"resource-{i:06d}" for i in drifted}
    same = ours == theirs == expected
    ratio = reference / engine
    print(f"engine, {n:,} resources per side, {len(drifted):,} drifted (data loaded), best of 3:")
    print(f"  envparity engine   {engine:8.3f} s   ({', '.join(f'{r:.3f}' for r in runs)})")
    times = ", ".join(f"{r:.3f}" for r in reference_runs)
    print(f"  == + DeepDiff      {reference:8.3f} s   ({times}; {len(diffs):,} drifted)")
    print(f"  envparity is       {versus(ratio)}   (target >= 50x faster; engine <= 1 s)")
    print(
        f"  same drifted resources: {same} ({len(ours)} by envparity, {len(theirs)} by reference)"
    )
    if strawman:
        started = time.perf_counter()
        whole = DeepDiff(whole_left, whole_right)
        seconds = time.perf_counter() - started
        found = {path.split("'")[1].split("/", 1)[1] for path in whole.get("values_changed", {})}
        print(
            f"  strawman, one whole DeepDiff (no == prefilter; no target): {seconds:.3f} s,"
            f" {seconds / engine:.1f}x the engine, same drift: {found == expected}"
        )
    return same and engine <= 1.0 and ratio >= 50


def versus(ratio: float) -> str:
    """The reference's time over envparity's, said as a person would."""
    return f"{ratio:8.2f}x faster" if ratio >= 1 else f"{1 / ratio:8.2f}x SLOWER"


def _timed(command: list[str], env: dict[str, str], runs: int = 3) -> tuple[float, str]:
    """Best of `runs` wall-clock times of a whole process, and its output."""
    best, output = float("inf"), ""
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        best = min(best, time.perf_counter() - started)
        assert done.returncode in (0, 1), done.stderr
        output = done.stdout
    return best, output


def bench_process(n: int, strawman: bool) -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        drifted, files = seed(work, n)
        env = {**os.environ, "ENVPARITY_CONFIG": str(work / "envparity.yaml")}
        envparity = str(Path(sys.executable).with_name("envparity"))
        diff = [envparity, "diff", "staging", "production", "--format", "json"]
        ours_seconds, ours = _timed(diff, env)
        report = json.loads(ours)
        by_id = [
            envparity, "diff", "--format", "json",
            f"staging@{report['left']['snapshot_id']}",
            f"production@{report['right']['snapshot_id']}",
        ]  # fmt: skip
        fresh_seconds, fresh = _timed(by_id, env)
        exports = [str(path) for path in files]
        reference_seconds, found = _timed([sys.executable, "-c", REFERENCE, *exports], env)
        if strawman:
            strawman_seconds, _ = _timed([sys.executable, "-c", STRAWMAN, *exports], env, runs=1)
    items = len(report["items"])
    ours_keys = {item["key"] for item in report["items"]}
    expected = {f"resource-{i:06d}" for i in drifted}
    same_drift = ours_keys == set(json.loads(found)) == expected
    ratio, fresh_ratio = reference_seconds / ours_seconds, reference_seconds / fresh_seconds
    print(f"process, {n:,} pushed resources per side (best of 3):")
    print(f"  envparity diff     {ours_seconds:8.3f} s   ({items} items; the report stored")
    print("                                 by the evaluation after the push)")
    print(f"  same, recomputed   {fresh_seconds:8.3f} s   (refs by snapshot id: compared now)")
    print(f"  == + DeepDiff      {reference_seconds:8.3f} s   (load both exports, == per resource,")
    print("                                 DeepDiff on the unequal ones)")
    print(f"  envparity diff is  {versus(ratio)}   (target >= 10x faster)")
    print(f"  recomputed is      {versus(fresh_ratio)}")
    print(f"  same report either way: {ours == fresh}")
    print(f"  same drifted resources as the reference: {same_drift}")
    if strawman:
        print(
            "  strawman, one whole DeepDiff (no == prefilter; no target):"
            f" {strawman_seconds:.3f} s, {strawman_seconds / ours_seconds:.1f}x the stored-report"
            " diff"
        )
    return ratio >= 10 and ours == fresh and same_drift


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=100_000)
    parser.add_argument("--process-resources", type=int, default=20_000)
    parser.add_argument(
        "--strawman",
        action="store_true",
        help="also time the earlier reference, one whole-document DeepDiff (no target)",
    )
    args = parser.parse_args()
    ok = bench_engine(args.resources, args.strawman)
    ok = bench_process(args.process_resources, args.strawman) and ok
    print("targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
