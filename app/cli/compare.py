"""Commands that compare environments: diff and the promotion gate (local or `--api`)."""

from __future__ import annotations

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
    errors,
    out,
    output_format,
    runtime,
    setup_logging,
    unit_of_work,
)
from app.clock import utcnow
from app.settings import get_settings
from app.states import GateStatus

if TYPE_CHECKING:
    from app.gate.service import GateResult


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
        if categories:
            from app.reports.model import only_categories

            report = only_categories(report, categories)
        from app.reports import render  # Rich tables and XML: not needed to print stored JSON

        if chosen == "table" and output is None:
            out.print(render.to_rich(report))
        else:
            emit(render.render(report, chosen), output)
    raise typer.Exit(1 if report.counting else 0)


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
    finally:
        client.close()
    print_gate(result, fmt, output)
    return result.status


def print_gate(result: GateResult, fmt: str, output: Path | None, details: bool = True) -> None:
    """A gate's answer in `fmt`; on the table, the failing drift too unless not `details`."""
    from app.reports import render

    if fmt != "table":
        emit(render.gate_text(result, fmt), output)
        return
    colour = {GateStatus.PASS: "green", GateStatus.FAIL: "red"}.get(result.status, "yellow")
    out.print(
        f"gate {result.source} -> {result.target}: [{colour}]{result.status.upper()}[/{colour}]"
    )
    for reason in result.reasons:
        out.print(f"  {escape(reason)}")
    if result.report_url:
        out.print(f"  report: {result.report_url}")
    if details and result.report is not None and result.failing:
        from app.reports.model import only_fingerprints

        out.print(
            render.to_rich(
                only_fingerprints(result.report, {i["fingerprint"] for i in result.failing})
            )
        )
