"""Shapes the API documents for its error answers (the success bodies are documented per route)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

MAX_ID = 2**63 - 1  # ids are 64-bit integers in every database envparity supports


class Problem(BaseModel):
    path: str
    message: str


class InvalidBody(BaseModel):
    """A 422: what was refused, with the JSON path of each problem; nothing was stored."""

    error: str
    detail: list[Problem] | None = None


class ErrorBody(BaseModel):
    """Any other error: a message a person can act on, and details where there are some."""

    error: str
    detail: Any = None


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Not possible with this config"},
    401: {"model": ErrorBody, "description": "No token, or an unknown, revoked or expired one"},
    403: {"model": ErrorBody, "description": "The token's scope is too small"},
    404: {"model": ErrorBody, "description": "No such thing"},
    422: {"model": InvalidBody, "description": "Refused whole; nothing stored"},
}
