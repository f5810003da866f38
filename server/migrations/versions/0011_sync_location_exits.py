"""sync: stock locations leaving a technician's scope (a van handed to someone else)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 05:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sync_scope_exits") as batch:
        batch.add_column(sa.Column("location_id", sa.Uuid(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_sync_scope_exits_location_id_stock_locations"),
            "stock_locations",
            ["location_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("sync_scope_exits") as batch:
        batch.drop_constraint(
            op.f("fk_sync_scope_exits_location_id_stock_locations"), type_="foreignkey"
        )
        batch.drop_column("location_id")
