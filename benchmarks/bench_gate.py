"""The gate endpoint under load, against a bare FastAPI endpoint serving the same JSON.

Run: .venv/bin/python benchmarks/bench_gate.py [--duration 10] [--packages 300]
(needs `wrk`: apt-get install wrk)

`envparity serve` with its defaults on loopback answers GET /api/v1/gate for a seeded
comparison (auth on, a gate token); the reference, in the same run, is a bare FastAPI app
returning the same JSON read from SQLite, with no auth. wrk loads each in turn.

Then the gate again, at 10 clients, while a push to staging lands every 2 s (each push is
stored and its comparison evaluated by the server, as every push is), against the same gate
in the quiet run before.

Targets (issue 5): the gate reaches >= 50% of the bare endpoint's requests/s at 50
concurrent clients, and its p99 is <= 25 ms at 10 concurrent clients. Issue 15: while the
pushes land, the gate keeps >= 50% of its quiet throughput at 10 clients, with p99 <= 100 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

BARE = textwrap.dedent(
    """
    import sqlite3, sys
    from fastapi import FastAPI, Response
    app = FastAPI()
    DB = sys.argv[1]

    @app.get("/gate")
    def gate() -> Response:
        conn = sqlite3.connect(DB)
        body = conn.execute("SELECT body FROM answer").fetchone()[0]
        conn.close()
        return Response(body, media_type="application/json")

    if __name__ == "__main__":
        import uvicorn
        uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, headers=headers, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def wrk(url: str, connections: int, seconds: int, token: str | None) -> dict[str, float]:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if token:
        command[1:1] = ["-H", f"Authorization: Bearer {token}"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]

    def percentile(p: str) -> float:
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        assert m, out
        value, unit = float(m[1]), m[2]
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise RuntimeError(f"{url}: {non2xx[1]} error answers\n{out}")
    return {"rps": rps, "p50": percentile("50"), "p99": percentile("99")}


