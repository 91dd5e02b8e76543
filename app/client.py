"""A small client for envparity's own API (`gate --api`, `push --api`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import httpx

from app.errors import EnvparityError
from app.states import GateStatus, ScanStatus

if TYPE_CHECKING:
    from app.gate.service import GateResult

API = "/api/v1"


class ApiClient:
    def __init__(self, base_url: str, token: str | None, timeout: float = 30.0) -> None:
        if not token:
            raise EnvparityError("--api needs a token in $ENVPARITY_TOKEN")
        self.base = base_url.rstrip("/") + API
        self.http = httpx.Client(
            headers={"Authorization": f"Bearer {token}", "User-Agent": "envparity-cli"},
            timeout=timeout,
        )

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            answer = self.http.request(method, self.base + path, **kwargs)
        except httpx.HTTPError as exc:
            raise EnvparityError(f"cannot reach {self.base}: {type(exc).__name__}: {exc}") from None
        if answer.status_code >= 400:
            try:
                message = answer.json().get("error") or answer.text
            except ValueError:
                message = answer.text[:300]
            raise EnvparityError(f"{method} {path} answered {answer.status_code}: {message}")
        return answer

    def scan_and_wait(self, environment: str, timeout: float) -> dict[str, Any]:
        """Starts a scan (or joins the running one) and waits until it is done."""
        started = self.request("POST", f"/environments/{environment}/scans").json()
        scan_id = started["scan_id"]
        deadline = time.monotonic() + timeout
        while True:
            scan: dict[str, Any] = self.request("GET", f"/scans/{scan_id}").json()
            if scan["status"] != ScanStatus.RUNNING:
                return scan
            if time.monotonic() >= deadline:
                raise EnvparityError(
                    f"scan #{scan_id} of {environment} did not finish within {timeout:g}s"
                )
            time.sleep(0.5)

    def gate(self, source: str, target: str, categories: Sequence[str] = ()) -> GateResult:
        """The server's gate answer as the local gate gives it (without the report it was
        judged from: the JSON answer does not carry it)."""
        params = _gate_params(source, target, categories)
        return gate_from_json(self.request("GET", "/gate", params=params).json())

    def gate_document(
        self, source: str, target: str, fmt: str, categories: Sequence[str] = ()
    ) -> tuple[str, str]:
        """The gate's answer as the junit or markdown document the server renders from its
        report, and the gate's status ("missing" if the server does not say)."""
        params = {**_gate_params(source, target, categories), "format": fmt}
        answer = self.request("GET", "/gate", params=params)
        return answer.text, answer.headers.get("X-Envparity-Gate", GateStatus.MISSING)


def _gate_params(source: str, target: str, categories: Sequence[str]) -> dict[str, Any]:
    params: dict[str, Any] = {"source": source, "target": target}
    if categories:
        params["category"] = list(categories)
    return params


def gate_from_json(body: dict[str, Any]) -> GateResult:
    """The GateResult a gate's JSON answer (`GateResult.as_json`) was made from, its report
    left out."""
    from app.gate.service import GateResult

    return GateResult(
        source=body["source"],
        target=body["target"],
        status=GateStatus(body["status"]),
        reasons=body["reasons"],
        summary=body.get("summary") or {},
        failing=body.get("failing") or [],
        report_url=body.get("report_url"),
    )
