"""Posting one event: Slack (incoming webhook or chat.postMessage) and signed webhooks. Each
answer becomes delivered, retry (with when) or failed (permanent: never retried)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.error import URLError

import httpx
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.webhook import WebhookClient

from app.alerts.messages import blocks_for
from app.config import Config, SlackConfig, SlackRoute

# slack_sdk logs failed requests itself; our deliverer says what happened, without URLs.
_QUIET = logging.getLogger("envparity.alerts.slack_sdk")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False

TIMEOUT = 10  # seconds for one request
DEFAULT_RETRY_AFTER = 30.0  # a 429 without a usable Retry-After


@dataclass(frozen=True)
class Sent:
    outcome: str  # delivered | retry | failed
    error: str | None = None
    retry_after: float | None = None  # seconds, when the peer said (429 Retry-After)
    remote_ref: str | None = None


class Sender(Protocol):
    # Requests to one destination are paced: at most one a second.
    destination: str
    # Where threads are kept (`channel:` for a Slack bot); None: this sender has no threads.
    thread_prefix: str | None

    def send(self, event_id: int, event: dict[str, Any], thread: str | None) -> Sent: ...


def retry_after(value: str | None) -> float:
    """Retry-After in seconds or as an HTTP date."""
    if not value:
        return DEFAULT_RETRY_AFTER
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER


def judge(status: int, headers: Any, body: str) -> Sent:
    """2xx delivered; 429 and 5xx retried (429 after Retry-After); any other answer is
    permanent (404 no such hook, 403 invalid token, 400 bad payload): failed."""
    if 200 <= status < 300:
        return Sent("delivered")
    detail = f"HTTP {status}: {' '.join(body.split())[:200] or 'no body'}"
    if status == 429:
        return Sent("retry", detail, retry_after(_header(headers, "Retry-After")))
    if status >= 500 or status == 408:
        return Sent("retry", detail)
    return Sent("failed", detail)


def _network(exc: Exception) -> Sent:
    # Never str(exc) of a request error: it may carry the URL, and Slack's URL is a secret.
    reason = getattr(exc, "reason", None)
    text = type(reason).__name__ if isinstance(reason, BaseException) else type(exc).__name__
    return Sent("retry", f"could not reach the destination ({text})")


class SlackWebhook:
    def __init__(self, url: str, channel: str | None) -> None:
        self.client = WebhookClient(url, timeout=TIMEOUT, retry_handlers=[], logger=_QUIET)
        self.channel = channel
        self.destination = "slack:" + hashlib.sha256(url.encode()).hexdigest()[:16]
        self.thread_prefix: str | None = None

    def send(self, event_id: int, event: dict[str, Any], thread: str | None) -> Sent:
        text, blocks = blocks_for(event)
        body: dict[str, Any] = {"text": text, "blocks": blocks}
        if self.channel:
            body["channel"] = self.channel
        try:
            response = self.client.send_dict(body)
        except (URLError, OSError, SlackRequestError) as exc:
            return _network(exc)
        return judge(response.status_code, response.headers, response.body or "")


class SlackBot:
    """chat.postMessage with a bot token; a comparison's later messages thread under its
    first one in the same channel (`thread` is that message's `channel:ts`)."""

    def __init__(self, token: str, channel: str, api_url: str) -> None:
        self.client = WebClient(
            token=token, base_url=api_url, timeout=TIMEOUT, retry_handlers=[], logger=_QUIET
        )
        self.channel = channel
        self.destination = "slack-bot:" + channel
        self.thread_prefix: str | None = channel + ":"

    def send(self, event_id: int, event: dict[str, Any], thread: str | None) -> Sent:
        text, blocks = blocks_for(event)
        thread_ts = thread.rpartition(":")[2] if thread else None
        try:
            response = self.client.chat_postMessage(
                channel=self.channel, text=text, blocks=blocks, thread_ts=thread_ts
            )
        except SlackApiError as exc:
            answer = exc.response
            error = str(answer.get("error", "")) if isinstance(answer.data, dict) else ""
            if answer.status_code == 429 or error == "ratelimited":
                return Sent(
                    "retry",
                    f"HTTP {answer.status_code}: {error}",
                    retry_after(
                        answer.headers.get("Retry-After") or answer.headers.get("retry-after")
                    ),
                )
            if answer.status_code >= 500 or error in ("internal_error", "fatal_error"):
                return Sent("retry", f"HTTP {answer.status_code}: {error}")
            return Sent("failed", f"HTTP {answer.status_code}: {error or 'refused'}")
        except (URLError, OSError, SlackRequestError) as exc:
            return _network(exc)
        return Sent("delivered", remote_ref=f"{self.channel}:{response.get('ts')}")


def _header(headers: Any, name: str) -> str | None:
    """A header from a plain dict whatever its case (slack_sdk keeps them as sent)."""
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return str(value[0] if isinstance(value, list) else value)
    return None


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`: the time is signed too, so a
    receiver can refuse a replayed delivery."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


class Webhook:
    def __init__(self, name: str, url: str, secret: str | None) -> None:
        self.name = name
        self.url = url
        self.secret = secret
        self.destination = f"webhook:{name}"
        self.thread_prefix: str | None = None

    def send(self, event_id: int, event: dict[str, Any], thread: str | None) -> Sent:
        body = json.dumps({"id": event_id, **event}, ensure_ascii=False).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "envparity-alerts",
            "X-Envparity-Event": event["event"],
            "X-Envparity-Delivery": str(event_id),
        }
        if self.secret:
            headers["X-Envparity-Signature"] = signature(self.secret, str(int(time.time())), body)
        try:
            response = httpx.post(self.url, content=body, headers=headers, timeout=TIMEOUT)
        except httpx.HTTPError as exc:
            return _network(exc)
        return judge(response.status_code, response.headers, response.text)


def slack_route(config: Config, comparison_name: str) -> SlackConfig | None:
    """`alerts.slack` with the comparison's own `alerts.slack` laid over it."""
    base = config.model.alerts.slack
    comparison = next((c for c in config.model.comparisons if c.name == comparison_name), None)
    route = comparison.alerts.slack if comparison else True
    if route is False:
        return None
    if not isinstance(route, SlackRoute):
        return base
    fields = {k: v for k, v in route.model_dump().items() if v is not None}
    if base is None:
        return SlackConfig(**fields)
    if "webhook_url" in fields:  # its own webhook: not the base's bot token
        return SlackConfig(**{**base.model_dump(exclude={"bot_token"}), **fields})
    return SlackConfig(**{**base.model_dump(), **fields})


def sender_for(config: Config, comparison: str, target: str) -> Sender | None:
    """The sender of a target as the config says today; None if it is no longer there."""
    if target == "slack":
        slack = slack_route(config, comparison)
        if slack is None:
            return None
        if slack.bot_token and slack.channel:
            return SlackBot(slack.bot_token, slack.channel, slack.api_url)
        return SlackWebhook(slack.webhook_url or "", slack.channel)
    if target.startswith("webhook:"):
        name = target.removeprefix("webhook:")
        hook = config.model.alerts.named_webhooks().get(name)
        if hook is not None:
            return Webhook(name, hook.url, hook.secret)
    return None
