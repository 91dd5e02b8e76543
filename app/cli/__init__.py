"""The `envparity` command line (Typer + Rich); the only place that exits the process.

Each module holds one family of commands; this one puts them together in the order `--help`
lists them. The commands parse, call a service, print; heavy modules load inside them."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli import admin, collect, compare, maintenance, server

app = typer.Typer(
    name="envparity",
    help="Detect drift between deployment environments.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        from app import __version__

        typer.echo(f"envparity {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Detect drift between deployment environments."""


app.command()(collect.init)
app.command()(collect.validate)
app.command()(collect.scan)
app.command()(collect.push)
app.command()(collect.export)
app.command()(compare.diff)
app.command()(compare.gate)
app.command()(server.demo)
app.command()(server.serve)
app.command("scheduler")(server.scheduler)
app.command("iam-policy")(collect.iam_policy)
app.command("source-types")(collect.source_types)

app.add_typer(maintenance.db_app, name="db")
app.add_typer(admin.baseline_app, name="baseline")
app.add_typer(admin.token_app, name="token")
app.add_typer(admin.waiver_app, name="waiver")
app.add_typer(maintenance.snapshots_app, name="snapshots")
app.add_typer(maintenance.secrets_app, name="secrets")
app.add_typer(admin.alerts_app, name="alerts")


def main() -> None:
    app()
