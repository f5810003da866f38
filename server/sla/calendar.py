"""Business-time arithmetic for SLA deadlines: pure functions, no database.

A :class:`WorkCalendar` is a time zone, the working hours of each weekday in local
wall-clock time (several intervals a day are allowed: a lunch break, a split shift)
and holidays as inclusive ranges of local dates (spring break is one range). ``None``
in place of a calendar means 24x7: every minute counts.

Business time is a set of UTC instants: each working interval of each non-holiday
local day, converted to UTC with the calendar's zone (so a DST change shortens or
lengthens the wall-clock day, and an interval keeps its local start and end). Both
functions below walk that one set, which is why

    business_minutes_between(s, add_business_minutes(s, m, cal), cal) == m

holds for any start, in or out of hours, and any ``m >= 0``.

Wall-clock times that a DST change skips (02:30 on a spring-forward night) are read
with the offset before the change (PEP 495, ``fold=0``); the intervals are then
clipped so that they never overlap, so business time stays a well-formed set even for
calendars whose hours straddle a transition.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: Weekday keys of the working-hours JSON, Monday first (``date.weekday()`` order).
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60
#: A calendar with no working minute in this many days has no working time at all.
MAX_EMPTY_DAYS = 4 * 366
_HHMM = re.compile(r"^(?:([01]\d|2[0-3]):([0-5]\d)|(24):(00))$")
_MINUTE = timedelta(minutes=1)

Interval = tuple[int, int]  # minutes since local midnight, [start, end), end <= 1440


class CalendarError(ValueError):
    """A calendar definition that cannot be used (bad hours, unknown zone)."""


class NoWorkingTime(CalendarError):
    """The calendar has no working minute ahead (every day closed or a holiday)."""


def parse_hhmm(value: str) -> int:
    """``"07:30"`` -> 450 minutes after midnight; ``"24:00"`` (end of day) -> 1440."""
    match = _HHMM.match(value) if isinstance(value, str) else None
    if match is None:
        raise CalendarError(f"{value!r} is not a time of day as HH:MM (00:00 to 24:00)")
    hours, minutes = (match.group(1), match.group(2)) if match.group(1) else ("24", "00")
    return int(hours) * 60 + int(minutes)


def format_hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_day(day: str, ranges: Sequence[Sequence[str]]) -> tuple[Interval, ...]:
    """One weekday's ``[["07:30", "11:30"], ["12:00", "16:00"]]``, checked and sorted."""
    parsed: list[Interval] = []
    for index, pair in enumerate(ranges):
        if isinstance(pair, str) or len(pair) != 2:
            raise CalendarError(f"{day}[{index}] must be a pair [start, end]")
        start, end = parse_hhmm(pair[0]), parse_hhmm(pair[1])
        if start >= end:
            raise CalendarError(
                f"{day}[{index}]: {pair[0]}-{pair[1]} ends before it starts; "
                "working hours cannot run past midnight (split them over two days)"
            )
        parsed.append((start, end))
    parsed.sort()
    for (_, end), (start, _) in itertools.pairwise(parsed):
        if start < end:
            raise CalendarError(f"{day}: working hours overlap ({format_hhmm(start)})")
    return tuple(parsed)


def parse_hours(hours: Mapping[str, Any]) -> tuple[tuple[Interval, ...], ...]:
    """The working-hours JSON (``{"mon": [["07:30", "15:30"]], ...}``; a missing day is
    closed) as seven tuples of intervals, Monday first."""
    unknown = sorted(set(hours) - set(WEEKDAYS))
    if unknown:
        raise CalendarError(f"unknown weekday {unknown[0]!r}; use {', '.join(WEEKDAYS)}")
    week = tuple(parse_day(day, hours.get(day) or ()) for day in WEEKDAYS)
    if not any(week):
        raise CalendarError("a calendar needs working hours on at least one day")
    return week


def format_hours(week: Sequence[Sequence[Interval]]) -> dict[str, list[list[str]]]:
    return {
        day: [[format_hhmm(a), format_hhmm(b)] for a, b in intervals]
        for day, intervals in zip(WEEKDAYS, week, strict=True)
    }


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CalendarError(f"unknown time zone {name!r}") from exc


