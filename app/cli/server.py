"""Commands that keep running: serve, the scheduler alone, and the demo."""

from __future__ import annotations

import errno
import logging
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from app.cli.common import (
    ConfigOption,
    LogFormatOption,
    LogLevelOption,
    err,
    errors,
    out,
    runtime,
    setup_logging,
)
from app.clock import utcnow
from app.errors import EnvparityError

if TYPE_CHECKING:
    from fastapi import FastAPI

LOOPBACK = ("127.0.0.1", "::1", "localhost")
# Seconds a thread of the server holds the interpreter lock before another may take it.
SWITCH_INTERVAL = 0.001
log = logging.getLogger(__name__)


def listen(host: str, port: int) -> list[socket.socket]:
    """Sockets bound to `host`:`port` (every address a name resolves to, as uvicorn would
    bind them), before the application starts: a port in use is a clear error (exit 2), not
    uvicorn's traceback after the scheduler and alert delivery have started."""
    if not 0 <= port <= 65535:
        raise EnvparityError(f"--port {port} is not a port: give one from 1 to 65535")
    try:
        found = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
        )
    except (OSError, UnicodeError) as exc:  # an unknown name, an IDNA error
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise EnvparityError(
            f"cannot listen on {host} port {port}: {reason}; choose another with --host or --port"
        ) from None
    bound: list[socket.socket] = []
    problem: OSError | None = None
    for family, kind, proto, _name, address in dict.fromkeys(found):
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
        except OSError as exc:
            sock.close()
            # `localhost` on a host without IPv6: its ::1 cannot be bound, its 127.0.0.1 can.
            if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT) and problem is None:
                problem = exc
                continue
            for other in bound:
                other.close()
            raise EnvparityError(_cannot_listen(host, port, exc)) from None
        bound.append(sock)
    if not bound:
        raise EnvparityError(_cannot_listen(host, port, problem))
    return bound


def _cannot_listen(host: str, port: int, exc: OSError | None) -> str:
    code = exc.errno if exc is not None else None
    if code == errno.EADDRINUSE:
        return f"port {port} on {host} is in use; choose another with --port"
    if code == errno.EACCES:
        return (
            f"cannot listen on port {port} of {host}: permission denied (a port below 1024 "
            "needs privileges); choose another with --port"
        )
    if code == errno.EADDRNOTAVAIL:
        return f"cannot listen on {host}: no address of this machine; choose another with --host"
    reason = (exc.strerror or str(exc)) if exc is not None else "no address to bind"
    return f"cannot listen on {host} port {port}: {reason}"


def run_server(application: FastAPI, sockets: list[socket.socket], **facts: object) -> None:
    """Serves `application` on `sockets` until SIGINT or SIGTERM, uvicorn's own lines and the
    request log (app.main) in the chosen log format; a line once it listens, with `facts`."""
    import uvicorn

    from app import __version__

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if not self.started or not sockets:
                return
            host, port = sockets[0].getsockname()[:2]
            shown = f"[{host}]" if ":" in host else host
            url = f"http://{shown}:{port}/"
            log.info(
                "listening on %s",
                url,
                extra={
                    "event": "server.listening",
                    "host": host,
                    "port": port,
                    "url": url,
                    "version": __version__,
                    **facts,
                },
            )

    # No logging config of uvicorn's own: its loggers go through the root logger's handler
    # (app.logs), at its level. No access log of its own either: it would show query strings
    # in full; app.main writes one without secrets.
    config = uvicorn.Config(application, log_config=None, access_log=False)
    # The gate and the pages are answered by the event loop's thread while pushes, scans
    # and evaluations work in others: in Python's default 5 ms turns at the interpreter
    # lock, a request that arrives during a push waits several turns (a p99 near 100 ms at
    # 10 clients); in 1 ms turns, half of that, at no cost to quiet throughput
    # (benchmarks/bench_gate.py, docs/performance.md).
    sys.setswitchinterval(SWITCH_INTERVAL)
    Server(config).run(sockets=sockets)


