"""The `envparity` command line (Typer + Rich); the only place that exits the process."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from app import runtime as runtime_mod
from app.config import find_config_path, load_config
from app.db import migrate
from app.db.session import make_engine
from app.errors import EnvparityError, InvalidInput, ScanInProgress
from app.settings import get_settings
from app.snapshots import service
from collectors import registry
from collectors.base import FetchContext
from collectors.runner import SourceOutcome, run_source

app = typer.Typer(
    name="envparity",
    help="Detect drift between deployment environments.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

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


def _setup_logging() -> None:
    level = get_settings().log_level.upper()
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


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
            ctx = FetchContext(env.name, cfg.base_dir, env.vars, redactor.hash)
            for options in env.sources:
                outcome = run_source(options, ctx, redactor)
                failures += outcome.status != "ok"
                _print_outcome(env.name, outcome)
        url = runtime_mod.database_url_for(settings, cfg)
        try:
            engine = make_engine(url)
            current = migrate.current_revision(engine)
            engine.dispose()
            state = "at head" if current == migrate.head_revision() else f"at {current or 'empty'}"
            out.print(f"database {url.render_as_string(hide_password=True)}: reachable, {state}")
        except Exception as exc:
            failures += 1
            out.print(f"database {url.render_as_string(hide_password=True)}: [red]{exc}[/red]")
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
        cfg.environment(name)
    return names


def _run_scans(rt: runtime_mod.Runtime, names: list[str], wait: float) -> int:
    scanner = service.Scanner(rt.config, rt.sessions, rt.redactor)
    worst = 0
    results = []
    with _progress() as progress:
        for name in names:
            try:
                result = scanner.scan(name, trigger="cli", progress=progress, wait=wait)
            except ScanInProgress as exc:
                err.print(f"[yellow]{escape(exc.message)}[/yellow] (use --wait SECONDS to wait)")
                worst = 2
                continue
            results.append(result)
            worst = max(worst, _EXIT_BY_STATUS[result.status])
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


@contextmanager
def _progress() -> Iterator[Any]:
    if not out.is_terminal:
        yield _PlainProgress()
        return
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
    config: ConfigOption = None,
) -> None:
    """Store a snapshot from a file in the push format."""
    _setup_logging()
    with _errors():
        data = _read_json(file)
        rt = runtime_mod.load(config)
        try:
            with rt.sessions.begin() as session:
                snapshot_id, status = service.push(
                    session, rt.config, environment, data, rt.redactor
                )
        finally:
            rt.close()
    out.print(f"{environment}: stored snapshot #{snapshot_id} ({status})")


def _read_json(file: str) -> Any:
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        raise EnvparityError(f"{file}: cannot read: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"{file}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg}); nothing stored"
        ) from None


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
    with _errors():
        rt = runtime_mod.load(config)
        try:
            with rt.sessions.begin() as session:
                document = service.export(session, environment, snapshot_id)
        finally:
            rt.close()
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote snapshot #{document['snapshot_id']} to {output}")


# --------------------------------------------------------------------------- db


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None) -> None:
    """Apply the database migrations up to the latest."""
    with _errors():
        rt = runtime_mod.load(config, migrate=False)
        try:
            migrate.upgrade(rt.engine)
            revision = migrate.current_revision(rt.engine)
        finally:
            rt.close()
    out.print(f"database at revision {revision}")


@app.command("source-types")
def source_types() -> None:
    """List the source types this installation knows."""
    table = Table("type", "summary")
    for name, cls in registry.source_types().items():
        table.add_row(name, cls.summary)
    out.print(table)


def main() -> None:
    app()
