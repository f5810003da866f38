"""ticket list indexes: live rows only, ending in (created_at, id)

Also a person's and a team's tickets newest first, whatever their status.

The default order is ``created_at DESC, id DESC``. Without ``id`` in the filtered
indexes PostgreSQL sorted every matching ticket to find a first page (all open
tickets of a district, say), and with tombstones in them it counted a list from the
table instead of the index, so both cost more as the district grew.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 21:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = {
    "ix_tickets_org_created": ["organization_id", "created_at", "id"],
    "ix_tickets_org_updated": ["organization_id", "updated_at", "id"],
    "ix_tickets_org_status": ["organization_id", "status", "created_at"],
    "ix_tickets_org_category": ["organization_id", "status_category", "created_at"],
    "ix_tickets_assignee": ["assignee_id", "status_category", "created_at"],
    "ix_tickets_team": ["team_id", "status_category", "created_at"],
    "ix_tickets_requester": ["requester_id", "created_at"],
}
#: new: a person's or a team's tickets newest first, whatever their status
ADDED = {
    "ix_tickets_assignee_created": ["assignee_id", "created_at", "id"],
    "ix_tickets_team_created": ["team_id", "created_at", "id"],
}
LIVE = sa.text("deleted_at IS NULL")


def upgrade() -> None:
    for name, columns in BEFORE.items():
        op.drop_index(name, table_name="tickets")
        with_id = columns if columns[-1] == "id" else [*columns, "id"]
        op.create_index(name, "tickets", with_id, sqlite_where=LIVE, postgresql_where=LIVE)
    for name, columns in ADDED.items():
        op.create_index(name, "tickets", columns, sqlite_where=LIVE, postgresql_where=LIVE)


def downgrade() -> None:
    for name in ADDED:
        op.drop_index(name, table_name="tickets")
    for name, columns in BEFORE.items():
        op.drop_index(name, table_name="tickets")
        op.create_index(name, "tickets", columns)
