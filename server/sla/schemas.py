from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, ValidationInfo, field_validator

from common.tickets import Priority, TicketType
from server.core.schemas import ApiInput, ApiModel
from server.organizations.schemas import TimeZone
from server.sla.calendar import CalendarError, parse_day, parse_hours

#: Up to a year of minutes: beyond that a target means nothing.
MAX_MINUTES = 366 * 24 * 60
#: The longest single holiday row (a summer break fits; a decade does not).
MAX_HOLIDAY_DAYS = 366
NotifyRole = Literal["org_admin", "agent", "technician"]
HHMM = Annotated[str, StringConstraints(max_length=5, pattern=r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$")]
#: One working interval, local wall-clock time: ["07:30", "15:30"].
TimeRange = tuple[HHMM, HHMM]
DayHours = list[TimeRange]
DEFAULT_HOURS: dict[str, list[list[str]]] = {
    day: [["08:00", "16:00"]] for day in ("mon", "tue", "wed", "thu", "fri")
}


class WorkingHours(ApiInput):
    """Working intervals per weekday; a day left out (or empty) is closed."""

    mon: DayHours = Field(default_factory=list, max_length=12)
    tue: DayHours = Field(default_factory=list, max_length=12)
    wed: DayHours = Field(default_factory=list, max_length=12)
    thu: DayHours = Field(default_factory=list, max_length=12)
    fri: DayHours = Field(default_factory=list, max_length=12)
    sat: DayHours = Field(default_factory=list, max_length=12)
    sun: DayHours = Field(default_factory=list, max_length=12)

    @field_validator("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    @classmethod
    def _well_formed(cls, value: DayHours, info: ValidationInfo) -> DayHours:
        try:
            parse_day(info.field_name or "day", value)
        except CalendarError as exc:
            raise ValueError(str(exc)) from exc
        return sorted(value)

    def as_json(self) -> dict[str, list[list[str]]]:
        week = {day: [list(pair) for pair in getattr(self, day)] for day in WorkingHours.days()}
        try:
            parse_hours(week)
        except CalendarError as exc:
            raise ValueError(str(exc)) from exc
        return week

    @staticmethod
    def days() -> tuple[str, ...]:
        return ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _check_week(value: WorkingHours | None) -> WorkingHours | None:
    if value is not None:
        value.as_json()  # at least one working day
    return value


# ------------------------------------------------------------------------- holidays


class HolidayCreate(ApiInput):
    name: str = Field(min_length=1, max_length=120)
    start_date: date
    end_date: date | None = Field(
        default=None, description="Last day off, inclusive; leave out for a single day"
    )

    @field_validator("start_date", "end_date")
    @classmethod
    def _plausible(cls, value: date | None) -> date | None:
        if value is not None and not 1900 <= value.year <= 2999:
            raise ValueError("must be a date between the years 1900 and 2999")
        return value

    @field_validator("end_date")
    @classmethod
    def _not_before_start(cls, value: date | None, info: ValidationInfo) -> date | None:
        start = info.data.get("start_date")
        if value is None or start is None:
            return value
        if value < start:
            raise ValueError("endDate must be on or after startDate")
        if value - start >= timedelta(days=MAX_HOLIDAY_DAYS):
            raise ValueError(f"a holiday spans at most {MAX_HOLIDAY_DAYS} days")
        return value


class HolidayOut(ApiModel):
    id: uuid.UUID
    calendar_id: uuid.UUID
    name: str
    start_date: date
    end_date: date


# ------------------------------------------------------------------------ calendars


class CalendarCreate(ApiInput):
    organization_id: str | None = Field(default=None, max_length=64)
    name: str = Field(min_length=1, max_length=120)
    description: str | None = Field(default=None, max_length=2000)
    timezone: TimeZone | None = Field(
        default=None,
        description="IANA zone; leave out for the site's (siteId) or the organization's",
    )
    hours: WorkingHours | None = Field(
        default=None, description="Leave out for Monday to Friday, 08:00 to 16:00"
    )
    site_id: uuid.UUID | None = Field(
        default=None, description="Make this the calendar of one site (overrides the default)"
    )
    is_default: bool = Field(default=False, description="The organization's default calendar")
    holidays: list[HolidayCreate] = Field(default_factory=list, max_length=200)

    _week = field_validator("hours")(_check_week)


class CalendarUpdate(ApiInput):
    name: str | None = Field(default=None, min_length=1, max_length=120)
    description: str | None = Field(default=None, max_length=2000)
    timezone: TimeZone | None = None
    hours: WorkingHours | None = None
    site_id: uuid.UUID | None = None
    is_default: bool | None = None

    _week = field_validator("hours")(_check_week)


class CalendarOut(ApiModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    description: str | None
    timezone: str
    hours: dict[str, list[list[str]]]
    site_id: uuid.UUID | None
    is_default: bool
    holidays: list[HolidayOut]
    created_at: datetime
    updated_at: datetime


# ---------------------------------------------------------------------------- rules


class Escalation(ApiInput):
    """What happens when a deadline is missed."""

    enabled: bool = Field(default=True, description="Escalate on a breach at all")
    raise_priority: bool = Field(
        default=False, description="Raise the ticket's priority one step (critical stays)"
    )
    notify_user_ids: list[uuid.UUID] = Field(default_factory=list, max_length=50)
    notify_roles: list[NotifyRole] = Field(default_factory=list, max_length=3)


class EscalationOut(ApiModel):
    enabled: bool
    raise_priority: bool
    notify_user_ids: list[uuid.UUID]
    notify_roles: list[str]


Minutes = Annotated[int, Field(ge=1, le=MAX_MINUTES)]


class SlaRuleCreate(ApiInput):
    organization_id: str | None = Field(default=None, max_length=64)
    name: str = Field(min_length=1, max_length=120)
    description: str | None = Field(default=None, max_length=2000)
    priority: Priority | None = Field(default=None, description="None: any priority")
    ticket_type: TicketType | None = Field(default=None, description="None: any type")
    department_id: uuid.UUID | None = Field(default=None, description="None: any department")
    site_id: uuid.UUID | None = Field(default=None, description="None: any site")
    calendar_id: uuid.UUID | None = Field(
        default=None, description="None: the site's calendar, else the default, else 24x7"
    )
    response_minutes: Minutes = Field(description="Business minutes to the first response")
    resolution_minutes: Minutes = Field(description="Business minutes to resolution")
    due_soon_minutes: int = Field(
        default=60, ge=0, le=MAX_MINUTES, description="Warn this many business minutes ahead"
    )
    position: int = Field(default=0, ge=0, le=1_000_000, description="Tie-break: lower first")
    is_active: bool = True
    escalation: Escalation = Field(default_factory=Escalation)

    @field_validator("resolution_minutes")
    @classmethod
    def _response_first(cls, value: int, info: ValidationInfo) -> int:
        response = info.data.get("response_minutes")
        if response is not None and value < response:
            raise ValueError("resolutionMinutes must be at least responseMinutes")
        return value


class SlaRuleUpdate(ApiInput):
    name: str | None = Field(default=None, min_length=1, max_length=120)
    description: str | None = Field(default=None, max_length=2000)
    priority: Priority | None = None
    ticket_type: TicketType | None = None
    department_id: uuid.UUID | None = None
    site_id: uuid.UUID | None = None
    calendar_id: uuid.UUID | None = None
    response_minutes: Minutes | None = None
    resolution_minutes: Minutes | None = None
    due_soon_minutes: int | None = Field(default=None, ge=0, le=MAX_MINUTES)
    position: int | None = Field(default=None, ge=0, le=1_000_000)
    is_active: bool | None = None
    escalation: Escalation | None = None


class SlaRuleOut(ApiModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    description: str | None
    priority: str | None
    ticket_type: str | None
    department_id: uuid.UUID | None
    site_id: uuid.UUID | None
    calendar_id: uuid.UUID | None
    response_minutes: int
    resolution_minutes: int
    due_soon_minutes: int
    position: int
    is_active: bool
    escalation: EscalationOut
    created_at: datetime
    updated_at: datetime


class ScanOut(ApiModel):
    warned: int
    breached: int
    escalated: int
    scanned_at: datetime


def plain(value: Any) -> Any:
    """JSON-safe copy of a value for audit details."""
    if isinstance(value, uuid.UUID | date | datetime):
        return str(value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value
