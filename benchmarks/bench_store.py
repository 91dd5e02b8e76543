"""Push 100,000 resources, then the same 100,000 again: seconds and database growth.

Run: .venv/bin/python benchmarks/bench_store.py [--resources N] [--database-url URL]

Targets (issue 2): the first push takes <= 10 s on SQLite; the repeat grows the database
by <= 1% of what the first push grew it. The reference, in the same run and on the same
database, stores one row per resource per snapshot (no content addressing), as a plain
table would: on SQLite a table in a SQLite file, inserted with executemany; with
--database-url postgresql://... a plain table on that PostgreSQL database, inserted with
executemany through psycopg (the driver envparity uses), one transaction per push.
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

from sqlalchemy import make_url, text

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


def rows(snapshot: int, body: str) -> list[tuple[Any, ...]]:
    """One row per resource, attributes as canonical JSON text: the obvious design."""
    return [
        (
            snapshot,
            r["source"],
            r["category"],
            r["resource_type"],
            r["key"],
            json.dumps(r["attributes"], sort_keys=True),
        )
        for r in json.loads(body)["resources"]
    ]


REFERENCE_TABLE = "bench_reference_resources"


def bench_reference_postgresql(database_url: str, body: str) -> dict[str, float]:
    """The plain table on the same PostgreSQL database, through psycopg's executemany."""
    import psycopg

    conninfo = make_url(database_url).set(drivername="postgresql")
    figures: dict[str, float] = {}
    with psycopg.connect(conninfo.render_as_string(hide_password=False)) as conn:

        def size() -> int:
            row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
            assert row is not None
            return int(row[0])

        conn.execute(f"DROP TABLE IF EXISTS {REFERENCE_TABLE}")
        conn.execute(
            f"CREATE TABLE {REFERENCE_TABLE} (snapshot integer, source text, category text,"
            " resource_type text, key text, attributes text)"
        )
        conn.commit()
        sizes = [size()]
        for snapshot, label in enumerate(("first", "repeat")):
            started = time.perf_counter()
            with conn.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO {REFERENCE_TABLE} VALUES (%s, %s, %s, %s, %s, %s)",
                    rows(snapshot, body),
                )
            conn.commit()
            figures[f"{label}_seconds"] = time.perf_counter() - started
            sizes.append(size())
        conn.execute(f"DROP TABLE {REFERENCE_TABLE}")
        conn.commit()
    figures["first_growth"] = sizes[1] - sizes[0]
    figures["repeat_growth"] = sizes[2] - sizes[1]
    return figures


def bench_reference_sqlite(work: Path, body: str) -> dict[str, float]:
    """The plain table in a SQLite file, through sqlite3's executemany."""
    path = work / "reference.db"
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
        conn.executemany("INSERT INTO resources VALUES (?, ?, ?, ?, ?, ?)", rows(snapshot, body))
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
        if args.database_url:
            reference = bench_reference_postgresql(args.database_url, body)
        else:
            reference = bench_reference_sqlite(Path(tmp), body)
    database = "PostgreSQL" if args.database_url else "SQLite"
    print(f"resources per push: {args.resources:,}  (push document {len(body) / 1e6:.1f} MB)")
    print(f"{'':32}{'first push':>12}{'repeat push':>13}{'first growth':>15}{'repeat growth':>15}")
    for name, f in (
        (f"envparity, {database}", ours),
        (f"row-per-resource, {database}", reference),
    ):
        print(
            f"{name:32}{f['first_seconds']:>11.2f}s{f['repeat_seconds']:>12.2f}s"
            f"{f['first_growth'] / 1e6:>13.2f}MB{f['repeat_growth'] / 1e6:>13.3f}MB"
        )
    for label in ("first", "repeat"):
        times = ours[f"{label}_seconds"] / reference[f"{label}_seconds"]
        print(f"envparity {label} push: {times:.1f}x the row-per-resource table's time")
    ratio = ours["repeat_growth"] / max(ours["first_growth"], 1)
    print(f"envparity repeat growth: {ratio:.3%} of the first (target <= 1%)")
    target = "no target on PostgreSQL" if args.database_url else "target <= 10 s on SQLite"
    print(f"envparity first push: {ours['first_seconds']:.2f}s ({target})")
    ok = ratio <= 0.01 and (args.database_url or ours["first_seconds"] <= 10)
    print("targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
