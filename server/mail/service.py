"""Queue email in the caller's transaction; deliver it from a background job."""

from __future__ import annotations

import logging
import smtplib
import uuid
from datetime import timedelta
from email.message import EmailMessage

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.enums import EmailStatus
from server.core.config import Settings
from server.core.db import utcnow
from server.mail.models import OutboxEmail

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 8
#: what is left of a mail that held a secret once it was sent or given up on
REMOVED_SECRET_BODY = (
    "[This message held a one-time link or code. Its text was removed from the outbox "
    "once the message was sent or given up on.]"
)


def enqueue(
    session: Session,
    *,
    to: str,
    subject: str,
    body: str,
    kind: str,
    organization_id: uuid.UUID | None,
    holds_secret: bool = False,
) -> OutboxEmail:
    """Queue a mail. ``holds_secret``: the body carries a one-time link or code, which
    is erased from the outbox as soon as the mail is sent or given up on."""
    email = OutboxEmail(
        to_address=to,
        subject=subject,
        body_text=body,
        kind=kind,
        organization_id=organization_id,
        holds_secret=holds_secret,
    )
    session.add(email)
    return email


def pending(session: Session, *, limit: int = 100) -> list[OutboxEmail]:
    stmt = (
        select(OutboxEmail)
        .where(OutboxEmail.status == EmailStatus.PENDING)
        .order_by(OutboxEmail.created_at)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def _send_one(settings: Settings, email: OutboxEmail) -> None:
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = email.to_address
    message["Subject"] = email.subject
    message["Message-ID"] = f"<{email.id}@district-resolve>"
    message.set_content(email.body_text)
    assert settings.smtp_host
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=20) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_username and settings.smtp_password:
            smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
        smtp.send_message(message)


def deliver_due(session: Session, settings: Settings, *, batch: int = 50) -> tuple[int, int]:
    """Send due emails; returns (sent, failed). The caller commits.

    Rows are claimed with SKIP LOCKED on PostgreSQL so two processes never send one
    email twice; SQLite has a single writer and needs no claim.
    """
    if not settings.smtp_configured:
        return 0, 0
    now = utcnow()
    stmt = (
        select(OutboxEmail)
        .where(OutboxEmail.status == EmailStatus.PENDING, OutboxEmail.next_attempt_at <= now)
        .order_by(OutboxEmail.next_attempt_at)
        .limit(batch)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    sent = failed = 0
    for email in session.scalars(stmt):
        try:
            _send_one(settings, email)
        except (OSError, smtplib.SMTPException) as exc:
            email.attempts += 1
            email.last_error = str(exc)[:1000]
            if email.attempts >= MAX_ATTEMPTS:
                email.status = EmailStatus.FAILED
                _forget_secret(email)
            else:
                # back off: 1, 2, 4 ... minutes
                email.next_attempt_at = now + timedelta(minutes=2 ** (email.attempts - 1))
            failed += 1
            log.warning("email %s to %s failed: %s", email.id, email.to_address, exc)
        else:
            email.status = EmailStatus.SENT
            email.sent_at = utcnow()
            email.attempts += 1
            _forget_secret(email)
            sent += 1
    session.flush()
    return sent, failed


def _forget_secret(email: OutboxEmail) -> None:
    if email.holds_secret:
        email.body_text = REMOVED_SECRET_BODY
