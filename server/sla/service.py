"""SLA rules and business calendars, and the SLA clock of each ticket.

Which rule: every active rule whose criteria (priority, ticket type, department,
site; None = any) all match the ticket; the most specific one (most criteria set)
wins, ties going to the lower ``position``, then the older rule.

Which calendar: the rule's own calendar when it names one, else the calendar of the
ticket's site, else the organization's default calendar, else 24x7.

The clock: deadlines are ``created_at`` plus the rule's business minutes plus the
business minutes the clock has been stopped so far (``sla_paused_minutes``). The
clock stops while the ticket is paused (on hold, waiting on the requester) and while
it is resolved or closed; when it starts again the stopped time is added to
``sla_paused_minutes`` and the pending deadlines are pushed out by that much business
time. A reopened ticket therefore continues where it stopped: the time it spent
resolved does not count against it.

The ticket service calls ``apply_on_create``, ``recompute``, ``on_category_change`` and
``on_first_response``; ``server.sla.scan`` warns, records breaches and escalates.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from pydantic.alias_generators import to_camel
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from common.enums import AuditCategory, AuditSeverity, Role
from common.tickets import Priority, TicketType
from common.workflow import StatusCategory
from server.audit import service as audit
from server.core.db import flush_unique
from server.core.errors import Conflict, NotFound, ValidationFailed
from server.core.listing import text_filter
from server.core.tenancy import INCLUDE_DELETED, Caller, soft_delete
from server.organizations.models import Department
from server.sites.models import Site
from server.sla.calendar import (
    WEEKDAYS,
    CalendarError,
    NoWorkingTime,
    WorkCalendar,
    add_business_minutes,
    business_minutes_between,
    push,
)
from server.sla.models import BusinessCalendar, Holiday, SlaRule
from server.sla.schemas import (
    DEFAULT_HOURS,
    CalendarCreate,
    CalendarOut,
    CalendarUpdate,
    EscalationOut,
    HolidayCreate,
    HolidayOut,
    SlaRuleCreate,
    SlaRuleOut,
    SlaRuleUpdate,
    plain,
)
from server.tickets.models import Ticket
from server.tickets.timeline import EventKind, record
from server.users.models import User

log = logging.getLogger(__name__)

RULE_SORT_FIELDS = {
    "name": SlaRule.name,
    "position": SlaRule.position,
    "priority": SlaRule.priority,
    "responseMinutes": SlaRule.response_minutes,
    "resolutionMinutes": SlaRule.resolution_minutes,
    "createdAt": SlaRule.created_at,
}
CALENDAR_SORT_FIELDS = {"name": BusinessCalendar.name, "createdAt": BusinessCalendar.created_at}
#: The warning window of tickets whose deadlines were set without a rule.
DEFAULT_DUE_SOON_MINUTES = 60
_STOPPED = frozenset({StatusCategory.PAUSED, StatusCategory.RESOLVED, StatusCategory.CLOSED})
_DONE = frozenset({StatusCategory.RESOLVED, StatusCategory.CLOSED})


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# ------------------------------------------------------------------ rule matching


def specificity(rule: SlaRule) -> int:
    return sum(
        value is not None
        for value in (rule.priority, rule.ticket_type, rule.department_id, rule.site_id)
    )


def match_rule(
    session: Session,
    *,
    priority: str | None,
    ticket_type: str | None,
    department_id: uuid.UUID | None,
    site_id: uuid.UUID | None,
) -> SlaRule | None:
    """The active rule for a ticket with these facts (see the module docstring)."""

    def any_or(column: Any, value: Any) -> Any:
        return column.is_(None) if value is None else (column.is_(None) | (column == value))

    rules = session.scalars(
        select(SlaRule)
        .where(
            SlaRule.active.is_(True),
            any_or(SlaRule.priority, priority),
            any_or(SlaRule.ticket_type, ticket_type),
            any_or(SlaRule.department_id, department_id),
            any_or(SlaRule.site_id, site_id),
        )
        .order_by(SlaRule.position, SlaRule.created_at, SlaRule.id)
    ).all()
    best: SlaRule | None = None
    for rule in rules:  # by position: the first of the most specific wins
        if best is None or specificity(rule) > specificity(best):
            best = rule
    return best


def rule_for(session: Session, ticket: Ticket) -> SlaRule | None:
    return match_rule(
        session,
        priority=ticket.priority,
        ticket_type=ticket.ticket_type,
        department_id=ticket.department_id,
        site_id=ticket.site_id,
    )


def _rule_of(session: Session, ticket: Ticket) -> SlaRule | None:
    """The rule the ticket's deadlines came from, even if it was deleted since."""
    if ticket.sla_rule_id is None:
        return None
    return session.get(SlaRule, ticket.sla_rule_id, execution_options={INCLUDE_DELETED: True})


