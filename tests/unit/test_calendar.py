"""OnCalendar strings are parsed on the controller: systemd's own examples pass, free text and out-of-range values fail."""

from __future__ import annotations

import typing

import pytest

from operations.config import ConfigError, parse_config
from operations.config.calendar import is_calendar

# From systemd.time(7) and the schedules vpskit's own config uses.
GOOD = [
    "*-*-* 02:00:00", "Sun *-*-* 23:59:00", "Sat,Thu,Mon..Wed,Sat..Sun", "Mon,Sun 12-*-* 2,1:23", "Wed *-1",
    "Wed..Wed,Wed *-1", "Wed, 17:48", "Wed..Sat,Tue 12-10-15 1:2:3", "*-*-7 0:0:0", "10-15", "monday *-12-* 17:00",
    "Mon,Fri *-*-3,1,2 *:30:45", "12,14,13,12:20,10,30", "12..14:10,20,30", "mon,fri *-1/2-1,3 *:30:45",
    "03-05 08:05:40", "08:05:40", "05:40", "Sat,Sun 12-05 08:05:40", "2003-03-05 05:40", "05:40:23.4200004/3.1700005",
    "2003-02..04-05", "2003-03-05 05:40 UTC", "*-02~03", "Mon *-05~07/1", "*:2/3", "*:0/15", "hourly", "daily",
    "Weekly", "semiannually", "Mon..Fri 09:00 Europe/Berlin",
]  # fmt: skip
BAD = [
    "every day at noon", "", "   ", "25:00", "*-13-01", "*-*-32", "12:60", "Mon Tue", "Sun *-*-* 23:59:00; rm -rf /",
    "noon", "daily 02:00", "*-*-* 02:00:00 UTC extra", "1-2-3-4", "Funday 10:00", "*/0:00", "10:00:00:00", "*..5:00",
]  # fmt: skip


@pytest.mark.parametrize("value", GOOD)
def test_systemd_calendar_events_parse(value):
    assert is_calendar(value)


@pytest.mark.parametrize("value", BAD)
def test_what_systemd_would_refuse_is_refused(value):
    assert not is_calendar(value)


def test_a_job_or_backup_schedule_in_words_is_a_config_error(minimal_raw, tmp_path):
    minimal_raw["apps"] = [
        {
            "name": "shop",
            "port": 8000,
            "repo": "https://git.example.com/shop.git",
            "jobs": [{"name": "noon", "schedule": "every day at noon", "command": "true"}],
        }
    ]
    minimal_raw["backups"] = {"schedule": "daily at 2", "drill_schedule": "Sun *-*-* 04:00:00"}
    with pytest.raises(ConfigError) as exc:
        parse_config(minimal_raw, base_dir=str(tmp_path))
    assert sorted(p.split(": ", 1)[0] for p in exc.value.problems) == ["apps[0].jobs[0].schedule", "backups.schedule"]
    assert "'every day at noon' is not a systemd calendar" in "\n".join(exc.value.problems)


def test_the_health_check_and_off_host_check_schedules_are_parsed_too(minimal_raw, tmp_path):
    minimal_raw["monitor"] = {"schedule": "every day at noon"}
    minimal_raw["backups"] = {"offsite": {"repository": "/mnt/copy", "check_schedule": "weekly on sunday"}}
    (tmp_path / "vpskit-offsite.password").write_text("kept\n")
    with pytest.raises(ConfigError) as exc:
        parse_config(minimal_raw, base_dir=str(tmp_path))
    assert sorted(p.split(": ", 1)[0] for p in exc.value.problems) == ["backups.offsite.check_schedule", "monitor.schedule"]


def test_every_calendar_field_of_the_schema_is_parsed_not_only_pattern_matched():
    from operations.config import model
    from operations.config.schema import config_fields, rule_of, table_of

    seen, todo, calendars = set(), [model.Config], []
    while todo:
        section = todo.pop()
        if section in seen:
            continue
        seen.add(section)
        hints = typing.get_type_hints(section)
        for f in config_fields(section):
            if table_of(hints[f.name]) is not None:
                todo.append(table_of(hints[f.name]))
            elif "calendar" in rule_of(f).expect:
                calendars.append(f"{section.__name__}.{f.name}")
                assert rule_of(f).valid is is_calendar, f"{section.__name__}.{f.name}"
    assert len(calendars) >= 4, calendars
