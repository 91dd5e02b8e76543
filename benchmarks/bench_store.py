"""Push 100,000 resources, then the same 100,000 again: seconds and database growth.

Run: .venv/bin/python benchmarks/bench_store.py [--resources N] [--database-url URL]

Targets (issue 2): the first push takes <= 10 s on SQLite; the repeat grows the database
by <= 1% of what the first push grew it. The naive reference, in the same run, stores one
row per resource per snapshot (no content addressing), as a plain table would.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text

from app import runtime
from app.snapshots import service


def make_document(n: int) -> dict[str, Any]:
    categories = ["packages", "config", "instances", "network"]
    resources = []
    for i in range(n):
        category = categories[i % 4]
        resources.append(
            {
                "source": "agent",
                "category": category,
                "resource_type": f"bench.{category}",
                "key": f"resource-{i:06d}",
                "attributes": {
                    "version": f"{i % 7}.{i % 13}.{i % 5}",
                    "arch": "amd64" if i % 3 else "arm64",
                    "size": (i * 7919) % 100_000,
                    "tags": {"team": f"team-{i % 17}", "tier": "web" if i % 2 else "worker"},
                },
            }
        )
    return {
        "taken_at": "2026-11-22T04:00:00Z",
        "sources": [{"name": "agent", "type": "push", "status": "ok", "error": None}],
        "resources": resources,
    }


def sqlite_size(path: Path) -> int:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def database_size(rt: runtime.Runtime, sqlite_path: Path | None) -> int:
    if sqlite_path is not None:
        return sqlite_size(sqlite_path)
    with rt.engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())


def bench_envparity(work: Path, body: str, database_url: str | None) -> dict[str, float]:
    (work / "envparity.yaml").write_text("environments:\n  bench: {}\n")
    sqlite_path = None if database_url else work / "envparity.db"
    os.environ["ENVPARITY_DATABASE_URL"] = database_url or f"sqlite:///{sqlite_path}"
    os.environ.setdefault("ENVPARITY_SECRET_KEY", "ab" * 32)
    rt = runtime.load(work / "envparity.yaml")
    empty = database_size(rt, sqlite_path)
    figures: dict[str, float] = {}
    sizes = [empty]
    for label in ("first", "repeat"):
        started = time.perf_counter()
        with rt.sessions.begin() as session:
            service.push(session, rt.config, "bench", json.loads(body), rt.redactor)
        figures[f"{label}_seconds"] = time.perf_counter() - started
        sizes.append(database_size(rt, sqlite_path))
    rt.close()
    figures["first_growth"] = sizes[1] - sizes[0]
    figures["repeat_growth"] = sizes[2] - sizes[1]
    return figures


def bench_naive(work: Path, body: str) -> dict[str, float]:
    """One row per resource per snapshot, attributes as JSON text: the obvious design."""
    path = work / "naive.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(
        "CREATE TABLE resources (snapshot INTEGER, source TEXT, category TEXT,"
        " resource_type TEXT, key TEXT, attributes TEXT)"
    )
    conn.commit()
    sizes = [sqlite_size(path)]
    figures: dict[str, float] = {}
    for snapshot, label in enumerate(("first", "repeat")):
        started = time.perf_counter()
        doc = json.loads(body)
        conn.executemany(
            "INSERT INTO resources VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    snapshot,
                    r["source"],
                    r["category"],
                    r["resource_type"],
                    r["key"],
                    json.dumps(r["attributes"], sort_keys=True),
                )
                for r in doc["resources"]
            ],
        )
        conn.commit()
        figures[f"{label}_seconds"] = time.perf_counter() - started
        sizes.append(sqlite_size(path))
    conn.close()
    figures["first_growth"] = sizes[1] - sizes[0]
    figures["repeat_growth"] = sizes[2] - sizes[1]
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=100_000)
    parser.add_argument("--database-url", help="measure on this database instead of SQLite")
    args = parser.parse_args()
    body = json.dumps(make_document(args.resources))
    with tempfile.TemporaryDirectory() as tmp:
        ours = bench_envparity(Path(tmp), body, args.database_url)
        naive = bench_naive(Path(tmp), body)
    print(f"resources per push: {args.resources:,}  (push document {len(body) / 1e6:.1f} MB)")
    print(f"{'':22}{'first push':>12}{'repeat push':>13}{'first growth':>15}{'repeat growth':>15}")
    for name, f in (("envparity", ours), ("naive row-per-resource", naive)):
        print(
            f"{name:22}{f['first_seconds']:>11.2f}s{f['repeat_seconds']:>12.2f}s"
            f"{f['first_growth'] / 1e6:>13.2f}MB{f['repeat_growth'] / 1e6:>13.3f}MB"
        )
    ratio = ours["repeat_growth"] / max(ours["first_growth"], 1)
    print(f"envparity repeat growth: {ratio:.3%} of the first (target <= 1%)")
    print(f"envparity first push: {ours['first_seconds']:.2f}s (target <= 10 s on SQLite)")
    ok = ratio <= 0.01 and (args.database_url or ours["first_seconds"] <= 10)
    print("targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
