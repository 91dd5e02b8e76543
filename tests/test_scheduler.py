"""Scheduled scans: they happen with nobody calling scan, and on PostgreSQL several
scheduler processes run each due scan once."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app import runtime
from app import scheduler as scheduler_mod
from app.config import CronText
from app.db.models import Scan
from tests.support import FakeClock, Project

CONFIG = """
environments:
  staging:
    schedule: 1s
    sources:
      - {type: command, name: hello, command: [echo, hello], parser: lines}
  pushed: {}
"""


def scans(rt: runtime.Runtime) -> int:
    with rt.sessions.begin() as session:
        return int(session.scalar(select(func.count()).select_from(Scan)) or 0)


def test_scans_run_on_their_schedule(project: Project) -> None:
    project.write_config(CONFIG)
    rt = runtime.load(project.config)
    jobs, leadership = scheduler_mod.build(rt)
    # push-only: no scan job; the daily prune of stored reports (retention.schedule)
    assert [job.id for job in jobs.get_jobs()] == ["scan:staging", "prune"]
    jobs.start()
    deadline = time.monotonic() + 15  # APScheduler's own trigger, on real time: polled
    while scans(rt) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    jobs.shutdown(wait=True)
    leadership.release()
    assert scans(rt) >= 2
    with rt.sessions.begin() as session:
        assert set(session.scalars(select(Scan.trigger))) == {"scheduler"}
    rt.close()


# One scheduler per SQLite database, by design: leadership is a PostgreSQL matter.
postgresql_only = pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)


@postgresql_only
def test_two_schedulers_on_postgresql_run_each_due_scan_once(project: Project) -> None:
    project.write_config(CONFIG)
    clock = FakeClock()
    first, second = runtime.load(project.config), runtime.load(project.config)
    first.clock = second.clock = clock
    built = [scheduler_mod.build(first), scheduler_mod.build(second)]
    # Four due times of the 1 s schedule: at each, the job fires in both schedulers, as their
    # triggers fire it (test_scans_run_on_their_schedule has the trigger itself).
    for _ in range(4):
        clock.advance(1)
        for jobs, _leadership in built:
            job = jobs.get_job("scan:staging")
            job.func(*job.args)
    leaders = [leadership.connection is not None for _jobs, leadership in built]
    for _jobs, leadership in built:
        leadership.release()
    assert leaders.count(True) == 1
    # one scheduler scanning at each of the 4 due times: 4 scans; both would make 8
    assert scans(first) == 4
    first.close()
    second.close()


@postgresql_only
def test_a_standby_takes_over_when_the_leader_goes(project: Project) -> None:
    project.write_config(CONFIG)
    first, second = runtime.load(project.config), runtime.load(project.config)
    leader, standby = scheduler_mod.Leadership(first), scheduler_mod.Leadership(second)
    assert leader.is_leader()
    assert not standby.is_leader()
    leader.release()  # the leader's session ends, as when its process dies
    # The server ends the dead session's backend, and its lock, once it sees the socket
    # closed: a moment later on a busy machine. A standby asks again on its next tick.
    deadline = time.monotonic() + 10
    while not standby.is_leader():
        assert time.monotonic() < deadline, "the standby never took over"
        time.sleep(0.05)
    standby.release()
    first.close()
    second.close()


def test_scheduler_command_without_schedules_says_so(project: Project) -> None:
    project.write_config("environments:\n  staging: {}\n")
    result = project.invoke("scheduler")
    assert result.returncode == 2
    assert "nothing to run" in result.stderr


def test_cron_and_interval_schedules() -> None:
    assert str(scheduler_mod.trigger_for(CronText("*/5 * * * *"))).startswith("cron[")
    assert str(scheduler_mod.trigger_for(timedelta(minutes=15))).startswith("interval[0:15:00")
