"""The `envparity` command line (Typer + Rich); the only place that exits the process."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from app import runtime as runtime_mod
from app.config import find_config_path, load_config, parse_duration
from app.db import migrate
from app.db.session import make_engine
from app.db.types import utcnow
from app.errors import EnvparityError, InvalidInput, ScanInProgress
from app.reports import FORMATS
from app.settings import get_settings
from app.snapshots.schemas import format_time
from collectors import registry
from collectors.base import CATEGORIES, FetchContext

if TYPE_CHECKING:  # the heavier modules load in the commands that use them
    from rich.progress import Progress

    from app.gate import service as gate_service
    from collectors.runner import SourceOutcome


def _render() -> Any:
    from app.reports import render  # Rich tables and XML: not needed to print stored JSON

    return render


def _gate() -> Any:
    from app.gate import service

    return service


def _tokens(session: Any) -> Any:
    from app.auth.tokens import TokenRepository

    return TokenRepository(session)


app = typer.Typer(
    name="envparity",
    help="Detect drift between deployment environments.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(db_app, name="db")
baseline_app = typer.Typer(
    help="The approved snapshot of an environment.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(baseline_app, name="baseline")
token_app = typer.Typer(help="API tokens.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(token_app, name="token")
waiver_app = typer.Typer(
    help="Reviewed, expected differences.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(waiver_app, name="waiver")
snapshots_app = typer.Typer(
    help="Stored snapshots: list them, remove one.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(snapshots_app, name="snapshots")
secrets_app = typer.Typer(
    help="What is treated as a secret, and where.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(secrets_app, name="secrets")
alerts_app = typer.Typer(
    help="The alert outbox: what was sent, what waits, what failed.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(alerts_app, name="alerts")

# No emoji codes: `tag:KEY:` in a message must print as written.
out = Console(highlight=False, soft_wrap=True, emoji=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Config file [default: $ENVPARITY_CONFIG, else ./envparity.yaml].",
        show_default=False,
    ),
]

F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def _errors() -> Iterator[None]:
    """Turns envparity's errors into a message on stderr and exit code 2."""
    try:
        yield
    except EnvparityError as exc:
        err.print(f"[red]error:[/red] {escape(exc.message)}")
        if isinstance(exc, InvalidInput) and isinstance(exc.detail, list):
            for problem in exc.detail[1:10]:
                err.print(f"  {escape(problem['path'])}: {escape(problem['message'])}")
        raise typer.Exit(exc.exit_code) from None
    except SQLAlchemyError as exc:
        # Reachability and schema problems; the statement and parameters are left out.
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        err.print(f"[red]error:[/red] database: {escape(reason)}")
        raise typer.Exit(2) from None


def _setup_logging() -> None:
    level = get_settings().log_level.upper()
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    # HTTP clients log each request's URL at INFO and below; a Slack or webhook URL is a
    # secret, so they speak only of warnings, whatever the level.
    for noisy in ("httpx", "httpcore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# --------------------------------------------------------------------------- init / validate

STARTER = Path(__file__).with_name("starter.yaml")


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Where to write it.")] = Path("envparity.yaml"),
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter envparity.yaml."""
    if path.exists() and not force:
        err.print(f"[red]error:[/red] {path} exists; pass --force to overwrite it")
        raise typer.Exit(2)
    path.write_text(STARTER.read_text(encoding="utf-8"), encoding="utf-8")
    out.print(f"wrote {path}: edit its environments and sources, then `envparity validate`")


@app.command()
def validate(
    config: ConfigOption = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="Check the file only; reach no source or database.")
    ] = False,
) -> None:
    """Check the config, every source's options and (unless --offline) that sources answer."""
    with _errors():
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
                failures += outcome.status != "ok"
                _print_outcome(env.name, outcome)
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
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            out.print(f"database {shown}: [red]unreachable[/red]: {escape(reason)}")
        if failures:
            raise typer.Exit(2)


# --------------------------------------------------------------------------- scan


class _PlainProgress:
    def started(self, environment: str, sources: list[str]) -> None:
        out.print(f"{environment}: scanning {len(sources)} sources")

    def source_done(self, environment: str, outcome: SourceOutcome) -> None:
        _print_outcome(environment, outcome)


class _RichProgress:
    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, Any] = {}

    def started(self, environment: str, sources: list[str]) -> None:
        self.tasks[environment] = self.progress.add_task(environment, total=len(sources))

    def source_done(self, environment: str, outcome: SourceOutcome) -> None:
        self.progress.advance(self.tasks[environment])
        self.progress.console.print(_outcome_line(environment, outcome))


