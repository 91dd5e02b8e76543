"""Prometheus metrics of one server process, made by create_app (nothing at import time)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from app.alerts.repository import severity_counts
from app.alerts.senders import Sent
from app.db.models import AlertEvent, Evaluation
from app.snapshots.service import ScanResult
from app.states import DeliveryStatus, GateStatus


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Histogram(
            "envparity_request_seconds",
            "API request latency by route (its template under /api/v1)",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.sources = Counter(
            "envparity_scan_sources_total",
            "Sources collected by scans this process ran, by outcome",
            ["environment", "source_type", "outcome"],
            registry=self.registry,
        )
        self.scans = Histogram(
            "envparity_scan_seconds",
            "Scan duration by environment and snapshot status",
            ["environment", "status"],
            buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800),
            registry=self.registry,
        )
        self.drift = Gauge(
            "envparity_open_drift_items",
            "Unwaived drift items of a comparison at its last evaluation, by severity",
            ["comparison", "severity"],
            registry=self.registry,
        )
        self.gates = Counter(
            "envparity_gate_evaluations_total",
            "Gate evaluations by result",
            ["comparison", "status"],
            registry=self.registry,
        )

        self.alerts = Counter(
            "envparity_alert_deliveries_total",
            "Alert delivery attempts this process made, by target, event and outcome",
            ["target", "event", "outcome"],
            registry=self.registry,
        )
        self.outbox_events = Gauge(
            "envparity_alert_events",
            "Alert events in the outbox by target and state (failed ones need a person)",
            ["target", "status"],
            registry=self.registry,
        )

    def alert_sent(self, event: AlertEvent, sent: Sent) -> None:
        self.alerts.labels(event.target, event.kind, sent.outcome).inc()

    def outbox(self, counts: dict[tuple[str, str], int]) -> None:
        targets = {target for target, _ in counts}
        for target in targets:
            for status in DeliveryStatus:
                self.outbox_events.labels(target, status).set(counts.get((target, status), 0))

    def scanned(self, result: ScanResult, seconds: float) -> None:
        for source in result.sources:
            self.sources.labels(result.environment, source.type, source.status).inc()
        self.scans.labels(result.environment, result.status).observe(seconds)

    def open_drift(self, evaluations: list[Evaluation]) -> None:
        """From each comparison's last evaluation (stored after every scan and push)."""
        for e in evaluations:
            for severity, count in severity_counts(e).items():
                self.drift.labels(e.comparison, severity).set(count)

    def gated(self, source: str, target: str, status: GateStatus) -> None:
        self.gates.labels(f"{source}->{target}", status).inc()
