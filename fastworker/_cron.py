"""Five-field cron schedules: parse an expression once, then ask for the next fire time."""

from __future__ import annotations

import calendar
import math
import re
from bisect import bisect_left
from datetime import MAXYEAR, UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from ._errors import InvalidSchedule

__all__ = ["CronSchedule"]

# How far ahead next_after() looks before giving up. Every schedule that can fire at all
# (impossible day/month pairs are rejected by parse) fires within 8 years: the longest wait is
# for Feb 29 across a non-leap century year (2096 -> 2104).
_HORIZON_YEARS = 8

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_MONTH_NAMES = {
    name: number
    for number, name in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"],
        start=1,
    )
}
_DAY_NAMES = {
    name: number for number, name in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])
}
# The most days each month can have (Feb 29 in leap years).
_LONGEST_MONTH = dict(enumerate([31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], start=1))

_DIGITS = re.compile(r"[0-9]+")


@attrs.frozen
class _Field:
    """How one of the five positions is spelled and which values it allows."""

    name: str
    low: int
    high: int  # highest value that may be written explicitly
    implicit_high: int  # where `*` and `a/step` stop (6 for day-of-week: 7 is only an alias)
    names: dict[str, int]  # upper-case name -> value
    name_range: str  # e.g. "JAN-DEC", or "" when the field has no names
    allowed: str  # human description used in error messages
    note: str = ""  # appended to out-of-range messages


_FIELDS = (
    _Field("minute", 0, 59, 59, {}, "", "0-59"),
    _Field("hour", 0, 23, 23, {}, "", "0-23"),
    _Field("day-of-month", 1, 31, 31, {}, "", "1-31"),
    _Field("month", 1, 12, 12, _MONTH_NAMES, "JAN-DEC", "1-12 or JAN-DEC"),
    _Field(
        "day-of-week",
        0,
        7,
        6,
        _DAY_NAMES,
        "SUN-SAT",
        "0-7 or SUN-SAT (0 and 7 are Sunday)",
        " (0 and 7 are Sunday)",
    ),
)
_FIELD_NAMES = " ".join(field.name for field in _FIELDS)
_SYNTAX = "'*', numbers, lists 'a,b', ranges 'a-b' and steps '*/n', 'a-b/n', 'a/n'"


@attrs.frozen
class _Spec:
    """The parsed form of an expression: the allowed values of each field."""

    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: tuple[int, ...]
    weekdays: frozenset[int]  # 0 = Sunday ... 6 = Saturday
    any_day: bool  # day-of-month is `*`
    any_weekday: bool  # day-of-week is `*`

    def day_matches(self, year: int, month: int, day: int) -> bool:
        """Whether the date passes the day-of-month / day-of-week rule."""
        if self.any_day and self.any_weekday:
            return True
        weekday = (date(year, month, day).weekday() + 1) % 7
        if self.any_day:
            return weekday in self.weekdays
        if self.any_weekday:
            return day in self.days
        return day in self.days or weekday in self.weekdays

    def next_day(self, year: int, month: int, day: int) -> int | None:
        """The first matching day of the month on or after `day`, or None."""
        for candidate in range(day, calendar.monthrange(year, month)[1] + 1):
            if self.day_matches(year, month, candidate):
                return candidate
        return None

    def next_wall(self, start: datetime, last_year: int) -> datetime | None:
        """The first matching naive wall-clock minute at or after `start`, up to `last_year`.

        Skips whole months, days and hours that cannot match, so a search over years costs at
        most a few hundred steps.
        """
        year, month, day, hour, minute = start.timetuple()[:5]
        while year <= last_year:
            index = bisect_left(self.months, month)
            if index == len(self.months):
                year, month, day, hour, minute = year + 1, self.months[0], 1, 0, 0
                continue
            if self.months[index] != month:
                month, day, hour, minute = self.months[index], 1, 0, 0
            found = self.next_day(year, month, day)
            if found is None:
                month, day, hour, minute = month + 1, 1, 0, 0
                continue
            if found != day:
                day, hour, minute = found, 0, 0
            index = bisect_left(self.hours, hour)
            if index == len(self.hours):
                day, hour, minute = day + 1, 0, 0
                continue
            if self.hours[index] != hour:
                hour, minute = self.hours[index], 0
            index = bisect_left(self.minutes, minute)
            if index == len(self.minutes):
                hour, minute = hour + 1, 0
                continue
            return datetime(year, month, day, hour, self.minutes[index])
        return None


def _fail(expression: str, message: str) -> InvalidSchedule:
    return InvalidSchedule(f"cron {expression!r}: {message}")


