"""API tokens: 256-bit random, `envp_` prefixed, shown once, stored as SHA-256, scoped."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.db.models import Token
from app.errors import InvalidInput, NotFound
from app.states import Scope

PREFIX = "envp_"
SCOPES: tuple[Scope, ...] = tuple(Scope)  # smallest first
# last_used_at is written at most this often per token: a busy CI should not make
# every gate request a write.
LAST_USED_EVERY = timedelta(minutes=1)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def allows(granted: str, needed: Scope) -> bool:
    """`read` < `gate` < `write` < `admin`: a scope includes the ones below it."""
    return Scope(granted).includes(needed)


class TokenRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def create(self, scope: str, name: str, expires_at: datetime | None) -> tuple[Token, str]:
        """A new token row and the token itself (the only time it exists in plain text)."""
        if scope not in SCOPES:
            raise InvalidInput(f"scope must be one of {', '.join(SCOPES)}")
        token = PREFIX + secrets.token_urlsafe(32)  # 256 bits
        row = Token(
            name=name,
            scope=Scope(scope),
            digest=digest(token),
            prefix=token[: len(PREFIX) + 4],
            expires_at=expires_at,
        )
        self.session.add(row)
        self.session.flush()
        return row, token

    def all(self) -> list[Token]:
        return list(self.session.scalars(select(Token).order_by(Token.id)))

    def revoke(self, token_id: int) -> Token:
        row = self.session.get(Token, token_id)
        if row is None:
            raise NotFound(f"no token #{token_id}")
        row.revoked_at = row.revoked_at or utcnow()
        self.session.flush()
        return row

    def verify(self, token: str, now: datetime) -> Token | None:
        """The live token row for `token`, or None (unknown, revoked or expired)."""
        if not token.startswith(PREFIX):
            return None
        wanted = digest(token)
        row = self.session.scalar(select(Token).where(Token.digest == wanted))
        if row is None or not hmac.compare_digest(row.digest, wanted):
            return None
        if row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
            return None
        if row.last_used_at is None or now - row.last_used_at >= LAST_USED_EVERY:
            self.session.execute(update(Token).where(Token.id == row.id).values(last_used_at=now))
        return row
