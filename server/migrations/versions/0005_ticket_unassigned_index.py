"""the desk's queues: live tickets with no technician, by organization and team

``GET /api/tickets?teamId=<team>&assigneeId=none`` (a team's tickets waiting for a
technician), ``teamId=none`` and ``unassigned=true`` read this index newest first.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 02:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHERE = sa.text("deleted_at IS NULL AND assignee_id IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_tickets_org_unassigned",
        "tickets",
        ["organization_id", "team_id", "created_at", "id"],
        sqlite_where=WHERE,
        postgresql_where=WHERE,
    )


def downgrade() -> None:
    op.drop_index("ix_tickets_org_unassigned", table_name="tickets")
