"""outbox mails that carry a one-time link or code say so, and lose it once sent

Password-reset and invitation mails held a working reset token in ``body_text``
for as long as the outbox row lived. ``holds_secret`` marks such mails; the
delivery job replaces their body once the mail is sent or given up on. Mails
of those kinds already sent (or failed) are emptied here.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 02:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: written out here, not imported, so this revision keeps doing what it did
REMOVED_SECRET_BODY = (
    "[This message held a one-time link or code. Its text was removed from the outbox "
    "once the message was sent or given up on.]"
)


def upgrade() -> None:
    with op.batch_alter_table("outbox_emails") as batch:
        batch.add_column(
            sa.Column("holds_secret", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    outbox = sa.table(
        "outbox_emails",
        sa.column("kind", sa.String),
        sa.column("status", sa.String),
        sa.column("holds_secret", sa.Boolean),
        sa.column("body_text", sa.Text),
    )
    secret_kinds = outbox.c.kind.in_(["password_reset", "invitation"])
    op.execute(outbox.update().where(secret_kinds).values(holds_secret=True))
    op.execute(
        outbox.update()
        .where(secret_kinds, outbox.c.status.in_(["sent", "failed"]))
        .values(body_text=REMOVED_SECRET_BODY)
    )


def downgrade() -> None:
    with op.batch_alter_table("outbox_emails") as batch:
        batch.drop_column("holds_secret")
