"""Times in definitions: ISO-8601 durations ("P2D", "PT30M", "P1M") and the next local time of
day on given weekdays in a contact's time zone ("next weekday 09:00")."""

import zoneinfo
from datetime import datetime, time, timedelta

import isodate

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def duration_problem(value, *, minimum: timedelta = timedelta(0)) -> str | None:
    """Why ``value`` is not a usable ISO-8601 duration, or None."""
    if not isinstance(value, str):
        return "Give an ISO-8601 duration as text, e.g. P2D or PT30M."
    try:
        parsed = isodate.parse_duration(value)
    except (isodate.ISO8601Error, ValueError):
        return f"“{value}” is not an ISO-8601 duration, e.g. P2D (two days) or PT30M (30 minutes)."
    reference = datetime(2026, 1, 1)
    length = (reference + parsed) - reference
    if length <= timedelta(0):
        return f"“{value}” is not a positive duration."
    if length < minimum:
        return f"“{value}” is shorter than the minimum, {minimum}."
    return None


def after(moment: datetime, duration: str) -> datetime:
    """``moment`` plus an ISO-8601 duration (months and years are calendar months and years)."""
    return moment + isodate.parse_duration(duration)


def seconds(duration: str) -> float:
    """An ISO-8601 duration in seconds (a month counts from 2026-01-01: 31 days)."""
    reference = datetime(2026, 1, 1)
    return ((reference + isodate.parse_duration(duration)) - reference).total_seconds()


def local_time_problem(value, weekdays) -> str | None:
    try:
        time.fromisoformat(value)
    except (TypeError, ValueError):
        return f"“{value}” is not a time of day, e.g. 09:00."
    if weekdays is not None and (
        not isinstance(weekdays, list) or not weekdays or any(d not in WEEKDAYS for d in weekdays)
    ):
        return f"weekdays: a non-empty list of {', '.join(WEEKDAYS)}."
    return None


def next_local_time(now: datetime, at: str, *, weekdays: list[str] | None, time_zone: str) -> datetime:
    """The first moment after ``now`` that is ``at`` o'clock in ``time_zone`` on one of
    ``weekdays`` (every day when None). A time skipped by a DST change fires an hour later."""
    zone = zoneinfo.ZoneInfo(time_zone or "UTC")
    local_now = now.astimezone(zone)
    wanted = time.fromisoformat(at)
    allowed = {WEEKDAYS.index(d) for d in weekdays} if weekdays else set(range(7))
    for days in range(8):
        day = (local_now + timedelta(days=days)).date()
        if day.weekday() not in allowed:
            continue
        candidate = datetime.combine(day, wanted, tzinfo=zone)
        # Round trip through UTC normalises a wall time that does not exist (spring forward).
        candidate = candidate.astimezone(zoneinfo.ZoneInfo("UTC")).astimezone(zone)
        if candidate > local_now:
            return candidate.astimezone(zoneinfo.ZoneInfo("UTC"))
    raise ValueError("no matching day in a week")  # unreachable: allowed is never empty
