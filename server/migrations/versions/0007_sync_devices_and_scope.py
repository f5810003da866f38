"""sync: devices, the log of tickets leaving a scope, and the scoped change indexes

A replica's pull reads its tickets changed above its cursor through indexes that
start with the scope's key and end with ``change_position`` (docs/sync-protocol.md).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 05:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from server.core.db import UTCDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TICKET_INDEXES = {
    "ix_tickets_sync_assignee": "assignee_id",
    "ix_tickets_sync_team": "team_id",
    "ix_tickets_sync_requester": "requester_id",
    "ix_tickets_sync_creator": "created_by_id",
}


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "sync_devices",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("client", sa.String(length=200), nullable=False),
        sa.Column("scope_role", sa.String(length=32), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_sequence", sa.BigInteger(), nullable=False),
        sa.Column("wipe_requested_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("wiped_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        _fk("sync_devices", "organization_id", "organizations"),
        _fk("sync_devices", "user_id", "users"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_devices")),
    )
    op.create_index("ix_sync_devices_organization_id", "sync_devices", ["organization_id"])
    op.create_index("ix_sync_devices_user_id", "sync_devices", ["user_id"])
    op.create_table(
        "sync_scope_exits",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("principal_id", sa.Uuid(), nullable=False),
        sa.Column("ticket_id", sa.Uuid(), nullable=False),
        sa.Column("change_position", sa.BigInteger(), nullable=False),
        sa.Column("deleted_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        _fk("sync_scope_exits", "organization_id", "organizations"),
        _fk("sync_scope_exits", "ticket_id", "tickets"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_scope_exits")),
    )
    op.create_index(
        "ix_sync_scope_exits_org_change", "sync_scope_exits", ["organization_id", "change_position"]
    )
    op.create_index("ix_sync_scope_exits_organization_id", "sync_scope_exits", ["organization_id"])
    op.create_index(
        "ix_sync_scope_exits_principal", "sync_scope_exits", ["principal_id", "change_position"]
    )
    for name, column in TICKET_INDEXES.items():
        op.create_index(name, "tickets", [column, "change_position"])


def downgrade() -> None:
    for name in TICKET_INDEXES:
        op.drop_index(name, table_name="tickets")
    op.drop_table("sync_scope_exits")
    op.drop_table("sync_devices")
