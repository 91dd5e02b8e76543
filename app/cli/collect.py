"""Commands that write the config or bring snapshots in and out: init, validate, scan, push,
export, and what the sources need (source-types, iam-policy)."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, BinaryIO, cast

import typer
from rich.markup import escape
from rich.table import Table

from app.cli.common import (
    ApiOption,
    ConfigOption,
    database_reason,
    deliver_alerts,
    err,
    errors,
    out,
    print_outcome,
    print_table,
    progress,
    runtime,
    setup_logging,
    unit_of_work,
    write_file,
)
from app.errors import EnvparityError, ScanInProgress
from app.states import ScanTrigger, SnapshotStatus

if TYPE_CHECKING:  # loaded by the commands that use them (start-up: docs/performance.md)
    from app import runtime as runtime_mod
    from app.config import Config

STARTER = Path(__file__).parents[1] / "starter.yaml"


def init(
    path: Annotated[Path, typer.Argument(metavar="PATH", help="Where to write it.")] = Path(
        "envparity.yaml"
    ),
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter envparity.yaml.

    Example: envparity init ops/envparity.yaml"""
    if path.exists() and not force:
        err.print(f"[red]error:[/red] {path} exists; pass --force to overwrite it")
        raise typer.Exit(2)
    write_file(path, STARTER.read_text(encoding="utf-8"))
    out.print(f"wrote {path}: edit its environments and sources, then `envparity validate`")


def validate(
    config: ConfigOption = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="Check the file only; reach no source or database.")
    ] = False,
) -> None:
    """Check the config, every source's options and (unless --offline) that sources answer.

    Example: envparity validate --offline"""
    from sqlalchemy.exc import SQLAlchemyError

    from app import runtime as runtime_mod
    from app.config import find_config_path, load_config
    from app.db import migrate
    from app.db.session import make_engine
    from app.settings import get_settings
    from collectors.base import FetchContext

    with errors():
        settings = get_settings()
        cfg = load_config(find_config_path(config, settings.config))
        out.print(f"{cfg.path}: valid ({len(cfg.environments)} environments)")
        if offline:
            return
        failures = 0
        redactor = runtime_mod.redactor_for(settings, cfg)
        for env in cfg.environments.values():
            from collectors.runner import run_source

            ctx = FetchContext(
                env.name, cfg.base_dir, env.vars, redactor.hash, cfg.model.limits.limits()
            )
            for options in env.sources:
                outcome = run_source(options, ctx, redactor)
                failures += outcome.status != "ok"  # the collectors' Literal
                print_outcome(env.name, outcome)
        url = runtime_mod.database_url_for(settings, cfg)
        shown = url.render_as_string(hide_password=True)
        if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
            out.print(f"database {shown}: will be created on first use")
            if failures:
                raise typer.Exit(2)
            return
        try:
            engine = make_engine(url, cfg.model.database)
            current = migrate.current_revision(engine)
            engine.dispose()
            state = "at head" if current == migrate.head_revision() else f"at {current or 'empty'}"
            out.print(f"database {shown}: reachable, {state}")
        except SQLAlchemyError as exc:
            failures += 1
            out.print(f"database {shown}: [red]unreachable[/red]: {escape(database_reason(exc))}")
        if failures:
            raise typer.Exit(2)


# --------------------------------------------------------------------------- scan

_EXIT_BY_STATUS = {SnapshotStatus.COMPLETE: 0, SnapshotStatus.PARTIAL: 1, SnapshotStatus.FAILED: 2}
_COLOURS = {
    SnapshotStatus.COMPLETE: "green",
    SnapshotStatus.PARTIAL: "yellow",
    SnapshotStatus.FAILED: "red",
}