@dataclass(frozen=True, slots=True)
class WorkCalendar:
    """Working hours in one time zone, minus holidays. Build with :meth:`build`."""

    timezone: str
    #: seven tuples of [start, end) local minutes, Monday first
    week: tuple[tuple[Interval, ...], ...]
    #: inclusive (first, last) local dates, sorted by first day, overlaps merged
    holidays: tuple[tuple[date, date], ...] = ()
    name: str = ""
    _holiday_starts: tuple[date, ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def build(
        cls,
        *,
        timezone: str,
        hours: Mapping[str, Any],
        holidays: Sequence[tuple[date, date]] = (),
        name: str = "",
    ) -> WorkCalendar:
        zone(timezone)  # refuses an unknown zone
        merged: list[tuple[date, date]] = []
        for first, last in sorted(holidays):
            if last < first:
                raise CalendarError(f"holiday {first}..{last} ends before it starts")
            if merged and first <= merged[-1][1] + timedelta(days=1):
                merged[-1] = (merged[-1][0], max(merged[-1][1], last))
            else:
                merged.append((first, last))
        return cls(
            timezone=timezone,
            week=parse_hours(hours),
            holidays=tuple(merged),
            name=name,
            _holiday_starts=tuple(first for first, _ in merged),
        )

    @property
    def zone(self) -> ZoneInfo:
        return zone(self.timezone)

    def is_holiday(self, day: date) -> bool:
        index = bisect.bisect_right(self._holiday_starts, day) - 1
        return index >= 0 and day <= self.holidays[index][1]

    def intervals_on(self, day: date) -> Iterator[tuple[datetime, datetime]]:
        """The working intervals of one local date, in UTC (none on a holiday)."""
        if self.is_holiday(day):
            return
        tz = self.zone
        midnight = datetime.combine(day, time())
        for start, end in self.week[day.weekday()]:
            yield (
                _to_utc(midnight + timedelta(minutes=start), tz),
                _to_utc(midnight + timedelta(minutes=end), tz),
            )


def _to_utc(local: datetime, tz: ZoneInfo) -> datetime:
    return local.replace(tzinfo=tz).astimezone(UTC)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("business-time arithmetic needs timezone-aware datetimes")
    return moment.astimezone(UTC)


def business_intervals(
    calendar: WorkCalendar, start: datetime
) -> Iterator[tuple[datetime, datetime]]:
    """Business time from ``start`` on, as sorted, disjoint UTC intervals, each clipped
    to begin no earlier than ``start`` (and than the end of the one before)."""
    start = _utc(start)
    day = start.astimezone(calendar.zone).date() - timedelta(days=1)
    floor = start
    empty = 0
    while True:
        produced = False
        for begin, end in calendar.intervals_on(day):
            begin = max(begin, floor)
            if end > begin:
                yield begin, end
                floor = end
                produced = True
        empty = 0 if produced else empty + 1
        if empty > MAX_EMPTY_DAYS:
            raise NoWorkingTime(
                f"calendar {calendar.name or calendar.timezone!r} has no working time "
                f"after {day.isoformat()}"
            )
        day += timedelta(days=1)


def add_business_minutes(start: datetime, minutes: int, calendar: WorkCalendar | None) -> datetime:
    """The instant ``minutes`` business minutes after ``start`` (UTC).

    A start outside working hours counts from the next opening; a deadline that uses up
    an interval exactly ends at that interval's close (16:00), not the next opening.
    """
    if minutes < 0:
        raise ValueError("minutes must be zero or more")
    start = _utc(start)
    if calendar is None:
        return start + minutes * _MINUTE
    if minutes == 0:
        return start
    left = minutes * _MINUTE
    for begin, end in business_intervals(calendar, start):
        if end - begin >= left:
            return begin + left
        left -= end - begin
    raise AssertionError("unreachable: business_intervals never ends")  # pragma: no cover


def business_time_between(a: datetime, b: datetime, calendar: WorkCalendar | None) -> timedelta:
    """Business time from ``a`` to ``b`` (negative when ``b`` is before ``a``)."""
    a, b = _utc(a), _utc(b)
    if b < a:
        return -business_time_between(b, a, calendar)
    if calendar is None:
        return b - a
    total = timedelta()
    if a == b:
        return total
    for begin, end in business_intervals(calendar, a):
        if begin >= b:
            break
        total += min(end, b) - begin
    return total


def business_minutes_between(a: datetime, b: datetime, calendar: WorkCalendar | None) -> int:
    """Whole business minutes from ``a`` to ``b`` (partial minutes are dropped; negative
    when ``b`` is before ``a``)."""
    span = business_time_between(a, b, calendar)
    whole = abs(span) // _MINUTE
    return whole if span >= timedelta() else -whole


def is_business_time(moment: datetime, calendar: WorkCalendar | None) -> bool:
    """Whether the clock runs at ``moment``."""
    if calendar is None:
        return True
    begin, _ = next(business_intervals(calendar, moment))
    return begin == _utc(moment)


def push(due: datetime, minutes: int, calendar: WorkCalendar | None) -> datetime:
    """A deadline moved out by ``minutes`` business minutes (a pause added back)."""
    return add_business_minutes(due, minutes, calendar) if minutes > 0 else due
