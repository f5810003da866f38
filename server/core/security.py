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

from server.core.db import utcnow

_hasher = PasswordHasher()
ACCESS_TOKEN_TYPE = "access"
JWT_ALGORITHM = "HS256"
API_TOKEN_PREFIX = "drt_"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        # Spend the same time as a real check so timing does not reveal the account.
        _hasher.hash(password)
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


#: A hash to verify against when the account does not exist (constant-time login).
DUMMY_PASSWORD_HASH = _hasher.hash(secrets.token_urlsafe(16))


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