# ---------------------------------------------------------------------- calendars


class CalendarBook:
    """The organization's calendars, read once per unit of work and built on demand."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._rows: list[BusinessCalendar] | None = None
        self._holidays: dict[uuid.UUID, list[Holiday]] = {}
        self._built: dict[uuid.UUID, WorkCalendar | None] = {}

    @property
    def rows(self) -> list[BusinessCalendar]:
        if self._rows is None:
            self._rows = list(
                self.session.scalars(select(BusinessCalendar).order_by(BusinessCalendar.id))
            )
        return self._rows

    def load_holidays(self, calendar_ids: Iterable[uuid.UUID] | None = None) -> None:
        """Read the holidays of these calendars (default: all) in one statement."""
        ids = [i for i in (calendar_ids or [r.id for r in self.rows]) if i not in self._holidays]
        if not ids:
            return
        for holiday_id in ids:
            self._holidays[holiday_id] = []
        for holiday in self.session.scalars(
            select(Holiday).where(Holiday.calendar_id.in_(ids)).order_by(Holiday.start_date)
        ):
            self._holidays[holiday.calendar_id].append(holiday)

    def row_for(self, rule: SlaRule | None, site_id: uuid.UUID | None) -> BusinessCalendar | None:
        by_id = {row.id: row for row in self.rows}
        if rule is not None and rule.calendar_id in by_id:
            return by_id[rule.calendar_id]
        if site_id is not None:
            for row in self.rows:
                if row.site_id == site_id:
                    return row
        for row in self.rows:
            if row.is_default and row.site_id is None:
                return row
        return None

    def build(self, row: BusinessCalendar | None) -> WorkCalendar | None:
        if row is None:
            return None
        if row.id not in self._built:
            self.load_holidays([row.id])
            try:
                self._built[row.id] = WorkCalendar.build(
                    timezone=row.timezone,
                    hours=row.hours,
                    holidays=[(h.start_date, h.end_date) for h in self._holidays[row.id]],
                    name=row.name,
                )
            except CalendarError:
                log.exception("calendar %s is unusable; counting 24x7", row.id)
                self._built[row.id] = None
        return self._built[row.id]

    def for_ticket(self, rule: SlaRule | None, site_id: uuid.UUID | None) -> WorkCalendar | None:
        return self.build(self.row_for(rule, site_id))


def _add(start: datetime, minutes: int, calendar: WorkCalendar | None) -> datetime:
    try:
        return add_business_minutes(start, minutes, calendar)
    except NoWorkingTime:
        log.warning("calendar %s has no working time ahead; counting 24x7", calendar)
        return add_business_minutes(start, minutes, None)


def _between(a: datetime, b: datetime, calendar: WorkCalendar | None) -> int:
    try:
        return business_minutes_between(a, b, calendar)
    except NoWorkingTime:
        return business_minutes_between(a, b, None)


def _push(due: datetime, minutes: int, calendar: WorkCalendar | None) -> datetime:
    try:
        return push(due, minutes, calendar)
    except NoWorkingTime:
        return push(due, minutes, None)


def clock_time(ticket: Ticket, now: datetime) -> datetime:
    """Where the ticket's SLA clock stands: ``now``, or when it stopped."""
    paused = ticket.sla_paused_at
    return min(now, paused) if paused is not None else now