def seed(work: Path, packages: int) -> tuple[str, str]:
    for env, pool in (("staging", 10), ("production", 20)):
        folder = work / env
        folder.mkdir()
        (folder / "app.yaml").write_text(
            json.dumps({"pool": pool, "settings": {f"key{i}": f"value{i}" for i in range(200)}})
        )
        (folder / "requirements.txt").write_text(
            "\n".join(f"package-{i}==1.{i % 7}.{i % 3}" for i in range(packages)) + "\n"
        )
    (work / "envparity.yaml").write_text(
        textwrap.dedent(
            """
            environments:
              staging:
                sources:
                  - {type: file, name: app, path: staging/app.yaml}
                  - type: command
                    name: packages
                    command: [cat, staging/requirements.txt]
                    parser: pip_freeze
              production:
                sources:
                  - {type: file, name: app, path: production/app.yaml}
                  - type: command
                    name: packages
                    command: [cat, production/requirements.txt]
                    parser: pip_freeze
            comparisons:
              - {source: staging, target: production, gate: {fail_on: warning, max_age: 1h}}
            """
        )
    )
    envparity = str(BIN / "envparity")
    subprocess.run([envparity, "scan", "--all"], cwd=work, check=True, capture_output=True)
    token, writer = (
        subprocess.run(
            [envparity, "token", "create", "--scope", scope],
            cwd=work,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        for scope in ("gate", "write")
    )
    return token, writer


class Pusher(threading.Thread):
    """Pushes staging's snapshot every `every` seconds, one value changed each time, so that
    each push is a new snapshot and its comparison is judged again."""

    def __init__(self, url: str, token: str, document: dict[str, object], every: float) -> None:
        super().__init__(daemon=True)
        self.url, self.token, self.document, self.every = url, token, document, every
        self.stop = threading.Event()
        self.seconds: list[float] = []

    def run(self) -> None:
        n = 0
        with httpx.Client(timeout=120) as client:
            while not self.stop.is_set():
                n += 1
                doc = json.loads(json.dumps(self.document))
                doc["taken_at"] = datetime.now(UTC).isoformat()
                for resource in doc["resources"]:  # type: ignore[attr-defined]
                    if resource["attributes"].get("pool") is not None:
                        resource["attributes"]["pool"] = 10 + n % 5
                started = time.monotonic()
                answer = client.post(
                    self.url, json=doc, headers={"Authorization": f"Bearer {self.token}"}
                )
                answer.raise_for_status()
                self.seconds.append(time.monotonic() - started)
                self.stop.wait(max(0.0, self.every - (time.monotonic() - started)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--packages", type=int, default=300, help="resources per environment")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {
            **os.environ,
            "ENVPARITY_SECRET_KEY": "ab" * 32,
            "ENVPARITY_CONFIG": str(work / "envparity.yaml"),
        }
        env.pop("ENVPARITY_DATABASE_URL", None)
        os.environ.update({k: v for k, v in env.items() if k.startswith("ENVPARITY_")})
        token, writer = seed(work, args.packages)
        document = json.loads(
            subprocess.run(
                [str(BIN / "envparity"), "export", "staging"],
                cwd=work,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )
        port = free_port()
        serve = subprocess.Popen(
            [str(BIN / "envparity"), "serve", "--port", str(port)], cwd=work, env=env
        )
        gate_url = f"http://127.0.0.1:{port}/api/v1/gate?source=staging&target=production"
        headers = {"Authorization": f"Bearer {token}"}
        bare_port = free_port()
        bare = None
        try:
            wait_for(gate_url, headers)
            answer = httpx.get(gate_url, headers=headers).text
            bare_db = work / "bare.db"
            conn = sqlite3.connect(bare_db)
            conn.execute("CREATE TABLE answer (body TEXT)")
            conn.execute("INSERT INTO answer VALUES (?)", (answer,))
            conn.commit()
            conn.close()
            script = work / "bare.py"
            script.write_text(BARE)
            bare = subprocess.Popen([sys.executable, str(script), str(bare_db), str(bare_port)])
            bare_url = f"http://127.0.0.1:{bare_port}/gate"
            wait_for(bare_url)
            results = {}
            for name, url, auth in (("gate", gate_url, token), ("bare", bare_url, None)):
                wrk(url, 10, 2, auth)  # warm up
                results[name] = {
                    "c50": wrk(url, 50, args.duration, auth),
                    "c10": wrk(url, 10, args.duration, auth),
                }
            push_url = f"http://127.0.0.1:{port}/api/v1/environments/staging/snapshots"
            pusher = Pusher(push_url, writer, document, 2.0)
            pusher.start()
            try:
                time.sleep(0.5)
                pushing = wrk(gate_url, 10, args.duration, token)
            finally:
                pusher.stop.set()
                pusher.join(120)
            final = httpx.get(gate_url, headers=headers).json()
        finally:
            serve.terminate()
            serve.wait(10)
            if bare is not None:
                bare.terminate()
                bare.wait(10)
    print(f"answer: {len(answer)} bytes of gate JSON; wrk, {args.duration} s per run")
    print(f"{'':28}{'req/s @50':>11}{'p50 @10':>10}{'p99 @10':>10}")
    for name, label in (("gate", "envparity gate (auth on)"), ("bare", "bare FastAPI + SQLite")):
        r = results[name]
        print(
            f"{label:28}{r['c50']['rps']:>11.0f}{r['c10']['p50']:>8.2f}ms{r['c10']['p99']:>8.2f}ms"
        )
    share = results["gate"]["c50"]["rps"] / results["bare"]["c50"]["rps"]
    p99 = results["gate"]["c10"]["p99"]
    print(f"gate throughput: {share:.0%} of the bare endpoint (target >= 50%)")
    print(f"gate p99 at 10 clients: {p99:.1f} ms (target <= 25 ms)")
    quiet = results["gate"]["c10"]
    kept = pushing["rps"] / quiet["rps"]
    print(
        f"while {len(pusher.seconds)} pushes landed (one every 2 s, each "
        f"{min(pusher.seconds):.2f}-{max(pusher.seconds):.2f} s with its evaluation):"
    )
    print(
        f"  gate @10: {pushing['rps']:.0f} req/s (quiet {quiet['rps']:.0f}: {kept:.0%}, "
        f"target >= 50%), p50 {pushing['p50']:.2f} ms, p99 {pushing['p99']:.2f} ms "
        "(target <= 100 ms)"
    )
    print(f"  the gate after the last push judged: {final['reasons'][0]}")
    ok = share >= 0.5 and p99 <= 25 and kept >= 0.5 and pushing["p99"] <= 100
    print("targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
