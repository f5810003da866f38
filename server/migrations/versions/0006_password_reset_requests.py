"""password-reset requests are queued, and the outbox job looks the account up

``POST /api/auth/password-reset/request`` looked the account up and wrote a token, a
mail and an audit event only when the address had an account, so a real account's
request took measurably longer than an unknown one's. It now writes one row here for
any address; the outbox job mails real accounts and deletes every row it takes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.core.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "password_reset_requests",
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("requested_at", server.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ip_address", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=300), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_reset_requests")),
    )


def downgrade() -> None:
    op.drop_table("password_reset_requests")
