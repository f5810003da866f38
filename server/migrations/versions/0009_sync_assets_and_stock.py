"""sync: a technician's site assets and stock in the replica, and assets leaving a site

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 04:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("sync_devices", sa.Column("scope_site_id", sa.Uuid(), nullable=True))
    with op.batch_alter_table("sync_scope_exits") as batch:
        batch.alter_column("ticket_id", existing_type=sa.Uuid(), nullable=True)
        batch.add_column(sa.Column("asset_id", sa.Uuid(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_sync_scope_exits_asset_id_assets"),
            "assets",
            ["asset_id"],
            ["id"],
            ondelete="CASCADE",
        )
    op.create_index("ix_assets_sync_site", "assets", ["site_id", "change_position"])
    op.create_index(
        "ix_stock_levels_sync_location", "stock_levels", ["location_id", "change_position"]
    )


def downgrade() -> None:
    op.drop_index("ix_stock_levels_sync_location", table_name="stock_levels")
    op.drop_index("ix_assets_sync_site", table_name="assets")
    with op.batch_alter_table("sync_scope_exits") as batch:
        batch.drop_constraint(op.f("fk_sync_scope_exits_asset_id_assets"), type_="foreignkey")
        batch.drop_column("asset_id")
        batch.alter_column("ticket_id", existing_type=sa.Uuid(), nullable=False)
    op.drop_column("sync_devices", "scope_site_id")
