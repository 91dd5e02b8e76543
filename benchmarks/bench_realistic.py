"""envparity on realistic data: every resource names its environment (issue 15).

Run: .venv/bin/python benchmarks/bench_realistic.py [--resources 20000 [100000]] [--drift 0.01]
     [--runs 3] [--seed 7] [--profile] [--keep DIR]

The data (benchmarks/envdata.py) is two environments shaped like real ones: names, hosts,
tags, ARNs, SSM paths and CIDRs name the environment, so the engine's hash shortcut (equal
raw documents free of var values) applies to nothing: every resource must be normalized
(when compared, or when stored where the store keeps normal forms). `--drift` of the
resources are changed in production, a few added and removed.
Measured in one run, each next to a reference measured in the same run (ratios hold on a
noisy machine, absolute times do not), best of `--runs`, wall and CPU time:

a. engine: app.diff.engine.compare on the two sides as the CLI loads them from SQLite
   (inside the transaction, as the CLI: the engine may read the documents it needs),
   against the fair reference (each side's JSON text with its var values replaced by
   `{name}` and cloud ids by `{id}`, then per resource `==`, then DeepDiff on the unequal
   ones). Checked: the reference's drifted resources are the planted ones, and so are
   envparity's (after normalization).
b. processes on a fresh SQLite database: `envparity push` of both sides, then
   `envparity diff staging@ID production@ID --format json` (refs by snapshot id: compared
   now, no stored report), against the same reference as a process on the two exports, and
   against canonical sorted JSON of each export (the same replacement) and GNU `diff`; at
   20,000 per side or with `--whole`, also against the reference issue 15's target names
   (the same replacement, then one DeepDiff of the two whole documents, order ignored).
c. the first push of N resources (app.snapshots.service.push_stream of the file, as
   `envparity push` and the API read a push: parsed, checked, redacted, normalized, stored)
   against a row-per-resource table on the same SQLite database (json.loads of the file, one
   executemany of (env, type, key, JSON) rows, one transaction).

Exit status 1 when a check fails (different drifted resources); issue 15 sets no time target.
The reference processes run this file's reference functions as `python -c` (json, re,
pathlib and DeepDiff only: no start-up cost of this script's own imports).
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import inspect
import io
import json
import os
import pstats
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

Identity = tuple[str, str]

# ----------------------------------------------------------------------------- the references
# What a practical engineer writes: no envparity, the standard library and DeepDiff only.
# The processes run these same functions (their source, as `python -c`: reference_script()).


def replace_env(text: str, values: Mapping[str, str]) -> str:
    """A side's JSON text with each of its environment's var values (env name, domain,
    CIDRs, account id) replaced by `{name}`, longest first, and the hex of cloud ids
    (`i-0123456789abcdef0`, `sg-...`, `vpc-...`) by `{id}`."""
    for name, value in sorted(values.items(), key=lambda item: -len(item[1])):
        text = text.replace(value, "{" + name + "}")
    return re.sub(r"-[0-9a-f]{17}\b", "-{id}", text)


def reference_diff(
    left_text: str, left_vars: Mapping[str, str], right_text: str, right_vars: Mapping[str, str]
) -> set[Identity]:
    """The drifted resources: `==` first, DeepDiff (order ignored) on the unequal ones."""
    from deepdiff import DeepDiff

    sides = []
    for text, values in ((left_text, left_vars), (right_text, right_vars)):
        doc = json.loads(replace_env(text, values))
        sides.append({(r["resource_type"], r["key"]): r["attributes"] for r in doc["resources"]})
    left, right = sides
    drifted = set(left.keys() ^ right.keys())
    for identity in left.keys() & right.keys():
        a, b = left[identity], right[identity]
        if a != b and DeepDiff(a, b, ignore_order=True):
            drifted.add(identity)
    return drifted


def whole_reference_diff(
    left_text: str, left_vars: Mapping[str, str], right_text: str, right_vars: Mapping[str, str]
) -> set[Identity]:
    """The drifted resources as issue 15's target reference finds them: the same replacement,
    then one DeepDiff (order ignored) of the two whole documents, no `==` first."""
    from deepdiff import DeepDiff

    sides = []
    for text, values in ((left_text, left_vars), (right_text, right_vars)):
        doc = json.loads(replace_env(text, values))
        sides.append(
            {f"{r['resource_type']}\0{r['key']}": r["attributes"] for r in doc["resources"]}
        )
    diff = DeepDiff(sides[0], sides[1], ignore_order=True, view="tree")
    drifted = set()
    for levels in diff.values():
        for level in levels:
            resource_type, key = level.path(output_format="list")[0].split("\0")
            drifted.add((resource_type, key))
    return drifted


def canonical_text(text: str, values: Mapping[str, str]) -> str:
    """An export as sorted, indented JSON after the same replacement, for GNU diff."""
    doc = json.loads(replace_env(text, values))
    resources = sorted(doc["resources"], key=lambda r: (r["resource_type"], r["key"]))
    return json.dumps(resources, sort_keys=True, indent=1)


def reference_main(argv: list[str]) -> int:
    """`reference VARS LEFT_ENV LEFT_FILE RIGHT_ENV RIGHT_FILE`: prints the drifted resources
    (`whole`, the same arguments: as the issue's target reference finds them).
    `canonical VARS ENV FILE OUT [ENV FILE OUT ...]`: writes each export canonical."""
    mode, vars_file, *rest = argv
    values = json.loads(Path(vars_file).read_text(encoding="utf-8"))
    if mode in ("reference", "whole"):
        left_env, left_file, right_env, right_file = rest
        drifted = (reference_diff if mode == "reference" else whole_reference_diff)(
            Path(left_file).read_text(encoding="utf-8"),
            values[left_env],
            Path(right_file).read_text(encoding="utf-8"),
            values[right_env],
        )
        print(json.dumps(sorted(drifted)))
        return 0
    for i in range(0, len(rest), 3):
        env, source, target = rest[i : i + 3]
        text = Path(source).read_text(encoding="utf-8")
        Path(target).write_text(canonical_text(text, values[env]), encoding="utf-8")
    return 0


def reference_script() -> str:
    """The functions above as a script for `python -c`: `reference_main` over argv."""
    functions = (replace_env, reference_diff, whole_reference_diff, canonical_text, reference_main)
    return "\n".join(
        [
            "from __future__ import annotations",
            "import json, re, sys",
            "from pathlib import Path",
            *(inspect.getsource(f) for f in functions),
            "sys.exit(reference_main(sys.argv[1:]))",
        ]
    )


# ----------------------------------------------------------------------------- timing


@dataclass
class Timing:
    """Best wall and CPU seconds of several runs, and what the last run gave."""

    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    output: Any = None

    @property
    def wall(self) -> float:
        return min(self.walls)

    @property
    def cpu(self) -> float:
        return min(self.cpus)


def timed(work: Callable[[], Any], runs: int, setup: Callable[[], None] | None = None) -> Timing:
    timing = Timing()
    for _ in range(runs):
        if setup is not None:
            setup()
        wall, cpu = time.perf_counter(), time.process_time()
        timing.output = work()
        timing.cpus.append(time.process_time() - cpu)
        timing.walls.append(time.perf_counter() - wall)
    return timing


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_process(
    command: list[str], env: Mapping[str, str], runs: int, codes: tuple[int, ...] = (0,)
) -> Timing:
    """Best of `runs` whole processes: wall and CPU (user + system) time, and stdout."""
    timing = Timing()
    for _ in range(runs):
        cpu, wall = _children_cpu(), time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        timing.walls.append(time.perf_counter() - wall)
        timing.cpus.append(_children_cpu() - cpu)
        if done.returncode not in codes:
            raise SystemExit(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr}")
        timing.output = done.stdout
    return timing


def versus(ours: float, reference: float) -> str:
    ratio = reference / ours if ours else float("inf")
    return f"{ratio:.2f}x faster" if ratio >= 1 else f"{1 / ratio:.2f}x slower"


@dataclass
class Row:
    label: str
    timing: Timing
    reference: Timing | None = None  # the reference this row is compared to
    note: str = ""


def print_table(title: str, rows: list[Row]) -> None:
    print(title)
    print(f"  {'':58}{'wall s':>9}{'CPU s':>9}   vs reference (wall; CPU)")
    for row in rows:
        t = row.timing
        ratio = ""
        if row.reference is not None:
            ratio = f"{versus(t.wall, row.reference.wall)}; {versus(t.cpu, row.reference.cpu)}"
        print(f"  {row.label:58}{t.wall:9.3f}{t.cpu:9.3f}   {ratio}")
        if row.note:
            print(f"  {'':4}{row.note}")


def check(name: str, found: set[Identity], planted: set[Identity]) -> bool:
    same = found == planted
    print(f"  {name}: {len(found)} drifted resources, {'the planted set' if same else 'MISMATCH'}")
    for label, extra in (("not planted", found - planted), ("missed", planted - found)):
        for identity in sorted(extra)[:20]:
            print(f"    {label}: {identity[0]} {identity[1]}")
        if len(extra) > 20:
            print(f"    ... and {len(extra) - 20} more {label}")
    return same


# ----------------------------------------------------------------------------- the benchmark


@dataclass
class Setup:
    work: Path
    paths: dict[str, Path]
    texts: dict[str, str]
    vars: dict[str, dict[str, str]]
    planted: set[Identity]
    env: dict[str, str]  # for the processes


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def bench_first_push(setup: Setup, runs: int) -> list[Row]:
    """c. the first push of N resources: envparity's service against a row-per-resource table."""
    from app import runtime
    from app.snapshots import service

    body = setup.texts["staging"]
    state: dict[str, Any] = {"run": 0}

    def fresh() -> None:
        """A new database for each run, migrated (not timed)."""
        state["run"] += 1
        state["path"] = setup.work / f"first-push-{state['run']}.db"
        os.environ["ENVPARITY_DATABASE_URL"] = sqlite_url(state["path"])
        if "rt" in state:
            state["rt"].close()
        state["rt"] = runtime.load(setup.paths["config"])

    def push() -> int:
        # As `envparity push FILE` and the API read a push: streamed from its bytes.
        rt = state["rt"]
        with rt.sessions.begin() as session, setup.paths["staging"].open("rb") as raw:
            snapshot_id, _ = service.push_stream(session, rt.config, "staging", raw, rt.redactor)
        return snapshot_id

    ours = timed(push, runs, fresh)
    state["rt"].close()

    def naive() -> None:
        conn = sqlite3.connect(state["path"])  # the last envparity database: same file
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("DROP TABLE IF EXISTS reference_resources")
        conn.execute(
            "CREATE TABLE reference_resources (env TEXT, resource_type TEXT, key TEXT,"
            " attributes TEXT)"
        )
        conn.commit()
        state["conn"] = conn

    def rows() -> None:
        conn = state["conn"]
        doc = json.loads(body)
        with conn:  # one transaction
            conn.executemany(
                "INSERT INTO reference_resources VALUES (?, ?, ?, ?)",
                [
                    ("staging", r["resource_type"], r["key"], json.dumps(r["attributes"]))
                    for r in doc["resources"]
                ],
            )
        conn.close()

    reference = timed(rows, runs, naive)
    return [
        Row("envparity first push (service.push_stream of the file)", ours, reference),
        Row("reference: executemany of (env, type, key, JSON) rows", reference),
    ]


def bench_processes(setup: Setup, runs: int, whole: bool) -> tuple[list[Row], Path, list[bool]]:
    """b. pushes and diff as processes, against the reference and GNU diff as processes, and
    with `whole` against the issue's target reference (once: it is slow)."""
    envparity = str(Path(sys.executable).with_name("envparity"))
    env = setup.env
    ids = {}
    rows = []
    for name in ("staging", "production"):
        push = timed_process([envparity, "push", name, str(setup.paths[name])], env, 1)
        match = re.search(r"#(\d+)", push.output)
        assert match, push.output
        ids[name] = int(match[1])
        note = "" if name == "staging" else "(evaluates staging -> production: a diff, stored)"
        rows.append(Row(f"envparity push {name} (process, once)", push, None, note))
    diff_command = [
        envparity,
        "diff",
        f"staging@{ids['staging']}",
        f"production@{ids['production']}",
        "--format",
        "json",
    ]
    ours = timed_process(diff_command, env, runs, codes=(1,))
    report = json.loads(ours.output)
    exports = {}
    for name in ("staging", "production"):
        exports[name] = setup.work / f"{name}.export.json"
        timed_process(
            [envparity, "export", name, str(ids[name]), "--output", str(exports[name])], env, 1
        )
    vars_file = setup.work / "vars.json"
    vars_file.write_text(json.dumps(setup.vars), encoding="utf-8")
    me = [sys.executable, "-c", reference_script()]
    naive = timed_process(
        [
            *me,
            "reference",
            str(vars_file),
            "staging",
            str(exports["staging"]),
            "production",
            str(exports["production"]),
        ],
        env,
        runs,
    )
    sides = ["staging", str(exports["staging"]), "production", str(exports["production"])]
    target = timed_process([*me, "whole", str(vars_file), *sides], env, 1) if whole else None
    canonical = [setup.work / f"{name}.canonical.json" for name in ("staging", "production")]
    prepare = timed_process(
        [
            *me,
            "canonical",
            str(vars_file),
            "staging",
            str(exports["staging"]),
            str(canonical[0]),
            "production",
            str(exports["production"]),
            str(canonical[1]),
        ],
        env,
        runs,
    )
    gnu = timed_process(["diff", *map(str, canonical)], env, runs, codes=(1,))
    both = Timing([prepare.wall + gnu.wall], [prepare.cpu + gnu.cpu])
    diff_lines = gnu.output.count("\n")
    items = report["items"]
    rows += [
        Row(
            "envparity diff staging@ID production@ID --format json",
            ours,
            naive,
            f"({len(items)} items, parity {report['summary']['parity']}; vs canonical + GNU "
            f"diff: {versus(ours.wall, both.wall)} wall, {versus(ours.cpu, both.cpu)} CPU)",
        ),
        Row("reference process: exports, replace, == + DeepDiff", naive),
        *(
            [
                Row(
                    "  the same diff against the target's reference (below)",
                    ours,
                    target,
                    "(issue 15: at least 30x at 20,000 per side)",
                ),
                Row("target's reference: replace, one DeepDiff of both whole exports", target),
            ]
            if target is not None
            else []
        ),
        Row(
            "canonical sorted JSON + GNU diff (sum of the best of each)",
            both,
            None,
            f"({diff_lines:,} lines of diff output)",
        ),
        Row("  of which: load, replace, json.dumps(sort_keys, indent=1)", prepare),
        Row("  of which: diff (GNU diffutils)", gnu),
    ]
    print(f"  process checks ({len(items)} drift items by envparity diff):")
    oks = [
        check("envparity diff", {(i["resource_type"], i["key"]) for i in items}, setup.planted),
        check(
            "reference process",
            {(t, k) for t, k in json.loads(naive.output)},
            setup.planted,
        ),
    ]
    if target is not None:
        found = {(t, k) for t, k in json.loads(target.output)}
        oks.append(check("target's reference process", found, setup.planted))
    database = Path(env["ENVPARITY_DATABASE_URL"].removeprefix("sqlite:///"))
    return rows, database, oks


def bench_engine(
    setup: Setup, database: Path, runs: int, profile: bool
) -> tuple[list[Row], list[bool]]:
    """a. the engine on the sides as the CLI loads them, against the in-process reference."""
    from app import runtime
    from app.diff import engine as engine_module
    from app.diff import items as items_module
    from app.diff.engine import compare
    from app.reports.service import resolve, rules_of, side_of
    from app.snapshots.repository import SnapshotRepository

    importlib.import_module("deepdiff")  # before timing, for both (the engine imports it late)
    os.environ["ENVPARITY_DATABASE_URL"] = sqlite_url(database)
    rt = runtime.load(setup.paths["config"])
    when = datetime.now(UTC)
    profiled = ""
    # In one transaction, as the CLI compares: the engine may read documents it needs then.
    with rt.sessions.begin() as session:
        repo = SnapshotRepository(session)
        snapshots = (resolve(repo, "staging"), resolve(repo, "production"))
        rules = rules_of(rt.config, session, when)
        loading = timed(lambda: [side_of(repo, rt.config, s) for s in snapshots], runs)
        left, right = loading.output
        fresh: list[Any] = []

        def cold() -> None:
            # Each run compares sides just loaded, with no normalizer or finding kept from the
            # run before (what a new process meets; a server keeps them, see bench_fanout.py).
            fresh[:] = [side_of(repo, rt.config, s) for s in snapshots]
            items_module._PAIRS.clear()
            engine_module._normalizer.cache_clear()

        ours = timed(lambda: compare(fresh[0], fresh[1], rules, when), runs, setup=cold)
        if profile:
            profiler = cProfile.Profile()
            cold()
            profiler.enable()
            compare(fresh[0], fresh[1], rules, when)
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(15)
            profiled = out.getvalue()
    rt.close()
    raw_right = {
        (r.resource_type, r.key.replace("production", "{env}")): r for r in right.resources
    }
    equal_raw = sum(
        1
        for r in left.resources
        if (other := raw_right.get((r.resource_type, r.key.replace("staging", "{env}"))))
        and other.hash == r.hash
    )
    reference = timed(
        lambda: reference_diff(
            setup.texts["staging"],
            setup.vars["staging"],
            setup.texts["production"],
            setup.vars["production"],
        ),
        runs,
    )
    result = ours.output
    rows = [
        Row(
            "envparity engine: compare(left, right)",
            ours,
            reference,
            f"({len(result.items)} items; raw documents equal on both sides: {equal_raw:,} of "
            f"{len(left.resources):,})",
        ),
        Row("reference: replace, json.loads, ==, DeepDiff on unequal", reference),
        Row("(not compared) loading both sides: side_of, as the CLI", loading),
    ]
    print("  engine checks:")
    oks = [
        check("envparity engine", {(i.resource_type, i.key) for i in result.items}, setup.planted),
        check("reference", reference.output, setup.planted),
    ]
    if profiled:
        print(f"  cProfile of one compare, top 15 by cumulative time:\n{profiled}")
    return rows, oks


def bench(
    n: int, drift: float, runs: int, seed: int, profile: bool, keep: Path | None, whole: bool
) -> bool:
    import envdata  # benchmarks/, the script's own folder

    with tempfile.TemporaryDirectory() as tmp:
        work = keep / str(n) if keep else Path(tmp)
        if keep and work.exists():
            shutil.rmtree(work)
        started = time.perf_counter()
        pair = envdata.generate(n, drift, seed)
        paths = envdata.write(pair, work)
        generated = time.perf_counter() - started
        p = pair.planted
        share = envdata.naming_share(pair)
        texts = {name: paths[name].read_text(encoding="utf-8") for name in pair.documents}
        del pair.documents
        os.environ.setdefault("ENVPARITY_SECRET_KEY", "ab" * 32)
        cli_db = work / "envparity.db"
        setup = Setup(
            work=work,
            paths=paths,
            texts=texts,
            vars={e.name: e.vars for e in (pair.left, pair.right)},
            planted=p.identities(),
            env={
                **os.environ,
                "ENVPARITY_CONFIG": str(paths["config"]),
                "ENVPARITY_DATABASE_URL": sqlite_url(cli_db),
            },
        )
        sizes = ", ".join(f"{name} {len(t) / 1e6:.1f} MB" for name, t in texts.items())
        print(
            f"\n== {n:,} resources per side: {len(p.changed)} changed, {len(p.added)} added, "
            f"{len(p.removed)} removed; {share:.1%} name their environment"
        )
        print(f"  push documents: {sizes} (generated in {generated:.1f} s, seed {seed})")
        first = bench_first_push(setup, runs)
        processes, database, process_oks = bench_processes(setup, runs, whole or n <= 20_000)
        engine, engine_oks = bench_engine(setup, database, runs, profile)
        print()
        print_table(f"a. engine, {n:,} per side, best of {runs}:", engine)
        print_table(f"b. processes, {n:,} per side, fresh SQLite, best of {runs}:", processes)
        print_table(f"c. first push of {n:,} resources, fresh SQLite, best of {runs}:", first)
        if keep:
            print(f"  kept: {work}")
    return all(engine_oks + process_oks)


def code_version() -> str:
    """The commit measured, and whether app/ or collectors/ differ from it (read-only git)."""
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        return f"{ROOT} (not a git checkout)"
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--", "app", "collectors"], capture_output=True, text=True
    ).stdout.strip()
    return f"{ROOT} at {head.stdout.strip()}" + (
        f" with uncommitted changes in {len(dirty.splitlines())} files of app/, collectors/"
        if dirty
        else ""
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--resources", type=int, nargs="+", default=[20_000], help="per side; several: one run each"
    )
    parser.add_argument("--drift", type=float, default=0.01, help="share of resources changed")
    parser.add_argument("--runs", type=int, default=3, help="best of this many")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="cProfile one compare")
    parser.add_argument("--keep", type=Path, help="keep the data and databases under DIR/N")
    parser.add_argument(
        "--whole",
        action="store_true",
        help="also above 20,000 per side: the target's reference, one DeepDiff of both whole "
        "documents (minutes at 100,000)",
    )
    args = parser.parse_args()
    print(f"code: {code_version()}")
    print(f"load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    ok = True
    for n in args.resources:
        ok = bench(n, args.drift, args.runs, args.seed, args.profile, args.keep, args.whole) and ok
    command = (
        f".venv/bin/python benchmarks/bench_realistic.py --resources "
        f"{' '.join(map(str, args.resources))} --drift {args.drift} --runs {args.runs} "
        f"--seed {args.seed}" + (" --profile" if args.profile else "")
    )
    print(f"\nload average at end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"reproduce: {command}")
    print("checks passed" if ok else "CHECKS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
