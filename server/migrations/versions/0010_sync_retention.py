"""sync retention: daily change-position checkpoints and each organization's horizon

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 05:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from server.core.db import UTCDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _organization(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["organization_id"],
        ["organizations.id"],
        name=op.f(f"fk_{table}_organization_id_organizations"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "sync_checkpoints",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("taken_at", UTCDateTime(timezone=True), nullable=False),
        _organization("sync_checkpoints"),
        sa.PrimaryKeyConstraint("organization_id", "position", name=op.f("pk_sync_checkpoints")),
    )
    op.create_table(
        "sync_horizons",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("purged_at", UTCDateTime(timezone=True), nullable=False),
        _organization("sync_horizons"),
        sa.PrimaryKeyConstraint("organization_id", name=op.f("pk_sync_horizons")),
    )


def downgrade() -> None:
    op.drop_table("sync_horizons")
    op.drop_table("sync_checkpoints")
