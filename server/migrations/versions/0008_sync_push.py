"""sync push: judged mutations (replays get the stored verdict), field conflicts,
and each device's clock skew

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 04:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from server.core.db import JSONType, UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fk(table: str, column: str, target: str, ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete=ondelete
    )


def upgrade() -> None:
    op.create_table(
        "sync_mutations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("result", JSONType, nullable=False),
        sa.Column("happened_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("judged_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        _fk("sync_mutations", "device_id", "sync_devices"),
        _fk("sync_mutations", "organization_id", "organizations"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_mutations")),
        sa.UniqueConstraint("device_id", "seq", name="uq_sync_mutations_device_seq"),
    )
    op.create_index("ix_sync_mutations_organization_id", "sync_mutations", ["organization_id"])
    op.create_table(
        "sync_conflicts",
        sa.Column("ticket_id", sa.Uuid(), nullable=False),
        sa.Column("field", sa.String(length=40), nullable=False),
        sa.Column("base", JSONType, nullable=True),
        sa.Column("mine", JSONType, nullable=True),
        sa.Column("server", JSONType, nullable=True),
        sa.Column("device_id", sa.Uuid(), nullable=True),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("mutation_id", sa.Uuid(), nullable=True),
        sa.Column("resolved_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.String(length=16), nullable=True),
        sa.Column("resolved_by_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("change_position", sa.BigInteger(), nullable=False),
        sa.Column("deleted_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        _fk("sync_conflicts", "device_id", "sync_devices", "SET NULL"),
        _fk("sync_conflicts", "organization_id", "organizations"),
        _fk("sync_conflicts", "resolved_by_id", "users", "SET NULL"),
        _fk("sync_conflicts", "ticket_id", "tickets"),
        _fk("sync_conflicts", "user_id", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_conflicts")),
    )
    op.create_index(
        "ix_sync_conflicts_org_change", "sync_conflicts", ["organization_id", "change_position"]
    )
    op.create_index("ix_sync_conflicts_organization_id", "sync_conflicts", ["organization_id"])
    op.create_index("ix_sync_conflicts_ticket", "sync_conflicts", ["ticket_id"])
    op.add_column("sync_devices", sa.Column("clock_skew_seconds", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("sync_devices", "clock_skew_seconds")
    op.drop_table("sync_conflicts")
    op.drop_table("sync_mutations")