def scan(
    environments: Annotated[
        list[str] | None, typer.Argument(metavar="ENVIRONMENTS", help="Environments to scan.")
    ] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Scan every environment with sources.")
    ] = False,
    wait: Annotated[
        float,
        typer.Option(
            metavar="WAIT", help="Seconds to wait for a scan of the same environment to end."
        ),
    ] = 0.0,
    config: ConfigOption = None,
) -> None:
    """Collect snapshots now. Exit 0 complete, 1 partial, 2 failed.

    Example: envparity scan staging production   (or: envparity scan --all)"""
    setup_logging()
    with errors(), runtime(config) as rt:
        names = _scan_targets(rt.config, environments or [], all_)
        worst = run_scans(rt, names, wait)
        deliver_alerts(rt)
    raise typer.Exit(worst)


def _scan_targets(cfg: Config, names: list[str], all_: bool) -> list[str]:
    if all_:
        skipped = [e.name for e in cfg.environments.values() if e.push_only]
        if skipped:
            out.print(f"push-only, not scanned: {', '.join(skipped)}")
        return [e.name for e in cfg.environments.values() if not e.push_only]
    if not names:
        raise EnvparityError("name the environments to scan, or pass --all")
    from app.snapshots.service import scannable

    for name in names:
        scannable(cfg, name)
    return names


class _Stopped(BaseException):
    """SIGTERM or SIGINT during a scan: a BaseException, so that no `except Exception` on the
    way swallows it and every scan's `finally` releases its lock."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


@contextmanager
def _stop_on_signals() -> Iterator[None]:
    """SIGTERM and SIGINT kill the commands a scan is running (their whole process groups)
    and unwind the scan, which records itself as failed and releases the environment's lock;
    then the process exits at once (128 + the signal) rather than wait for sources that
    cannot be interrupted (an HTTP read) to reach their timeout."""
    from collectors import commands

    def stop(signum: int, _frame: FrameType | None) -> None:
        commands.terminate_all()
        raise _Stopped(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    except _Stopped as exc:
        commands.terminate_all()
        err.print(f"{exc}: the scan was recorded as failed and its lock released")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(128 + exc.signum)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_scans(rt: runtime_mod.Runtime, names: list[str], wait: float) -> int:
    """Scans `names` one after the other and prints their summary: the worst exit code."""
    from app.alerts.evaluate import evaluating_scanner

    scanner = evaluating_scanner(rt)
    worst = 0
    results = []
    with _stop_on_signals(), progress() as shown:
        for name in names:
            try:
                result = scanner.scan(name, trigger=ScanTrigger.CLI, progress=shown, wait=wait)
            except ScanInProgress as exc:
                err.print(f"[yellow]{escape(exc.message)}[/yellow] (use --wait SECONDS to wait)")
                worst = 2
                continue
            results.append(result)
            worst = max(worst, _EXIT_BY_STATUS[result.status])
    if not results:
        return worst
    table = Table(title="Scan summary", title_justify="left")
    for column in ("environment", "snapshot", "status", "sources ok", "resources"):
        table.add_column(column)
    for r in results:
        colour = _COLOURS[r.status]
        ok = sum(s.status == "ok" for s in r.sources)  # SourceOutcome: the collectors' Literal
        table.add_row(
            r.environment,
            f"#{r.snapshot_id}",
            f"[{colour}]{r.status}[/{colour}]",
            f"{ok}/{len(r.sources)}",
            str(r.resource_count),
        )
    print_table(table)
    return worst


# --------------------------------------------------------------------------- push / export


def push(
    environment: Annotated[
        str, typer.Argument(metavar="ENVIRONMENT", help="The environment the snapshot is of.")
    ],
    file: Annotated[
        str, typer.Argument(metavar="FILE", help="A push-format JSON file, or - for stdin.")
    ],
    api: ApiOption = None,
    config: ConfigOption = None,
) -> None:
    """Store a snapshot from a file in the push format.

    Example: envparity push host-fleet snapshot.json"""
    setup_logging()
    with errors():
        if api:
            _push_to(api, environment, file)
            return
        from app.alerts.evaluate import Evaluator
        from app.snapshots import service

        with _opened(file) as raw, runtime(config) as rt:
            with rt.sessions.begin() as session:
                snapshot_id, status = service.push_stream(
                    session, rt.config, environment, raw, rt.redactor, file
                )
            out.print(f"{environment}: stored snapshot #{snapshot_id} ({status})")
            Evaluator(rt.config, rt.sessions, rt.clock).after_snapshot(environment)
            deliver_alerts(rt)


def _push_to(api: str, environment: str, file: str) -> None:
    """Sends the file to a server as it is, once it has been read here as JSON (a syntax
    error is named with the file's line here, rather than the server's "the body")."""
    import shutil
    import tempfile

    from app.client import ApiClient
    from app.settings import get_settings
    from app.snapshots import jsonstream

    with _opened(file) as raw, tempfile.TemporaryFile() as copy:
        if not raw.seekable():  # stdin: read once, kept to send
            shutil.copyfileobj(raw, copy)
            raw = cast(BinaryIO, copy)
            raw.seek(0)
        for _ in jsonstream.events(raw, file):
            pass
        raw.seek(0)
        client = ApiClient(api, get_settings().token, timeout=300)
        try:
            answer = client.request(
                "POST",
                f"/environments/{environment}/snapshots",
                content=iter(lambda: raw.read(1 << 20), b""),
                headers={"Content-Type": "application/json"},
            )
        finally:
            client.close()
    stored = answer.json()
    out.print(f"{environment}: stored snapshot #{stored['snapshot_id']} ({stored['status']})")


@contextmanager
def _opened(file: str) -> Iterator[BinaryIO]:
    """The file (or stdin) to read a push from, as it is read."""
    if file == "-":
        yield sys.stdin.buffer
        return
    try:
        handle = open(file, "rb")  # noqa: SIM115 (closed below; OSError named first)
    except OSError as exc:
        raise EnvparityError(f"{file}: cannot read: {exc.strerror}") from None
    with handle:
        yield handle


def export(
    environment: Annotated[str, typer.Argument(metavar="ENVIRONMENT", help="The environment.")],
    snapshot_id: Annotated[
        int | None, typer.Argument(metavar="SNAPSHOT-ID", help="A snapshot id [default: latest].")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", metavar="FILE", help="Write to a file.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Write a snapshot in the push format.

    Example: envparity export production 42 -o production.json"""
    with errors(), unit_of_work(config) as (rt, session):
        from app.snapshots import service

        document = service.export(session, environment, snapshot_id, rt.config)
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        write_file(output, text)
        err.print(f"wrote snapshot #{document['snapshot_id']} to {output}")


