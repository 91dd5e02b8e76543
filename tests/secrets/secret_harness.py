"""What the secret corpus tests share: an installation in a folder, run through the real CLI
(subprocesses, logs at DEBUG), a local JSON server for `http` sources, the dashboard in
process, the database's raw bytes, and the search for plain-text secrets in all of it."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support import database_bytes, installation_env

WINDOW = 16  # a piece of a secret this long counts as a leak (a value cut in a table)


@dataclass
class Run:
    """One `envparity` command as a user runs it: its exit status and everything it wrote."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float = 0.0

    @property
    def name(self) -> str:
        return "envparity " + " ".join(self.args)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def json(self) -> Any:
        return json.loads(self.stdout)

    def describe(self) -> str:
        return f"{self.name} exited {self.returncode}\n{self.stdout[-3000:]}\n{self.stderr[-3000:]}"


@dataclass
class Installation:
    """A project folder, its database and the process environment its commands get."""

    root: Path
    database_url: str
    extra_env: dict[str, str] = field(default_factory=dict)
    runs: list[Run] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)  # every text we wrote: the corpus's source

    @property
    def config(self) -> Path:
        return self.root / "envparity.yaml"

    @property
    def env(self) -> dict[str, str]:
        extra = {
            "ENVPARITY_DATABASE_URL": self.database_url,
            "ENVPARITY_LOG_LEVEL": "DEBUG",
            "HOME": str(self.root / "home"),
            "COLUMNS": "1000",  # tables never fold a value over two lines
            **self.extra_env,
        }
        return installation_env(self.root, **extra)

    def write(self, relative: str, content: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        self.inputs.append(content)
        return path

    def run(self, *args: str) -> Run:
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "app", *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        run = Run(tuple(args), proc.returncode, proc.stdout, proc.stderr)
        run.seconds = time.monotonic() - started
        self.runs.append(run)
        return run

    def run_batch(self, commands: Iterable[tuple[str, ...]], processes: int = 2) -> list[Run]:
        """Many read-mostly commands (diff, gate, export ...) through the real CLI, several to
        a process: each process starts once (a fresh interpreter costs a second or two a
        command), runs its share in turn and hands back what each one wrote. Logs go to each
        command's own stderr, at this installation's level (DEBUG)."""
        commands = [tuple(c) for c in commands]
        shares = [commands[n::processes] for n in range(processes)]
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=processes) as pool:
            answers = list(pool.map(self._batch, [share for share in shares if share]))
        seconds = time.monotonic() - started
        by_args = {run.args: run for answer in answers for run in answer}
        runs = [by_args[args] for args in commands]
        for run in runs:
            run.seconds = seconds / len(runs)
        self.runs += runs
        return runs

    def _batch(self, commands: list[tuple[str, ...]]) -> list[Run]:
        proc = subprocess.run(
            [sys.executable, "-c", _BATCH],
            cwd=self.root,
            env=self.env,
            input=json.dumps(commands),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if proc.returncode != 0:
            raise AssertionError(f"the batch of commands crashed:\n{proc.stderr[-5000:]}")
        runs = [
            Run(tuple(r["args"]), r["returncode"], r["stdout"], r["stderr"])
            for r in json.loads(proc.stdout)
        ]
        if proc.stderr.strip():  # anything written outside the commands' own streams
            runs[0].stderr += proc.stderr
        return runs

    def database_bytes(self) -> bytes:
        return database_bytes(self.database_url)

    @contextmanager
    def process_environment(self) -> Iterator[None]:
        """This installation's variables in this process (for the app in process)."""
        with pytest.MonkeyPatch.context() as mp:
            for name in list(os.environ):
                if name.startswith("ENVPARITY_"):
                    mp.delenv(name)
            for name, value in self.env.items():
                mp.setenv(name, value)
            yield

    @contextmanager
    def client(self) -> Iterator[Any]:
        """The app (dashboard and API) in process, signed out (the config sets auth off)."""
        from fastapi.testclient import TestClient

        from app import runtime
        from app.main import create_app

        with self.process_environment():
            rt = runtime.load(self.config)
        try:
            with TestClient(create_app(runtime=rt), follow_redirects=False) as client:
                yield client
        finally:
            rt.close()


# Runs `envparity` commands (a JSON list of argument lists on stdin) in one interpreter with
# Typer's CliRunner, and prints what each wrote and its exit status as JSON. The root logger
# writes to whichever stderr is current, so each command's logs land in its own stderr; the
# level comes from ENVPARITY_LOG_LEVEL as in `envparity` itself.
_BATCH = """
import io, json, logging, os, sys, traceback

class CurrentStderr(io.TextIOBase):
    def write(self, text):
        return sys.stderr.write(text)

    def flush(self):
        sys.stderr.flush()

handler = logging.StreamHandler(CurrentStderr())
handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
logging.getLogger().addHandler(handler)
logging.getLogger().setLevel(os.environ.get("ENVPARITY_LOG_LEVEL", "WARNING").upper())

from typer.testing import CliRunner
from app.cli import app

results = []
for args in json.load(sys.stdin):
    result = CliRunner().invoke(app, args, catch_exceptions=True)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    results.append(
        {"args": args, "returncode": result.exit_code, "stdout": result.stdout, "stderr": stderr}
    )
sys.__stdout__.write(json.dumps(results))
"""


# --------------------------------------------------------------------------- a JSON server


class JsonServer:
    """A local HTTP server answering fixed JSON documents by path (the query is ignored)."""

    def __init__(self, documents: Mapping[str, Any]) -> None:
        self.documents = dict(documents)
        self.requests: list[tuple[str, dict[str, str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append((self.path, dict(self.headers)))
                document = server.documents.get(self.path.split("?", 1)[0])
                body = json.dumps(document).encode()
                self.send_response(200 if document is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


# --------------------------------------------------------------------------- logs in process


@contextmanager
def captured_logs() -> Iterator[list[str]]:
    """Every log record of this process at DEBUG and above, formatted, while the block runs."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


# --------------------------------------------------------------------------- finding leaks


@dataclass
class Needles:
    """Plain texts to look for, each owned by a named case, and their WINDOW-long pieces."""

    owners: dict[str, list[str]] = field(default_factory=dict)  # needle -> cases

    def add(self, case: str, needle: str) -> None:
        self.owners.setdefault(needle, [])
        if case not in self.owners[needle]:
            self.owners[needle].append(case)

    def find(self, artifacts: Mapping[str, str]) -> dict[str, list[str]]:
        """{case: ["ARTIFACT: how", ...]} for every needle found whole, or in a piece of
        WINDOW characters (a value cut short), in any artifact."""
        pieces: dict[str, set[str]] = {}
        for needle in self.owners:
            for start in range(len(needle) - WINDOW + 1):
                pieces.setdefault(needle[start : start + WINDOW], set()).add(needle)
        found: dict[str, list[str]] = {}
        for name, content in artifacts.items():
            whole = {n for n in self.owners if n in content}
            # a whole secret's own pieces say nothing more (nor do they reveal another
            # secret that shares them, such as production's variant of staging's)
            covered = bytearray(len(content) + 1)
            for needle in whole:
                start = content.find(needle)
                while start != -1:
                    covered[start : start + len(needle) - WINDOW + 1] = b"\1" * (
                        len(needle) - WINDOW + 1
                    )
                    start = content.find(needle, start + 1)
            partial: dict[str, str] = {}  # needle -> the first piece of it found
            for start in range(len(content) - WINDOW + 1):
                piece = content[start : start + WINDOW]
                hit = pieces.get(piece)
                if hit and not covered[start]:
                    for needle in hit - whole:
                        partial.setdefault(needle, piece)
            for needle in sorted(whole | partial.keys()):
                how = "whole" if needle in whole else f"the piece {partial[needle]!r}"
                for case in self.owners[needle]:
                    found.setdefault(case, []).append(f"{name}: {how} of {_short(needle)}")
        return found


def _short(needle: str) -> str:
    return repr(needle if len(needle) <= 40 else needle[:37] + "...")


def as_text(data: bytes) -> str:
    """Bytes searched as text, one character per byte (the database is not all UTF-8)."""
    return data.decode("latin-1")
