"""Commands that manage what judgements rest on: the baseline, waivers, API tokens and the
alert outbox."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from app.cli.common import (
    ConfigOption,
    deliver_alerts,
    err,
    errors,
    group,
    one_of,
    out,
    print_table,
    runtime,
    unit_of_work,
)
from app.clock import format_time, parse_expiry, utcnow
from app.errors import InvalidInput
from app.states import DeliveryStatus, Scope

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from app.auth.tokens import TokenRepository

baseline_app = group("The approved snapshot of an environment.")
waiver_app = group("Reviewed, expected differences.")
token_app = group("API tokens.")
alerts_app = group("The alert outbox: what was sent, what waits, what failed.")
_STATE_COLOURS: dict[str, str] = {DeliveryStatus.DELIVERED: "green", DeliveryStatus.FAILED: "red"}


@baseline_app.command("set")
def baseline_set(
    environment: Annotated[str, typer.Argument(metavar="ENVIRONMENT", help="The environment.")],
    snapshot_id: Annotated[
        int | None, typer.Argument(metavar="SNAPSHOT-ID", help="A snapshot id (default: latest).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Mark the approved baseline of an environment (for ENV@baseline).

    Example: envparity baseline set production 42"""
    from app.reports.service import resolve
    from app.snapshots.repository import SnapshotRepository, process_owner

    with errors(), unit_of_work(config) as (rt, session):
        repo = SnapshotRepository(session)
        ref = environment if snapshot_id is None else f"{environment}@{snapshot_id}"
        snapshot = resolve(repo, ref, rt.config)
        repo.set_baseline(snapshot, process_owner())
        chosen = snapshot.id
    out.print(f"{environment}: baseline is now snapshot #{chosen}")


@baseline_app.command("show")
def baseline_show(
    environment: Annotated[str, typer.Argument(metavar="ENVIRONMENT", help="The environment.")],
    config: ConfigOption = None,
) -> None:
    """Which snapshot is the environment's baseline, and who set it when.

    Example: envparity baseline show production"""
    from app.snapshots.repository import SnapshotRepository

    with errors(), unit_of_work(config) as (rt, session):
        rt.config.environment(environment)  # must be declared
        repo = SnapshotRepository(session)
        row = repo.baseline_row(environment)
        if row is None:
            out.print(
                f"{environment} has no baseline (set one with "
                f"`envparity baseline set {environment} [ID]`)"
            )
            return
        snapshot = repo.snapshot(row.snapshot_id)
        by = f" by {row.set_by}" if row.set_by else ""
        out.print(
            f"{environment}: baseline is snapshot #{snapshot.id} (taken "
            f"{format_time(snapshot.taken_at)}, {snapshot.origin}, {snapshot.status}, "
            f"{snapshot.resource_count} resources), set {format_time(row.set_at)}{by}"
        )


@baseline_app.command("clear")
def baseline_clear(
    environment: Annotated[str, typer.Argument(metavar="ENVIRONMENT", help="The environment.")],
    config: ConfigOption = None,
) -> None:
    """Forget the environment's baseline (its snapshot stays); ENV@baseline then names none.

    Example: envparity baseline clear staging"""
    from app.snapshots.repository import SnapshotRepository

    with errors(), unit_of_work(config) as (rt, session):
        rt.config.environment(environment)  # must be declared
        was = SnapshotRepository(session).clear_baseline(environment)
    if was is None:
        out.print(f"{environment} had no baseline: nothing changed")
    else:
        out.print(f"{environment}: baseline cleared (it was snapshot #{was}, which is kept)")


# --------------------------------------------------------------------------- waivers


