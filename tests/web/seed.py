"""A seeded installation for the dashboard tests: three push-only environments with drift
(production alone opens SSH to 0.0.0.0/0: critical), waived and tolerated differences, a
value with markup, history for the timelines, and a read token."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app import runtime
from app.alerts.evaluate import Evaluator
from app.auth.tokens import TokenRepository
from app.clock import utcnow
from app.snapshots import service
from tests.conftest import TEST_SECRET_KEY

CONFIG = """
environments:
  dev: {{vars: {{env: dev}}}}
  staging: {{vars: {{env: staging}}}}
  production: {{vars: {{env: production}}}}
comparisons:
  - {{source: staging, target: production, gate: {{fail_on: warning}}}}
  - {{source: dev, target: staging, gate: {{fail_on: critical, max_age: 1h}}}}
tolerate:
  - {{category: packages, path: version, allow: patch}}
ignore:
  - comparison: staging->production
    category: config
    path: pool_size
    reason: production has more connections by design
    owner: ops
server: {{auth: {auth}}}
"""

BANNER = "<script>alert('drift')</script>"
OPEN_SSH = {"label": "tcp/22 from 0.0.0.0/0", "protocol": "tcp", "ports": "22", "cidr": "0.0.0.0/0"}
HTTPS = {
    "label": "tcp/443 from 10.0.0.0/8",
    "protocol": "tcp",
    "ports": "443",
    "cidr": "10.0.0.0/8",
}


def document(env: str, taken_at: datetime, *, open_ssh: bool = False, **config: Any) -> Any:
    rules = [HTTPS, OPEN_SSH] if open_ssh else [HTTPS]
    app_config = {"pool_size": 10, "log_level": "info", "banner": "welcome", **config}
    return {
        "taken_at": taken_at.isoformat(),
        "sources": [
            {"name": "agent", "type": "push", "status": "ok", "error": None},
            {"name": "aws", "type": "push", "status": "ok", "error": None},
        ],
        "resources": [
            {
                "source": "agent",
                "category": "config",
                "resource_type": "file",
                "key": f"deploy/{env}/app.yaml",
                "attributes": app_config,
            },
            {
                "source": "agent",
                "category": "packages",
                "resource_type": "package.pip",
                "key": "requests",
                "attributes": {"version": "2.31.0" if env == "staging" else "2.31.1"},
            },
            {
                "source": "aws",
                "category": "network",
                "resource_type": "aws.ec2.security_group",
                "key": f"web-{env}",
                "attributes": {"description": "web tier", "ingress": rules},
            },
        ],
    }


@dataclass
class Seeded:
    runtime: runtime.Runtime
    read_token: str
    root: Path


@contextmanager
def seeded(root: Path, *, auth: bool = True, evaluate: bool = True) -> Iterator[Seeded]:
    """The installation, for as long as the block runs (its own environment variables: this
    outlives one test, and the autouse isolation fixture is per test). `evaluate`: store the
    comparisons' evaluations after each push, as `envparity push` and the API do."""
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("ENVPARITY_"):
                mp.delenv(name)
        mp.setenv("ENVPARITY_SECRET_KEY", TEST_SECRET_KEY)
        mp.setenv("ENVPARITY_DATABASE_URL", f"sqlite:///{root / 'envparity.db'}")
        (root / "envparity.yaml").write_text(CONFIG.format(auth="true" if auth else "false"))
        rt = runtime.load(root / "envparity.yaml")
    now = utcnow()
    pushes = [
        ("dev", now - timedelta(hours=3), {}),
        ("staging", now - timedelta(hours=2), {}),
        ("production", now - timedelta(hours=2, minutes=-5), {"pool_size": 40}),
        ("staging", now - timedelta(minutes=30), {"banner": BANNER}),
        ("production", now - timedelta(minutes=10), {"pool_size": 40, "open_ssh": True}),
    ]
    for env, taken_at, extra in pushes:
        open_ssh = bool(extra.pop("open_ssh", False))
        with rt.sessions.begin() as session:
            doc = document(env, taken_at, open_ssh=open_ssh, **extra)
            service.push(session, rt.config, env, doc, rt.redactor)
        if evaluate:
            Evaluator(rt.config, rt.sessions).after_snapshot(env)
    with rt.sessions.begin() as session:
        _, token = TokenRepository(session).create("read", "dashboard", None)
    try:
        yield Seeded(rt, token, root)
    finally:
        rt.close()
