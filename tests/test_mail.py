"""The email outbox: written with the change, delivered by a job, listed by the CLI."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from common.enums import EmailStatus
from server.auth.models import PasswordResetToken
from server.core.config import Settings
from server.core.db import utcnow
from server.core.engine import Database
from server.core.leases import take_lease
from server.core.tenancy import ALL_TENANTS
from server.jobs import deliver_email
from server.mail import service as mail
from server.mail.models import OutboxEmail
from tests.conftest import World


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[int, _Inbox]]:
    inbox = _Inbox()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


def _queue(db: Database, n: int = 2) -> None:
    with db.transaction(tenant=ALL_TENANTS) as s:
        for i in range(n):
            mail.enqueue(
                s,
                to=f"user{i}@example.org",
                subject=f"Hello {i}",
                body="Body",
                kind="test",
                organization_id=None,
            )


def test_queued_mail_is_sent_once_through_smtp(db: Database, settings: Settings, smtp) -> None:
    port, inbox = smtp
    smtp_settings = settings.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_starttls": False}
    )
    _queue(db)
    deliver_email(db, smtp_settings)
    assert sorted(rcpt[0] for _, rcpt, _ in inbox.messages) == [
        "user0@example.org",
        "user1@example.org",
    ]
    assert b"Subject: Hello 0" in b"".join(m[2] for m in inbox.messages)
    with db.transaction(tenant=ALL_TENANTS) as s:
        assert {e.status for e in s.scalars(select(OutboxEmail))} == {EmailStatus.SENT}
    deliver_email(db, smtp_settings)
    assert len(inbox.messages) == 2, "sent mail is not sent again"


def test_a_sent_password_reset_leaves_no_working_code_in_the_outbox(
    world: World, client: httpx.Client, db: Database, settings: Settings, smtp
) -> None:
    """The reset link reaches the person; the outbox row keeps no working code, and the
    code still works (the database holds only its hash). An address without an account
    is sent nothing."""
    port, inbox = smtp
    smtp_settings = settings.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_starttls": False}
    )
    tenant = world.org("willow")
    for email in (tenant.admin.email, "nobody@willow.example"):
        asked = client.post("/api/auth/password-reset/request", json={"email": email})
        assert asked.status_code == 202, asked.text
    deliver_email(db, settings)  # without SMTP the job only turns the requests into mail
    with db.transaction(tenant=ALL_TENANTS) as s:
        queued = s.scalars(select(OutboxEmail).where(OutboxEmail.kind == "password_reset")).one()
        assert queued.holds_secret and "token=" in queued.body_text  # an operator can read it
    _queue(db, 1)  # an ordinary mail alongside keeps its body
    deliver_email(db, smtp_settings)
    resets = [rcpt for _, rcpt, content in inbox.messages if b"Reset your" in content]
    assert resets == [[tenant.admin.email]]
    delivered = next(m[2] for m in inbox.messages if b"Reset your" in m[2]).decode()
    code = re.search(r"token=([\w-]+)", delivered.replace("=\r\n", "").replace("=3D", "="))
    assert code, delivered
    with db.transaction(tenant=ALL_TENANTS) as s:
        rows = {e.kind: e for e in s.scalars(select(OutboxEmail))}
        assert {e.status for e in rows.values()} == {EmailStatus.SENT}
        assert rows["password_reset"].body_text == mail.REMOVED_SECRET_BODY
        assert code.group(1) not in rows["password_reset"].body_text
        assert rows["test"].body_text == "Body"
        secrets = s.scalars(select(PasswordResetToken.token_hash)).all()
        assert code.group(1) not in secrets
    reset = client.post(
        "/api/auth/password-reset/confirm",
        json={"token": code.group(1), "newPassword": "Brand-new-Pass-77"},
    )
    assert reset.status_code == 200, reset.text


def test_unreachable_smtp_backs_off_and_keeps_the_mail(db: Database, settings: Settings) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]  # nothing listens here once the socket closes
    broken = settings.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": dead_port, "smtp_starttls": False}
    )
    _queue(db, 1)
    with db.transaction(tenant=ALL_TENANTS) as s:
        sent, failed = mail.deliver_due(s, broken)
    assert (sent, failed) == (0, 1)
    with db.transaction(tenant=ALL_TENANTS) as s:
        email = s.scalars(select(OutboxEmail)).one()
        assert email.status is EmailStatus.PENDING
        assert email.attempts == 1 and email.last_error
        assert email.next_attempt_at > utcnow()
        # not due yet: the next run leaves it alone
        assert mail.deliver_due(s, broken) == (0, 0)


def test_without_smtp_nothing_is_sent_and_mail_waits(db: Database, settings: Settings) -> None:
    _queue(db, 1)
    with db.transaction(tenant=ALL_TENANTS) as s:
        assert mail.deliver_due(s, settings) == (0, 0)
        assert [e.subject for e in mail.pending(s)] == ["Hello 0"]


def test_mail_is_written_in_the_same_transaction_as_the_change(db: Database) -> None:
    with pytest.raises(RuntimeError), db.transaction(tenant=ALL_TENANTS) as s:
        mail.enqueue(
            s, to="a@example.org", subject="x", body="y", kind="test", organization_id=None
        )
        s.flush()
        raise RuntimeError("the change failed")
    with db.transaction(tenant=ALL_TENANTS) as s:
        assert mail.pending(s) == []


def test_only_one_process_holds_a_job_lease(db: Database) -> None:
    with db.transaction(tenant=ALL_TENANTS) as s:
        assert take_lease(s, "job", seconds=60, holder="host-a:1")
    with db.transaction(tenant=ALL_TENANTS) as s:
        assert not take_lease(s, "job", seconds=60, holder="host-b:2")
        assert take_lease(s, "job", seconds=60, holder="host-a:1"), "the holder renews its lease"
    with db.transaction(tenant=ALL_TENANTS) as s:
        from server.core.db import JobLease

        lease = s.get(JobLease, "job")
        assert lease is not None
        lease.expires_at = utcnow() - timedelta(seconds=1)
    with db.transaction(tenant=ALL_TENANTS) as s:
        assert take_lease(s, "job", seconds=60, holder="host-b:2"), (
            "an expired lease can be taken over"
        )