@waiver_app.command("add")
def waiver_add(
    reason: Annotated[str, typer.Option(metavar="REASON", help="Why this difference is expected.")],
    comparison: Annotated[
        str | None, typer.Option(metavar="COMPARISON", help="SOURCE->TARGET (glob).")
    ] = None,
    category: Annotated[
        str | None, typer.Option(metavar="CATEGORY", help="config, packages, instances or network.")
    ] = None,
    resource_type: Annotated[
        str | None, typer.Option(metavar="RESOURCE_TYPE", help="Resource type (glob).")
    ] = None,
    key: Annotated[str | None, typer.Option(metavar="KEY", help="Resource key (glob).")] = None,
    path: Annotated[
        str | None,
        typer.Option(
            metavar="PATH", help="Attribute path (glob; a bare name matches the last attribute)."
        ),
    ] = None,
    owner: Annotated[str | None, typer.Option(metavar="OWNER", help="Who answers for it.")] = None,
    expires: Annotated[
        str | None,
        typer.Option(metavar="EXPIRES", help="ISO date or time after which it stops applying."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Store a waiver: matching drift stays in reports, marked waived, and passes the gate.

    Example: envparity waiver add --comparison staging->production --key web-{env}
    --reason "CHG-123" --expires 2027-01-31"""
    from app.waivers import service as waivers

    with errors():
        request = waivers.WaiverRequest(
            reason=reason,
            comparison=comparison,
            category=category,
            resource_type=resource_type,
            key=key,
            path=path,
            owner=owner,
            expires=expires,
        )
        now = utcnow()
        waivers.check_waiver(request, now, flags=True)  # before the database is opened
        with unit_of_work(config) as (rt, session):
            waiver = waivers.add_waiver(session, request, now, flags=True)
            warnings = waivers.unmatched(session, rt.config, request, flags=True)
    out.print(f"waiver #{waiver.id} added")
    for warning in warnings:
        err.print(f"[yellow]warning:[/yellow] {escape(warning)}")


@waiver_app.command("list")
def waiver_list(config: ConfigOption = None) -> None:
    """List waivers: stored ones and the config's `ignore:` rules.

    Example: envparity waiver list"""
    from app.waivers.repository import WaiverRepository

    with errors(), unit_of_work(config) as (rt, session):
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
    print_table(table)


@waiver_app.command("rm")
def waiver_rm(
    waiver_id: Annotated[
        int, typer.Argument(metavar="WAIVER-ID", help="The waiver's id (see `waiver list`).")
    ],
    config: ConfigOption = None,
) -> None:
    """Remove a stored waiver.

    Example: envparity waiver rm 7"""
    from app.waivers.repository import WaiverRepository

    with errors(), unit_of_work(config) as (_rt, session):
        WaiverRepository(session).remove(waiver_id)
    out.print(f"waiver #{waiver_id} removed")


# --------------------------------------------------------------------------- tokens


def _tokens(session: Session) -> TokenRepository:
    from app.auth.tokens import TokenRepository

    return TokenRepository(session)


@token_app.command("create")
def token_create(
    scope: Annotated[str, typer.Option(metavar="SCOPE", help=f"{one_of(Scope)}.")],
    name: Annotated[
        str, typer.Option(metavar="NAME", help="What the token is for (a CI job, a dashboard).")
    ] = "",
    expires: Annotated[
        str | None, typer.Option(metavar="EXPIRES", help="ISO date or time it stops working.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Print a new API token, once: only its SHA-256 is kept.

    Example: envparity token create --scope gate --name ci --expires 2027-06-30"""
    with errors():
        expires_at = parse_expiry(expires) if expires else None
        if expires_at is not None and expires_at <= utcnow():
            # A token that is dead on arrival is a typo (a year, a day-month swap).
            raise InvalidInput(
                f"--expires {expires} is in the past ({format_time(expires_at)}): "
                "the token would be refused at once; give a later date or time"
            )
        with unit_of_work(config) as (_rt, session):
            row, token = _tokens(session).create(scope, name or scope, expires_at)
            token_id = row.id
    err.print(f"token #{token_id} ({scope}); shown once, store it now:")
    sys.stdout.write(token + "\n")


@token_app.command("list")
def token_list(config: ConfigOption = None) -> None:
    """List tokens (never the tokens themselves).

    Example: envparity token list"""
    with errors(), unit_of_work(config) as (_rt, session):
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
    print_table(table)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[
        int, typer.Argument(metavar="TOKEN-ID", help="The token's id (see `token list`).")
    ],
    config: ConfigOption = None,
) -> None:
    """Revoke a token: refused at once by new processes, by a running server within 10 s.

    Example: envparity token revoke 3"""
    with errors(), unit_of_work(config) as (_rt, session):
        _tokens(session).revoke(token_id)
    out.print(f"token #{token_id} revoked")


# --------------------------------------------------------------------------- alerts


@alerts_app.command("list")
def alerts_list(
    status: Annotated[
        str | None,
        typer.Option(
            metavar="STATUS", help=f"Only events in this state: {one_of(DeliveryStatus)}."
        ),
    ] = None,
    limit: Annotated[int, typer.Option(metavar="LIMIT", help="How many, newest first.")] = 50,
    config: ConfigOption = None,
) -> None:
    """The outbox's events, newest first, with their delivery state and last error.

    Example: envparity alerts list --status failed"""
    from app.alerts.repository import AlertRepository

    with errors():
        if status is not None and status not in DeliveryStatus.values():
            raise InvalidInput(f"--status must be one of {', '.join(DeliveryStatus)}")
        wanted = DeliveryStatus(status) if status is not None else None
        with unit_of_work(config) as (_rt, session):
            table = Table("id", "comparison", "event", "target", "items", "created", "state",
                          "attempts", "last error")  # fmt: skip
            for e in AlertRepository(session).events(wanted, limit):
                colour = _STATE_COLOURS.get(e.status, "yellow")
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
    print_table(table)


@alerts_app.command("retry")
def alerts_retry(
    event_id: Annotated[
        int, typer.Argument(metavar="EVENT-ID", help="A failed event's id (see `alerts list`).")
    ],
    config: ConfigOption = None,
) -> None:
    """Queue a failed event again (after fixing its webhook or token), and send it now.

    Example: envparity alerts retry 12"""
    from app.alerts.repository import AlertRepository

    with errors(), runtime(config) as rt:
        with rt.sessions.begin() as session:
            AlertRepository(session).retry(event_id, utcnow())
        deliver_alerts(rt)
    out.print(f"alert event #{event_id} queued again")
