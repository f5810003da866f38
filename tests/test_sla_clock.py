"""Business-time arithmetic of SLA deadlines: school-day hours, weekends, holidays and
spring break, time zones and DST changes, pauses, and the 24x7 fallback."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.sla.calendar import (
    CalendarError,
    NoWorkingTime,
    WorkCalendar,
    add_business_minutes,
    business_minutes_between,
    business_time_between,
    is_business_time,
    parse_hours,
    push,
)

CHICAGO = ZoneInfo("America/Chicago")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
SPRING_BREAK = (date(2027, 3, 15), date(2027, 3, 19))


def school(
    *, tz: str = "America/Chicago", hours: tuple[str, str] = ("07:30", "15:30"), holidays=()
) -> WorkCalendar:
    return WorkCalendar.build(
        timezone=tz, hours={d: [list(hours)] for d in WEEKDAYS}, holidays=list(holidays)
    )


def local(*args: int, tz: ZoneInfo = CHICAGO) -> datetime:
    return datetime(*args, tzinfo=tz)


def at(moment: datetime, tz: ZoneInfo = CHICAGO) -> datetime:
    return moment.astimezone(tz).replace(tzinfo=None)


# ------------------------------------------------------------------------ the basics


def test_minutes_inside_one_school_day() -> None:
    cal = school()
    due = add_business_minutes(local(2026, 9, 9, 9, 0), 90, cal)  # a Wednesday
    assert at(due) == datetime(2026, 9, 9, 10, 30)
    assert due.tzinfo is UTC
    assert business_minutes_between(local(2026, 9, 9, 9, 0), due, cal) == 90


def test_a_ticket_filed_before_the_bell_counts_from_the_opening() -> None:
    cal = school()
    due = add_business_minutes(local(2026, 9, 9, 6, 5), 30, cal)
    assert at(due) == datetime(2026, 9, 9, 8, 0)
    assert business_minutes_between(local(2026, 9, 9, 6, 5), local(2026, 9, 9, 7, 30), cal) == 0


def test_a_ticket_filed_in_the_evening_counts_from_the_next_morning() -> None:
    cal = school()
    due = add_business_minutes(local(2026, 9, 9, 19, 45), 60, cal)
    assert at(due) == datetime(2026, 9, 10, 8, 30)


def test_a_deadline_that_uses_up_the_day_ends_at_the_closing_bell() -> None:
    cal = school()
    due = add_business_minutes(local(2026, 9, 9, 7, 30), 480, cal)
    assert at(due) == datetime(2026, 9, 9, 15, 30)


def test_friday_afternoon_runs_into_monday() -> None:
    cal = school()
    due = add_business_minutes(local(2026, 9, 11, 14, 30), 120, cal)  # Friday
    assert at(due) == datetime(2026, 9, 14, 8, 30)  # Monday
    weekend = business_minutes_between(local(2026, 9, 11, 15, 30), local(2026, 9, 14, 7, 30), cal)
    assert weekend == 0


def test_a_week_of_school_days() -> None:
    cal = school()
    due = add_business_minutes(local(2026, 9, 14, 7, 30), 5 * 480, cal)
    assert at(due) == datetime(2026, 9, 18, 15, 30)


def test_several_intervals_a_day_skip_lunch() -> None:
    cal = WorkCalendar.build(
        timezone="America/Chicago",
        hours={d: [["12:30", "16:00"], ["07:30", "11:30"]] for d in WEEKDAYS},
    )
    due = add_business_minutes(local(2026, 9, 9, 11, 0), 60, cal)
    assert at(due) == datetime(2026, 9, 9, 13, 0)
    assert business_minutes_between(local(2026, 9, 9, 7, 30), local(2026, 9, 9, 16, 0), cal) == 450


def test_weekend_only_calendar() -> None:
    cal = WorkCalendar.build(timezone="UTC", hours={"sat": [["10:00", "12:00"]]})
    due = add_business_minutes(datetime(2026, 9, 9, 12, 0, tzinfo=UTC), 150, cal)
    assert due == datetime(2026, 9, 19, 10, 30, tzinfo=UTC)  # two Saturdays on


# ---------------------------------------------------------------------------- holidays


def test_spring_break_is_skipped_as_one_holiday() -> None:
    cal = school(holidays=[SPRING_BREAK])
    friday_before = local(2027, 3, 12, 14, 30)
    due = add_business_minutes(friday_before, 120, cal)
    assert at(due) == datetime(2027, 3, 22, 8, 30)  # the Monday after the break
    assert business_minutes_between(friday_before, due, cal) == 120
    during = business_minutes_between(local(2027, 3, 15, 0, 0), local(2027, 3, 20, 0, 0), cal)
    assert during == 0


def test_a_single_holiday_and_a_break_over_new_year() -> None:
    cal = school(
        holidays=[
            (date(2026, 9, 7), date(2026, 9, 7)),  # Labor Day, a Monday
            (date(2026, 12, 21), date(2027, 1, 1)),  # winter break
        ]
    )
    due = add_business_minutes(local(2026, 9, 4, 15, 0), 60, cal)  # Friday before Labor Day
    assert at(due) == datetime(2026, 9, 8, 8, 0)
    due = add_business_minutes(local(2026, 12, 18, 15, 0), 60, cal)
    assert at(due) == datetime(2027, 1, 4, 8, 0)


def test_overlapping_holidays_are_merged() -> None:
    cal = school(
        holidays=[(date(2027, 3, 15), date(2027, 3, 17)), (date(2027, 3, 16), SPRING_BREAK[1])]
    )
    assert cal.holidays == (SPRING_BREAK,)
    assert cal.is_holiday(date(2027, 3, 19))
    assert not cal.is_holiday(date(2027, 3, 22))


# -------------------------------------------------------------- time zones and DST


def test_the_same_hours_in_two_time_zones_are_different_instants() -> None:
    start = datetime(2026, 9, 9, 12, 0, tzinfo=UTC)
    chicago = add_business_minutes(start, 60, school(tz="America/Chicago"))
    tokyo = add_business_minutes(start, 60, school(tz="Asia/Tokyo"))
    assert chicago == datetime(2026, 9, 9, 13, 30, tzinfo=UTC)  # opens 07:30 CDT = 12:30 UTC
    assert tokyo == datetime(2026, 9, 9, 23, 30, tzinfo=UTC)  # Thursday 07:30 JST + 1h


def test_school_hours_keep_their_wall_clock_across_the_spring_change() -> None:
    cal = school(hours=("08:00", "16:00"))
    friday = local(2026, 3, 6, 15, 0)  # CST, UTC-6
    due = add_business_minutes(friday, 120, cal)
    assert due == datetime(2026, 3, 9, 14, 0, tzinfo=UTC)  # Monday 09:00 CDT, UTC-5
    assert at(due) == datetime(2026, 3, 9, 9, 0)


def test_a_24_hour_calendar_has_a_23_hour_spring_day_and_a_25_hour_fall_day() -> None:
    always = WorkCalendar.build(
        timezone="America/Chicago",
        hours={d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
    )
    spring = business_minutes_between(local(2026, 3, 8, 0, 0), local(2026, 3, 9, 0, 0), always)
    fall = business_minutes_between(local(2026, 11, 1, 0, 0), local(2026, 11, 2, 0, 0), always)
    assert (spring, fall) == (23 * 60, 25 * 60)
    # 24 business hours from Saturday noon are 24 real hours: Sunday 13:00 CDT, not noon
    start = local(2026, 3, 7, 12, 0)
    due = add_business_minutes(start, 24 * 60, always)
    assert due == start.astimezone(UTC) + timedelta(hours=24)
    assert at(due) == datetime(2026, 3, 8, 13, 0)


def test_hours_that_straddle_the_night_change_count_real_time() -> None:
    night = WorkCalendar.build(timezone="America/Chicago", hours={"sun": [["01:00", "04:00"]]})
    # 01:00 CST to 04:00 CDT on 8 March 2026 is two real hours; on 1 November, four.
    assert business_minutes_between(local(2026, 3, 8, 0), local(2026, 3, 8, 5), night) == 120
    assert business_minutes_between(local(2026, 11, 1, 0), local(2026, 11, 1, 5), night) == 240


# ----------------------------------------------------------------------------- 24x7


def test_no_calendar_is_24x7() -> None:
    start = datetime(2026, 12, 25, 23, 0, tzinfo=UTC)
    assert add_business_minutes(start, 90, None) == start + timedelta(minutes=90)
    assert business_minutes_between(start, start + timedelta(hours=5), None) == 300
    assert is_business_time(start, None)


def test_between_is_negative_backwards_and_drops_partial_minutes() -> None:
    cal = school()
    a, b = local(2026, 9, 9, 9, 0), local(2026, 9, 9, 9, 10, 59)
    assert business_minutes_between(a, b, cal) == 10
    assert business_minutes_between(b, a, cal) == -10
    assert business_time_between(b, a, cal) == -timedelta(minutes=10, seconds=59)


def test_is_business_time() -> None:
    cal = school(holidays=[SPRING_BREAK])
    assert is_business_time(local(2026, 9, 9, 7, 30), cal)
    assert not is_business_time(local(2026, 9, 9, 15, 30), cal)  # the close is not inside
    assert not is_business_time(local(2026, 9, 12, 10, 0), cal)  # Saturday
    assert not is_business_time(local(2027, 3, 17, 10, 0), cal)  # spring break


# ------------------------------------------------------------------------------ pauses


def test_a_pause_pushes_the_deadline_by_the_business_time_it_lasted() -> None:
    """On hold from Thursday 14:00 to Monday 09:00 is 2h (Thu) + 8h (Fri) + 1.5h (Mon)
    of school time; the deadline moves out by exactly that."""
    cal = school()
    created = local(2026, 9, 10, 8, 0)
    due = add_business_minutes(created, 16 * 60, cal)  # two school days
    assert at(due) == datetime(2026, 9, 14, 8, 0)
    paused, resumed = local(2026, 9, 10, 14, 0), local(2026, 9, 14, 9, 0)
    stopped = business_minutes_between(paused, resumed, cal)
    assert stopped == 90 + 480 + 90
    moved = push(due, stopped, cal)
    # the same as counting the time left when the ticket paused from when it resumed
    left = 16 * 60 - business_minutes_between(created, paused, cal)
    assert moved == add_business_minutes(resumed, left, cal)
    assert at(moved) == datetime(2026, 9, 15, 11, 0)
    assert push(due, 0, cal) == due


def test_a_pause_outside_hours_moves_nothing() -> None:
    cal = school()
    friday_evening, monday_morning = local(2026, 9, 11, 17, 0), local(2026, 9, 14, 7, 0)
    assert business_minutes_between(friday_evening, monday_morning, cal) == 0


# -------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        ({"mon": [["09:00", "08:00"]]}, "ends before it starts"),
        ({"mon": [["08:00", "12:00"], ["11:00", "13:00"]]}, "overlap"),
        ({"mon": [["8am", "12:00"]]}, "HH:MM"),
        ({"mon": [["08:00", "24:30"]]}, "HH:MM"),
        ({"mon": [["08:00"]]}, "pair"),
        ({"funday": [["08:00", "12:00"]]}, "unknown weekday"),
        ({"sat": []}, "at least one day"),
    ],
)
def test_bad_hours_are_refused_clearly(hours: dict, message: str) -> None:
    with pytest.raises(CalendarError, match=message):
        parse_hours(hours)


def test_unknown_time_zone_and_backwards_holiday_are_refused() -> None:
    with pytest.raises(CalendarError, match="time zone"):
        school(tz="America/Springfield")
    with pytest.raises(CalendarError, match="ends before"):
        school(holidays=[(date(2027, 3, 19), date(2027, 3, 15))])


def test_a_calendar_with_no_time_left_says_so() -> None:
    cal = WorkCalendar.build(
        timezone="UTC",
        hours={"mon": [["08:00", "09:00"]]},
        holidays=[
            (
                date(2026, 1, 1) + timedelta(days=366 * i),
                date(2026, 12, 31) + timedelta(days=366 * i),
            )
            for i in range(6)
        ],
    )
    with pytest.raises(NoWorkingTime):
        add_business_minutes(datetime(2026, 1, 1, tzinfo=UTC), 30, cal)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        add_business_minutes(datetime(2026, 9, 9, 9, 0), 30, school())


# -------------------------------------------------------------------------- invariants

ZONES = ["America/Chicago", "America/New_York", "America/Los_Angeles", "Europe/London",
         "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]  # fmt: skip
hhmm = st.integers(min_value=0, max_value=24 * 4).map(lambda q: q * 15)


@st.composite
def calendars(draw: st.DrawFn) -> WorkCalendar:
    week = {}
    for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"):
        cuts = sorted(set(draw(st.lists(hhmm, max_size=4))))
        pairs = list(zip(cuts[::2], cuts[1::2], strict=False))
        week[day] = [
            [f"{a // 60:02d}:{a % 60:02d}", f"{b // 60:02d}:{b % 60:02d}"] for a, b in pairs
        ]
    if not any(week.values()):
        week["wed"] = [["08:00", "16:00"]]
    holidays = []
    for _ in range(draw(st.integers(0, 3))):
        first = draw(st.dates(date(2025, 1, 1), date(2028, 12, 31)))
        holidays.append((first, first + timedelta(days=draw(st.integers(0, 9)))))
    return WorkCalendar.build(timezone=draw(st.sampled_from(ZONES)), hours=week, holidays=holidays)


instants = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)
maybe_calendars = st.one_of(st.none(), calendars())
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(start=instants, minutes=st.integers(0, 20_000), cal=maybe_calendars)
def test_counting_back_the_minutes_added_gives_the_minutes(start, minutes, cal) -> None:
    due = add_business_minutes(start, minutes, cal)
    assert due >= start
    assert business_minutes_between(start, due, cal) == minutes


@SETTINGS
@given(start=instants, m1=st.integers(0, 5_000), m2=st.integers(0, 5_000), cal=maybe_calendars)
def test_adding_in_two_steps_is_adding_once(start, m1, m2, cal) -> None:
    assert add_business_minutes(add_business_minutes(start, m1, cal), m2, cal) == (
        add_business_minutes(start, m1 + m2, cal)
    )


@SETTINGS
@given(
    a=instants,
    gaps=st.tuples(st.integers(0, 20_000), st.integers(0, 20_000)),
    cal=maybe_calendars,
)
def test_business_time_adds_up_and_never_exceeds_wall_time(a, gaps, cal) -> None:
    b = a + timedelta(minutes=gaps[0])
    c = b + timedelta(minutes=gaps[1])
    ab, bc, ac = (business_time_between(x, y, cal) for x, y in ((a, b), (b, c), (a, c)))
    assert ab + bc == ac
    assert timedelta() <= ac <= c - a


@SETTINGS
@given(start=instants, minutes=st.integers(1, 5_000), later=st.integers(0, 10_000), cal=calendars())
def test_a_later_start_never_gives_an_earlier_deadline(start, minutes, later, cal) -> None:
    moved = start + timedelta(minutes=later)
    assert add_business_minutes(moved, minutes, cal) >= add_business_minutes(start, minutes, cal)


@SETTINGS
@given(
    created=instants,
    target=st.integers(1, 5_000),
    pause=st.tuples(st.integers(0, 20_000), st.integers(0, 20_000)),
    cal=maybe_calendars,
)
def test_pushing_by_the_pause_equals_resuming_with_the_time_left(
    created, target, pause, cal
) -> None:
    """What the service does on resume (push the deadline by the paused business
    minutes) is what a stopwatch would do (count the time left from the resume)."""
    created = created.replace(second=0, microsecond=0)
    due = add_business_minutes(created, target, cal)
    paused = created + timedelta(minutes=pause[0])
    resumed = paused + timedelta(minutes=pause[1])
    used = business_minutes_between(created, paused, cal)
    if used >= target:
        return  # paused after the deadline: nothing is pushed
    moved = push(due, business_minutes_between(paused, resumed, cal), cal)
    assert moved == add_business_minutes(resumed, target - used, cal)
