"""Password hashing, signed access tokens and opaque secrets."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from server.core.config import PRODUCTION_PASSWORD_COST, PasswordCost
from server.core.db import utcnow

ACCESS_TOKEN_TYPE = "access"
JWT_ALGORITHM = "HS256"
API_TOKEN_PREFIX = "drt_"


class _PasswordHashing:
    """The hasher in use, and a hash to verify against when there is no account."""

    def __init__(self, cost: PasswordCost) -> None:
        self.cost = cost
        self.hasher = PasswordHasher(
            time_cost=cost.time_cost, memory_cost=cost.memory_kib, parallelism=cost.parallelism
        )
        self._dummy_hash: str | None = None

    @property
    def dummy_hash(self) -> str:
        # Made on first use, not at import: every process (CLI, worker) would pay for it.
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))
        return self._dummy_hash


_hashing = _PasswordHashing(PRODUCTION_PASSWORD_COST)


def configure_password_hashing(cost: PasswordCost, *, serving: bool = False) -> None:
    """Use ``cost`` for new password hashes in this process (see ``Settings.password_cost``).

    ``serving``: make the unknown-account hash now, so the first sign-in with an
    unknown email does not take twice as long as the others."""
    global _hashing
    if cost != _hashing.cost:
        _hashing = _PasswordHashing(cost)
    if serving:
        _hashing.dummy_hash  # noqa: B018 - computed and kept


def password_cost() -> PasswordCost:
    return _hashing.cost


def hash_password(password: str) -> str:
    return _hashing.hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; ``None`` (no such account) costs the same as a
    real check against a wrong password, so timing does not reveal the account."""
    hashing = _hashing
    try:
        return hashing.hasher.verify(password_hash or hashing.dummy_hash, password) and bool(
            password_hash
        )
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def digest(token: str) -> str:
    """SHA-256 of a high-entropy secret; enough for lookup, since it cannot be guessed."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID
    organization_id: uuid.UUID | None
    expires_at: datetime


def issue_access_token(
    *,
    key: str,
    user_id: uuid.UUID,
    session_id: uuid.UUID,
    organization_id: uuid.UUID | None,
    minutes: int,
    now: datetime | None = None,
) -> tuple[str, datetime]:
    issued = now or utcnow()
    expires = issued + timedelta(minutes=minutes)
    payload = {
        "typ": ACCESS_TOKEN_TYPE,
        "sub": str(user_id),
        "sid": str(session_id),
        "org": str(organization_id) if organization_id else None,
        "iat": int(issued.timestamp()),
        "exp": int(expires.timestamp()),
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(payload, key, algorithm=JWT_ALGORITHM), expires


class TokenError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decode_access_token(token: str, *, key: str, now: datetime | None = None) -> AccessClaims:
    """Verify an access token's signature and claims, then its expiry.

    A client sends the same token for its whole life, so verified claims are cached
    (signature checking is a large part of a small request); expiry is checked on
    every use, and tokens that fail verification are never cached.
    """
    claims = _verified_claims(token, key)
    if claims.expires_at <= (now or utcnow()):
        raise TokenError("expired")
    return claims


@lru_cache(maxsize=16_384)
def _verified_claims(token: str, key: str) -> AccessClaims:
    try:
        payload = jwt.decode(
            token,
            key,
            algorithms=[JWT_ALGORITHM],
            options={"require": ["exp", "sub", "sid", "typ"], "verify_exp": False},
        )
    except jwt.PyJWTError as exc:
        raise TokenError("invalid") from exc
    if payload.get("typ") != ACCESS_TOKEN_TYPE:
        raise TokenError("invalid")
    try:
        org = payload.get("org")
        return AccessClaims(
            user_id=uuid.UUID(payload["sub"]),
            session_id=uuid.UUID(payload["sid"]),
            organization_id=uuid.UUID(org) if org else None,
            expires_at=datetime.fromtimestamp(payload["exp"], tz=UTC),
        )
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise TokenError("invalid") from exc


def looks_like_api_token(token: str) -> bool:
    return token.startswith(API_TOKEN_PREFIX)


def new_api_token() -> str:
    return API_TOKEN_PREFIX + secrets.token_urlsafe(32)