# --------------------------------------------------------------- the ticket's clock


def _ensure_id(session: Session, ticket: Ticket) -> None:
    if ticket.id is None or ticket.organization_id is None:
        session.flush()


def apply_on_create(session: Session, ticket: Ticket, now: datetime) -> None:
    """Pick the ticket's rule and set its deadlines, counted from ``now``."""
    _ensure_id(session, ticket)
    rule = rule_for(session, ticket)
    if rule is None:
        ticket.sla_rule_id = None
        ticket.response_due_at = ticket.resolution_due_at = None
        return
    book = CalendarBook(session)
    row = book.row_for(rule, ticket.site_id)
    calendar = book.build(row)
    ticket.sla_rule_id = rule.id
    ticket.response_due_at = _add(now, rule.response_minutes, calendar)
    ticket.resolution_due_at = _add(now, rule.resolution_minutes, calendar)
    record(
        session,
        ticket,
        EventKind.SLA_APPLIED,
        ruleId=str(rule.id),
        ruleName=rule.name,
        calendar=row.name if row is not None else "24x7",
        responseDueAt=iso(ticket.response_due_at),
        resolutionDueAt=iso(ticket.resolution_due_at),
    )


def recompute(session: Session, ticket: Ticket, now: datetime, reason: str) -> None:
    """Re-pick the rule after priority, type, department or site changed (or the rule
    or calendar did) and recount the deadlines from ``created_at``, adding back the
    business minutes the clock was stopped so far (``sla_paused_minutes``).

    A target already settled keeps its deadline and its verdict: the response once
    given, the resolution once the ticket is resolved or closed. A pending target whose
    new deadline has not passed loses a breach recorded against the old one; one whose
    new deadline passed already is left to the scan, which notifies and escalates."""
    _ensure_id(session, ticket)
    rule = rule_for(session, ticket)
    before = (ticket.sla_rule_id, ticket.response_due_at, ticket.resolution_due_at)
    response_open = ticket.first_response_at is None
    resolution_open = StatusCategory(ticket.status_category) not in _DONE
    row: BusinessCalendar | None = None
    if rule is None:
        ticket.sla_rule_id = None
        if response_open:
            ticket.response_due_at = ticket.response_breached_at = None
        if resolution_open:
            ticket.resolution_due_at = ticket.resolution_breached_at = None
    else:
        book = CalendarBook(session)
        row = book.row_for(rule, ticket.site_id)
        calendar = book.build(row)
        extra = ticket.sla_paused_minutes or 0
        start = ticket.created_at or now
        clock = clock_time(ticket, now)
        ticket.sla_rule_id = rule.id
        if response_open or ticket.response_due_at is None:
            due = _add(start, rule.response_minutes + extra, calendar)
            ticket.response_due_at = due
            if response_open and clock <= due:
                ticket.response_breached_at = None
        if resolution_open or ticket.resolution_due_at is None:
            due = _add(start, rule.resolution_minutes + extra, calendar)
            ticket.resolution_due_at = due
            if resolution_open and clock <= due:
                ticket.resolution_breached_at = None
    after = (ticket.sla_rule_id, ticket.response_due_at, ticket.resolution_due_at)
    if after == before:
        return
    ticket.sla_warned_at = None
    record(
        session,
        ticket,
        EventKind.SLA_APPLIED,
        ruleId=str(rule.id) if rule is not None else None,
        ruleName=rule.name if rule is not None else None,
        calendar=(row.name if row is not None else "24x7") if rule is not None else None,
        responseDueAt=iso(ticket.response_due_at),
        resolutionDueAt=iso(ticket.resolution_due_at),
        reason=reason,
    )


