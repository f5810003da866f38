"""Demo SLA set-up: the default school-day calendar and rules (``server.sla.defaults``)
with the demo district's 2026-27 breaks."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from server.organizations.models import Organization
from server.sla.defaults import install_defaults
from server.sla.models import BusinessCalendar

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


def seed_demo(session: Session, organization: Organization) -> BusinessCalendar:
    """The demo district's calendar, its breaks and an SLA rule per priority. Does
    nothing when the calendar exists."""
    return install_defaults(session, organization, holidays=HOLIDAYS_2026_27)
