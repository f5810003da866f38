"""What a new district's SLA starts with: a school-day business calendar in the
district's time zone and one rule per priority on it, all editable.

An organization gets them when it is created (``server.organizations.provisioning``),
so the first ticket of a brand-new district already has response and resolution
deadlines. The demo district adds its school year's breaks (``server.sla.demo``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.organizations.models import Organization
from server.sla.calendar import parse_hhmm
from server.sla.models import BusinessCalendar, Holiday, SlaRule

CALENDAR_NAME = "District school day"
SCHOOL_DAYS = ("mon", "tue", "wed", "thu", "fri")
SCHOOL_DAY = ("07:30", "16:00")
#: priority, respond within, resolve within (m: minutes, h: hours, d: school days of
#: business time), due-soon warning window in business minutes.
RULES: tuple[tuple[str, str, str, int], ...] = (
    ("critical", "30m", "4h", 15),
    ("high", "2h", "1d", 60),
    ("medium", "8h", "3d", 120),
    ("low", "1d", "5d", 240),
)


def _minutes(amount: str, day_minutes: int) -> int:
    number, unit = int(amount[:-1]), amount[-1]
    return number * {"m": 1, "h": 60, "d": day_minutes}[unit]


def install_defaults(
    session: Session,
    organization: Organization,
    *,
    holidays: Iterable[tuple[str, date, date]] = (),
) -> BusinessCalendar:
    """The organization's default calendar (Monday to Friday, 07:30 to 16:00 in its
    time zone, ``holidays`` off) and an SLA rule per priority counted in business
    minutes (a day is one school day). The rules name no calendar: they count on a
    site's own calendar where one is set, else on this default. Does nothing when
    the calendar exists; the session may be bound to the organization or to all
    tenants."""
    existing = session.scalar(
        select(BusinessCalendar).where(
            BusinessCalendar.organization_id == organization.id,
            BusinessCalendar.name == CALENDAR_NAME,
        )
    )
    if existing is not None:
        return existing
    org_id = organization.id
    calendar = BusinessCalendar(
        organization_id=org_id,
        name=CALENDAR_NAME,
        description="District office hours on school days; closed on breaks and holidays.",
        timezone=organization.timezone,
        hours={day: [list(SCHOOL_DAY)] for day in SCHOOL_DAYS},
        is_default=True,
    )
    session.add(calendar)
    session.flush()
    for name, first, last in holidays:
        session.add(
            Holiday(
                organization_id=org_id,
                calendar_id=calendar.id,
                name=name,
                start_date=first,
                end_date=last,
            )
        )
    day = parse_hhmm(SCHOOL_DAY[1]) - parse_hhmm(SCHOOL_DAY[0])  # 510 business minutes
    for position, (priority, respond, resolve, warn) in enumerate(RULES):
        session.add(
            SlaRule(
                organization_id=org_id,
                name=f"{priority.title()} priority",
                description=f"Respond within {respond}, resolve within {resolve} of school time.",
                priority=priority,
                response_minutes=_minutes(respond, day),
                resolution_minutes=_minutes(resolve, day),
                due_soon_minutes=warn,
                position=position,
                active=True,
                escalate_on_breach=True,
                escalation_raise_priority=priority != "critical",
                escalation_notify_user_ids=[],
                escalation_notify_roles=["org_admin"] if priority in ("critical", "high") else [],
            )
        )
    session.flush()
    return calendar