def _restart(session: Session, ticket: Ticket, now: datetime) -> None:
    """The clock starts again: add the stopped business time to the pending deadlines."""
    stopped_at = ticket.sla_paused_at
    ticket.sla_paused_at = None
    if stopped_at is None:
        return
    rule = _rule_of(session, ticket)
    calendar = CalendarBook(session).for_ticket(rule, ticket.site_id)
    minutes = max(0, _between(stopped_at, now, calendar))
    if minutes == 0:
        return
    ticket.sla_paused_minutes = (ticket.sla_paused_minutes or 0) + minutes
    moved = False
    # A deadline that had already passed when the clock stopped stays missed.
    due = ticket.response_due_at
    if (
        due is not None
        and ticket.first_response_at is None
        and ticket.response_breached_at is None
        and due > stopped_at
    ):
        ticket.response_due_at = _push(due, minutes, calendar)
        moved = True
    due = ticket.resolution_due_at
    if due is not None and ticket.resolution_breached_at is None and due > stopped_at:
        ticket.resolution_due_at = _push(due, minutes, calendar)
        moved = True
    window = rule.due_soon_minutes if rule is not None else DEFAULT_DUE_SOON_MINUTES
    if moved and minutes >= window:
        ticket.sla_warned_at = None  # the deadline moved well away: warn again when near


def on_category_change(
    session: Session,
    ticket: Ticket,
    old: StatusCategory | str,
    new: StatusCategory | str,
    now: datetime,
) -> None:
    """Stop, restart or finish the clock as the ticket's status category changes.

    - to PAUSED: the clock stops (``sla_paused_at``);
    - from PAUSED (or from RESOLVED/CLOSED, a reopen): the stopped business time is
      added to ``sla_paused_minutes`` and the pending deadlines move out by it;
    - to RESOLVED/CLOSED: the clock stops; resolving after the resolution deadline
      records the breach (a cancelled ticket records none);
    - between RESOLVED and CLOSED: nothing changes.
    """
    old, new = StatusCategory(old), StatusCategory(new)
    if old is new or (old in _DONE and new in _DONE):
        return
    _ensure_id(session, ticket)
    if old in _STOPPED:
        _restart(session, ticket, now)
    if new is StatusCategory.PAUSED:
        ticket.sla_paused_at = now
    elif new in _DONE:
        due = ticket.resolution_due_at
        if (
            due is not None
            and ticket.resolution_breached_at is None
            and now > due
            and ticket.status != "cancelled"
        ):
            ticket.resolution_breached_at = due
            record(
                session,
                ticket,
                EventKind.SLA_BREACHED,
                target="resolution",
                dueAt=iso(due),
                resolvedAt=iso(now),
            )
        ticket.sla_paused_at = now


def on_first_response(session: Session, ticket: Ticket, now: datetime) -> None:
    """The first staff response: record the response breach if it came late."""
    _ensure_id(session, ticket)
    if ticket.first_response_at is None:
        ticket.first_response_at = now
    due = ticket.response_due_at
    if due is None or ticket.response_breached_at is not None:
        return
    # The warning, if any, was about the response; the resolution may warn later.
    ticket.sla_warned_at = None
    answered = clock_time(ticket, ticket.first_response_at)
    if answered > due:
        ticket.response_breached_at = due
        record(
            session,
            ticket,
            EventKind.SLA_BREACHED,
            target="response",
            dueAt=iso(due),
            respondedAt=iso(ticket.first_response_at),
        )


# ------------------------------------------------------------------- output shapes