# --------------------------------------------------------------------------- sources


def iam_policy(
    all_types: Annotated[
        bool, typer.Option("--all", help="Every AWS source type, not only those the config uses.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Print the least-privilege, read-only IAM policy the config's AWS sources need.

    Example: envparity iam-policy > envparity-policy.json"""
    from app.config import find_config_path, load_config
    from app.settings import get_settings
    from collectors import registry

    with errors():
        types = registry.source_types()
        if all_types:
            actions = sorted({a for cls in types.values() for a in getattr(cls, "iam_actions", ())})
        else:
            cfg = load_config(find_config_path(config, get_settings().config))
            actions = sorted(
                {
                    action
                    for env in cfg.environments.values()
                    for options in env.sources
                    for action in types[options.type]().iam_actions_for(options)
                }
            )
        if not actions:
            raise EnvparityError("no AWS source in the config (use --all for every AWS type)")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "EnvparityReadOnly", "Effect": "Allow", "Action": actions, "Resource": "*"}
        ],
    }
    sys.stdout.write(json.dumps(policy, indent=2) + "\n")


def source_types() -> None:
    """List the source types this installation knows.

    Example: envparity source-types"""
    from collectors import registry

    table = Table("type", "summary")
    for name, cls in registry.source_types().items():
        table.add_row(name, cls.summary)
    print_table(table)
