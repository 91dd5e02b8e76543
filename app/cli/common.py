"""What every command shares: the consoles, the common options, the one error handler, the
runtime a command opens, and the printing of outcomes, reports and progress."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from app.errors import EnvparityError, InvalidInput
from app.reports import FORMATS

# `--help` must start in well under half a second: what this module imports at the top is
# only Typer, Rich's console and envparity's error types. The database, the config models and
# the settings load in the commands that use them.
if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.progress import Progress, TaskID
    from sqlalchemy.orm import Session

    from app import runtime as runtime_mod
    from app.snapshots.service import ScanProgress
    from collectors.runner import SourceOutcome

# No emoji codes: `tag:KEY:` in a message must print as written.
out = Console(highlight=False, soft_wrap=True, emoji=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


def print_table(table: RenderableType) -> None:
    """A table at the terminal's width; where stdout is no terminal (a pipe, a CI log), at
    $COLUMNS or 160 columns, as `diff` prints its tables, never folded to Rich's 80."""
    if out.is_terminal:
        out.print(table)
        return
    from app.reports.render import rich_text

    sys.stdout.write(rich_text(table))


ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        metavar="FILE",
        help="Config file [default: $ENVPARITY_CONFIG, else ./envparity.yaml].",
        show_default=False,
    ),
]
ApiOption = Annotated[
    str | None,
    typer.Option(
        "--api",
        metavar="URL",
        help="Ask an envparity server (token from $ENVPARITY_TOKEN).",
        show_default=False,
    ),
]
FormatOption = Annotated[
    str | None,
    typer.Option(
        "--format",
        "-f",
        metavar="FORMAT",
        help="table, json, markdown, junit or github (default: table on a terminal, else json).",
        show_default=False,
    ),
]
OutputOption = Annotated[
    Path | None,
    typer.Option("--output", "-o", metavar="FILE", help="Write to this file instead of stdout."),
]
CategoryOption = Annotated[
    list[str] | None,
    typer.Option(
        "--category",
        metavar="CATEGORY",
        help="Only this category (repeatable).",
        show_default=False,
    ),
]


def group(help: str) -> typer.Typer:
    """A group of subcommands (`envparity db ...`), built as every group is."""
    return typer.Typer(help=help, no_args_is_help=True, rich_markup_mode=None)


@contextmanager
def errors() -> Iterator[None]:
    """Turns envparity's errors into a message on stderr and exit code 2."""
    try:
        yield
    except EnvparityError as exc:
        err.print(f"[red]error:[/red] {escape(exc.message)}")
        if isinstance(exc, InvalidInput) and isinstance(exc.detail, list):
            for problem in exc.detail[1:10]:
                err.print(f"  {escape(problem['path'])}: {escape(problem['message'])}")
        raise typer.Exit(exc.exit_code) from None
    except Exception as exc:
        if not _from_database(exc):
            raise
        err.print(f"[red]error:[/red] database: {escape(database_reason(exc))}")
        raise typer.Exit(2) from None


def _from_database(exc: Exception) -> bool:
    """Whether SQLAlchemy raised it (loaded by then, if it did)."""
    database = sys.modules.get("sqlalchemy.exc")
    return database is not None and isinstance(exc, database.SQLAlchemyError)


def database_reason(exc: BaseException) -> str:
    """Reachability and schema problems; the statement and parameters are left out."""
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]


LogLevelOption = Annotated[
    str | None,
    typer.Option(
        "--log-level",
        metavar="LEVEL",
        help="debug, info, warning, error or critical [default: $ENVPARITY_LOG_LEVEL, else info].",
        show_default=False,
    ),
]
LogFormatOption = Annotated[
    str | None,
    typer.Option(
        "--log-format",
        metavar="FORMAT",
        help="Log lines on stderr as text, json (one object a line) or kv (logfmt) "
        "[default: $ENVPARITY_LOG_FORMAT, else text].",
        show_default=False,
    ),
]


def setup_logging(
    level: str | None = None, log_format: str | None = None, *, default_level: str = "warning"
) -> None:
    """Logs on stderr: `level` and `log_format` (the options), else $ENVPARITY_LOG_LEVEL and
    $ENVPARITY_LOG_FORMAT, else `default_level` (info for the commands that keep running)
    and text. A value that is none of the choices is a usage error (exit 2)."""
    from app import logs
    from app.settings import get_settings

    settings = get_settings()
    chosen_level = (level or settings.log_level or default_level).lower()
    chosen_format = (log_format or settings.log_format or "text").lower()
    with errors():
        if chosen_level not in logs.LEVELS:
            where = "--log-level" if level else "ENVPARITY_LOG_LEVEL"
            raise EnvparityError(f"{where} must be one of {one_of(logs.LEVELS)}")
        if chosen_format not in logs.FORMATS:
            where = "--log-format" if log_format else "ENVPARITY_LOG_FORMAT"
            raise EnvparityError(f"{where} must be one of {one_of(logs.FORMATS)}")
    logs.configure(chosen_level, chosen_format, sys.stderr)