def _small_int(digits: str) -> int:
    """The value of a string of ASCII digits, capped at 10**9 (all that matters, and it avoids
    int()'s limit on very long digit strings)."""
    significant = digits.lstrip("0")
    return int(significant or "0") if len(significant) <= 9 else 10**9


def _parse_value(expression: str, field: _Field, text: str, token: str) -> int:
    """One number or name of a field, range-checked."""
    if _DIGITS.fullmatch(token):
        value = _small_int(token)
    elif token.upper() in field.names:
        return field.names[token.upper()]
    else:
        names = f" or names {field.name_range}" if field.names else ""
        raise _fail(
            expression,
            f"{field.name} field {text!r} has an invalid value {token!r}; "
            f"allowed: numbers {field.low}-{field.high}{names}{field.note}, combined as {_SYNTAX}",
        )
    if not field.low <= value <= field.high:
        where = f"{field.name} field {text!r}"
        if token != text:
            where += f": value {token!r}"
        raise _fail(expression, f"{where} is out of range {field.low}-{field.high}{field.note}")
    return value


def _parse_item(expression: str, field: _Field, text: str, item: str) -> range:
    """One comma-separated item: `*`, `a`, `a-b`, each optionally followed by `/step`."""
    base, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not _DIGITS.fullmatch(step_text) or not step_text.strip("0"):
            raise _fail(
                expression,
                f"{field.name} field {text!r} has step {step_text!r}; "
                "a step must be a positive whole number (as in '*/15')",
            )
        step = _small_int(step_text)
    if base == "*":
        return range(field.low, field.implicit_high + 1, step)
    start_text, dash, end_text = base.partition("-")
    if dash:
        if not start_text or not end_text:
            raise _fail(
                expression,
                f"{field.name} field {text!r} has an incomplete range {base!r}; "
                f"write 'a-b' with both ends in {field.allowed}",
            )
        start = _parse_value(expression, field, text, start_text)
        end = _parse_value(expression, field, text, end_text)
        if start > end:
            raise _fail(
                expression,
                f"{field.name} field {text!r} has a reversed range {base!r}; "
                f"the start must not exceed the end (allowed: {field.allowed})",
            )
        return range(start, end + 1, step)
    start = _parse_value(expression, field, text, start_text)
    if slash:
        return range(start, max(start, field.implicit_high) + 1, step)
    return range(start, start + 1)


def _parse_field(expression: str, field: _Field, text: str) -> frozenset[int]:
    """All the values one field allows."""
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise _fail(
                expression,
                f"{field.name} field {text!r} has an empty list item; "
                "separate values with single commas, as in '1,2,5'",
            )
        values.update(_parse_item(expression, field, text, item))
    return frozenset(values)


def _parse(expression: str) -> _Spec:
    """Turn the expression text (or a macro) into a _Spec, or raise InvalidSchedule."""
    if not isinstance(expression, str):
        raise InvalidSchedule(
            f"a cron expression must be a str, got {type(expression).__name__}: {expression!r}"
        )
    stripped = expression.strip()
    if stripped.startswith("@"):
        expanded = _MACROS.get(stripped.lower())
        if expanded is None:
            raise _fail(expression, f"unknown macro {stripped!r}; allowed: {', '.join(_MACROS)}")
        parts = expanded.split()
    else:
        parts = stripped.split()
    if len(parts) != len(_FIELDS):
        raise _fail(
            expression,
            f"expected 5 fields ({_FIELD_NAMES}) or a macro such as @daily, got {len(parts)}"
            + ("; seconds and years are not supported" if len(parts) > len(_FIELDS) else ""),
        )
    minutes, hours, days, months, weekdays = (
        _parse_field(expression, field, text) for field, text in zip(_FIELDS, parts, strict=True)
    )
    any_day, any_weekday = parts[2] == "*", parts[4] == "*"
    if (
        not any_day
        and any_weekday
        and not any(day <= _LONGEST_MONTH[month] for month in months for day in days)
    ):
        longest = max(_LONGEST_MONTH[month] for month in months)
        raise _fail(
            expression,
            f"day-of-month field {parts[2]!r} never occurs in month field {parts[3]!r} "
            f"(those months have at most {longest} days), so the schedule would never fire",
        )
    return _Spec(
        minutes=tuple(sorted(minutes)),
        hours=tuple(sorted(hours)),
        days=days,
        months=tuple(sorted(months)),
        weekdays=frozenset(value % 7 for value in weekdays),
        any_day=any_day,
        any_weekday=any_weekday,
    )


