"""The overview judges every comparison's gate at once (GateCache.evaluate_many): each answer
is the one the gate gives for that comparison alone, and both fill the same cache."""

from __future__ import annotations

from app import runtime
from app.clock import utcnow
from app.gate.service import GateCache, GateResult
from app.states import GateStatus
from tests.support import Project

CONFIG = """
environments:
  dev:
    sources: [{type: file, name: app, path: dev.yaml}]
  staging:
    sources: [{type: file, name: app, path: staging.yaml}]
  production:
    sources: [{type: file, name: app, path: production.yaml}]
  sandbox:
    sources: [{type: file, name: app, path: sandbox.yaml}]
comparisons:
  - {source: dev, target: staging}
  - {source: staging, target: production, gate: {fail_on: warning}}
  - {source: production, target: sandbox}
"""


def answer(result: GateResult) -> tuple[object, ...]:
    return (result.source, result.target, result.status, result.reasons, result.summary)


def test_gates_judged_together_answer_as_each_alone(project: Project) -> None:
    project.write_config(CONFIG)
    project.write("dev.yaml", "pool: 10\n")
    project.write("staging.yaml", "pool: 10\n")
    project.write("production.yaml", "pool: 20\n")
    project.write("sandbox.yaml", "pool: 20\n")
    # sandbox is never scanned: its comparison is `missing`
    assert project.invoke("scan", "dev", "staging", "production").returncode == 0
    rt = runtime.load(project.config)
    now = utcnow()
    pairs = [(c.source, c.target, None) for c in rt.config.model.comparisons]
    together = GateCache()
    answers = together.evaluate_many(rt.sessions, rt.config, pairs, now)
    alone = [
        GateCache().evaluate(rt.sessions, rt.config, source, target, now)
        for source, target, _ in pairs
    ]
    assert [answer(a) for a in answers] == [answer(a) for a in alone]
    assert [a.status for a in answers] == [GateStatus.PASS, GateStatus.FAIL, GateStatus.MISSING]
    # Kept as the gate keeps its answers: asked again, each comes from the cache.
    assert len(together.entries) == 3
    again = together.evaluate_many(rt.sessions, rt.config, pairs, now)
    assert all(a is b for a, b in zip(again, answers, strict=True))
    single = together.evaluate(rt.sessions, rt.config, "staging", "production", now)
    assert single is answers[1]
    rt.close()
