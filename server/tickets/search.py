"""Full-text search over tickets: number, title, description and comments.

PostgreSQL uses GIN indexes over ``to_tsvector('simple', ...)`` expressions;
SQLite uses FTS5 tables kept in step by triggers. Both get the same query
semantics: every word must match, each as a prefix ("proj" finds "projector"),
and words are taken literally (no operators reach the search engine).
Internal notes only count for callers who may read them.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import DDL, ColumnElement, Select, event, false, func, literal_column, select, text
from sqlalchemy.schema import Table

from server.tickets.models import Ticket, TicketComment

_WORD = re.compile(r"\w+", re.UNICODE)
MAX_WORDS = 8

TICKET_DOCUMENT = (
    "coalesce(number, '') || ' ' || coalesce(title, '') || ' ' || coalesce(description, '')"
)

#: PostgreSQL: GIN expression indexes (the query below repeats the expressions exactly)
POSTGRES_DDL = (
    f"CREATE INDEX ix_tickets_fts ON tickets USING gin (to_tsvector('simple', {TICKET_DOCUMENT}))",
    "CREATE INDEX ix_ticket_comments_fts ON ticket_comments "
    "USING gin (to_tsvector('simple', body))",
)
POSTGRES_DROP = (
    "DROP INDEX IF EXISTS ix_tickets_fts",
    "DROP INDEX IF EXISTS ix_ticket_comments_fts",
)

#: SQLite: external-content FTS5 tables over the two tables, kept in step by triggers.
SQLITE_DDL = (
    "CREATE VIRTUAL TABLE tickets_fts USING fts5("
    "number, title, description, content='tickets', content_rowid='rowid', "
    "tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER tickets_fts_insert AFTER INSERT ON tickets BEGIN "
    "INSERT INTO tickets_fts(rowid, number, title, description) "
    "VALUES (new.rowid, new.number, new.title, new.description); END",
    "CREATE TRIGGER tickets_fts_delete AFTER DELETE ON tickets BEGIN "
    "INSERT INTO tickets_fts(tickets_fts, rowid, number, title, description) "
    "VALUES ('delete', old.rowid, old.number, old.title, old.description); END",
    "CREATE TRIGGER tickets_fts_update AFTER UPDATE OF number, title, description ON tickets "
    "BEGIN "
    "INSERT INTO tickets_fts(tickets_fts, rowid, number, title, description) "
    "VALUES ('delete', old.rowid, old.number, old.title, old.description); "
    "INSERT INTO tickets_fts(rowid, number, title, description) "
    "VALUES (new.rowid, new.number, new.title, new.description); END",
    "CREATE VIRTUAL TABLE ticket_comments_fts USING fts5("
    "body, content='ticket_comments', content_rowid='rowid', "
    "tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER ticket_comments_fts_insert AFTER INSERT ON ticket_comments BEGIN "
    "INSERT INTO ticket_comments_fts(rowid, body) VALUES (new.rowid, new.body); END",
    "CREATE TRIGGER ticket_comments_fts_delete AFTER DELETE ON ticket_comments BEGIN "
    "INSERT INTO ticket_comments_fts(ticket_comments_fts, rowid, body) "
    "VALUES ('delete', old.rowid, old.body); END",
    "CREATE TRIGGER ticket_comments_fts_update AFTER UPDATE OF body ON ticket_comments BEGIN "
    "INSERT INTO ticket_comments_fts(ticket_comments_fts, rowid, body) "
    "VALUES ('delete', old.rowid, old.body); "
    "INSERT INTO ticket_comments_fts(rowid, body) VALUES (new.rowid, new.body); END",
)
SQLITE_DROP = (
    "DROP TABLE IF EXISTS tickets_fts",
    "DROP TABLE IF EXISTS ticket_comments_fts",
)


def _install_for_create_all() -> None:
    """create_all (used while a migration is being written) makes the same objects."""
    comments: Table = TicketComment.__table__  # type: ignore[assignment]
    for statement in SQLITE_DDL:
        event.listen(comments, "after_create", DDL(statement).execute_if(dialect="sqlite"))
    for statement in POSTGRES_DDL:
        event.listen(comments, "after_create", DDL(statement).execute_if(dialect="postgresql"))


def words(query: str) -> list[str]:
    return _WORD.findall(query.lower())[:MAX_WORDS]


def matches(dialect: str, query: str, *, include_internal: bool) -> ColumnElement[bool]:
    """Tickets whose number, title, description or (visible) comments contain every word."""
    terms = words(query)
    if not terms:
        return false()
    if dialect == "postgresql":
        tsquery = func.to_tsquery("simple", " & ".join(f"{t}:*" for t in terms))
        in_ticket = func.to_tsvector("simple", literal_column(TICKET_DOCUMENT)).op("@@")(tsquery)
        comment_hits = select(TicketComment.ticket_id).where(
            func.to_tsvector("simple", TicketComment.body).op("@@")(tsquery)
        )
    else:
        fts_query = " AND ".join(f'"{t}"*' for t in terms)
        in_ticket = literal_column("tickets.rowid").in_(
            select(literal_column("rowid"))
            .select_from(text("tickets_fts"))
            .where(
                text("tickets_fts MATCH :ticket_fts_query").bindparams(ticket_fts_query=fts_query)
            )
        )
        comment_rows: Select[Any] = (
            select(literal_column("rowid"))
            .select_from(text("ticket_comments_fts"))
            .where(
                text("ticket_comments_fts MATCH :comment_fts_query").bindparams(
                    comment_fts_query=fts_query
                )
            )
        )
        comment_hits = select(TicketComment.ticket_id).where(
            literal_column("ticket_comments.rowid").in_(comment_rows)
        )
    comment_hits = comment_hits.where(TicketComment.deleted_at.is_(None))
    if not include_internal:
        comment_hits = comment_hits.where(TicketComment.is_internal.is_(False))
    number = Ticket.number == query.strip().upper()
    return number | in_ticket | Ticket.id.in_(comment_hits)


_install_for_create_all()
