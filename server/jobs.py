"""Background jobs (APScheduler) that run once across all server processes.

Each run first takes a lease row for the job (``server.core.leases``); a process
that cannot take it skips the run, so N workers behind one database never
double-send an email.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select
from sqlalchemy.orm import Session

from common.enums import OrganizationStatus
from server.auth import service as auth
from server.core.config import Settings
from server.core.db import utcnow
from server.core.engine import Database
from server.core.leases import HOLDER, run_exclusive, take_lease
from server.core.tenancy import ALL_TENANTS
from server.mail import service as mail
from server.organizations.models import Organization
from server.sla import scan as sla_scan
from server.sync import retention as sync_retention_service
from server.tickets import automation as ticket_automation
from server.uploads import service as uploads

log = logging.getLogger(__name__)


def deliver_email(db: Database, settings: Settings) -> None:
    """Turn queued password-reset requests into mails, then send what is due (with SMTP
    configured; without it the mails wait in the outbox)."""

    def work(session: Session) -> None:
        auth.mail_requested_resets(session, settings=settings)
        sent, failed = mail.deliver_due(session, settings)
        if sent or failed:
            log.info("outbox: %s sent, %s failed", sent, failed)

    run_exclusive(db, "mail.deliver", 55, work)


SLA_SCAN_LEASE = "sla.scan"


def scan_sla(db: Database, *, holder: str = HOLDER) -> dict[uuid.UUID, sla_scan.ScanResult] | None:
    """The SLA scan of every active organization, one transaction each, followed by
    the waiting-on-requester reminders and auto-close; None when another process
    holds the lease (it runs this minute's scan)."""
    with db.transaction(tenant=ALL_TENANTS) as session:
        if not take_lease(session, SLA_SCAN_LEASE, seconds=55, holder=holder):
            return None
        org_ids = list(
            session.scalars(
                select(Organization.id)
                .where(Organization.status == OrganizationStatus.ACTIVE)
                .order_by(Organization.id)
            )
        )
    results: dict[uuid.UUID, sla_scan.ScanResult] = {}
    for org_id in org_ids:
        try:
            with db.transaction(tenant=org_id) as session:
                # Renew the lease as we go: a long run keeps it, a lost one stops here.
                if not take_lease(session, SLA_SCAN_LEASE, seconds=55, holder=holder):
                    break
                results[org_id] = result = sla_scan.scan(session, org_id, utcnow())
                waiting = ticket_automation.run_waiting_rules(session, org_id, utcnow())
        except Exception:
            log.exception("SLA scan failed for organization %s", org_id)
            continue
        if waiting.reminded or waiting.closed:
            log.info(
                "waiting on requester %s: %s reminded, %s closed",
                org_id,
                waiting.reminded,
                waiting.closed,
            )
        if result.warned or result.breached or result.escalated:
            log.info(
                "SLA scan %s: %s warned, %s breached, %s escalated",
                org_id,
                result.warned,
                result.breached,
                result.escalated,
            )
    return results


SYNC_RETENTION_LEASE = "sync.retention"


def sync_retention(db: Database, settings: Settings) -> dict[uuid.UUID, int | None] | None:
    """Each active organization's daily sync checkpoint and purge, one transaction
    each; the horizon per organization, or None when another process holds the lease."""
    with db.transaction(tenant=ALL_TENANTS) as session:
        if not take_lease(session, SYNC_RETENTION_LEASE, seconds=3600):
            return None
        org_ids = list(
            session.scalars(
                select(Organization.id).where(Organization.status == OrganizationStatus.ACTIVE)
            )
        )
    horizons: dict[uuid.UUID, int | None] = {}
    for org_id in org_ids:
        try:
            with db.transaction(tenant=org_id) as session:
                result = sync_retention_service.run(
                    session, org_id, utcnow(), settings.sync_retention_days
                )
        except Exception:
            log.exception("sync retention failed for organization %s", org_id)
            continue
        horizons[org_id] = result.horizon
        if result.purged:
            log.info(
                "sync retention %s: %s rows purged below %s", org_id, result.purged, result.horizon
            )
    if db.is_sqlite:
        # SQLite plans queries from statistics it gathers only when asked: without
        # them the child-row reads of push and hydrate scan the organization
        with db.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA optimize")
    return horizons


def start_scheduler(db: Database, settings: Settings) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(
        scan_sla,
        "interval",
        seconds=60,
        args=[db],
        id=SLA_SCAN_LEASE,
        max_instances=1,
        coalesce=True,
        # at once, then every minute: deadlines missed while the server was down show
        # as breaches when it starts, not a minute later
        next_run_time=datetime.now(UTC),
    )
    scheduler.add_job(
        uploads.cleanup_job,
        "interval",
        seconds=600,
        args=[db, settings],
        id="uploads.cleanup",
        max_instances=1,
        coalesce=True,
    )
    # with or without SMTP: it also turns password-reset requests into mails
    scheduler.add_job(
        deliver_email,
        "interval",
        seconds=30,
        args=[db, settings],
        id="mail.deliver",
        max_instances=1,
        coalesce=True,
    )
    scheduler.add_job(
        sync_retention,
        "interval",
        hours=24,
        args=[db, settings],
        id=SYNC_RETENTION_LEASE,
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(UTC) + timedelta(minutes=5),
    )
    scheduler.start()
    return scheduler
