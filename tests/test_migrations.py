"""Alembic migrations are the only way the schema is made: they must match the models
and go down and up again, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import DateTime, Integer, Uuid, column, inspect, table, text

from common.ids import uuid7
from server.core.engine import make_engine
from server.migrations import alembic_config, head_revision, include_object, upgrade
from server.models import Base


def test_models_and_migrations_agree(scratch_url: str) -> None:
    upgrade(scratch_url)
    engine = make_engine(scratch_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_object": include_object}
            )
            diff = compare_metadata(context, Base.metadata)
        assert diff == [], f"models differ from migrations; write a migration: {diff}"
    finally:
        engine.dispose()


def test_migrations_go_down_and_up_again(scratch_url: str) -> None:
    config = alembic_config(scratch_url)
    upgrade(scratch_url)
    command.downgrade(config, "base")
    engine = make_engine(scratch_url)
    try:
        remaining = set(inspect(engine).get_table_names()) - {"alembic_version"}
        assert remaining == set()
    finally:
        engine.dispose()
    upgrade(scratch_url)
    engine = make_engine(scratch_url)
    try:
        with engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == head_revision()
        assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'wal.db'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


def test_sent_secret_mails_are_emptied_by_the_upgrade(scratch_url: str) -> None:
    """Revision 0004: reset and invitation mails already sent lose their code; pending
    ones keep it (they are still to be delivered) and are marked to lose it later."""
    config = alembic_config(scratch_url)
    command.upgrade(config, "0003")
    engine = make_engine(scratch_url)
    rows = [
        ("password_reset", "sent", "token=sent-secret"),
        ("invitation", "failed", "token=failed-secret"),
        ("password_reset", "pending", "token=pending-secret"),
        ("ticket_created", "sent", "INC-000001 was filed"),
    ]
    try:
        outbox = table(
            "outbox_emails",
            *(column(name) for name in ("to_address", "subject", "body_text", "kind", "status")),
            column("id", Uuid()),
            column("attempts", Integer()),
            column("created_at", DateTime()),
            column("next_attempt_at", DateTime()),
        )
        now = datetime.now(UTC).replace(tzinfo=None)
        with engine.begin() as conn:
            for kind, status, body in rows:
                conn.execute(
                    outbox.insert().values(
                        id=uuid7(), to_address="a@b.example", subject="s", body_text=body,
                        kind=kind, status=status, attempts=0, created_at=now, next_attempt_at=now,
                    )
                )  # fmt: skip
        upgrade(scratch_url)
        with engine.connect() as conn:
            after = {
                row.kind + "/" + row.status: (row.body_text, row.holds_secret)
                for row in conn.execute(
                    text("SELECT kind, status, body_text, holds_secret FROM outbox_emails")
                )
            }
    finally:
        engine.dispose()
    assert "secret" not in after["password_reset/sent"][0]
    assert "secret" not in after["invitation/failed"][0]
    assert after["password_reset/pending"] == ("token=pending-secret", True)
    assert after["ticket_created/sent"] == ("INC-000001 was filed", False)
