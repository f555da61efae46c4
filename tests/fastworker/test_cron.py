"""Tests for fastworker._cron: parsing 5-field cron expressions and finding the next fire time."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastworker._cron import CronSchedule
from fastworker._errors import InvalidSchedule


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    """An aware UTC datetime, for brevity."""
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def fires(
    expression: str, start: datetime, count: int, timezone: str | None = None
) -> list[datetime]:
    """The first `count` fire times after `start`, each found by next_after on the previous one."""
    schedule = CronSchedule.parse(expression, timezone)
    result: list[datetime] = []
    moment = start
    for _ in range(count):
        moment = schedule.next_after(moment)
        result.append(moment)
    return result


# ---------------------------------------------------------------------------------------------
# Construction


def test_parse_keeps_expression_and_timezone() -> None:
    """parse() records the expression and timezone as given, and equal inputs compare equal."""
    schedule = CronSchedule.parse("*/5 * * * *", "Europe/Paris")
    assert schedule.expression == "*/5 * * * *"
    assert schedule.timezone == "Europe/Paris"
    assert CronSchedule.parse("@daily").timezone is None
    assert schedule == CronSchedule("*/5 * * * *", "Europe/Paris")
    assert hash(schedule) == hash(CronSchedule.parse("*/5 * * * *", "Europe/Paris"))
    assert "*/5 * * * *" in repr(schedule)


def test_invalid_schedule_is_a_value_error() -> None:
    """Callers that only know ValueError still catch bad cron strings."""
    with pytest.raises(ValueError):
        CronSchedule.parse("nonsense")


def test_extra_whitespace_between_fields_is_accepted() -> None:
    """Fields may be separated by any run of spaces or tabs, with padding at both ends."""
    assert fires("  0\t9  * *   * ", utc(2026, 1, 1), 1) == [utc(2026, 1, 1, 9, 0)]


# ---------------------------------------------------------------------------------------------
# Syntax forms


@pytest.mark.parametrize(
    ("expression", "start", "expected"),
    [
        pytest.param(
            "* * * * *",
            utc(2026, 1, 1, 12, 0),
            [utc(2026, 1, 1, 12, 1), utc(2026, 1, 1, 12, 2)],
            id="star",
        ),
        pytest.param(
            "7 * * * *",
            utc(2026, 1, 1, 12, 0),
            [utc(2026, 1, 1, 12, 7), utc(2026, 1, 1, 13, 7)],
            id="number",
        ),
        pytest.param(
            "5,20,45 * * * *",
            utc(2026, 1, 1, 12, 0),
            [utc(2026, 1, 1, 12, m) for m in (5, 20, 45)] + [utc(2026, 1, 1, 13, 5)],
            id="list",
        ),
        pytest.param(
            "10-12 * * * *",
            utc(2026, 1, 1, 12, 0),
            [utc(2026, 1, 1, 12, m) for m in (10, 11, 12)] + [utc(2026, 1, 1, 13, 10)],
            id="range",
        ),
        pytest.param(
            "10-50/20 * * * *",
            utc(2026, 1, 1, 12, 0),
            [utc(2026, 1, 1, 12, m) for m in (10, 30, 50)] + [utc(2026, 1, 1, 13, 10)],
            id="range-step",
        ),
        pytest.param(
            "5/20 * * * *",
            utc(2026, 1, 1, 12, 0),
            [utc(2026, 1, 1, 12, m) for m in (5, 25, 45)] + [utc(2026, 1, 1, 13, 5)],
            id="start-step",
        ),
        pytest.param(
            "0 */6 * * *",
            utc(2026, 1, 1, 1, 0),
            [utc(2026, 1, 1, h) for h in (6, 12, 18)] + [utc(2026, 1, 2, 0)],
            id="hour-star-step",
        ),
        pytest.param(
            "0,30-40/5,59 * * * *",
            utc(2026, 1, 1, 12, 0),
            [utc(2026, 1, 1, 12, m) for m in (30, 35, 40, 59)] + [utc(2026, 1, 1, 13, 0)],
            id="mixed-list",
        ),
        pytest.param(
            "0 0 1 jan,Jul *",
            utc(2026, 1, 15),
            [utc(2026, 7, 1), utc(2027, 1, 1), utc(2027, 7, 1)],
            id="month-names",
        ),
        pytest.param(
            "0 0 1 MAR-may *",
            utc(2026, 1, 1),
            [utc(2026, 3, 1), utc(2026, 4, 1), utc(2026, 5, 1), utc(2027, 3, 1)],
            id="month-name-range",
        ),
        pytest.param(
            "0 0 1 */4 *",
            utc(2026, 1, 1),
            [utc(2026, 5, 1), utc(2026, 9, 1), utc(2027, 1, 1)],
            id="month-step",
        ),
        pytest.param(
            # 2026-01-05 is a Monday.
            "0 0 * * MON-fri",
            utc(2026, 1, 2, 12),
            [utc(2026, 1, d) for d in (5, 6, 7, 8, 9, 12)],
            id="day-name-range",
        ),
        pytest.param(
            "0 0 * * Sat,sun",
            utc(2026, 1, 5),
            [utc(2026, 1, 10), utc(2026, 1, 11), utc(2026, 1, 17)],
            id="day-name-list",
        ),
        pytest.param(
            "0 0 * * 5-7",
            utc(2026, 1, 5),
            [utc(2026, 1, 9), utc(2026, 1, 10), utc(2026, 1, 11), utc(2026, 1, 16)],
            id="fri-to-sunday-7",
        ),
        pytest.param(
            "0 0 * * */2",
            utc(2026, 1, 4),  # a Sunday, at midnight exactly: not included
            [utc(2026, 1, 6), utc(2026, 1, 8), utc(2026, 1, 10), utc(2026, 1, 11)],
            id="weekday-step",
        ),
        pytest.param(
            "0 0 * * 1/2",
            utc(2026, 1, 4),
            [utc(2026, 1, 5), utc(2026, 1, 7), utc(2026, 1, 9), utc(2026, 1, 12)],
            id="weekday-start-step-stops-at-saturday",
        ),
        pytest.param(
            "0 12 1-3 * *",
            utc(2026, 1, 30),
            [utc(2026, 2, 1, 12), utc(2026, 2, 2, 12), utc(2026, 2, 3, 12), utc(2026, 3, 1, 12)],
            id="day-of-month-range",
        ),
        pytest.param(
            "0 0 31 * *",
            utc(2026, 1, 31),
            [utc(2026, 3, 31), utc(2026, 5, 31), utc(2026, 7, 31), utc(2026, 8, 31)],
            id="day-31-skips-short-months",
        ),
        pytest.param(
            "00 09 05 01 *",
            utc(2026, 1, 1),
            [utc(2026, 1, 5, 9), utc(2027, 1, 5, 9)],
            id="leading-zeros",
        ),
    ],
)
def test_syntax_forms(expression: str, start: datetime, expected: list[datetime]) -> None:
    """Each syntax form selects exactly the documented fire times, in order."""
    assert fires(expression, start, len(expected)) == expected


@pytest.mark.parametrize(
    ("sunday", "name"),
    [("0", "zero"), ("7", "seven"), ("SUN", "name"), ("sun", "lowercase name")],
)
def test_sunday_spellings(sunday: str, name: str) -> None:
    """Day-of-week 0, 7, SUN and sun all mean Sunday (2026-01-04, -11, -18 are Sundays)."""
    assert fires(f"0 0 * * {sunday}", utc(2026, 1, 1), 3) == [
        utc(2026, 1, 4),
        utc(2026, 1, 11),
        utc(2026, 1, 18),
    ], name


def test_month_names_match_numbers() -> None:
    """Every month name fires exactly where its number does."""
    for number, name in enumerate(calendar.month_abbr[1:], start=1):
        by_name = fires(f"0 0 1 {name.upper()} *", utc(2026, 1, 1), 2)
        assert by_name == fires(f"0 0 1 {number} *", utc(2026, 1, 1), 2)


def test_day_names_match_numbers() -> None:
    """Every day name fires exactly where its number does."""
    for number, name in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]):
        assert fires(f"0 0 * * {name}", utc(2026, 1, 1), 2) == fires(
            f"0 0 * * {number}", utc(2026, 1, 1), 2
        )


@pytest.mark.parametrize(
    ("macro", "equivalent"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@DAILY", "0 0 * * *"),
    ],
)
def test_macros(macro: str, equivalent: str) -> None:
    """Each macro (in any case) fires exactly like its 5-field expansion."""
    start = utc(2026, 3, 17, 10, 30)
    assert fires(macro, start, 3) == fires(equivalent, start, 3)


# ---------------------------------------------------------------------------------------------
# next_after semantics


def test_weekdays_at_nine_skip_the_weekend() -> None:
    """`0 9 * * 1-5` after Friday 2026-11-27 12:00 UTC fires Monday 2026-11-30 09:00 UTC."""
    schedule = CronSchedule.parse("0 9 * * 1-5")
    assert schedule.next_after(utc(2026, 11, 27, 12, 0)) == utc(2026, 11, 30, 9, 0)


def test_every_fifteen_minutes_sequence() -> None:
    """`*/15 * * * *` fires at :00, :15, :30, :45 and rolls into the next hour and day."""
    assert fires("*/15 * * * *", utc(2026, 12, 31, 23, 7, 30), 5) == [
        utc(2026, 12, 31, 23, 15),
        utc(2026, 12, 31, 23, 30),
        utc(2026, 12, 31, 23, 45),
        utc(2027, 1, 1, 0, 0),
        utc(2027, 1, 1, 0, 15),
    ]


def test_result_is_strictly_after_the_moment() -> None:
    """A moment exactly on a fire time yields the following one; a moment a microsecond before
    a fire time yields that fire time."""
    schedule = CronSchedule.parse("*/15 * * * *")
    assert schedule.next_after(utc(2026, 1, 1, 12, 15)) == utc(2026, 1, 1, 12, 30)
    just_before = utc(2026, 1, 1, 12, 14, 59) + timedelta(microseconds=999_999)
    assert schedule.next_after(just_before) == utc(2026, 1, 1, 12, 15)


def test_first_of_month_rolls_over_month_and_year() -> None:
    """`0 0 1 * *` moves to the next month, and from December to January of the next year."""
    schedule = CronSchedule.parse("0 0 1 * *")
    assert schedule.next_after(utc(2026, 4, 1)) == utc(2026, 5, 1)
    assert schedule.next_after(utc(2026, 1, 31, 23, 59)) == utc(2026, 2, 1)
    assert schedule.next_after(utc(2026, 12, 1)) == utc(2027, 1, 1)
    assert schedule.next_after(utc(2026, 12, 31, 23, 59, 59)) == utc(2027, 1, 1)


def test_february_29_waits_for_a_leap_year() -> None:
    """`0 0 29 2 *` from 2026 fires on 2028-02-29, and skips the non-leap year 2100."""
    schedule = CronSchedule.parse("0 0 29 2 *")
    assert schedule.next_after(utc(2026, 1, 1)) == utc(2028, 2, 29)
    assert schedule.next_after(utc(2028, 2, 29)) == utc(2032, 2, 29)
    assert schedule.next_after(utc(2096, 3, 1)) == utc(2104, 2, 29)


def test_day_of_month_or_day_of_week_when_both_restricted() -> None:
    """`0 0 13 * 5` fires on every 13th and on every Friday (classic OR rule)."""
    # March 2026: Fridays are 6, 13, 20, 27; the 13th is also a Friday. April 13 is a Monday.
    assert fires("0 0 13 * 5", utc(2026, 3, 1), 6) == [
        utc(2026, 3, 6),
        utc(2026, 3, 13),
        utc(2026, 3, 20),
        utc(2026, 3, 27),
        utc(2026, 4, 3),
        utc(2026, 4, 10),
    ]
    assert fires("0 0 13 * 5", utc(2026, 4, 10), 2) == [utc(2026, 4, 13), utc(2026, 4, 17)]


def test_day_fields_combine_with_and_when_one_is_star() -> None:
    """With day-of-week `*`, only day-of-month counts, and vice versa (no OR)."""
    assert fires("0 0 13 * *", utc(2026, 3, 1), 2) == [utc(2026, 3, 13), utc(2026, 4, 13)]
    assert fires("0 0 * * 5", utc(2026, 3, 1), 2) == [utc(2026, 3, 6), utc(2026, 3, 13)]


def test_or_rule_applies_to_any_restriction_not_only_plain_numbers() -> None:
    """A step like `*/10` is still a restriction (only exactly `*` is not), so OR applies."""
    # Days 1, 11, 21, 31 OR Mondays; 2026-03-02 is a Monday.
    assert fires("0 0 */10 * MON", utc(2026, 3, 1), 4) == [
        utc(2026, 3, 2),
        utc(2026, 3, 9),
        utc(2026, 3, 11),
        utc(2026, 3, 16),
    ]


def test_non_utc_moment_gives_utc_result() -> None:
    """The moment may be in any zone; the result is the same instant expressed in UTC."""
    moment = datetime(2026, 1, 1, 7, 0, tzinfo=ZoneInfo("Asia/Tokyo"))  # 2025-12-31 22:00 UTC
    result = CronSchedule.parse("0 * * * *").next_after(moment)
    assert result == utc(2025, 12, 31, 23, 0)
    assert result.tzinfo is UTC


def test_naive_moment_is_rejected() -> None:
    """A naive datetime raises ValueError saying it must be timezone-aware."""
    with pytest.raises(ValueError, match="timezone-aware"):
        CronSchedule.parse("* * * * *").next_after(datetime(2026, 1, 1))


def test_next_after_timestamp() -> None:
    """next_after_timestamp works on POSIX seconds and agrees with next_after."""
    schedule = CronSchedule.parse("0 9 * * 1-5")
    moment = utc(2026, 11, 27, 12, 0)
    assert schedule.next_after_timestamp(moment.timestamp()) == utc(2026, 11, 30, 9).timestamp()
    assert schedule.next_after_timestamp(moment.timestamp() + 0.25) == (
        utc(2026, 11, 30, 9).timestamp()
    )
    with pytest.raises(ValueError, match="finite"):
        schedule.next_after_timestamp(float("nan"))


def test_end_of_supported_range_raises_clearly() -> None:
    """Past the last representable minute there is no next time: InvalidSchedule, no hang."""
    with pytest.raises(InvalidSchedule, match="no fire time"):
        CronSchedule.parse("* * * * *").next_after(utc(9999, 12, 31, 23, 59))


# ---------------------------------------------------------------------------------------------
# Time zones and daylight saving


def test_timezone_follows_local_wall_clock() -> None:
    """`0 9 * * *` in New York fires 14:00 UTC in winter (EST) and 13:00 UTC in summer (EDT)."""
    schedule = CronSchedule.parse("0 9 * * *", "America/New_York")
    assert schedule.next_after(utc(2026, 1, 15)) == utc(2026, 1, 15, 14)
    assert schedule.next_after(utc(2026, 7, 15)) == utc(2026, 7, 15, 13)


def test_timezone_day_boundary_is_local() -> None:
    """Day fields use the local date: midnight Tokyo on Jan 1 is 15:00 UTC on Dec 31."""
    schedule = CronSchedule.parse("0 0 1 1 *", "Asia/Tokyo")
    assert schedule.next_after(utc(2026, 6, 1)) == utc(2026, 12, 31, 15)


def test_dst_gap_time_is_skipped() -> None:
    """02:30 does not exist in New York on 2026-03-08 (clocks jump 02:00 -> 03:00): that day is
    skipped and the schedule next fires at 02:30 EDT on 2026-03-09."""
    schedule = CronSchedule.parse("30 2 * * *", "America/New_York")
    assert schedule.next_after(utc(2026, 3, 7, 12)) == utc(2026, 3, 9, 6, 30)
    # Minutes inside the gap are skipped too; the first existing minute after it is 03:00 EDT.
    every_minute_at_two = CronSchedule.parse("* 2,3 * * *", "America/New_York")
    assert every_minute_at_two.next_after(utc(2026, 3, 8, 6, 59)) == utc(2026, 3, 8, 7, 0)


def test_dst_ambiguous_time_fires_once_at_first_occurrence() -> None:
    """01:30 happens twice in New York on 2026-11-01 (EDT, then EST): it fires only at the first
    (05:30 UTC), and a moment inside the repeated hour moves on to the next day."""
    schedule = CronSchedule.parse("30 1 * * *", "America/New_York")
    assert schedule.next_after(utc(2026, 11, 1, 0)) == utc(2026, 11, 1, 5, 30)
    assert schedule.next_after(utc(2026, 11, 1, 5, 30)) == utc(2026, 11, 2, 6, 30)
    assert schedule.next_after(utc(2026, 11, 1, 6, 15)) == utc(2026, 11, 2, 6, 30)
    every_minute = CronSchedule.parse("* * * * *", "America/New_York")
    assert every_minute.next_after(utc(2026, 11, 1, 5, 59)) == utc(2026, 11, 1, 7, 0)


def test_dst_gap_at_midnight_skips_the_day() -> None:
    """São Paulo sprang forward at 00:00 on 2018-11-04, so `0 0 * * *` skipped that day."""
    schedule = CronSchedule.parse("0 0 * * *", "America/Sao_Paulo")
    # 2018-11-03 00:00 -03 is 03:00 UTC; the next existing midnight is 2018-11-05 00:00 -02.
    assert schedule.next_after(utc(2018, 11, 3, 3)) == utc(2018, 11, 5, 2)


# ---------------------------------------------------------------------------------------------
# Rejections


@pytest.mark.parametrize(
    ("expression", "fragments"),
    [
        ("", ["expected 5 fields", "got 0"]),
        ("* * * *", ["expected 5 fields", "minute hour day-of-month month day-of-week", "got 4"]),
        ("0 * * * * *", ["expected 5 fields", "got 6", "seconds"]),
        ("61 * * * *", ["minute field '61' is out of range 0-59"]),
        ("1,61 * * * *", ["minute field '1,61'", "'61'", "out of range 0-59"]),
        ("99999999999999999999 * * * *", ["minute field '9999", "out of range 0-59"]),
        ("* 24 * * *", ["hour field '24'", "out of range 0-23"]),
        ("* * 0 * *", ["day-of-month field '0'", "out of range 1-31"]),
        ("* * 32 * *", ["day-of-month field '32'", "out of range 1-31"]),
        ("* * * 0 *", ["month field '0'", "out of range 1-12"]),
        ("* * * 13 *", ["month field '13'", "out of range 1-12"]),
        ("* * * * 8", ["day-of-week field '8'", "out of range 0-7"]),
        ("* * * 1-13 *", ["month field '1-13'", "'13'", "out of range 1-12"]),
        ("5-1 * * * *", ["minute field '5-1'", "reversed range", "0-59"]),
        ("* * * * FRI-MON", ["day-of-week field 'FRI-MON'", "reversed range"]),
        ("*/0 * * * *", ["minute field '*/0'", "step '0'", "positive"]),
        ("1-5/0 * * * *", ["minute field '1-5/0'", "positive"]),
        ("*/00 * * * *", ["minute field '*/00'", "positive"]),
        ("*/-5 * * * *", ["minute field '*/-5'", "step '-5'", "positive"]),
        ("*/ * * * *", ["minute field '*/'", "positive"]),
        ("*/5/2 * * * *", ["minute field '*/5/2'", "positive"]),
        ("a * * * *", ["minute field 'a'", "invalid value 'a'", "0-59"]),
        ("1.5 * * * *", ["minute field '1.5'", "invalid value"]),
        ("** * * * *", ["minute field '**'", "invalid value"]),
        ("\u0663 * * * *", ["minute field", "invalid value"]),
        ("+5 * * * *", ["minute field '+5'", "invalid value"]),
        ("JAN * * * *", ["minute field 'JAN'", "invalid value 'JAN'"]),
        ("* * L * *", ["day-of-month field 'L'", "invalid value"]),
        ("* * ? * *", ["day-of-month field '?'", "invalid value"]),
        ("* * * JANUARY *", ["month field 'JANUARY'", "JAN-DEC"]),
        ("* * * * MON#2", ["day-of-week field 'MON#2'", "SUN-SAT"]),
        ("* * * * SUN-XYZ", ["day-of-week field 'SUN-XYZ'", "'XYZ'"]),
        ("1,,2 * * * *", ["minute field '1,,2'", "empty list item"]),
        ("1, * * * *", ["minute field '1,'", "empty list item"]),
        (",1 * * * *", ["minute field ',1'", "empty list item"]),
        ("1- * * * *", ["minute field '1-'", "incomplete range"]),
        ("-5 * * * *", ["minute field '-5'", "incomplete range"]),
        ("1-2-3 * * * *", ["minute field '1-2-3'", "invalid value '2-3'"]),
        ("@reboot", ["unknown macro '@reboot'", "@daily"]),
        ("@fortnightly", ["unknown macro", "@weekly"]),
        ("0 0 30 2 *", ["day-of-month field '30'", "month field '2'", "never fire"]),
        ("0 0 31 4,6,9,11 *", ["day-of-month field '31'", "month field '4,6,9,11'", "never"]),
    ],
)
def test_rejections_name_the_problem(expression: str, fragments: list[str]) -> None:
    """Each bad expression raises InvalidSchedule whose message quotes the whole expression and
    names the offending field, its value and what is allowed."""
    with pytest.raises(InvalidSchedule) as caught:
        CronSchedule.parse(expression)
    message = str(caught.value)
    assert message.startswith(f"cron {expression!r}: ")
    for fragment in fragments:
        assert fragment in message


def test_impossible_day_is_fine_when_day_of_week_also_selects() -> None:
    """`0 0 30 2 MON` is not impossible: by the OR rule it fires on Mondays in February."""
    assert fires("0 0 30 2 MON", utc(2026, 1, 1), 1) == [utc(2026, 2, 2)]


@pytest.mark.parametrize("timezone", ["Mars/Olympus", "", "../etc/passwd", "America"])
def test_unknown_timezone_is_rejected(timezone: str) -> None:
    """A timezone that zoneinfo cannot load raises InvalidSchedule naming it."""
    with pytest.raises(InvalidSchedule, match="unknown timezone"):
        CronSchedule.parse("* * * * *", timezone)


# ---------------------------------------------------------------------------------------------
# Property test against an independent matcher

_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
# (low, high written explicitly, high reached by `*` and `a/n`, names starting at `low`)
_BOUNDS = [
    (0, 59, 59, None),
    (0, 23, 23, None),
    (1, 31, 31, None),
    (1, 12, 12, _MONTHS),
    (0, 7, 6, _DAYS),
]
_ZONES = [
    None,
    "UTC",
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",  # 30-minute DST shift
    "Asia/Kolkata",  # +05:30, no DST
    "America/Sao_Paulo",  # DST changes at midnight (until 2019)
]
# Instants near DST changes, paired with their zone, to make the edge cases likely.
_TRANSITIONS = [
    ("America/New_York", utc(2026, 3, 8, 7)),
    ("America/New_York", utc(2026, 11, 1, 6)),
    ("Europe/London", utc(2026, 3, 29, 1)),
    ("Europe/London", utc(2026, 10, 25, 1)),
    ("Australia/Lord_Howe", utc(2026, 4, 4, 15)),
    ("Australia/Lord_Howe", utc(2026, 10, 3, 15, 30)),
    ("America/Sao_Paulo", utc(2018, 11, 4, 3)),
    ("America/Sao_Paulo", utc(2019, 2, 17, 2)),
]


@st.composite
def _value(draw: st.DrawFn, index: int) -> tuple[str, int]:
    """A single value of field `index`, as (text, number); months and days may use names."""
    low, high, _, names = _BOUNDS[index]
    number = draw(st.integers(low, high))
    if names is not None and number - low < len(names) and draw(st.booleans()):
        name = names[number - low]
        return draw(st.sampled_from([name, name.lower(), name.capitalize()])), number
    return str(number), number


@st.composite
def _item(draw: st.DrawFn, index: int) -> tuple[str, set[int]]:
    """One list item of field `index` as (text, values it selects)."""
    low, _, implicit_high, _ = _BOUNDS[index]
    kind = draw(st.sampled_from(["star", "value", "range", "star-step", "range-step", "from-step"]))
    step = draw(st.integers(1, 20))
    if kind == "star":
        return "*", set(range(low, implicit_high + 1))
    if kind == "star-step":
        return f"*/{step}", set(range(low, implicit_high + 1, step))
    first_text, first = draw(_value(index))
    if kind == "value":
        return first_text, {first}
    if kind == "from-step":
        return f"{first_text}/{step}", set(range(first, max(first, implicit_high) + 1, step))
    second_text, second = draw(_value(index))
    if first > second:
        (first_text, first), (second_text, second) = (second_text, second), (first_text, first)
    if kind == "range":
        return f"{first_text}-{second_text}", set(range(first, second + 1))
    return f"{first_text}-{second_text}/{step}", set(range(first, second + 1, step))


@st.composite
def _field(draw: st.DrawFn, index: int) -> tuple[str, set[int]]:
    """A whole field: often `*`, otherwise a list of 1-3 items."""
    if draw(st.integers(0, 2)) == 0:
        low, _, implicit_high, _ = _BOUNDS[index]
        return "*", set(range(low, implicit_high + 1))
    items = draw(st.lists(_item(index), min_size=1, max_size=3))
    values: set[int] = set()
    for _, selected in items:
        values |= selected
    return ",".join(text for text, _ in items), values


class _Matcher:
    """An independent, brute-force reading of a cron expression: does a local minute match?"""

    def __init__(self, fields: list[tuple[str, set[int]]]) -> None:
        """Keep the generated value sets; `*` means "no restriction" for the day rule."""
        (_, self.minutes), (_, self.hours), (dom_text, self.days), (_, self.months) = fields[:4]
        dow_text, weekdays = fields[4]
        self.weekdays = {day % 7 for day in weekdays}
        self.any_day = dom_text == "*"
        self.any_weekday = dow_text == "*"

    def matches(self, local: datetime) -> bool:
        """Whether the wall-clock minute `local` is a fire time."""
        if local.minute not in self.minutes or local.hour not in self.hours:
            return False
        if local.month not in self.months:
            return False
        day_ok = local.day in self.days
        weekday_ok = local.isoweekday() % 7 in self.weekdays
        if self.any_day:
            return weekday_ok
        if self.any_weekday:
            return day_ok
        return day_ok or weekday_ok

    def possible(self) -> bool:
        """Whether any date at all can match (false only for e.g. Feb 30 with weekday `*`)."""
        if self.any_day or not self.any_weekday:
            return True
        longest = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        return any(day <= longest[month - 1] for month in self.months for day in self.days)


_PLAIN_MOMENTS = st.tuples(
    st.sampled_from(_ZONES),
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2090, 12, 31)).map(
        lambda naive: naive.replace(tzinfo=UTC)
    ),
)
_DST_MOMENTS = st.tuples(st.sampled_from(_TRANSITIONS), st.integers(-6 * 3600, 6 * 3600)).map(
    lambda pair: (pair[0][0], pair[0][1] + timedelta(seconds=pair[1]))
)


@settings(max_examples=200, deadline=None)
@given(
    fields=st.tuples(*(_field(index) for index in range(5))),
    scenario=st.one_of(_PLAIN_MOMENTS, _DST_MOMENTS),
)
def test_next_after_agrees_with_brute_force(
    fields: tuple[tuple[str, set[int]], ...], scenario: tuple[str | None, datetime]
) -> None:
    """For random valid expressions, zones and moments: next_after(m) is after m, is a fire time
    by an independent matcher (an existing local minute, first occurrence if repeated), and when
    the gap is under 3 days no UTC minute strictly between them is a fire time."""
    timezone, moment = scenario
    expression = " ".join(text for text, _ in fields)
    matcher = _Matcher(list(fields))
    if not matcher.possible():
        with pytest.raises(InvalidSchedule, match="never fire"):
            CronSchedule.parse(expression, timezone)
        return
    schedule = CronSchedule.parse(expression, timezone)
    zone = ZoneInfo(timezone) if timezone else UTC

    result = schedule.next_after(moment)

    assert result.tzinfo is UTC
    assert result > moment
    local = result.astimezone(zone)
    assert local.second == 0 and local.microsecond == 0
    assert matcher.matches(local), (expression, timezone, moment, result)
    assert local.fold == 0, "an ambiguous local time must fire at its first occurrence"
    if result - moment < timedelta(days=3):
        minute = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
        while minute < result:
            between = minute.astimezone(zone)
            assert not (matcher.matches(between) and between.fold == 0), (
                expression,
                timezone,
                moment,
                result,
                minute,
            )
            minute += timedelta(minutes=1)
