"""Leases that let a piece of periodic work run in one server process at a time.

Each run first takes the named lease row; a process that cannot take it skips the
run, so N workers behind one database never double-send an email or double-scan.
Domains use ``run_exclusive`` for their own periodic work; ``server.jobs``
schedules them.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.core.db import JobLease, utcnow
from server.core.engine import Database
from server.core.tenancy import ALL_TENANTS

#: this process, as a lease holder
HOLDER = f"{socket.gethostname()}:{os.getpid()}"


def take_lease(session: Session, name: str, *, seconds: int, holder: str = HOLDER) -> bool:
    """Take (or renew) the named lease; False when another live process holds it."""
    now = utcnow()
    until = now + timedelta(seconds=seconds)
    result = session.execute(
        update(JobLease)
        .where(JobLease.name == name, or_(JobLease.expires_at <= now, JobLease.holder == holder))
        .values(holder=holder, expires_at=until)
    )
    if getattr(result, "rowcount", 0):
        return True
    if session.scalar(select(JobLease.name).where(JobLease.name == name)) is not None:
        return False
    try:
        with session.begin_nested():
            session.add(JobLease(name=name, holder=holder, expires_at=until))
    except IntegrityError:
        return False
    return True


def run_exclusive(db: Database, name: str, seconds: int, work: Callable[[Session], None]) -> bool:
    """Run ``work`` in one transaction across all tenants if this process takes the
    lease; False when another process holds it."""
    with db.transaction(tenant=ALL_TENANTS) as session:
        if not take_lease(session, name, seconds=seconds):
            return False
        work(session)
    return True