def _outcome_line(environment: str, outcome: SourceOutcome) -> str:
    if outcome.status == "ok":
        return (
            f"{escape(environment)}: {escape(outcome.name)} [green]ok[/green] "
            f"({len(outcome.resources)} resources, {outcome.duration_ms} ms)"
        )
    error = escape(outcome.error or "")
    return f"{escape(environment)}: {escape(outcome.name)} [red]failed[/red]: {error}"


def _print_outcome(environment: str, outcome: SourceOutcome) -> None:
    out.print(_outcome_line(environment, outcome))


_EXIT_BY_STATUS = {"complete": 0, "partial": 1, "failed": 2}


@app.command()
def scan(
    environments: Annotated[list[str] | None, typer.Argument(help="Environments to scan.")] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Scan every environment with sources.")
    ] = False,
    wait: Annotated[
        float, typer.Option(help="Seconds to wait for a scan of the same environment to end.")
    ] = 0.0,
    config: ConfigOption = None,
) -> None:
    """Collect snapshots now. Exit 0 complete, 1 partial, 2 failed."""
    _setup_logging()
    with _errors():
        rt = runtime_mod.load(config)
        try:
            names = _scan_targets(rt.config, environments or [], all_)
            worst = _run_scans(rt, names, wait)
            _deliver_alerts(rt)
        finally:
            rt.close()
    raise typer.Exit(worst)


def _scan_targets(cfg: Any, names: list[str], all_: bool) -> list[str]:
    if all_:
        skipped = [e.name for e in cfg.environments.values() if e.push_only]
        if skipped:
            out.print(f"push-only, not scanned: {', '.join(skipped)}")
        return [e.name for e in cfg.environments.values() if not e.push_only]
    if not names:
        raise EnvparityError("name the environments to scan, or pass --all")
    for name in names:
        if cfg.environment(name).push_only:
            raise EnvparityError(
                f"environment {name!r} has no sources: it is push-only "
                "(`envparity push` or the push endpoint)"
            )
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

    def stop(signum: int, _frame: Any) -> None:
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


def _run_scans(rt: runtime_mod.Runtime, names: list[str], wait: float) -> int:
    from app.alerts.evaluate import evaluating_scanner

    scanner = evaluating_scanner(rt)
    worst = 0
    results = []
    with _stop_on_signals(), _progress() as progress:
        for name in names:
            try:
                result = scanner.scan(name, trigger="cli", progress=progress, wait=wait)
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
        colour = {"complete": "green", "partial": "yellow", "failed": "red"}[r.status]
        ok = sum(s.status == "ok" for s in r.sources)
        table.add_row(
            r.environment,
            f"#{r.snapshot_id}",
            f"[{colour}]{r.status}[/{colour}]",
            f"{ok}/{len(r.sources)}",
            str(r.resource_count),
        )
    out.print(table)
    return worst


def _deliver_alerts(rt: runtime_mod.Runtime) -> None:
    """Sends the alerts the evaluations wrote, before the command exits; what cannot go
    within `alerts.deliver_timeout` stays in the outbox for serve / scheduler / next scan."""
    alerts = rt.config.model.alerts
    from app.alerts.deliver import Deliverer

    deliverer = Deliverer(rt.config, rt.sessions, rt.redactor)
    done = deliverer.drain(parse_duration(alerts.deliver_timeout).total_seconds())
    if done.delivered or done.failed or done.pending:
        parts = [f"{done.delivered} delivered"]
        if done.failed:
            parts.append(f"[red]{done.failed} failed[/red] (see `envparity alerts list`)")
        if done.pending:
            parts.append(
                f"[yellow]{done.pending} pending[/yellow] "
                "(sent by serve, scheduler or the next scan)"
            )
        err.print("alerts: " + ", ".join(parts))


@contextmanager
def _progress() -> Iterator[Any]:
    if not out.is_terminal:
        yield _PlainProgress()
        return
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} sources"),
        TimeElapsedColumn(),
        console=out,
        transient=True,
    ) as progress:
        yield _RichProgress(progress)


# --------------------------------------------------------------------------- push / export