def serve(
    host: Annotated[
        str | None,
        typer.Option(metavar="HOST", help="Address to listen on [default: server.host]."),
    ] = None,
    port: Annotated[
        int | None, typer.Option(metavar="PORT", help="Port [default: server.port].")
    ] = None,
    no_scheduler: Annotated[
        bool, typer.Option("--no-scheduler", help="API only: no scheduled scans in this process.")
    ] = False,
    config: ConfigOption = None,
    log_level: LogLevelOption = None,
    log_format: LogFormatOption = None,
) -> None:
    """Serve the dashboard (/), the HTTP API (OpenAPI at /docs), alert delivery and, unless
    --no-scheduler, the scheduled scans.

    Example: envparity serve --host 0.0.0.0 --port 8000 --log-format json"""
    from app.main import create_app

    setup_logging(log_level, log_format, default_level="info")
    with errors():
        from app import runtime as runtime_mod

        rt = runtime_mod.load(config)
        server = rt.config.model.server
        bind = host or server.host
        if not server.auth and bind not in LOOPBACK and not bind.startswith("127."):
            rt.close()
            raise EnvparityError(
                f"server.auth is off: refusing to listen on {bind}; "
                "auth can be off only on a loopback address"
            )
        try:
            sockets = listen(bind, port or server.port)
        except EnvparityError:
            rt.close()
            raise
        application = create_app(runtime=rt, scheduler=not no_scheduler, alerts=True)
    run_server(application, sockets, scheduler=not no_scheduler, auth=server.auth)
    rt.close()


def scheduler(
    config: ConfigOption = None,
    log_level: LogLevelOption = None,
    log_format: LogFormatOption = None,
) -> None:
    """Run the scheduled scans alone (for deployments whose API replicas use --no-scheduler).

    Example: envparity scheduler --log-format kv"""
    import signal
    import threading

    from app import scheduler as scheduler_mod

    setup_logging(log_level, log_format, default_level="info")
    with errors():
        from app import runtime as runtime_mod

        rt = runtime_mod.load(config)
        jobs, leadership = scheduler_mod.build(rt)
    scans = [job for job in jobs.get_jobs() if job.id != scheduler_mod.PRUNE_JOB]
    if not scans:
        # The daily prune alone is no reason for a process: `db prune` from cron does it.
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
    log.info(
        "scheduler started: %d environment(s) on a schedule",
        len(scans),
        extra={"event": "scheduler.started", "jobs": len(jobs.get_jobs())},
    )
    scheduler_mod.announce(jobs, rt.config)
    for job in jobs.get_jobs():
        out.print(f"{job.name}: next run {job.next_run_time.isoformat()}")
    try:
        stop.wait()
    finally:
        log.info(
            "shutting down: alert delivery, scheduled scans (a running scan finishes)",
            extra={"event": "scheduler.stopping"},
        )
        delivery.close()
        jobs.shutdown(wait=True)
        leadership.release()
        rt.close()
        log.info("stopped", extra={"event": "scheduler.stopped"})


def demo(
    folder: Annotated[
        Path | None,
        typer.Option(
            "--folder",
            metavar="DIR",
            help="Keep the demo's config and database here (default: a temporary folder).",
        ),
    ] = None,
    serve_after: Annotated[
        bool,
        typer.Option("--serve", help="Then serve the dashboard and API on loopback until Ctrl-C."),
    ] = False,
    port: Annotated[int, typer.Option(metavar="PORT", help="The port for --serve.")] = 8000,
) -> None:
    """Scan a simulated AWS account (no account needed) with three drifting environments.

    Example: envparity demo --serve"""
    import tempfile

    from app import demo as demo_mod
    from app.cli.compare import print_gate, show
    from app.reports import render

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
                from app.cli.collect import run_scans

                run_scans(rt, list(rt.config.environments), wait=0)
                with rt.sessions.begin() as session:
                    judged = demo_mod.judge(session, rt.config, utcnow())
            for each in judged:  # every comparison's items, then its gate
                out.rule(f"{each.source} → {each.target}")
                show(render.to_rich(each.report))
                print_gate(each.gate, "table", None, details=False)
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
    from app.main import create_app

    with runtime(config_path, own_database=True) as rt:
        sockets = listen("127.0.0.1", port)
        out.print(f"dashboard: http://127.0.0.1:{port}/  (Ctrl-C to stop)")
        run_server(create_app(runtime=rt), sockets, demo=True)
