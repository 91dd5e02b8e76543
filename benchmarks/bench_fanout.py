"""A push to an environment that takes part in many comparisons (issue 15).

Run: .venv/bin/python benchmarks/bench_fanout.py [--environments 30] [--resources 5000]
     [--runs 3] [--database-url URL]

`--environments` environments of `--resources` env-named resources each
(benchmarks/envdata.py), every one but production compared with production (29 comparisons
by default), plus `sandbox`, in no comparison. All are pushed once (not timed). Then, best
of `--runs`, a push as the API makes it (the snapshot stored, then every comparison the
environment takes part in evaluated and stored, app.alerts.evaluate.Evaluator):

- to production, which the 29 comparisons judge again;
- to sandbox, which no comparison judges (the reference: the same push with nothing after);
- to production again, judged as by a new process (`envparity push`): no side, normalizer
  or DeepDiff finding kept from before (the server keeps them: app.reports.service.kept_sides).

Each push changes 1% of the environment's resources, so every comparison has something new.
Target: the push to production takes at most 3x the push to sandbox. A SQLite database in a
scratch folder by default.
"""

from __future__ import annotations

import argparse
import copy
import gc
import itertools
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from envdata import PRODUCTION, Environment, generate


def environments(count: int) -> list[Environment]:
    """Production, then `count - 1` others (each its own VPC and account), then sandbox."""
    others = [
        Environment(f"stage{n:02d}", 10 + n, f"{300000000000 + n:012d}") for n in range(count - 1)
    ]
    return [PRODUCTION, *others, Environment("sandbox", 200, "999999999999")]


def config_text(envs: list[Environment]) -> str:
    lines = ["environments:"]
    lines += [f"  {e.name}:\n    vars: {json.dumps(e.vars)}" for e in envs]
    lines.append("comparisons:")
    stages = [e.name for e in envs if e.name not in ("production", "sandbox")]
    lines += [f"  - {{source: {name}, target: production}}" for name in stages]
    # and each stage with the next: 57 comparisons for 30 environments, for the overview
    lines += [f"  - {{source: {a}, target: {b}}}" for a, b in itertools.pairwise(stages)]
    return "\n".join(lines) + "\n"


def changed(document: dict[str, Any], run: int) -> dict[str, Any]:
    """The document with 1% of its resources changed (another value each run)."""
    doc = copy.deepcopy(document)
    doc["taken_at"] = f"2026-11-22T05:{run:02d}:00Z"
    for resource in doc["resources"][::100]:
        resource["attributes"]["bench_run"] = run
    return doc


def best(work: Callable[[], None], runs: int) -> tuple[float, float]:
    """The best wall and CPU seconds of `runs`."""
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--environments", type=int, default=30)
    parser.add_argument("--resources", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        envs = environments(args.environments)
        (work / "envparity.yaml").write_text(config_text(envs))
        os.environ["ENVPARITY_SECRET_KEY"] = "ab" * 32
        os.environ["ENVPARITY_DATABASE_URL"] = args.database_url or f"sqlite:///{work}/fan.db"
        from app import runtime
        from app.alerts.evaluate import Evaluator
        from app.snapshots import service

        rt = runtime.load(work / "envparity.yaml")
        evaluator = Evaluator.of(rt)  # as the server, which keeps the sides it loaded
        documents = {}
        for env in envs:
            left = env if env.name != "production" else envs[1]
            pair = generate(args.resources, 0.01, 7, left=left, right=PRODUCTION)
            documents[env.name] = pair.documents[env.name]

        def push(environment: str, document: dict[str, Any]) -> None:
            with rt.sessions.begin() as session:
                service.push(session, rt.config, environment, document, rt.redactor)
            evaluator.after_snapshot(environment)

        started = time.perf_counter()
        for env in envs:
            push(env.name, documents[env.name])
        print(
            f"{len(envs)} environments of {args.resources:,} resources pushed and evaluated "
            f"in {time.perf_counter() - started:.1f} s (not timed)"
        )
        comparisons = len(rt.config.model.comparisons)
        judging = sum("production" in (c.source, c.target) for c in rt.config.model.comparisons)
        runs = iter(range(1, 3 * args.runs + 1))
        if os.environ.get("BENCH_PROFILE"):
            import cProfile
            import pstats

            doc = changed(documents["production"], 0)
            with rt.sessions.begin() as session:
                service.push(session, rt.config, "production", doc, rt.redactor)
            profile = cProfile.Profile()
            profile.runcall(evaluator.after_snapshot, "production")
            pstats.Stats(profile).sort_stats("cumulative").print_stats(40)
            from app.gate.service import GateCache
            from app.web import service as web

            def cells() -> None:
                gates, now = GateCache(), rt.clock.now()
                for c in rt.config.model.comparisons:
                    web.comparison_state(rt, gates, c.source, c.target, now)

            app_profile = cProfile.Profile()
            app_profile.runcall(cells)
            pstats.Stats(app_profile).sort_stats("cumulative").print_stats(40)
        fan = best(
            lambda: push("production", changed(documents["production"], next(runs))), args.runs
        )
        alone = best(lambda: push("sandbox", changed(documents["sandbox"], next(runs))), args.runs)
        # As `envparity push` judges in a new process: no side, normalizer or finding kept.
        from app.diff import engine, items

        def new_process_push() -> None:
            items._PAIRS.clear()
            engine._normalizer.cache_clear()
            with rt.sessions.begin() as session:
                doc = changed(documents["production"], next(runs))
                service.push(session, rt.config, "production", doc, rt.redactor)
            Evaluator(rt.config, rt.sessions, rt.clock).after_snapshot("production")

        cold = best(new_process_push, args.runs)
        # The documents this script pushes (155,000 resources parsed) are no server's heap:
        # let go of them, or the collector's passes over them are timed with the page.
        documents.clear()
        gc.collect()
        overview = cold_overview(rt, args.runs * 3)
        rt.close()
    ratio = fan[0] / alone[0]
    print(f"push to production ({judging} comparisons): {fan[0]:.2f} s wall, {fan[1]:.2f} s CPU")
    print(f"push to sandbox (no comparison):       {alone[0]:.2f} s wall, {alone[1]:.2f} s CPU")
    print(f"ratio: {ratio:.1f}x (target <= 3x)")
    print(
        f"push to production judged as by a new process (`envparity push`: nothing kept): "
        f"{cold[0]:.2f} s wall, {cold[0] / alone[0]:.1f}x"
    )
    print(
        f"cold overview ({len(envs)} environments, {comparisons} comparisons, the gate's cache "
        f"emptied before each): median {overview * 1000:.0f} ms (target <= 200 ms)"
    )
    return 0 if ratio <= 3 and overview <= 0.2 else 1


def cold_overview(rt: Any, runs: int) -> float:
    """The median seconds of the dashboard's overview page requested in process (routing,
    cookie auth, every comparison's cell, the templates), the gate's cache emptied first."""
    from fastapi.testclient import TestClient

    from app.auth.tokens import TokenRepository
    from app.deps import SESSION_COOKIE
    from app.main import create_app

    with rt.sessions.begin() as session:
        _, token = TokenRepository(session).create("read", "bench", None)
    app = create_app(runtime=rt)
    times = []
    with TestClient(app) as client:
        client.cookies.set(SESSION_COOKIE, token)
        for _ in range(runs):
            app.state.gates.entries.clear()
            started = time.perf_counter()
            page = client.get("/")
            times.append(time.perf_counter() - started)
            assert page.status_code == 200, page.text[:300]
    return sorted(times)[len(times) // 2]


if __name__ == "__main__":
    raise SystemExit(main())