def rule_out(rule: SlaRule) -> SlaRuleOut:
    return SlaRuleOut(
        id=rule.id,
        organization_id=rule.organization_id,
        name=rule.name,
        description=rule.description,
        priority=rule.priority,
        ticket_type=rule.ticket_type,
        department_id=rule.department_id,
        site_id=rule.site_id,
        calendar_id=rule.calendar_id,
        response_minutes=rule.response_minutes,
        resolution_minutes=rule.resolution_minutes,
        due_soon_minutes=rule.due_soon_minutes,
        position=rule.position,
        is_active=rule.active,
        escalation=EscalationOut(
            enabled=rule.escalate_on_breach,
            raise_priority=rule.escalation_raise_priority,
            notify_user_ids=[uuid.UUID(u) for u in rule.escalation_notify_user_ids or []],
            notify_roles=list(rule.escalation_notify_roles or []),
        ),
        created_at=rule.created_at,
        updated_at=rule.updated_at,
    )


def holidays_of(
    session: Session, calendar_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Holiday]]:
    """The holidays of several calendars in one statement."""
    found: dict[uuid.UUID, list[Holiday]] = {i: [] for i in calendar_ids}
    if calendar_ids:
        stmt = (
            select(Holiday)
            .where(Holiday.calendar_id.in_(list(calendar_ids)))
            .order_by(Holiday.start_date, Holiday.id)
        )
        for holiday in session.scalars(stmt):
            found[holiday.calendar_id].append(holiday)
    return found


def calendar_out(calendar: BusinessCalendar, holidays: Sequence[Holiday]) -> CalendarOut:
    return CalendarOut(
        id=calendar.id,
        organization_id=calendar.organization_id,
        name=calendar.name,
        description=calendar.description,
        timezone=calendar.timezone,
        hours={day: calendar.hours.get(day, []) for day in WEEKDAYS},
        site_id=calendar.site_id,
        is_default=calendar.is_default,
        holidays=[HolidayOut.model_validate(h) for h in holidays],
        created_at=calendar.created_at,
        updated_at=calendar.updated_at,
    )


# ------------------------------------------------------------------ administration


def _audit(
    session: Session,
    caller: Caller,
    item: SlaRule | BusinessCalendar,
    action: str,
    message: str,
    **kw: Any,
) -> None:
    audit.record(
        session,
        actor=caller,
        organization_id=item.organization_id,
        action=action,
        category=AuditCategory.CONFIGURATION,
        entity_type="sla_rule" if isinstance(item, SlaRule) else "business_calendar",
        entity_id=item.id,
        message=message,
        **kw,
    )


def _check_department(session: Session, department_id: uuid.UUID | None) -> None:
    if department_id is None:
        return
    dept = session.get(Department, department_id)
    if dept is None or dept.deleted_at is not None:
        raise ValidationFailed("No such department", details={"field": "departmentId"})


def _check_site(session: Session, site_id: uuid.UUID | None) -> Site | None:
    if site_id is None:
        return None
    site = session.get(Site, site_id)
    if site is None or site.deleted_at is not None:
        raise ValidationFailed("No such site", details={"field": "siteId"})
    return site


def _check_calendar_ref(session: Session, calendar_id: uuid.UUID | None) -> None:
    if calendar_id is None:
        return
    row = session.get(BusinessCalendar, calendar_id)
    if row is None or row.deleted_at is not None:
        raise ValidationFailed("No such business calendar", details={"field": "calendarId"})


def _check_notify_users(session: Session, user_ids: Sequence[uuid.UUID]) -> None:
    if not user_ids:
        return
    found = set(
        session.scalars(
            select(User.id).where(User.id.in_(list(user_ids)), User.role != Role.REQUESTER)
        )
    )
    missing = [str(u) for u in user_ids if u not in found]
    if missing:
        raise ValidationFailed(
            "Escalations notify staff of this organization only",
            details={"field": "escalation.notifyUserIds", "unknown": missing},
        )


# ---------------------------------------------------------------------------- rules


def get_rule(session: Session, rule_id: uuid.UUID) -> SlaRule:
    rule = session.get(SlaRule, rule_id)
    if rule is None or rule.deleted_at is not None:
        raise NotFound("SLA rule")
    return rule


