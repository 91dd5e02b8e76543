"""Start-up time of the command line: `envparity --help` and `envparity diff --help`, against a
bare `python -c pass` on the same interpreter, in the same run.

Run: .venv/bin/python benchmarks/bench_startup.py [--runs 5] [--top 12]

Each command runs as a new process, as a person or a CI job starts it: the installed console
script (`envparity`) and `python -m app`. Each figure is the best of --runs, taken in rounds
(every command once per round, so that neither gets a quieter moment of the machine), after
one unmeasured round that fills the file cache. Then `python -X importtime -c "import
app.cli"` (best of 3 per package) says which imports the time goes to.

Target (issue 14): `envparity --help` and `envparity diff --help` start in under 0.5 s.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent
PYTHON = sys.executable
TARGET = 0.5  # seconds, for the console script
IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)$")
OURS = {"app", "collectors"}


def commands() -> dict[str, list[str]]:
    script = str(BIN / "envparity")
    return {
        "python -c pass (reference)": [PYTHON, "-c", "pass"],
        "envparity --help": [script, "--help"],
        "envparity diff --help": [script, "diff", "--help"],
        "python -m app --help": [PYTHON, "-m", "app", "--help"],
        "python -m app diff --help": [PYTHON, "-m", "app", "diff", "--help"],
    }


def environment() -> dict[str, str]:
    """The caller's, without envparity's own variables (help reads no config anyway)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENVPARITY_")}
    env["COLUMNS"] = "100"
    return env


@dataclass(frozen=True)
class Run:
    wall: float  # what a person waits
    cpu: float  # the process's user + system time: less moved by other load on the machine


def once(argv: list[str], cwd: str, env: dict[str, str]) -> Run:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0 or (argv[-1] == "--help" and "Usage" not in done.stdout):
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(elapsed, cpu)


@dataclass
class Imports:
    """`import app.cli` under -X importtime: each top-level package's own time (its modules'
    time, summed), and each outside import that envparity's own modules make (cumulative: what
    it pulls in with it), in seconds."""

    own: dict[str, float]
    edges: dict[tuple[str, str], float]


def parse(stderr: str) -> Imports:
    own: dict[str, float] = defaultdict(float)
    edges: dict[tuple[str, str], float] = {}
    waiting: list[tuple[int, str, float]] = []  # imports whose importer is not printed yet
    # An import is printed when it ends, so after everything it imported, one level deeper.
    for line in stderr.splitlines():
        match = IMPORT_LINE.match(line)
        if match is None:
            continue
        self_us, cumulative_us, indent, module = match.groups()
        depth = len(indent)
        own[module.split(".")[0]] += int(self_us) / 1e6
        inner = [w for w in waiting if w[0] > depth]
        waiting = [w for w in waiting if w[0] <= depth]
        if module.split(".")[0] in OURS:
            for _, child, seconds in inner:
                if child.split(".")[0] not in OURS:
                    edges[(module, child)] = seconds
        waiting.append((depth, module, int(cumulative_us) / 1e6))
    return Imports(dict(own), edges)


def imports(cwd: str, env: dict[str, str], runs: int = 3) -> Imports:
    """The best of `runs` for every figure."""
    best = Imports({}, {})
    for _ in range(runs):
        done = subprocess.run(
            [PYTHON, "-X", "importtime", "-c", "import app.cli"],
            cwd=cwd, env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        run = parse(done.stderr)
        for name, seconds in run.own.items():
            best.own[name] = min(best.own.get(name, seconds), seconds)
        for edge, seconds in run.edges.items():
            best.edges[edge] = min(best.edges.get(edge, seconds), seconds)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--top", type=int, default=12, help="packages listed by import time")
    args = parser.parse_args()
    todo = commands()
    env = environment()
    times: dict[str, list[Run]] = {name: [] for name in todo}
    with tempfile.TemporaryDirectory() as cwd:  # no envparity.yaml or .env nearby
        for argv in todo.values():
            once(argv, cwd, env)  # unmeasured: the file cache and bytecode
        for _ in range(args.runs):
            for name, argv in todo.items():
                times[name].append(once(argv, cwd, env))
        by_package = imports(cwd, env)

    best = {name: min(run.wall for run in runs) for name, runs in times.items()}
    cpu = {name: min(run.cpu for run in runs) for name, runs in times.items()}
    bare = best["python -c pass (reference)"]
    print(f"best of {args.runs}, Python {sys.version.split()[0]} at {PYTHON}")
    print(f"{'command':<28} {'wall':>8} {'over bare':>10} {'cpu':>8}   wall of each run")
    for name, runs in times.items():
        over = "" if name.startswith("python -c") else f"+{best[name] - bare:.3f} s"
        listed = ", ".join(f"{run.wall:.3f}" for run in runs)
        print(f"{name:<28} {best[name]:>6.3f} s {over:>10} {cpu[name]:>6.3f} s   {listed}")

    total = sum(by_package.own.values())
    print(f'\npython -X importtime -c "import app.cli": {total:.3f} s of imports, by package')
    print(f"{'package':<28} {'own time':>9} {'share':>6}")
    ranked = sorted(by_package.own.items(), key=lambda item: item[1], reverse=True)
    for package, own in ranked[: args.top]:
        print(f"{package:<28} {own:>7.3f} s {own / total:>6.0%}")
    print("\noutside imports made by envparity's modules (cumulative: with what they pull in)")
    edges = sorted(by_package.edges.items(), key=lambda item: item[1], reverse=True)
    for (importer, module), seconds in edges[: args.top]:
        print(f"{seconds:>7.3f} s  {module:<32} from {importer}")

    slowest = max(best["envparity --help"], best["envparity diff --help"])
    print(f"\nenvparity --help / diff --help: {slowest:.3f} s at worst (target < {TARGET} s)")
    ok = slowest < TARGET
    print("targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