@app.command()
def push(
    environment: Annotated[str, typer.Argument(help="The environment the snapshot is of.")],
    file: Annotated[str, typer.Argument(help="A push-format JSON file, or - for stdin.")],
    api: ApiOption = None,
    config: ConfigOption = None,
) -> None:
    """Store a snapshot from a file in the push format."""
    _setup_logging()
    with _errors():
        data = _read_json(file)
        if api:
            from app.client import ApiClient

            client = ApiClient(api, get_settings().token, timeout=300)
            try:
                answer = client.request("POST", f"/environments/{environment}/snapshots", json=data)
            finally:
                client.close()
            stored = answer.json()
            out.print(
                f"{environment}: stored snapshot #{stored['snapshot_id']} ({stored['status']})"
            )
            return
        from app.alerts.evaluate import Evaluator
        from app.snapshots import service

        rt = runtime_mod.load(config)
        try:
            with rt.sessions.begin() as session:
                snapshot_id, status = service.push(
                    session, rt.config, environment, data, rt.redactor
                )
            out.print(f"{environment}: stored snapshot #{snapshot_id} ({status})")
            Evaluator(rt.config, rt.sessions).after_snapshot(environment)
            _deliver_alerts(rt)
        finally:
            rt.close()


def _read_json(file: str) -> Any:
    from app.snapshots.schemas import load_json

    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        raise EnvparityError(f"{file}: cannot read: {exc.strerror}") from None
    return load_json(text, file)


@app.command()
def export(
    environment: Annotated[str, typer.Argument(help="The environment.")],
    snapshot_id: Annotated[
        int | None, typer.Argument(help="A snapshot id [default: latest].")
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to a file.")] = None,
    config: ConfigOption = None,
) -> None:
    """Write a snapshot in the push format."""
    with _errors(), runtime_mod.unit_of_work(config) as (_rt, session):
        from app.snapshots import service

        document = service.export(session, environment, snapshot_id)
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote snapshot #{document['snapshot_id']} to {output}")


# --------------------------------------------------------------------------- diff / gate

FormatOption = Annotated[
    str | None,
    typer.Option(
        "--format",
        "-f",
        help="table, json, markdown or junit (default: table on a terminal, json otherwise).",
        show_default=False,
    ),
]
OutputOption = Annotated[
    Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")
]
ApiOption = Annotated[
    str | None,
    typer.Option(
        "--api", help="Ask an envparity server (token from $ENVPARITY_TOKEN).", show_default=False
    ),
]
CategoryOption = Annotated[
    list[str] | None,
    typer.Option("--category", help="Only this category (repeatable).", show_default=False),
]


def _categories(values: list[str] | None) -> set[str] | None:
    if not values:
        return None
    unknown = sorted(set(values) - set(CATEGORIES))
    if unknown:
        raise InvalidInput(f"--category {unknown[0]!r} is not one of {', '.join(CATEGORIES)}")
    return set(values)


def _format(fmt: str | None) -> str:
    chosen = fmt or ("table" if out.is_terminal else "json")
    if chosen not in FORMATS:
        raise EnvparityError(f"--format must be one of {', '.join(FORMATS)}")
    return chosen


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {output}")


@app.command()
def diff(
    left: Annotated[str, typer.Argument(help="ENV, ENV@baseline, ENV@ID or ENV@2026-11-20T10:00")],
    right: Annotated[str, typer.Argument(help="The same forms as LEFT.")],
    fmt: FormatOption = None,
    output: OutputOption = None,
    category: CategoryOption = None,
    config: ConfigOption = None,
) -> None:
    """Compare two snapshots. Exit 0 no unwaived drift, 1 drift, 2 error."""
    from app.reports.stored import stored_report

    _setup_logging()
    with _errors():
        chosen = _format(fmt)
        categories = _categories(category)
        now = utcnow()
        rt = runtime_mod.load(config)
        try:
            with rt.engine.connect() as conn:
                stored = None if categories else stored_report(conn, rt.config, left, right, now)
                if stored is not None and chosen == "json":  # as stored: nothing to render
                    _emit(stored.text, output)
                    raise typer.Exit(1 if stored.unwaived else 0)
                report = stored.report(now) if stored is not None else None
            if report is None:
                from app.reports import service as reports

                with rt.sessions.begin() as session:
                    report = reports.compare_refs(session, rt.config, left, right, now)
        finally:
            rt.close()
        if categories:
            from app.reports.service import only_categories

            report = only_categories(report, categories)
        if chosen == "table" and output is None:
            out.print(_render().to_rich(report))
        else:
            _emit(_render().render(report, chosen), output)
    raise typer.Exit(1 if report.counting else 0)


@app.command()
def gate(
    source: Annotated[str, typer.Argument(help="The environment to promote from (staging).")],
    target: Annotated[str, typer.Argument(help="The environment to promote to (production).")],
    fmt: FormatOption = None,
    output: OutputOption = None,
    category: CategoryOption = None,
    api: ApiOption = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="With --api: scan both environments first and wait.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds --fresh may wait for the scans.")] = 600,
    config: ConfigOption = None,
) -> None:
    """May SOURCE be promoted to TARGET? Exit 0 pass, 1 fail, 2 cannot evaluate."""
    _setup_logging()
    if api:
        with _errors():
            narrowed = sorted(_categories(category) or ())
            code = _remote_gate(api, source, target, _format(fmt), output, fresh, timeout, narrowed)
        raise typer.Exit(code)
    with _errors():
        chosen = _format(fmt)
        categories = _categories(category)
        with runtime_mod.unit_of_work(config) as (rt, session):
            result = _gate().evaluate(
                session, rt.config, source, target, utcnow(), categories=categories
            )
        _print_gate(result, chosen, output)
    raise typer.Exit(result.exit_code)