def query_rules(
    *,
    q: str | None = None,
    active: bool | None = None,
    priority: str | None = None,
    ticket_type: str | None = None,
) -> Select[Any]:
    stmt = select(SlaRule)
    if q:
        stmt = stmt.where(text_filter(q, SlaRule.name, SlaRule.description))
    if active is not None:
        stmt = stmt.where(SlaRule.active.is_(active))
    if priority:
        stmt = stmt.where(SlaRule.priority == priority)
    if ticket_type:
        stmt = stmt.where(SlaRule.ticket_type == ticket_type)
    return stmt


def _rule_values(data: dict[str, Any]) -> dict[str, Any]:
    """Body fields (python names) as column values."""
    values = dict(data)
    if "is_active" in values:
        values["active"] = values.pop("is_active")
    for key in ("priority", "ticket_type"):
        if isinstance(values.get(key), Priority | TicketType):
            values[key] = values[key].value
    escalation = values.pop("escalation", None)
    if escalation is not None:
        values["escalate_on_breach"] = escalation["enabled"]
        values["escalation_raise_priority"] = escalation["raise_priority"]
        values["escalation_notify_user_ids"] = [
            str(u) for u in dict.fromkeys(escalation["notify_user_ids"])
        ]
        values["escalation_notify_roles"] = list(dict.fromkeys(escalation["notify_roles"]))
    return values


def _check_rule_refs(session: Session, values: dict[str, Any]) -> None:
    if "department_id" in values:
        _check_department(session, values["department_id"])
    if "site_id" in values:
        _check_site(session, values["site_id"])
    if "calendar_id" in values:
        _check_calendar_ref(session, values["calendar_id"])
    if values.get("escalation_notify_user_ids"):
        _check_notify_users(session, [uuid.UUID(u) for u in values["escalation_notify_user_ids"]])


def create_rule(
    session: Session, *, caller: Caller, organization_id: uuid.UUID, data: SlaRuleCreate
) -> SlaRule:
    values = _rule_values(data.model_dump(exclude={"organization_id"}))
    _check_rule_refs(session, values)
    rule = SlaRule(organization_id=organization_id, **values)
    session.add(rule)
    flush_unique(session, message=f"An SLA rule named '{data.name}' exists", field="name")
    _audit(
        session,
        caller,
        rule,
        "sla_rule.created",
        f"{caller.email} created SLA rule {rule.name}",
        details={"rule": plain(rule_out(rule).model_dump(mode="json"))},
    )
    return rule


def update_rule(session: Session, *, caller: Caller, rule: SlaRule, data: SlaRuleUpdate) -> SlaRule:
    changes = data.model_dump(exclude_unset=True)
    for key in (
        "name",
        "response_minutes",
        "resolution_minutes",
        "due_soon_minutes",
        "position",
        "is_active",
        "escalation",
    ):
        if key in changes and changes[key] is None:
            field = "isActive" if key == "is_active" else to_camel(key)
            raise ValidationFailed(f"{field} cannot be null", details={"field": field})
    values = _rule_values(changes)
    response = values.get("response_minutes", rule.response_minutes)
    resolution = values.get("resolution_minutes", rule.resolution_minutes)
    if resolution < response:
        field = "resolutionMinutes" if "resolution_minutes" in values else "responseMinutes"
        raise ValidationFailed(
            f"resolutionMinutes ({resolution}) must be at least responseMinutes ({response})",
            details={"field": field},
        )
    _check_rule_refs(session, values)
    before = rule_out(rule).model_dump(mode="json")
    for key, value in values.items():
        setattr(rule, key, value)
    flush_unique(session, message="An SLA rule with this name exists", field="name")
    after = rule_out(rule).model_dump(mode="json")
    diff = {k: {"from": before[k], "to": after[k]} for k in after if before[k] != after[k]}
    diff.pop("updatedAt", None)
    if diff:
        _audit(
            session,
            caller,
            rule,
            "sla_rule.updated",
            f"{caller.email} changed {', '.join(sorted(diff))} of SLA rule {rule.name}",
            details={"changes": diff},
        )
    return rule


