"""Posting one event: Slack (incoming webhook or chat.postMessage) and signed webhooks. Each
answer becomes delivered, retry (with when) or failed (permanent: never retried).

Every request ends by its deadline (app.alerts.transport), so Slack is posted with httpx like
the webhooks: slack_sdk's clients time out per socket read only, and a peer trickling its
answer would hold them for ever."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Literal, Protocol

from app.alerts.messages import blocks_for
from app.alerts.transport import Answer, Unanswered, Unsent, post
from app.config import Config, SlackConfig, SlackRoute

DEFAULT_RETRY_AFTER = 30.0  # a 429 without a usable Retry-After
USER_AGENT = "envparity-alerts"


# Delivered; to retry (when the peer said, or with the usual backoff); failed for good.
SendOutcome = Literal["delivered", "retry", "failed"]


@dataclass(frozen=True)
class Sent:
    outcome: SendOutcome
    error: str | None = None
    retry_after: float | None = None  # seconds, when the peer said (429 Retry-After)
    remote_ref: str | None = None
    # The request went out in full and no answer came: the peer may have acted on it.
    unanswered: bool = False


@dataclass(frozen=True)
class Outgoing:
    """One attempt at one event."""

    event_id: int
    # The same on every attempt of the event, different for every event: a receiver that
    # has seen it drops the repeat (Idempotency-Key, and the Standard Webhooks webhook-id).
    key: str
    event: dict[str, Any]
    thread: str | None  # Slack bot: the `channel:ts` of the comparison's first message
    deadline: float  # time.monotonic() by which the request has ended, answered or not


class Sender(Protocol):
    # Requests to one destination are paced (at most one a second) and sent by one worker:
    # a slow destination holds only its own events.
    destination: str
    # Where threads are kept (`channel:` for a Slack bot); None: this sender has no threads.
    thread_prefix: str | None

    def send(self, outgoing: Outgoing) -> Sent: ...


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


def judge(status: int, headers: Mapping[str, str], body: str) -> Sent:
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


def _post(
    url: str, body: dict[str, Any] | bytes, headers: dict[str, str], deadline: float
) -> Answer | Sent:
    """The answer, or what to do when there was none (never the URL: a Slack webhook's URL
    is a secret)."""
    content = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    try:
        return post(url, content, {"User-Agent": USER_AGENT, **headers}, deadline)
    except Unanswered as exc:
        return Sent("retry", f"sent, but no answer ({exc})", unanswered=True)
    except Unsent as exc:
        return Sent("retry", f"could not reach the destination ({exc})")


JSON = "application/json; charset=utf-8"


class SlackWebhook:
    def __init__(self, url: str, channel: str | None) -> None:
        self.url = url
        self.channel = channel
        self.destination = "slack:" + hashlib.sha256(url.encode()).hexdigest()[:16]
        self.thread_prefix: str | None = None

    def send(self, outgoing: Outgoing) -> Sent:
        text, blocks = blocks_for(outgoing.event)
        body: dict[str, Any] = {"text": text, "blocks": blocks}
        if self.channel:
            body["channel"] = self.channel
        answer = _post(self.url, body, {"Content-Type": JSON}, outgoing.deadline)
        if isinstance(answer, Sent):
            return answer
        return judge(answer.status, answer.headers, answer.text)


class SlackBot:
    """chat.postMessage with a bot token; a comparison's later messages thread under its
    first one in the same channel (`thread` is that message's `channel:ts`)."""

    def __init__(self, token: str, channel: str, api_url: str) -> None:
        self.token = token
        self.url = api_url.rstrip("/") + "/chat.postMessage"
        self.channel = channel
        self.destination = "slack-bot:" + channel
        self.thread_prefix: str | None = channel + ":"

    def send(self, outgoing: Outgoing) -> Sent:
        text, blocks = blocks_for(outgoing.event)
        body: dict[str, Any] = {"channel": self.channel, "text": text, "blocks": blocks}
        if outgoing.thread:
            body["thread_ts"] = outgoing.thread.rpartition(":")[2]
        headers = {"Content-Type": JSON, "Authorization": f"Bearer {self.token}"}
        answer = _post(self.url, body, headers, outgoing.deadline)
        if isinstance(answer, Sent):
            return answer
        return self._judge(answer)

    def _judge(self, answer: Answer) -> Sent:
        """The Web API answers 200 with `ok: false` and an error name for most refusals."""
        try:
            data = json.loads(answer.text)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            data = {}
        error = str(data.get("error") or "")
        if answer.status == 200 and data.get("ok") is True:
            return Sent("delivered", remote_ref=f"{self.channel}:{data.get('ts')}")
        if answer.status == 429 or error == "ratelimited":
            return Sent(
                "retry",
                f"HTTP {answer.status}: {error or 'rate limited'}",
                retry_after(answer.headers.get("Retry-After")),
            )
        if answer.status >= 500 or error in (
            "internal_error",
            "fatal_error",
            "service_unavailable",
        ):
            return Sent("retry", f"HTTP {answer.status}: {error or 'server error'}")
        if answer.status == 200 and not data:
            return Sent("retry", "HTTP 200: not a Slack Web API answer")
        return Sent("failed", f"HTTP {answer.status}: {error or 'refused'}")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header from a mapping whatever its case."""
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return str(value[0] if isinstance(value, list) else value)
    return None


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`: the time is signed too, so a
    receiver can refuse a replayed delivery."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def standard_signature(secret: str, key: str, timestamp: str, body: bytes) -> str:
    """Standard Webhooks' `webhook-signature`: `v1,<base64 HMAC-SHA256 of "<id>.<t>.<body>">`,
    keyed with the secret's bytes (a Standard Webhooks library takes it as
    `whsec_<base64 of the secret>`)."""
    signed = f"{key}.{timestamp}.".encode() + body
    mac = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


class Webhook:
    def __init__(self, name: str, url: str, secret: str | None) -> None:
        self.name = name
        self.url = url
        self.secret = secret
        self.destination = f"webhook:{name}"
        self.thread_prefix: str | None = None

    def send(self, outgoing: Outgoing) -> Sent:
        event = outgoing.event
        body = json.dumps({"id": outgoing.event_id, **event}, ensure_ascii=False).encode()
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Envparity-Event": event["event"],
            "X-Envparity-Delivery": str(outgoing.event_id),
            "Idempotency-Key": outgoing.key,
            "webhook-id": outgoing.key,
            "webhook-timestamp": stamp,
        }
        if self.secret:
            headers["X-Envparity-Signature"] = signature(self.secret, stamp, body)
            headers["webhook-signature"] = standard_signature(
                self.secret, outgoing.key, stamp, body
            )
        answer = _post(self.url, body, headers, outgoing.deadline)
        if isinstance(answer, Sent):
            return answer
        return judge(answer.status, answer.headers, answer.text)


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
