"""Commands that look after what is stored: the database's schema and secrets, the stored
snapshots, and the secrets audit."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from app.cli.common import ConfigOption, errors, group, out, print_table, runtime, unit_of_work
from app.clock import format_duration, format_time, utcnow
from app.errors import InvalidInput
from app.states import SourceStatus

db_app = group("Database maintenance.")
snapshots_app = group("Stored snapshots: list them, remove one.")
secrets_app = group("What is treated as a secret, and where.")


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None) -> None:
    """Apply the database migrations up to the latest.

    Example: envparity db upgrade"""
    from app.db import migrate

    with errors(), runtime(config, migrate=False) as rt:
        migrate.upgrade(rt.engine)
        revision = migrate.current_revision(rt.engine)
        from app.rescrub import needs_rescrub

        with rt.sessions() as session:
            outdated = needs_rescrub(session, rt.redactor)
    out.print(f"database at revision {revision}")
    if outdated:
        out.print(
            "stored snapshots were redacted by other secret rules than today's: run "
            "`envparity db rescrub` to apply them (docs/secrets.md)"
        )


@db_app.command("rescrub")
def db_rescrub(config: ConfigOption = None) -> None:
    """Apply today's secret rules to every stored snapshot, report and alert, then compact
    the database so old plaintext leaves its files. Prints counts, never values.

    Example: envparity db rescrub"""
    from app.rescrub import compact, rescrub

    with errors(), runtime(config) as rt:
        stats = rescrub(rt.sessions, rt.config, rt.redactor, utcnow())
        compact(rt.engine)
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
        print_table(table)


@db_app.command("prune")
def db_prune(
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Say what would be deleted, and delete nothing."),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Delete the stored reports (evaluations) past the `retention:` policy, then the
    documents nothing refers to any more. The latest `keep_per_comparison` of each
    comparison and the current one stay, whatever their age. The scheduler does the same
    on `retention.schedule` (daily by default).

    Example: envparity db prune --dry-run"""
    from app.reports.retention import prune

    with errors(), runtime(config) as rt:
        policy = rt.config.model.retention
        pruned = prune(rt.sessions, policy, rt.clock.now(), dry_run=dry_run)
    would, stay = ("would be ", "would stay") if dry_run else ("", "stay")
    out.print(
        f"stored reports made before {format_time(pruned.cutoff)} "
        f"(retention.evaluations: {format_duration(policy.evaluations)}) are pruned, "
        f"but never the latest {pruned.keep_per_comparison} of a comparison "
        "(retention.keep_per_comparison) nor its current one"
    )
    if pruned.comparisons:
        table = Table("comparison", "stored reports", "oldest", "newest")
        for doomed in pruned.comparisons:
            table.add_row(
                escape(doomed.comparison),
                str(doomed.count),
                format_time(doomed.oldest),
                format_time(doomed.newest),
            )
        print_table(table)
    out.print(
        f"{pruned.evaluations} stored report(s) and {pruned.documents} document(s) nothing "
        f"else used {would}deleted; {pruned.kept} stored report(s) {stay}"
    )
    if dry_run:
        out.print("dry run: nothing was deleted")


# --------------------------------------------------------------------------- snapshots


@snapshots_app.command("list")
def snapshots_list(
    environment: Annotated[str, typer.Argument(metavar="ENVIRONMENT", help="The environment.")],
    limit: Annotated[
        int, typer.Option("--limit", metavar="LIMIT", help="At most this many, newest first.")
    ] = 20,
    config: ConfigOption = None,
) -> None:
    """An environment's snapshots, newest first, with the ids `ENV@ID` refs take.

    Example: envparity snapshots list production --limit 5"""
    with errors(), unit_of_work(config) as (rt, session):
        from app.snapshots.repository import SnapshotRepository

        rt.config.environment(environment)  # must be declared
        rows = SnapshotRepository(session).list_snapshots(environment, max(1, limit))
        table = Table("id", "taken at", "origin", "status", "sources", "resources")
        for snapshot in rows:
            ok = sum(s.status == SourceStatus.OK for s in snapshot.sources)
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
    print_table(table)


@snapshots_app.command("show")
def snapshots_show(
    snapshot_id: Annotated[
        int, typer.Argument(metavar="SNAPSHOT-ID", help="The snapshot's id (see `snapshots list`).")
    ],
    config: ConfigOption = None,
) -> None:
    """One snapshot: when, how, its status, and each source's outcome (with its error).

    Example: envparity snapshots show 42"""
    with errors(), unit_of_work(config) as (_rt, session):
        from app.snapshots.repository import SnapshotRepository

        snapshot = SnapshotRepository(session).snapshot(snapshot_id)
        header = (
            f"snapshot #{snapshot.id} of {snapshot.environment.name}: {snapshot.status}, "
            f"{snapshot.origin}, taken {format_time(snapshot.taken_at)}, "
            f"{snapshot.resource_count} resources"
        )
        table = Table("source", "type", "status", "resources", "ms", "error")
        for source in snapshot.sources:
            table.add_row(
                escape(source.name),
                escape(source.type),
                source.status,
                str(source.resource_count),
                "" if source.duration_ms is None else str(source.duration_ms),
                escape(source.error or ""),
            )
    out.print(escape(header))
    print_table(table)


@snapshots_app.command("rm")
def snapshots_rm(
    snapshot_id: Annotated[
        int, typer.Argument(metavar="SNAPSHOT-ID", help="The snapshot's id (see `snapshots list`).")
    ],
    config: ConfigOption = None,
) -> None:
    """Remove a snapshot (one pushed with a wrong clock, say) with its stored reports; the
    comparisons it was part of are evaluated again. Says what it changed.

    Example: envparity snapshots rm 42"""
    from app.alerts.evaluate import Evaluator
    from app.snapshots import service

    with errors(), runtime(config) as rt:
        with rt.sessions.begin() as session:
            removed = service.remove_snapshot(session, snapshot_id)
        Evaluator(rt.config, rt.sessions, rt.clock).after_snapshot(removed.environment)
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
        str | None,
        typer.Argument(metavar="ENVIRONMENT", help="One environment [default: every one]."),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option("--format", "-f", metavar="FORMAT", help="table or json.", show_default=True),
    ] = "table",
    config: ConfigOption = None,
) -> None:
    """Which paths of each source's latest snapshot were treated as secrets, and by which
    rule. Never prints a value.

    Example: envparity secrets audit staging"""
    from app.snapshots.audit import audit

    with errors(), unit_of_work(config) as (rt, session):
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
        if c.status != SourceStatus.OK:
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
            print_table(table)
        if c.more:
            out.print(f"  ... and {c.more} more (counted above)")