def _remote_gate(
    api: str,
    source: str,
    target: str,
    fmt: str,
    output: Path | None,
    fresh: bool,
    timeout: float,
    categories: list[str],
) -> int:
    """The gate asked of a server: the same exit codes and formats as the local gate."""
    from app.client import ApiClient

    client = ApiClient(api, get_settings().token)
    try:
        if fresh:
            for env in (source, target):
                client.scan_and_wait(env, timeout)
        params: dict[str, str | list[str]] = {"source": source, "target": target}
        if categories:
            params["category"] = categories
        if fmt in ("junit", "markdown"):
            answer = client.request("GET", "/gate", params={**params, "format": fmt})
            _emit(answer.text, output)
            status = answer.headers.get("X-Envparity-Gate", "missing")
        else:
            body = client.request("GET", "/gate", params=params).json()
            status = body["status"]
            if fmt == "json":
                _emit(json.dumps(body, indent=2) + "\n", output)
            else:
                colour = {"pass": "green", "fail": "red"}.get(status, "yellow")
                out.print(f"gate {source} -> {target}: [{colour}]{status.upper()}[/{colour}]")
                for reason in body["reasons"]:
                    out.print(f"  {escape(reason)}")
                if body.get("report_url"):
                    out.print(f"  report: {body['report_url']}")
    finally:
        client.close()
    code: int = _gate().EXIT_BY_STATUS.get(status, 2)
    return code


def _print_gate(
    result: gate_service.GateResult, fmt: str, output: Path | None, details: bool = True
) -> None:
    if fmt != "table":
        _emit(_render().gate_text(result, fmt), output)
        return
    colour = {"pass": "green", "fail": "red"}.get(result.status, "yellow")
    out.print(
        f"gate {result.source} -> {result.target}: [{colour}]{result.status.upper()}[/{colour}]"
    )
    for reason in result.reasons:
        out.print(f"  {escape(reason)}")
    if details and result.report is not None and result.failing:
        from app.reports import service as reports

        out.print(
            _render().to_rich(
                reports.only_fingerprints(result.report, {i["fingerprint"] for i in result.failing})
            )
        )


# --------------------------------------------------------------------------- baseline / waivers


