"""How long replicas that were away can catch up (docs/sync-protocol.md, guarantee 12).

Once a day the job records each organization's change position (a checkpoint).
The newest checkpoint older than the retention period is the **horizon**: deleted
rows (tombstones), scope exits and judged sync edits at or below it are purged
for good, and a replica whose cursor is below it is told to download its scope
again (410 ``RESYNC_REQUIRED``), keeping its outbox. Time only picks the
checkpoint; what is purged and who must resync are decided by positions.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.core.db import Base, ReplicatedMixin
from server.core.tenancy import current_change_position
from server.sync.models import SyncCheckpoint, SyncHorizon, SyncMutation, SyncScopeExit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionResult:
    horizon: int | None
    purged: int


def replicated_tables() -> list[Table]:
    """Every replicated table, children before the tables they point at."""
    tables = {
        mapper.local_table
        for mapper in Base.registry.mappers
        if issubclass(mapper.class_, ReplicatedMixin)
    }
    return [cast(Table, t) for t in reversed(Base.metadata.sorted_tables) if t in tables]


def horizon_of(session: Session, organization_id: uuid.UUID) -> int:
    row = session.get(SyncHorizon, organization_id)
    return row.position if row is not None else 0


def run(
    session: Session, organization_id: uuid.UUID, now: datetime, keep_days: int
) -> RetentionResult:
    """Record today's checkpoint and purge what is older than ``keep_days``."""
    position = current_change_position(session, organization_id)
    latest = session.scalar(
        select(SyncCheckpoint.position)
        .where(SyncCheckpoint.organization_id == organization_id)
        .order_by(SyncCheckpoint.position.desc())
        .limit(1)
    )
    if latest != position:
        session.add(
            SyncCheckpoint(organization_id=organization_id, position=position, taken_at=now)
        )
    cutoff = now - timedelta(days=keep_days)
    checkpoint = session.scalar(
        select(SyncCheckpoint)
        .where(SyncCheckpoint.organization_id == organization_id, SyncCheckpoint.taken_at <= cutoff)
        .order_by(SyncCheckpoint.position.desc())
        .limit(1)
    )
    if checkpoint is None:
        session.flush()
        return RetentionResult(None, 0)
    horizon = checkpoint.position
    purged = 0
    for table in replicated_tables():
        c = table.c
        statement = delete(table).where(
            c.organization_id == organization_id,
            c.deleted_at.is_not(None),
            c.change_position <= horizon,
        )
        try:
            with session.begin_nested():
                purged += _count(session.execute(statement))
        except IntegrityError:
            # a tombstone still named by a live row (a retired asset type some old
            # asset keeps): it stays until that row goes
            log.warning("sync retention: %s tombstones still referenced; kept", table.name)
    exits = cast(Table, SyncScopeExit.__table__)
    purged += _count(
        session.execute(
            delete(exits).where(
                exits.c.organization_id == organization_id, exits.c.change_position <= horizon
            )
        )
    )
    mutations = cast(Table, SyncMutation.__table__)
    purged += _count(
        session.execute(
            delete(mutations).where(
                mutations.c.organization_id == organization_id, mutations.c.judged_at <= cutoff
            )
        )
    )
    checkpoints = cast(Table, SyncCheckpoint.__table__)
    session.execute(
        delete(checkpoints).where(
            checkpoints.c.organization_id == organization_id,
            checkpoints.c.position < horizon,
        )
    )
    row = session.get(SyncHorizon, organization_id)
    if row is None:
        session.add(SyncHorizon(organization_id=organization_id, position=horizon, purged_at=now))
    else:
        row.position, row.purged_at = max(row.position, horizon), now
    session.flush()
    return RetentionResult(horizon, purged)


def _count(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