def delete_rule(session: Session, *, caller: Caller, rule: SlaRule) -> None:
    """Tombstone the rule; tickets keep the deadlines it gave them."""
    soft_delete(rule)
    session.flush()
    _audit(
        session,
        caller,
        rule,
        "sla_rule.deleted",
        f"{caller.email} deleted SLA rule {rule.name}",
        severity=AuditSeverity.WARNING,
    )


# ------------------------------------------------------------------------ calendars


def get_calendar(session: Session, calendar_id: uuid.UUID) -> BusinessCalendar:
    row = session.get(BusinessCalendar, calendar_id)
    if row is None or row.deleted_at is not None:
        raise NotFound("Business calendar")
    return row


def query_calendars(*, q: str | None = None, site_id: uuid.UUID | None = None) -> Select[Any]:
    stmt = select(BusinessCalendar)
    if q:
        stmt = stmt.where(text_filter(q, BusinessCalendar.name, BusinessCalendar.description))
    if site_id:
        stmt = stmt.where(BusinessCalendar.site_id == site_id)
    return stmt


def _organization_timezone(session: Session, organization_id: uuid.UUID) -> str:
    from server.organizations.models import Organization

    org = session.get(Organization, organization_id)
    return org.timezone if org is not None else "UTC"


def _take_default(session: Session, calendar: BusinessCalendar) -> None:
    """Make ``calendar`` the organization's only default."""
    for other in session.scalars(
        select(BusinessCalendar).where(
            BusinessCalendar.is_default.is_(True), BusinessCalendar.id != calendar.id
        )
    ):
        other.is_default = False
    session.flush()


def _check_site_calendar(session: Session, site_id: uuid.UUID, exclude: uuid.UUID | None) -> None:
    stmt = select(BusinessCalendar.name).where(BusinessCalendar.site_id == site_id)
    if exclude is not None:
        stmt = stmt.where(BusinessCalendar.id != exclude)
    taken = session.scalar(stmt.limit(1))
    if taken is not None:
        raise Conflict(
            f"The site already has a calendar ({taken})",
            details={"field": "siteId"},
        )


def create_calendar(
    session: Session, *, caller: Caller, organization_id: uuid.UUID, data: CalendarCreate
) -> tuple[BusinessCalendar, list[Holiday]]:
    site = _check_site(session, data.site_id)
    if data.is_default and site is not None:
        raise ValidationFailed(
            "A site calendar cannot be the organization's default", details={"field": "isDefault"}
        )
    if site is not None:
        _check_site_calendar(session, site.id, None)
    timezone = data.timezone or (site.timezone if site else None)
    calendar = BusinessCalendar(
        organization_id=organization_id,
        name=data.name,
        description=data.description,
        timezone=timezone or _organization_timezone(session, organization_id),
        hours=data.hours.as_json() if data.hours is not None else dict(DEFAULT_HOURS),
        site_id=data.site_id,
        is_default=False,
    )
    session.add(calendar)
    flush_unique(session, message=f"A calendar named '{data.name}' exists", field="name")
    if data.is_default:
        _take_default(session, calendar)
        calendar.is_default = True
        session.flush()
    holidays = [_new_holiday(session, calendar, h) for h in data.holidays]
    session.flush()
    _audit(
        session,
        caller,
        calendar,
        "business_calendar.created",
        f"{caller.email} created business calendar {calendar.name}",
        details={
            "timezone": calendar.timezone,
            "hours": calendar.hours,
            "siteId": plain(calendar.site_id),
            "isDefault": calendar.is_default,
            "holidays": [
                {"name": h.name, "startDate": str(h.start_date), "endDate": str(h.end_date)}
                for h in holidays
            ],
        },
    )
    return calendar, holidays


