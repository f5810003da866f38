"""Notify users in the app and by email, each as they chose; read and mark their inbox.

``notify`` is what every other domain calls (tickets, SLA jobs, approvals,
inventory). It runs in the caller's transaction: the in-app rows and the outbox
emails exist exactly when the change that caused them commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any, cast

from sqlalchemy import Select, and_, func, select
from sqlalchemy.orm import Session

from server.core.config import Settings, get_settings
from server.core.db import flush_unique, utcnow
from server.core.errors import BusinessRuleViolation, NotFound
from server.core.listing import text_filter
from server.core.tenancy import ALL_TENANTS, Caller, bound_tenant
from server.mail import service as mail
from server.notifications import events
from server.notifications.models import Notification, NotificationPreference
from server.notifications.schemas import PreferenceIn
from server.tickets.models import Ticket
from server.users.models import User

SORT_FIELDS = {"createdAt": Notification.created_at, "readAt": Notification.read_at}
TITLE_MAX = 200
SUBJECT_MAX = 300
LINK_MAX = 500


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _recipient_ids(recipients: Iterable[uuid.UUID | str | None]) -> list[uuid.UUID]:
    """Distinct ids in the order given. Ticket watcher lists hold ids as text: accepted."""
    seen: dict[uuid.UUID, None] = {}
    for value in recipients:
        if value is None:
            continue
        try:
            key = value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
        except ValueError:
            continue
        seen.setdefault(key, None)
    return list(seen)


def ticket_link(ticket: Ticket) -> str:
    """Where the app opens a ticket; emails prefix it with the server's public address."""
    return f"/tickets/{ticket.id}"


def absolute_link(link: str | None, base_url: str) -> str | None:
    if not link:
        return None
    if link.startswith("/"):
        return base_url.rstrip("/") + link
    return link


def _organization_of(
    session: Session, ticket: Ticket | None, organization_id: uuid.UUID | None
) -> uuid.UUID:
    if organization_id is not None:
        return organization_id
    if ticket is not None:
        return ticket.organization_id
    tenant = bound_tenant(session)
    if isinstance(tenant, uuid.UUID):
        return tenant
    raise ValueError(
        "notify() needs a session bound to an organization, a ticket or an organization_id"
    )


def notify(
    session: Session,
    *,
    recipients: Iterable[uuid.UUID | str | None],
    event: str,
    title: str,
    body: str,
    ticket: Ticket | None = None,
    link: str | None = None,
    actor_id: uuid.UUID | None = None,
    organization_id: uuid.UUID | None = None,
    settings: Settings | None = None,
) -> int:
    """Write in-app notifications and queue emails; returns the number of in-app rows.

    Recipients are deduplicated; the actor (nobody is told of their own action),
    inactive or deleted users and users of another organization are skipped. Each
    recipient's preference for ``event`` (or the default, ``events.default_delivery``)
    decides in-app and email separately. ``link`` defaults to the ticket's.

    ``organization_id`` is only needed on a session bound to all tenants without a
    ticket; ``settings`` gives the public base URL for email links (default: the
    process settings).
    """
    if event not in events.ALL_EVENTS:
        raise ValueError(f"unknown notification event {event!r}")
    ids = [i for i in _recipient_ids(recipients) if i != actor_id]
    if not ids:
        return 0
    org_id = _organization_of(session, ticket, organization_id)
    if ticket is not None and link is None:
        link = ticket_link(ticket)
    link = _clip(link, LINK_MAX) if link else None
    title = _clip(" ".join(title.split()) or events.label(event), TITLE_MAX)

    # Users and their preference for this event in one statement, whatever their number.
    rows = session.execute(
        select(
            User.id,
            User.email,
            User.first_name,
            User.last_name,
            NotificationPreference.in_app.label("pref_in_app"),
            NotificationPreference.email.label("pref_email"),
        )
        .outerjoin(
            NotificationPreference,
            and_(
                NotificationPreference.user_id == User.id,
                NotificationPreference.event == event,
                NotificationPreference.deleted_at.is_(None),
            ),
        )
        .where(
            User.id.in_(ids),
            User.organization_id == org_id,
            User.is_active,
            User.deleted_at.is_(None),
        )
    ).all()
    default_in_app, default_email = events.default_delivery(event)
    order = {user_id: n for n, user_id in enumerate(ids)}
    written = 0
    email_link: str | None = None
    for row in sorted(rows, key=lambda r: order[r.id]):
        in_app = default_in_app if row.pref_in_app is None else row.pref_in_app
        by_email = default_email if row.pref_email is None else row.pref_email
        if in_app:
            session.add(
                Notification(
                    organization_id=org_id,
                    user_id=row.id,
                    event=event,
                    title=title,
                    body=body,
                    ticket_id=ticket.id if ticket is not None else None,
                    link=link,
                    actor_id=actor_id,
                )
            )
            written += 1
        if by_email and row.email:
            if email_link is None and link:
                base_url = (settings or get_settings()).base_url
                email_link = absolute_link(link, base_url)
            name = f"{row.first_name} {row.last_name}".strip() or row.email
            mail.enqueue(
                session,
                to=row.email,
                subject=_subject(title, ticket),
                body=_email_body(name, event, title, body, email_link),
                kind=f"notification.{event}",
                organization_id=org_id,
            )
    # No flush here: the rows go out with the caller's next flush or commit, batched
    # with the rest of its work (a ticket create flushes once at the end).
    return written