@baseline_app.command("set")
def baseline_set(
    environment: Annotated[str, typer.Argument(help="The environment.")],
    snapshot_id: Annotated[
        int | None, typer.Argument(help="A snapshot id (default: latest).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Mark the approved baseline of an environment (for ENV@baseline)."""
    from app.reports.service import resolve
    from app.snapshots.repository import SnapshotRepository, process_owner

    with _errors(), runtime_mod.unit_of_work(config) as (_rt, session):
        repo = SnapshotRepository(session)
        ref = environment if snapshot_id is None else f"{environment}@{snapshot_id}"
        snapshot = resolve(repo, ref)
        repo.set_baseline(snapshot, process_owner())
        chosen = snapshot.id
    out.print(f"{environment}: baseline is now snapshot #{chosen}")


@waiver_app.command("add")
def waiver_add(
    reason: Annotated[str, typer.Option(help="Why this difference is expected.")],
    comparison: Annotated[str | None, typer.Option(help="SOURCE->TARGET (glob).")] = None,
    category: Annotated[
        str | None, typer.Option(help="config, packages, instances or network.")
    ] = None,
    resource_type: Annotated[str | None, typer.Option(help="Resource type (glob).")] = None,
    key: Annotated[str | None, typer.Option(help="Resource key (glob).")] = None,
    path: Annotated[
        str | None,
        typer.Option(help="Attribute path (glob; a bare name matches the last attribute)."),
    ] = None,
    owner: Annotated[str | None, typer.Option(help="Who answers for it.")] = None,
    expires: Annotated[
        str | None, typer.Option(help="ISO date or time after which it stops applying.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Store a waiver: matching drift stays in reports, marked waived, and passes the gate."""
    from app.db.models import WaiverRow
    from app.reports.service import parse_expiry
    from app.waivers.repository import WaiverRepository

    with _errors():
        if category is not None and category not in CATEGORIES:
            raise InvalidInput(f"--category must be one of {', '.join(CATEGORIES)}")
        if not reason.strip():
            raise InvalidInput("--reason must say why the difference is expected")
        expires_at = parse_expiry(expires, utcnow()) if expires else None
        with runtime_mod.unit_of_work(config) as (_rt, session):
            row = WaiverRepository(session).add(
                WaiverRow(
                    comparison=comparison,
                    category=category,
                    resource_type=resource_type,
                    key=key,
                    path=path,
                    reason=reason.strip(),
                    owner=owner,
                    expires_at=expires_at,
                )
            )
            waiver_id = row.id
    out.print(f"waiver #{waiver_id} added")


@waiver_app.command("list")
def waiver_list(config: ConfigOption = None) -> None:
    """List waivers: stored ones and the config's `ignore:` rules."""
    from app.waivers.repository import WaiverRepository

    with _errors(), runtime_mod.unit_of_work(config) as (rt, session):
        rows = WaiverRepository(session).all()
        now = utcnow()
        table = Table("id", "comparison", "category", "key", "path", "reason", "owner", "expires")
        for rule in rt.config.model.ignore:
            table.add_row(
                "config",
                rule.comparison or "*",
                rule.category or "*",
                rule.key or "*",
                rule.path or "*",
                rule.reason,
                rule.owner or "",
                str(rule.expires or ""),
            )
        for row in rows:
            expired = row.expires_at is not None and row.expires_at <= now
            table.add_row(
                str(row.id),
                row.comparison or "*",
                row.category or "*",
                row.key or "*",
                row.path or "*",
                row.reason,
                row.owner or "",
                (format_time(row.expires_at) + (" (expired)" if expired else ""))
                if row.expires_at
                else "",
            )
    out.print(table)


@waiver_app.command("rm")
def waiver_rm(
    waiver_id: Annotated[int, typer.Argument(help="The waiver's id (see `waiver list`).")],
    config: ConfigOption = None,
) -> None:
    """Remove a stored waiver."""
    from app.waivers.repository import WaiverRepository

    with _errors(), runtime_mod.unit_of_work(config) as (_rt, session):
        WaiverRepository(session).remove(waiver_id)
    out.print(f"waiver #{waiver_id} removed")


# --------------------------------------------------------------------------- db


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None) -> None:
    """Apply the database migrations up to the latest."""
    with _errors():
        rt = runtime_mod.load(config, migrate=False)
        try:
            migrate.upgrade(rt.engine)
            revision = migrate.current_revision(rt.engine)
            from app.rescrub import needs_rescrub

            with rt.sessions() as session:
                outdated = needs_rescrub(session, rt.redactor)
        finally:
            rt.close()
    out.print(f"database at revision {revision}")
    if outdated:
        out.print(
            "stored snapshots were redacted by other secret rules than today's: run "
            "`envparity db rescrub` to apply them (docs/secrets.md)"
        )


@db_app.command("rescrub")
def db_rescrub(config: ConfigOption = None) -> None:
    """Apply today's secret rules to every stored snapshot, report and alert, then compact
    the database so old plaintext leaves its files. Prints counts, never values."""
    from app.rescrub import compact, rescrub

    with _errors():
        rt = runtime_mod.load(config)
        try:
            stats = rescrub(rt.sessions, rt.config, rt.redactor, utcnow())
            compact(rt.engine)
        finally:
            rt.close()
    out.print(
        f"rescrubbed {stats.sources} source(s) of stored snapshots "
        f"({stats.sources_changed} rewritten), {stats.reports} stored report(s) "
        f"({stats.reports_changed} rewritten), {stats.events_changed} alert payload(s) rewritten, "
        f"{stats.comparisons} comparison(s) re-evaluated quietly; "
        f"{stats.documents_removed} unreferenced document(s) deleted; database compacted"
    )
    if stats.rules:
        table = Table("rule", "secrets hashed", title="secrets by rule (stored snapshots)")
        for rule, count in sorted(stats.rules.items()):
            table.add_row(rule, str(count))
        out.print(table)


# --------------------------------------------------------------------------- snapshots


@snapshots_app.command("list")
def snapshots_list(
    environment: Annotated[str, typer.Argument(help="The environment.")],
    limit: Annotated[int, typer.Option("--limit", help="At most this many, newest first.")] = 20,
    config: ConfigOption = None,
) -> None:
    """An environment's snapshots, newest first, with the ids `ENV@ID` refs take."""
    with _errors(), runtime_mod.unit_of_work(config) as (rt, session):
        from app.snapshots.repository import SnapshotRepository

        rt.config.environment(environment)  # must be declared
        rows = SnapshotRepository(session).list_snapshots(environment, max(1, limit))
        table = Table("id", "taken at", "origin", "status", "sources", "resources")
        for snapshot in rows:
            ok = sum(s.status == "ok" for s in snapshot.sources)
            table.add_row(
                str(snapshot.id),
                format_time(snapshot.taken_at),
                snapshot.origin,
                snapshot.status,
                f"{ok}/{len(snapshot.sources)}",
                str(snapshot.resource_count),
            )
    if not rows:
        out.print(f"{environment} has no snapshot yet")
        return
    out.print(table)


@snapshots_app.command("rm")
def snapshots_rm(
    snapshot_id: Annotated[int, typer.Argument(help="The snapshot's id (see `snapshots list`).")],
    config: ConfigOption = None,
) -> None:
    """Remove a snapshot (one pushed with a wrong clock, say) with its stored reports; the
    comparisons it was part of are evaluated again. Says what it changed."""
    from app.alerts.evaluate import Evaluator
    from app.snapshots import service

    with _errors():
        rt = runtime_mod.load(config)
        try:
            with rt.sessions.begin() as session:
                removed = service.remove_snapshot(session, snapshot_id)
            Evaluator(rt.config, rt.sessions).after_snapshot(removed.environment)
        finally:
            rt.close()
    out.print(
        f"removed snapshot #{removed.snapshot_id} of {removed.environment} "
        f"({removed.origin}, taken {format_time(removed.taken_at)}, "
        f"{removed.resources} resources), {removed.reports} stored report(s) of it, "
        f"{removed.documents} document(s) nothing else used"
    )
    if removed.baseline_cleared:
        out.print(f"it was {removed.environment}'s baseline: {removed.environment} has none now")
    latest = f"#{removed.latest_now}" if removed.latest_now is not None else "none"
    out.print(f"{removed.environment}'s latest snapshot is now {latest}")


# --------------------------------------------------------------------------- secrets


@secrets_app.command("audit")
def secrets_audit(
    environment: Annotated[
        str | None, typer.Argument(help="One environment [default: every one].")
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="table or json.", show_default=True)
    ] = "table",
    config: ConfigOption = None,
) -> None:
    """Which paths of each source's latest snapshot were treated as secrets, and by which
    rule. Never prints a value."""
    from app.snapshots.audit import audit

    with _errors(), runtime_mod.unit_of_work(config) as (rt, session):
        if fmt not in ("table", "json"):
            raise InvalidInput(f"--format {fmt!r} is not one of table, json")
        names = [environment] if environment else list(rt.config.model.environments)
        if environment:
            rt.config.environment(environment)  # must be declared
        census = audit(session, names, rt.redactor.rules_id)
    if fmt == "json":
        sys.stdout.write(json.dumps([c.as_json() for c in census], indent=2) + "\n")
        return
    if not census:
        out.print("no snapshot yet: nothing to audit")
        return
    for c in census:
        total = sum(c.counts.values())
        head = f"{c.environment} / {c.source} ({c.type}, snapshot #{c.snapshot_id})"
        if c.status != "ok":
            out.print(f"{head}: failed, nothing stored")
            continue
        if c.rules_version is None:
            out.print(f"{head}: stored before the census; run `envparity db rescrub`")
            continue
        rules = ", ".join(f"{rule} {n}" for rule, n in c.counts.items()) or "none"
        out.print(f"{head}: {total} secret(s) hashed: {rules}")
        if c.outdated:
            out.print("  redacted by other rules than today's; run `envparity db rescrub`")
        if c.paths:
            table = Table("resource type", "key", "path", "rule")
            for p in c.paths:
                table.add_row(p["resource_type"], p["key"], p["path"], p["rule"])
            out.print(table)
        if c.more:
            out.print(f"  ... and {c.more} more (counted above)")


@app.command()
def demo(
    folder: Annotated[
        Path | None,
        typer.Option(
            "--folder",
            help="Keep the demo's config and database here (default: a temporary folder).",
        ),
    ] = None,
    serve_after: Annotated[
        bool,
        typer.Option("--serve", help="Then serve the dashboard and API on loopback until Ctrl-C."),
    ] = False,
    port: Annotated[int, typer.Option(help="The port for --serve.")] = 8000,
) -> None:
    """Scan a simulated AWS account (no account needed) with three drifting environments."""
    import tempfile

    from app import demo as demo_mod
    from app.reports import service as reports

    _setup_logging()
    with _errors(), tempfile.TemporaryDirectory(prefix="envparity-demo-") as scratch:
        where = folder or Path(scratch)
        where.mkdir(parents=True, exist_ok=True)
        out.print("starting a simulated AWS account on loopback (moto) and seeding it...")
        simulator = demo_mod.start_simulator()
        try:
            demo_mod.seed(simulator.endpoint)
            config_path = demo_mod.write_config(where, simulator.endpoint)
            rt = runtime_mod.load(config_path, own_database=True)
            try:
                _run_scans(rt, list(rt.config.environments), wait=0)
                with rt.sessions.begin() as session:
                    report = reports.compare_refs(
                        session, rt.config, "staging", "production", utcnow()
                    )
                    gates = [
                        _gate().evaluate(session, rt.config, c.source, c.target, utcnow())
                        for c in rt.config.model.comparisons
                    ]
            finally:
                rt.close()
            out.rule("staging → production")
            out.print(_render().to_rich(report))
            out.rule("promotion gates")
            for result in gates:
                _print_gate(result, "table", None, details=False)
            out.print(
                f"\nconfig and database: {where}"
                + ("" if folder else " (temporary; pass --folder DIR to keep them)")
            )
            if serve_after:
                _serve_demo(config_path, port)
        finally:
            simulator.stop()


def _serve_demo(config_path: Path, port: int) -> None:
    """The demo's dashboard and API (auth off, loopback only), its simulator still up."""
    import uvicorn

    from app.main import create_app

    rt = runtime_mod.load(config_path, own_database=True)
    try:
        out.print(f"dashboard: http://127.0.0.1:{port}/  (Ctrl-C to stop)")
        uvicorn.run(create_app(runtime=rt), host="127.0.0.1", port=port, log_level="warning")
    finally:
        rt.close()


@token_app.command("create")
def token_create(
    scope: Annotated[str, typer.Option(help="read, gate, write or admin.")],
    name: Annotated[str, typer.Option(help="What the token is for (a CI job, a dashboard).")] = "",
    expires: Annotated[str | None, typer.Option(help="ISO date or time it stops working.")] = None,
    config: ConfigOption = None,
) -> None:
    """Print a new API token, once: only its SHA-256 is kept."""
    from app.reports.service import parse_expiry

    with _errors():
        expires_at = parse_expiry(expires) if expires else None
        if expires_at is not None and expires_at <= utcnow():
            # A token that is dead on arrival is a typo (a year, a day-month swap).
            raise InvalidInput(
                f"--expires {expires} is in the past ({format_time(expires_at)}): "
                "the token would be refused at once; give a later date or time"
            )
        with runtime_mod.unit_of_work(config) as (_rt, session):
            row, token = _tokens(session).create(scope, name or scope, expires_at)
            token_id = row.id
    err.print(f"token #{token_id} ({scope}); shown once, store it now:")
    sys.stdout.write(token + "\n")


@token_app.command("list")
def token_list(config: ConfigOption = None) -> None:
    """List tokens (never the tokens themselves)."""
    with _errors(), runtime_mod.unit_of_work(config) as (_rt, session):
        table = Table("id", "name", "scope", "prefix", "created", "expires", "last used", "state")
        now = utcnow()
        for row in _tokens(session).all():
            state = (
                "revoked"
                if row.revoked_at
                else ("expired" if row.expires_at and row.expires_at <= now else "active")
            )
            table.add_row(
                str(row.id),
                row.name,
                row.scope,
                row.prefix + "…",
                format_time(row.created_at),
                format_time(row.expires_at) if row.expires_at else "",
                format_time(row.last_used_at) if row.last_used_at else "",
                state,
            )
    out.print(table)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(help="The token's id (see `token list`).")],
    config: ConfigOption = None,
) -> None:
    """Revoke a token: refused at once by new processes, by a running server within 10 s."""
    with _errors(), runtime_mod.unit_of_work(config) as (_rt, session):
        _tokens(session).revoke(token_id)
    out.print(f"token #{token_id} revoked")


@alerts_app.command("list")
def alerts_list(
    status: Annotated[
        str | None, typer.Option(help="Only events in this state: pending, delivered or failed.")
    ] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
    config: ConfigOption = None,
) -> None:
    """The outbox's events, newest first, with their delivery state and last error."""
    from app.alerts.repository import EVENT_STATUSES, AlertRepository

    with _errors():
        if status is not None and status not in EVENT_STATUSES:
            raise InvalidInput(f"--status must be one of {', '.join(EVENT_STATUSES)}")
        with runtime_mod.unit_of_work(config) as (_rt, session):
            table = Table("id", "comparison", "event", "target", "items", "created", "state",
                          "attempts", "last error")  # fmt: skip
            for e in AlertRepository(session).events(status, limit):
                colour = {"delivered": "green", "failed": "red"}.get(e.status, "yellow")
                table.add_row(
                    str(e.id),
                    e.comparison,
                    e.kind,
                    e.target,
                    str(e.items),
                    format_time(e.created_at),
                    f"[{colour}]{e.status}[/{colour}]",
                    str(e.attempts),
                    escape(e.last_error or ""),
                )
    out.print(table)


@alerts_app.command("retry")
def alerts_retry(
    event_id: Annotated[int, typer.Argument(help="A failed event's id (see `alerts list`).")],
    config: ConfigOption = None,
) -> None:
    """Queue a failed event again (after fixing its webhook or token), and send it now."""
    from app.alerts.repository import AlertRepository

    with _errors():
        rt = runtime_mod.load(config)
        try:
            with rt.sessions.begin() as session:
                AlertRepository(session).retry(event_id, utcnow())
            _deliver_alerts(rt)
        finally:
            rt.close()
    out.print(f"alert event #{event_id} queued again")


LOOPBACK = ("127.0.0.1", "::1", "localhost")


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on [default: server.host].")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port [default: server.port].")] = None,
    no_scheduler: Annotated[
        bool, typer.Option("--no-scheduler", help="API only: no scheduled scans in this process.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Serve the dashboard (/), the HTTP API (OpenAPI at /docs), alert delivery and, unless
    --no-scheduler, the scheduled scans."""
    import uvicorn

    from app.main import create_app

    _setup_logging()
    with _errors():
        rt = runtime_mod.load(config)
        server = rt.config.model.server
        bind = host or server.host
        if not server.auth and bind not in LOOPBACK and not bind.startswith("127."):
            rt.close()
            raise EnvparityError(
                f"server.auth is off: refusing to listen on {bind}; "
                "auth can be off only on a loopback address"
            )
        application = create_app(runtime=rt, scheduler=not no_scheduler, alerts=True)
    uvicorn.run(application, host=bind, port=port or server.port, log_level="warning")
    rt.close()


@app.command("scheduler")
def scheduler_command(config: ConfigOption = None) -> None:
    """Run the scheduled scans alone (for deployments whose API replicas use --no-scheduler)."""
    import signal
    import threading

    from app import scheduler as scheduler_mod

    _setup_logging()
    with _errors():
        rt = runtime_mod.load(config)
        jobs, leadership = scheduler_mod.build(rt)
    if not jobs.get_jobs():
        rt.close()
        err.print("[yellow]no environment has a `schedule`: nothing to run[/yellow]")
        raise typer.Exit(2)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_args: stop.set())
    from app.alerts.deliver import Background, Deliverer

    delivery = Background(Deliverer(rt.config, rt.sessions, rt.redactor))
    jobs.start()
    delivery.start()
    for job in jobs.get_jobs():
        out.print(f"{job.name}: next run {job.next_run_time.isoformat()}")
    try:
        stop.wait()
    finally:
        delivery.close()
        jobs.shutdown(wait=True)
        leadership.release()
        rt.close()


@app.command("iam-policy")
def iam_policy(
    all_types: Annotated[
        bool, typer.Option("--all", help="Every AWS source type, not only those the config uses.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Print the least-privilege, read-only IAM policy the config's AWS sources need."""
    with _errors():
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


@app.command("source-types")
def source_types() -> None:
    """List the source types this installation knows."""
    table = Table("type", "summary")
    for name, cls in registry.source_types().items():
        table.add_row(name, cls.summary)
    out.print(table)


def main() -> None:
    app()
