"""systemd calendar events (``OnCalendar=``), parsed on the controller: a mistake is a config error, not a failed unit.

The grammar of systemd.time(7): ``[WEEKDAYS] [[YEAR-]MONTH-DAY] [HOUR:MINUTE[:SECOND]] [TIMEZONE]``, or one of
the shorthands (``daily``, ``weekly``...). Each date or time component is ``*`` or a list of values, ranges
(``A..B``) and repetitions (``A/N``, ``*/N``); ``~`` counts days from the end of the month. Anything else is
refused, even where systemd might read more (``@epoch``, weekday-less free text).
"""

from __future__ import annotations

import re

SHORTHANDS = ("minutely", "hourly", "daily", "monthly", "weekly", "yearly", "annually", "quarterly", "semiannually")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_NAMES = {*WEEKDAYS, "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}
_NUMBER = r"\d+"
_SECOND = r"\d+(?:\.\d+)?"
_TIMEZONE = re.compile(r"^(UTC|[A-Za-z_]+(?:/[A-Za-z0-9_+-]+)+)$")


def _component(text: str, low: int, high: int, number: str = _NUMBER) -> bool:
    """``*``, ``*/N``, or a comma list of ``A``, ``A..B``, ``A/N``, ``A..B/N`` within ``low``..``high``."""
    if not text:
        return False
    for item in text.split(","):
        m = re.fullmatch(rf"(\*|{number})(?:\.\.({number}))?(?:/({number}))?", item)
        if not m:
            return False
        start, end, step = m.groups()
        if start == "*":
            if end is not None:
                return False
        elif not low <= float(start) <= high or (end is not None and not float(start) <= float(end) <= high):
            return False
        if step is not None and float(step) <= 0:
            return False
    return True


def _weekdays(text: str) -> bool:
    text = text.rstrip(",")  # "Wed, 17:48"
    for item in text.lower().split(","):
        names = item.split("..")
        if not 1 <= len(names) <= 2 or not all(n in WEEKDAY_NAMES for n in names):
            return False
    return bool(text)


def _date(text: str) -> bool:
    last = "~" in text
    if last:
        head, _, day = text.rpartition("~")
        parts = [*head.split("-"), day]
    else:
        parts = text.split("-")
    if len(parts) == 2:
        parts = ["*", *parts]
    if len(parts) != 3:
        return False
    year, month, day = parts
    return _component(year, 0, 9999) and _component(month, 1, 12) and _component(day, 1, 31)


def _time(text: str) -> bool:
    parts = text.split(":")
    if len(parts) not in (2, 3):
        return False
    hour, minute, second = (*parts, "0")[:3]
    return _component(hour, 0, 23) and _component(minute, 0, 59) and _component(second, 0, 59, _SECOND)


def is_calendar(value: str) -> bool:
    """Whether systemd reads ``value`` as a calendar event (the subset above)."""
    tokens = value.split()
    if len(tokens) == 1 and tokens[0].lower() in SHORTHANDS:
        return True
    if tokens and _TIMEZONE.match(tokens[-1]) and len(tokens) > 1:
        tokens = tokens[:-1]
    if tokens and tokens[0].lower() in SHORTHANDS:
        return False
    if tokens and not any(ch.isdigit() or ch == "*" for ch in tokens[0]):
        if not _weekdays(tokens[0]):
            return False
        tokens = tokens[1:]
    if tokens and ":" not in tokens[0]:
        if not _date(tokens[0]):
            return False
        tokens = tokens[1:]
    if tokens and ":" in tokens[0]:
        if not _time(tokens[0]):
            return False
        tokens = tokens[1:]
    return not tokens and bool(value.split())