@contextmanager
def runtime(config: Path | None, **options: bool) -> Iterator[runtime_mod.Runtime]:
    """The command's runtime (`app.runtime.load` with `options`), closed when it ends."""
    from app import runtime as runtime_mod

    rt = runtime_mod.load(config, **options)
    try:
        yield rt
    finally:
        rt.close()


@contextmanager
def unit_of_work(
    config: Path | None = None,
) -> Iterator[tuple[runtime_mod.Runtime, Session]]:
    """`app.runtime.unit_of_work`: the runtime and one transaction, committed on success."""
    from app import runtime as runtime_mod

    with runtime_mod.unit_of_work(config) as opened:
        yield opened


# --------------------------------------------------------------------------- output


def one_of(values: Iterable[str]) -> str:
    """`read, gate, write or admin`: the values of a set, for a help text."""
    *most, last = values
    return f"{', '.join(most)} or {last}" if most else last


def categories_of(values: list[str] | None) -> set[str] | None:
    """`--category` values, checked; None when none narrows anything."""
    if not values:
        return None
    from collectors.base import CATEGORIES

    unknown = sorted(set(values) - set(CATEGORIES))
    if unknown:
        raise InvalidInput(f"--category {unknown[0]!r} is not one of {', '.join(CATEGORIES)}")
    return set(values)


def output_format(fmt: str | None) -> str:
    """`--format`, checked; table on a terminal and json otherwise when not given."""
    chosen = fmt or ("table" if out.is_terminal else "json")
    if chosen not in FORMATS:
        raise EnvparityError(f"--format must be one of {', '.join(FORMATS)}")
    return chosen


def emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
    else:
        write_file(output, text)
        err.print(f"wrote {output}")


def write_file(path: Path, text: str) -> None:
    """Writes `text` to `path`, making its folders (CI jobs write to a `reports/` that is not
    there yet); a folder or an unwritable place is a usage error (exit 2), not a traceback."""
    problem = None
    if path.is_dir():
        problem = f"{path} is a folder: give a file name, e.g. {path / 'report.txt'}"
    else:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            problem = f"cannot write {path}: {exc.strerror or type(exc).__name__}"
    if problem is not None:
        err.print(f"[red]error:[/red] {escape(problem)}")
        raise typer.Exit(2)


def outcome_line(environment: str, outcome: SourceOutcome) -> str:
    if outcome.status == "ok":  # a SourceOutcome's status: the collectors' Literal
        return (
            f"{escape(environment)}: {escape(outcome.name)} [green]ok[/green] "
            f"({len(outcome.resources)} resources, {outcome.duration_ms} ms)"
        )
    error = escape(outcome.error or "")
    return f"{escape(environment)}: {escape(outcome.name)} [red]failed[/red]: {error}"


def print_outcome(environment: str, outcome: SourceOutcome) -> None:
    out.print(outcome_line(environment, outcome))


class _PlainProgress:
    def started(self, environment: str, sources: list[str]) -> None:
        out.print(f"{environment}: scanning {len(sources)} sources")

    def source_done(self, environment: str, outcome: SourceOutcome) -> None:
        print_outcome(environment, outcome)


class _RichProgress:
    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def started(self, environment: str, sources: list[str]) -> None:
        self.tasks[environment] = self.progress.add_task(environment, total=len(sources))

    def source_done(self, environment: str, outcome: SourceOutcome) -> None:
        self.progress.advance(self.tasks[environment])
        self.progress.console.print(outcome_line(environment, outcome))


@contextmanager
def progress() -> Iterator[ScanProgress]:
    """A scan's progress: a bar on a terminal, a line per source otherwise."""
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
    ) as bar:
        yield _RichProgress(bar)


def deliver_alerts(rt: runtime_mod.Runtime) -> None:
    """Sends the alerts the evaluations wrote, before the command exits; what cannot go
    within `alerts.deliver_timeout` stays in the outbox for serve / scheduler / next scan."""
    alerts = rt.config.model.alerts
    from app.alerts.repository import AlertRepository

    with rt.sessions.begin() as session:
        if not AlertRepository(session).pending():
            return  # nothing to send: the HTTP and Slack clients are not even imported
    from app.alerts.deliver import Deliverer

    deliverer = Deliverer(rt.config, rt.sessions, rt.redactor, clock=rt.clock)
    done = deliverer.drain(alerts.deliver_timeout.total_seconds())
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
