"""The SLA scan: warn before deadlines, record breaches, escalate.

Run every minute by ``server.jobs`` (under a lease, so one server process scans) and
on demand by ``POST /api/automation/sla-scan``. For the tickets of one organization
whose clock runs or is paused:

- *overdue*: the clock (now, or when it was paused) is past a deadline that has no
  breach recorded -> ``response_breached_at`` / ``resolution_breached_at`` (set to the
  deadline), history ``sla_breached``, notification ``sla_breached`` to the assignee
  (or the team lead, the team, or the organization's agents when nobody has it), and,
  when the rule says so, an escalation: priority one step up, ``escalation_level``
  + 1, history ``escalated``, notification to the rule's people and roles;
- *due soon* (running clocks only): the ticket's next pending deadline falls within
  the rule's ``due_soon_minutes`` business minutes and no warning was given for it
  -> ``sla_warned_at``, history ``sla_warning``, notification ``sla_due_soon``.

Everything it does is recorded on the ticket, so a second run finds nothing new.
Candidates come from two index-friendly range queries (resolution deadlines through
``ix_tickets_org_resolution_due``; unanswered tickets' response deadlines), locked
with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL so a ticket being edited is left for the
next minute instead of waiting on it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from common.enums import Role
from common.tickets import Priority
from common.workflow import StatusCategory
from server.core.tenancy import INCLUDE_DELETED
from server.notifications import events
from server.notifications import service as notifications
from server.sla.calendar import WorkCalendar
from server.sla.models import SlaRule
from server.sla.service import (
    DEFAULT_DUE_SOON_MINUTES,
    CalendarBook,
    _add,
    clock_time,
    iso,
)
from server.teams.models import Team, TeamMember
from server.tickets.models import Ticket
from server.tickets.timeline import EventKind, record
from server.users.models import User

#: Tickets handled per query and run; the rest wait for the next minute.
BATCH = 2000
_RUNNING = StatusCategory.OPEN.value
_PAUSED = StatusCategory.PAUSED.value


@dataclass(frozen=True, slots=True)
class ScanResult:
    warned: int = 0
    breached: int = 0
    escalated: int = 0


@dataclass
class _Target:
    name: str  # "response" | "resolution"
    due: datetime


class _Scan:
    def __init__(self, session: Session, organization_id: uuid.UUID, now: datetime) -> None:
        self.session = session
        self.organization_id = organization_id
        self.now = now
        self.book = CalendarBook(session)
        self.rules: dict[uuid.UUID, SlaRule] = {
            rule.id: rule
            for rule in session.scalars(
                select(SlaRule)
                .where(SlaRule.organization_id == organization_id)
                .execution_options(**{INCLUDE_DELETED: True})
            )
        }
        self._horizons: dict[tuple[int, uuid.UUID | None], datetime] = {}
        self._team_leads: dict[uuid.UUID, uuid.UUID | None] | None = None
        self._team_members: dict[uuid.UUID, list[uuid.UUID]] | None = None
        self._by_role: dict[str, list[uuid.UUID]] | None = None
        self.warned = self.breached = self.escalated = 0

    # ------------------------------------------------------------------ horizons

    def horizon(self, window: int, calendar_id: uuid.UUID | None) -> datetime:
        """``window`` business minutes from now in one calendar (None: 24x7)."""
        key = (window, calendar_id)
        if key not in self._horizons:
            row = next((r for r in self.book.rows if r.id == calendar_id), None)
            self._horizons[key] = _add(self.now, window, self.book.build(row))
        return self._horizons[key]

    def widest_horizon(self) -> datetime:
        windows = {r.due_soon_minutes for r in self.rules.values()} | {DEFAULT_DUE_SOON_MINUTES}
        calendars: list[uuid.UUID | None] = [None, *(r.id for r in self.book.rows)]
        return max(self.horizon(w, c) for w in windows for c in calendars)

    # ---------------------------------------------------------------- candidates

    def candidates(self) -> list[Ticket]:
        self.book.load_holidays()
        horizon = self.widest_horizon()
        now = self.now
        paused_clock = func.coalesce(Ticket.sla_paused_at, now)

        def due_or_overdue(due: Any) -> Any:
            return or_(
                and_(
                    Ticket.status_category == _RUNNING,
                    or_(due < now, Ticket.sla_warned_at.is_(None)),
                ),
                and_(Ticket.status_category == _PAUSED, due < paused_clock),
            )

        base = (
            select(Ticket)
            .where(
                Ticket.organization_id == self.organization_id,
                Ticket.status_category.in_((_RUNNING, _PAUSED)),
            )
            .limit(BATCH)
            .with_for_update(skip_locked=True, of=Ticket)
        )
        resolution = base.where(
            Ticket.resolution_due_at <= horizon,
            Ticket.resolution_breached_at.is_(None),
            due_or_overdue(Ticket.resolution_due_at),
        ).order_by(Ticket.resolution_due_at, Ticket.id)
        response = base.where(
            Ticket.first_response_at.is_(None),
            Ticket.response_due_at <= horizon,
            Ticket.response_breached_at.is_(None),
            due_or_overdue(Ticket.response_due_at),
        ).order_by(Ticket.response_due_at, Ticket.id)
        found: dict[uuid.UUID, Ticket] = {}
        for stmt in (response, resolution):
            for ticket in self.session.scalars(stmt):
                found.setdefault(ticket.id, ticket)
        return list(found.values())

    # ---------------------------------------------------------------- recipients

    def _load_people(self, tickets: list[Ticket]) -> None:
        team_ids = {t.team_id for t in tickets if t.assignee_id is None and t.team_id}
        self._team_leads, self._team_members = {}, {}
        if team_ids:
            for team_id, lead_id in self.session.execute(
                select(Team.id, Team.lead_id).where(Team.id.in_(team_ids))
            ):
                self._team_leads[team_id] = lead_id
            for team_id, user_id in self.session.execute(
                select(TeamMember.team_id, TeamMember.user_id)
                .where(TeamMember.team_id.in_(team_ids))
                .order_by(TeamMember.created_at)
            ):
                self._team_members.setdefault(team_id, []).append(user_id)

    def by_role(self, role: str) -> list[uuid.UUID]:
        if self._by_role is None:
            self._by_role = {}
            rows = self.session.execute(
                select(User.role, User.id)
                .where(
                    User.organization_id == self.organization_id,
                    User.is_active.is_(True),
                    User.role.in_((Role.ORG_ADMIN, Role.AGENT, Role.TECHNICIAN)),
                )
                .order_by(User.id)
            )
            for user_role, user_id in rows:
                self._by_role.setdefault(Role(user_role).value, []).append(user_id)
        return self._by_role.get(role, [])

    def owners(self, ticket: Ticket) -> list[uuid.UUID]:
        """Who answers for the ticket: its assignee, else its team's lead, else its
        team, else the organization's agents (else its admins)."""
        if ticket.assignee_id is not None:
            return [ticket.assignee_id]
        if ticket.team_id is not None:
            lead = (self._team_leads or {}).get(ticket.team_id)
            if lead is not None:
                return [lead]
            members = (self._team_members or {}).get(ticket.team_id, [])
            if members:
                return members
        return self.by_role(Role.AGENT.value) or self.by_role(Role.ORG_ADMIN.value)

    # ---------------------------------------------------------------------- run

    def run(self) -> ScanResult:
        tickets = self.candidates()
        self._load_people(tickets)
        for ticket in tickets:
            self.check(ticket)
        return ScanResult(warned=self.warned, breached=self.breached, escalated=self.escalated)

    def check(self, ticket: Ticket) -> None:
        rule = self.rules.get(ticket.sla_rule_id) if ticket.sla_rule_id else None
        row = self.book.row_for(rule, ticket.site_id)
        calendar = self.book.build(row)
        clock = clock_time(ticket, self.now)
        missed: list[_Target] = []
        if (
            ticket.first_response_at is None
            and ticket.response_due_at is not None
            and ticket.response_breached_at is None
            and clock > ticket.response_due_at
        ):
            ticket.response_breached_at = ticket.response_due_at
            ticket.sla_warned_at = None  # the next warning is about the resolution
            missed.append(_Target("response", ticket.response_due_at))
        if (
            ticket.resolution_due_at is not None
            and ticket.resolution_breached_at is None
            and clock > ticket.resolution_due_at
        ):
            ticket.resolution_breached_at = ticket.resolution_due_at
            missed.append(_Target("resolution", ticket.resolution_due_at))
        if missed:
            self.breach(ticket, rule, missed, calendar)
        if ticket.status_category != _RUNNING or ticket.sla_warned_at is not None:
            return
        target = _next_target(ticket)
        window = rule.due_soon_minutes if rule is not None else DEFAULT_DUE_SOON_MINUTES
        if target is None or window <= 0 or target.due <= self.now:
            return
        if target.due <= self.horizon(window, row.id if row is not None else None):
            self.warn(ticket, target, calendar)

    def warn(self, ticket: Ticket, target: _Target, calendar: WorkCalendar | None) -> None:
        ticket.sla_warned_at = self.now
        self.warned += 1
        record(
            self.session, ticket, EventKind.SLA_WARNING, target=target.name, dueAt=iso(target.due)
        )
        notifications.notify(
            self.session,
            recipients=self.owners(ticket),
            event=events.SLA_DUE_SOON,
            title=f"{ticket.number}: {target.name} due {_when(target.due, calendar)}",
            body=f"{ticket.title}\n\nThe {target.name} deadline is near.",
            ticket=ticket,
        )

    def breach(
        self,
        ticket: Ticket,
        rule: SlaRule | None,
        missed: list[_Target],
        calendar: WorkCalendar | None,
    ) -> None:
        """Record each missed deadline; tell the owners once and escalate once."""
        for target in missed:
            self.breached += 1
            record(
                self.session,
                ticket,
                EventKind.SLA_BREACHED,
                target=target.name,
                dueAt=iso(target.due),
            )
        names = " and ".join(t.name for t in missed)
        due = "; ".join(f"{t.name} was due {_when(t.due, calendar)}" for t in missed)
        owners = self.owners(ticket)
        notifications.notify(
            self.session,
            recipients=owners,
            event=events.SLA_BREACHED,
            title=f"{ticket.number}: {names} deadline missed",
            body=f"{ticket.title}\n\nThe {due}.",
            ticket=ticket,
        )
        if rule is not None and rule.escalate_on_breach:
            self.escalate(ticket, rule, missed, already=owners)

    def escalate(
        self,
        ticket: Ticket,
        rule: SlaRule,
        missed: list[_Target],
        *,
        already: Iterable[uuid.UUID],
    ) -> None:
        self.escalated += 1
        old = Priority(ticket.priority)
        new = old.raised() if rule.escalation_raise_priority else old
        ticket.priority = new.value
        ticket.escalation_level = (ticket.escalation_level or 0) + 1
        people = [uuid.UUID(u) for u in rule.escalation_notify_user_ids or []]
        for role in rule.escalation_notify_roles or []:
            people += self.by_role(role)
        people = list(dict.fromkeys(people))
        record(
            self.session,
            ticket,
            EventKind.ESCALATED,
            level=ticket.escalation_level,
            priority={"from": old.value, "to": new.value},
            notified=[str(p) for p in people],
            targets=[t.name for t in missed],
            ruleId=str(rule.id),
        )
        skip = set(already)
        raised = f"; priority raised to {new.value}" if new is not old else ""
        names = " and ".join(t.name for t in missed)
        notifications.notify(
            self.session,
            recipients=[p for p in people if p not in skip],
            event=events.SLA_BREACHED,
            title=f"{ticket.number} escalated (level {ticket.escalation_level})",
            body=f"{ticket.title}\n\nThe {names} deadline was missed{raised}.",
            ticket=ticket,
        )


def _next_target(ticket: Ticket) -> _Target | None:
    """The deadline a warning is about: the response until it is given, then the resolution."""
    if (
        ticket.first_response_at is None
        and ticket.response_breached_at is None
        and ticket.response_due_at is not None
    ):
        return _Target("response", ticket.response_due_at)
    if ticket.resolution_breached_at is None and ticket.resolution_due_at is not None:
        return _Target("resolution", ticket.resolution_due_at)
    return None


def _when(due: datetime, calendar: WorkCalendar | None) -> str:
    if calendar is None:
        return due.strftime("%a %d %b %H:%M UTC")
    local = due.astimezone(calendar.zone)
    return local.strftime("%a %d %b %H:%M ") + (local.tzname() or calendar.timezone)


def scan(session: Session, organization_id: uuid.UUID, now: datetime) -> ScanResult:
    """Warn, record breaches and escalate for one organization; flushes, never commits."""
    result = _Scan(session, organization_id, now).run()
    session.flush()
    return result