def _subject(title: str, ticket: Ticket | None) -> str:
    if ticket is not None and ticket.number and ticket.number not in title:
        title = f"[{ticket.number}] {title}"
    return _clip(title, SUBJECT_MAX)


def _email_body(name: str, event: str, title: str, body: str, link: str | None) -> str:
    parts = [f"Hello {name},", "", title]
    if body.strip():
        parts += ["", body.strip()]
    if link:
        parts += ["", f"Open it: {link}"]
    parts += [
        "",
        "--",
        f"You receive this email for: {events.label(event)}.",
        "Change what District Resolve emails you under Notifications > Preferences.",
    ]
    return "\n".join(parts) + "\n"


# --------------------------------------------------------------------------- the inbox


def query_notifications(
    caller: Caller,
    *,
    unread: bool | None = None,
    event: str | None = None,
    ticket_id: uuid.UUID | None = None,
    q: str | None = None,
) -> Select[Any]:
    """The caller's own notifications, with the ticket number (one statement per page)."""
    stmt = (
        select(Notification, Ticket.number)
        .outerjoin(Ticket, Ticket.id == Notification.ticket_id)
        .where(Notification.user_id == caller.user_id)
    )
    if unread is True:
        stmt = stmt.where(Notification.read_at.is_(None))
    elif unread is False:
        stmt = stmt.where(Notification.read_at.is_not(None))
    if event:
        stmt = stmt.where(Notification.event == event)
    if ticket_id:
        stmt = stmt.where(Notification.ticket_id == ticket_id)
    if q:
        stmt = stmt.where(text_filter(q, Notification.title, Notification.body, Ticket.number))
    # rows are (Notification, ticket number); the listing helpers take any Select
    return cast("Select[Any]", stmt)


def get_own(session: Session, caller: Caller, notification_id: uuid.UUID) -> Notification:
    """The caller's notification; someone else's is "not found", like a missing one."""
    item = session.get(Notification, notification_id)
    if item is None or item.deleted_at is not None or item.user_id != caller.user_id:
        raise NotFound("Notification")
    return item


def mark_read(session: Session, caller: Caller, notification_id: uuid.UUID) -> Notification:
    item = get_own(session, caller, notification_id)
    if item.read_at is None:
        item.read_at = utcnow()
        session.flush()
    return item


def mark_all_read(session: Session, caller: Caller) -> int:
    """Mark every unread notification of the caller read; returns how many.

    Rows are updated through the ORM, not a bulk UPDATE, so each gets a new change
    position and desktop replicas learn that it was read.
    """
    items = session.scalars(
        select(Notification).where(
            Notification.user_id == caller.user_id, Notification.read_at.is_(None)
        )
    ).all()
    now = utcnow()
    for item in items:
        item.read_at = now
    session.flush()
    return len(items)


def unread_count(session: Session, caller: Caller) -> int:
    return int(
        session.execute(
            select(func.count())
            .select_from(Notification)
            .where(Notification.user_id == caller.user_id, Notification.read_at.is_(None))
        ).scalar_one()
    )


# ------------------------------------------------------------------------- preferences


def preferences(session: Session, caller: Caller) -> list[dict[str, Any]]:
    """Every event with the caller's effective choice (their row, else the default)."""
    chosen = {
        p.event: p
        for p in session.scalars(
            select(NotificationPreference).where(NotificationPreference.user_id == caller.user_id)
        )
    }
    result = []
    for event in events.ALL_EVENTS:
        row = chosen.get(event)
        in_app, email = (row.in_app, row.email) if row else events.default_delivery(event)
        result.append(
            {
                "event": event,
                "label": events.label(event),
                "in_app": in_app,
                "email": email,
                "is_default": row is None,
            }
        )
    return result


def set_preferences(
    session: Session, caller: Caller, items: Iterable[PreferenceIn]
) -> list[dict[str, Any]]:
    """Store the caller's choices for the events listed; others keep theirs."""
    wanted = list(items)
    unknown = [i.event for i in wanted if i.event not in events.ALL_EVENTS]
    if unknown:  # the schema refuses them first; a service caller gets the same rule
        raise ValueError(f"unknown notification events: {unknown}")
    if caller.organization_id is None or bound_tenant(session) is ALL_TENANTS:
        raise BusinessRuleViolation(
            "Platform administrators receive no notifications; there is nothing to choose"
        )
    existing = {
        p.event: p
        for p in session.scalars(
            select(NotificationPreference).where(NotificationPreference.user_id == caller.user_id)
        )
    }
    for item in wanted:
        row = existing.get(item.event)
        if row is None:
            session.add(
                NotificationPreference(
                    user_id=caller.user_id,
                    event=item.event,
                    in_app=item.in_app,
                    email=item.email,
                )
            )
        else:
            row.in_app = item.in_app
            row.email = item.email
    flush_unique(session, message="Preferences changed meanwhile; try again", field="event")
    return preferences(session, caller)