def _load_zone(expression: str, timezone: str | None) -> tzinfo:
    """The tzinfo for an IANA name, UTC for None, or InvalidSchedule."""
    if timezone is None:
        return UTC
    if not isinstance(timezone, str):
        raise _fail(
            expression,
            f"timezone must be an IANA name (str) or None, got {type(timezone).__name__}",
        )
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise _fail(
            expression,
            f"unknown timezone {timezone!r}; use an IANA name such as 'Europe/Paris' or 'UTC'",
        ) from None


@attrs.frozen
class CronSchedule:
    """A standard 5-field cron schedule: ``minute hour day-of-month month day-of-week``.

    Build one with :meth:`parse` (or the constructor, which does the same validation); a bad
    expression or timezone raises :class:`~fastworker._errors.InvalidSchedule` naming the field.

    Syntax, per field: ``*``; numbers; lists ``1,2,5``; ranges ``1-5``; steps ``*/15``,
    ``10-50/10`` and ``5/10`` (from 5 to the field's maximum, every 10). Months accept
    ``JAN``-``DEC`` and days of week ``SUN``-``SAT`` (any case, also in ranges like ``MON-FRI``).
    Day-of-week 0 and 7 are both Sunday, so ``5-7`` is Friday, Saturday and Sunday; ``*`` and
    ``a/n`` in that field stop at 6. The macros ``@yearly``/``@annually``, ``@monthly``,
    ``@weekly``, ``@daily``/``@midnight`` and ``@hourly`` are accepted too.

    Day rule (classic cron): when day-of-month and day-of-week are both restricted (neither is
    written as exactly ``*``), a day matches if EITHER matches; otherwise both must. So
    ``0 0 13 * 5`` fires on every 13th and on every Friday. A day-of-month that no selected month
    has (``0 0 30 2 *``) is rejected at parse time.

    Time zones: the schedule is evaluated on the wall clock of ``timezone`` (an IANA name,
    loaded with :mod:`zoneinfo`), or UTC when it is None. Around daylight-saving changes:

    * a local time that does not exist (the spring-forward gap) is skipped, not moved: a
      ``30 2 * * *`` schedule in America/New_York does not fire on the day clocks jump from 02:00
      to 03:00;
    * a local time that happens twice (the fall-back overlap) fires once, at its first
      occurrence (``fold=0``); the repeated hour is not fired again.
    """

    expression: str
    """The expression as given (a 5-field string or a macro such as ``@daily``)."""
    timezone: str | None = None
    """IANA name of the zone the schedule is evaluated in; None means UTC."""
    _spec: _Spec = attrs.field(init=False, repr=False, eq=False)
    _zone: tzinfo = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_spec", _parse(self.expression))
        object.__setattr__(self, "_zone", _load_zone(self.expression, self.timezone))

    @classmethod
    def parse(cls, expression: str, timezone: str | None = None) -> CronSchedule:
        """Validate `expression` (and `timezone`) and return the schedule.

        Raises InvalidSchedule with a message naming the bad field, its value and what is
        allowed.
        """
        return cls(expression, timezone)

    def next_after(self, moment: datetime) -> datetime:
        """The first fire time strictly after `moment`, as an aware datetime in UTC.

        `moment` must be timezone-aware (any zone); a naive datetime raises ValueError. Raises
        InvalidSchedule if no fire time exists within 8 years or before the end of year 9999.
        """
        if not isinstance(moment, datetime):
            raise TypeError(f"next_after() needs a datetime, got {type(moment).__name__}")
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(
                f"next_after() needs a timezone-aware datetime, got naive {moment.isoformat()}; "
                "attach a zone, e.g. moment.replace(tzinfo=datetime.UTC)"
            )
        zone = self._zone
        try:
            wall = moment.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0)
            wall += timedelta(minutes=1)
            last_year = min(wall.year + _HORIZON_YEARS, MAXYEAR)
            while (candidate := self._spec.next_wall(wall, last_year)) is not None:
                fired = candidate.replace(tzinfo=zone).astimezone(UTC)  # fold=0: first occurrence
                if fired > moment and (
                    zone is UTC or fired.astimezone(zone).replace(tzinfo=None) == candidate
                ):
                    return fired
                # A nonexistent local time, or the first occurrence of an ambiguous time that is
                # already behind `moment`: look further.
                wall = candidate + timedelta(minutes=1)
        except OverflowError:
            pass
        raise _fail(
            self.expression,
            f"no fire time after {moment.isoformat()} within {_HORIZON_YEARS} years "
            f"(or before year {MAXYEAR + 1})",
        )

    def next_after_timestamp(self, ts: float) -> float:
        """Like :meth:`next_after`, on POSIX timestamps (seconds since the epoch)."""
        if not math.isfinite(ts):
            raise ValueError(f"next_after_timestamp() needs a finite timestamp, got {ts!r}")
        return self.next_after(datetime.fromtimestamp(ts, UTC)).timestamp()
