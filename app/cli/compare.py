"""Commands that compare environments: diff and the promotion gate (local or `--api`)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from app.cli.common import (
    ApiOption,
    CategoryOption,
    ConfigOption,
    FormatOption,
    OutputOption,
    categories_of,
    emit,
    err,
    errors,
    out,
    output_format,
    runtime,
    setup_logging,
    unit_of_work,
)
from app.clock import utcnow

if TYPE_CHECKING:
    from rich.console import RenderableType

    from app.gate.service import GateResult
    from app.reports.model import Report


def diff(
    left: Annotated[
        str,
        typer.Argument(metavar="LEFT", help="ENV, ENV@baseline, ENV@ID or ENV@2026-11-20T10:00"),
    ],
    right: Annotated[str, typer.Argument(metavar="RIGHT", help="The same forms as LEFT.")],
    fmt: FormatOption = None,
    output: OutputOption = None,
    category: CategoryOption = None,
    config: ConfigOption = None,
) -> None:
    """Compare two snapshots. Exit 0 no unwaived drift, 1 drift, 2 error.

    Example: envparity diff staging production@baseline --format markdown -o reports/drift.md"""
    from app.reports.stored import stored_report

    setup_logging()
    with errors():
        chosen = output_format(fmt)
        categories = categories_of(category)
        now = utcnow()
        with runtime(config) as rt:
            with rt.engine.connect() as conn:
                stored = None if categories else stored_report(conn, rt.config, left, right, now)
                if stored is not None and chosen == "json":  # as stored: nothing to render
                    emit(stored.text, output)
                    raise typer.Exit(1 if stored.unwaived else 0)
                report = stored.report(now) if stored is not None else None
            if report is None:
                from app.reports import service as reports

                with rt.sessions.begin() as session:
                    report = reports.compare_refs(session, rt.config, left, right, now)
        from app.reports.model import labelled, only_categories

        if categories:
            report = only_categories(report, categories)
            if report.result.compared == 0:
                warn(
                    f"nothing was compared: neither side has any resource in "
                    f"{', '.join(sorted(categories))} (check --category)"
                )
        print_report(labelled(report, left, right), chosen, output)
    raise typer.Exit(1 if report.counting else 0)


def print_report(report: Report, fmt: str, output: Path | None) -> None:
    """A report in `fmt`, to `output` or stdout; with `github`, its Markdown to the job's
    step summary too."""
    from app.reports import render  # Rich tables and XML: not needed to print stored JSON

    if fmt == "table" and output is None:
        show(render.to_rich(report))
    else:
        emit(render.render(report, fmt), output)
    if fmt == "github":
        step_summary(lambda: render.to_markdown(report))


def show(renderable: RenderableType) -> None:
    """A Rich table on stdout: at the terminal's width on a terminal; elsewhere (a CI log,
    `| less`) as plain text at $COLUMNS or 160 columns, not at Rich's 80."""
    if out.is_terminal:
        out.print(renderable)
        return
    from app.reports import render

    sys.stdout.write(render.rich_text(renderable))


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/yellow] {escape(message)}")


def step_summary(markdown: Callable[[], str]) -> None:
    """Appends the Markdown report to the file $GITHUB_STEP_SUMMARY names (in a GitHub
    Actions job), where the run's summary page shows it."""
    path = os.environ.get("GITHUB_STEP_SUMMARY", "").strip()
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as summary:
            summary.write(markdown() + "\n")
    except OSError as exc:
        warn(f"cannot append to $GITHUB_STEP_SUMMARY ({path}): {exc.strerror or exc}")


def gate(
    source: Annotated[
        str, typer.Argument(metavar="SOURCE", help="The environment to promote from (staging).")
    ],
    target: Annotated[
        str, typer.Argument(metavar="TARGET", help="The environment to promote to (production).")
    ],
    fmt: FormatOption = None,
    output: OutputOption = None,
    category: CategoryOption = None,
    api: ApiOption = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="With --api: scan both environments first and wait.")
    ] = False,
    timeout: Annotated[
        float, typer.Option(metavar="TIMEOUT", help="Seconds --fresh may wait for the scans.")
    ] = 600,
    config: ConfigOption = None,
) -> None:
    """May SOURCE be promoted to TARGET? Exit 0 pass, 1 fail, 2 cannot evaluate.

    Example: envparity gate staging production --format junit -o reports/gate.xml"""
    from app.gate import service as gate_service

    setup_logging()
    with errors():
        if api:
            narrowed = sorted(categories_of(category) or ())
            status = _remote_gate(
                api, source, target, output_format(fmt), output, fresh, timeout, narrowed
            )
        else:
            chosen = output_format(fmt)
            categories = categories_of(category)
            with unit_of_work(config) as (rt, session):
                result = gate_service.evaluate(
                    session, rt.config, source, target, utcnow(), categories=categories
                )
            print_gate(result, chosen, output)
            status = result.status
    code = gate_service.EXIT_BY_STATUS.get(status, 2)
    raise typer.Exit(code)


def _remote_gate(
    api: str,
    source: str,
    target: str,
    fmt: str,
    output: Path | None,
    fresh: bool,
    timeout: float,
    categories: list[str],
) -> str:
    """The gate asked of a server, printed as the local gate's answer is: its status."""
    from app.client import ApiClient
    from app.settings import get_settings

    client = ApiClient(api, get_settings().token)
    try:
        if fresh:
            for env in (source, target):
                client.scan_and_wait(env, timeout)
        if fmt in ("junit", "markdown"):  # rendered by the server: it holds the report
            document, status = client.gate_document(source, target, fmt, categories)
            emit(document, output)
            return status
        result = client.gate(source, target, categories)
        markdown = None
        if fmt == "github" and os.environ.get("GITHUB_STEP_SUMMARY", "").strip():
            markdown, _status = client.gate_document(source, target, "markdown", categories)
    finally:
        client.close()
    print_gate(result, fmt, output, markdown=markdown)
    return result.status


def print_gate(
    result: GateResult,
    fmt: str,
    output: Path | None,
    details: bool = True,
    markdown: str | None = None,
) -> None:
    """A gate's answer in `fmt`; on the table, the report's summary and the failing drift
    too unless not `details`. Its warnings (nothing was compared) go to stderr as well. With
    `github`, the Markdown answer (`markdown`, else rendered here) goes to the step summary."""
    from app.reports import render

    if fmt == "table" and output is None:
        show(render.gate_rich(result, details))
    elif fmt == "table":
        emit(render.rich_text(render.gate_rich(result, details)), output)
    else:
        emit(render.gate_text(result, fmt), output)
    for warning in result.warnings:
        warn(warning)
    if fmt == "github":
        step_summary(lambda: markdown if markdown is not None else render.gate_markdown(result))
