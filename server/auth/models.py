from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from server.core.db import Base, IdMixin, TenantMixin, utcnow


class AuthSession(IdMixin, Base):
    """One sign-in: the family of refresh tokens it issued, revoked as a whole.

    Access tokens name their session, so revoking it ends them before they expire.
    """

    __tablename__ = "auth_sessions"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(40))
    ip_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    #: the access token only lets an admin enrol in MFA
    mfa_enrollment_only: Mapped[bool] = mapped_column(default=False)


class RefreshToken(IdMixin, Base):
    __tablename__ = "refresh_tokens"

    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("auth_sessions.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    used_at: Mapped[datetime | None]


class ApiToken(IdMixin, TenantMixin, Base):
    """A long-lived bearer token for integrations, limited to its scopes."""

    __tablename__ = "api_tokens"

    name: Mapped[str] = mapped_column(String(120))
    #: first characters of the raw token so people can tell tokens apart
    token_prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(default=list)
    created_by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )


class PasswordResetToken(IdMixin, Base):
    """Single-use and expiring; also used to invite a user to set a first password."""

    __tablename__ = "password_reset_tokens"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(16), default="reset")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class PasswordResetRequest(IdMixin, Base):
    """A reset asked for by email address, queued for the outbox job.

    The request route only writes this row, the same for every address, so it does the
    same work whether or not the account exists; the job looks the account up, mails a
    link to a real one and deletes the row either way.
    """

    __tablename__ = "password_reset_requests"

    email: Mapped[str] = mapped_column(String(320))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: the request's client, for the audit event the job writes
    ip_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    request_id: Mapped[str | None] = mapped_column(String(64))
