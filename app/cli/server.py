"""Commands that keep running: serve, the scheduler alone, and the demo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app import runtime as runtime_mod
from app.cli.collect import run_scans
from app.cli.common import (
    ConfigOption,
    err,
    errors,
    out,
    runtime,
    setup_logging,
)
from app.clock import utcnow
from app.errors import EnvparityError

LOOPBACK = ("127.0.0.1", "::1", "localhost")


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

    setup_logging()
    with errors():
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


def scheduler(config: ConfigOption = None) -> None:
    """Run the scheduled scans alone (for deployments whose API replicas use --no-scheduler)."""
    import signal
    import threading

    from app import scheduler as scheduler_mod

    setup_logging()
    with errors():
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

    delivery = Background(Deliverer(rt.config, rt.sessions, rt.redactor, clock=rt.clock))
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
    from app.cli.compare import print_gate
    from app.gate import service as gate_service
    from app.reports import render
    from app.reports import service as reports

    setup_logging()
    with errors(), tempfile.TemporaryDirectory(prefix="envparity-demo-") as scratch:
        where = folder or Path(scratch)
        where.mkdir(parents=True, exist_ok=True)
        out.print("starting a simulated AWS account on loopback (moto) and seeding it...")
        simulator = demo_mod.start_simulator()
        try:
            demo_mod.seed(simulator.endpoint)
            config_path = demo_mod.write_config(where, simulator.endpoint)
            with runtime(config_path, own_database=True) as rt:
                run_scans(rt, list(rt.config.environments), wait=0)
                with rt.sessions.begin() as session:
                    report = reports.compare_refs(
                        session, rt.config, "staging", "production", utcnow()
                    )
                    gates = [
                        gate_service.evaluate(session, rt.config, c.source, c.target, utcnow())
                        for c in rt.config.model.comparisons
                    ]
            out.rule("staging → production")
            out.print(render.to_rich(report))
            out.rule("promotion gates")
            for result in gates:
                print_gate(result, "table", None, details=False)
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

    with runtime(config_path, own_database=True) as rt:
        out.print(f"dashboard: http://127.0.0.1:{port}/  (Ctrl-C to stop)")
        uvicorn.run(create_app(runtime=rt), host="127.0.0.1", port=port, log_level="warning")
