"""Demo SLA set-up: the district's school-day calendar for 2026-27 and one rule per priority."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.organizations.models import Organization
from server.sla.calendar import parse_hhmm
from server.sla.models import BusinessCalendar, Holiday, SlaRule

CALENDAR_NAME = "District school day"
SCHOOL_DAY = ("07:30", "16:00")
#: 2026-27 school year: days the district office and help desk are closed.
HOLIDAYS_2026_27: tuple[tuple[str, date, date], ...] = (
    ("Labor Day", date(2026, 9, 7), date(2026, 9, 7)),
    ("Fall break", date(2026, 10, 12), date(2026, 10, 12)),
    ("Thanksgiving break", date(2026, 11, 25), date(2026, 11, 27)),
    ("Winter break", date(2026, 12, 21), date(2027, 1, 1)),
    ("Martin Luther King Jr. Day", date(2027, 1, 18), date(2027, 1, 18)),
    ("Presidents' Day", date(2027, 2, 15), date(2027, 2, 15)),
    ("Spring break", date(2027, 3, 15), date(2027, 3, 19)),
    ("Memorial Day", date(2027, 5, 31), date(2027, 5, 31)),
)
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


def seed_demo(session: Session, organization: Organization) -> BusinessCalendar:
    """The organization's default school-day calendar (Monday to Friday, 07:30 to 16:00
    in its time zone, the 2026-27 breaks off) and an SLA rule per priority, counted in
    business minutes (a day is one school day). Does nothing when the calendar exists."""
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
        timezone=organization.timezone or "America/Chicago",
        hours={day: [list(SCHOOL_DAY)] for day in ("mon", "tue", "wed", "thu", "fri")},
        is_default=True,
    )
    session.add(calendar)
    session.flush()
    for name, first, last in HOLIDAYS_2026_27:
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