def update_calendar(
    session: Session, *, caller: Caller, calendar: BusinessCalendar, data: CalendarUpdate
) -> BusinessCalendar:
    changes = data.model_dump(exclude_unset=True)
    for key in ("name", "timezone", "hours", "is_default"):
        if key in changes and changes[key] is None:
            field = to_camel(key)
            raise ValidationFailed(f"{field} cannot be null", details={"field": field})
    site_id = changes.get("site_id", calendar.site_id)
    is_default = changes.get("is_default", calendar.is_default)
    if "site_id" in changes:
        site = _check_site(session, site_id)
        if site is not None:
            _check_site_calendar(session, site.id, calendar.id)
    if is_default and site_id is not None:
        raise ValidationFailed(
            "A site calendar cannot be the organization's default",
            details={"field": "isDefault" if "is_default" in changes else "siteId"},
        )
    if "hours" in changes:
        changes["hours"] = data.hours.as_json() if data.hours is not None else None
    before = {key: plain(getattr(calendar, key)) for key in changes}
    if changes.get("is_default") and not calendar.is_default:
        _take_default(session, calendar)
    for key, value in changes.items():
        setattr(calendar, key, value)
    flush_unique(session, message="A calendar with this name exists", field="name")
    diff = audit.field_changes(before, {key: plain(getattr(calendar, key)) for key in changes})
    if diff:
        _audit(
            session,
            caller,
            calendar,
            "business_calendar.updated",
            f"{caller.email} changed {', '.join(sorted(diff))} of business calendar "
            f"{calendar.name}",
            details={"changes": diff},
        )
    return calendar


def delete_calendar(session: Session, *, caller: Caller, calendar: BusinessCalendar) -> None:
    users = session.scalars(
        select(SlaRule.name).where(SlaRule.calendar_id == calendar.id).order_by(SlaRule.name)
    ).all()
    if users:
        raise Conflict(
            f"SLA rules count in this calendar: {', '.join(users)}; change them first",
            details={"field": "id", "rules": list(users)},
        )
    soft_delete(calendar)
    calendar.is_default = False
    session.flush()
    _audit(
        session,
        caller,
        calendar,
        "business_calendar.deleted",
        f"{caller.email} deleted business calendar {calendar.name}",
        severity=AuditSeverity.WARNING,
    )


def _new_holiday(session: Session, calendar: BusinessCalendar, data: HolidayCreate) -> Holiday:
    holiday = Holiday(
        organization_id=calendar.organization_id,
        calendar_id=calendar.id,
        name=data.name,
        start_date=data.start_date,
        end_date=data.end_date or data.start_date,
    )
    session.add(holiday)
    return holiday


def add_holiday(
    session: Session, *, caller: Caller, calendar: BusinessCalendar, data: HolidayCreate
) -> Holiday:
    holiday = _new_holiday(session, calendar, data)
    session.flush()
    _audit(
        session,
        caller,
        calendar,
        "business_calendar.holiday_added",
        f"{caller.email} added holiday {holiday.name} ({holiday.start_date} to "
        f"{holiday.end_date}) to business calendar {calendar.name}",
        details={
            "holidayId": str(holiday.id),
            "name": holiday.name,
            "startDate": str(holiday.start_date),
            "endDate": str(holiday.end_date),
        },
    )
    return holiday


def get_holiday(session: Session, calendar: BusinessCalendar, holiday_id: uuid.UUID) -> Holiday:
    holiday = session.get(Holiday, holiday_id)
    if holiday is None or holiday.deleted_at is not None or holiday.calendar_id != calendar.id:
        raise NotFound("Holiday")
    return holiday


def remove_holiday(
    session: Session, *, caller: Caller, calendar: BusinessCalendar, holiday: Holiday
) -> None:
    soft_delete(holiday)
    session.flush()
    _audit(
        session,
        caller,
        calendar,
        "business_calendar.holiday_removed",
        f"{caller.email} removed holiday {holiday.name} from business calendar {calendar.name}",
        details={"holidayId": str(holiday.id), "name": holiday.name},
    )
