"""Config of the data layer: [postgres], [backups], [monitor] and each app's database, backup and jobs."""

from __future__ import annotations

import copy

import pytest

from operations.config import (
    AppBackup,
    Backups,
    ConfigError,
    Database,
    Job,
    Monitor,
    Postgres,
    is_cron_schedule,
    parse_config,
)


def _parse(raw, tmp_path):
    return parse_config(raw, base_dir=str(tmp_path))


def _problems(raw, tmp_path) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        _parse(raw, tmp_path)
    return exc.value.problems


def _with_app(raw, **app):
    raw = copy.deepcopy(raw)
    raw["apps"] = [{"name": "dibby", "port": 5001, **app}]
    return raw


def test_data_sections_default_to_the_guides_values(minimal_raw, tmp_path):
    """No data keys: PostgreSQL on 5432, daily 02:00 backups kept 7 days, weekly drill, apps without a database."""
    config = _parse(_with_app(minimal_raw), tmp_path)
    assert config.postgres == Postgres(port=5432)
    assert config.backups == Backups("/var/backups/vpskit", "*-*-* 02:00:00", 7, "Sun *-*-* 04:00:00")
    assert config.monitor == Monitor()
    app = config.apps[0]
    assert app.database == Database(engine="none") and app.backup == AppBackup() and app.jobs == ()


def test_app_database_names_default_from_the_app_name(minimal_raw, tmp_path):
    """A postgresql app without names gets database and role named after it, '-' as '_'."""
    raw = _with_app(minimal_raw, name="dibby-dollars", database={"engine": "postgresql"})
    app = _parse(raw, tmp_path).apps[0]
    assert (app.db_name, app.db_role, app.database.driver) == ("dibby_dollars", "dibby_dollars", "psycopg2-binary")
    raw["apps"][0]["database"].update(name="dd", role="dd_app")
    app = _parse(raw, tmp_path).apps[0]
    assert (app.db_name, app.db_role) == ("dd", "dd_app")


def test_jobs_parse_with_kind_and_user(minimal_raw, tmp_path):
    """Jobs keep their order and fields; kind defaults to timer, user to empty (the deploy user)."""
    raw = _with_app(
        minimal_raw,
        jobs=[
            {"name": "snapshot", "schedule": "*-*-* 23:55:00", "command": "flask snapshot"},
            {"name": "ping", "kind": "cron", "schedule": "*/5 * * * *", "command": "curl -fs http://127.0.0.1:5001/", "user": "www-data"},
        ],
    )
    jobs = _parse(raw, tmp_path).apps[0].jobs
    assert jobs == (
        Job("snapshot", "*-*-* 23:55:00", "flask snapshot"),
        Job("ping", "*/5 * * * *", "curl -fs http://127.0.0.1:5001/", "cron", "www-data"),
    )


def test_integer_accepted_for_a_float_threshold(minimal_raw, tmp_path):
    """max_load_per_core = 3 in TOML is an integer; it is taken as 3.0."""
    raw = copy.deepcopy(minimal_raw)
    raw["monitor"] = {"max_load_per_core": 3}
    assert _parse(raw, tmp_path).monitor.max_load_per_core == 3.0


BAD = [
    ("engine", {"database": {"engine": "mysql"}}, "apps[0].database.engine", "must be one of postgresql, sqlite, none"),
    ("db-name", {"database": {"engine": "postgresql", "name": "Dibby"}}, "apps[0].database.name", "lowercase"),
    ("reserved-role", {"database": {"engine": "postgresql", "role": "postgres"}}, "apps[0].database.role", "reserved"),
    ("sqlite-no-path", {"database": {"engine": "sqlite"}}, "apps[0].database.path", "absolute path"),
    ("driver", {"database": {"engine": "postgresql", "driver": "psycopg; rm -rf /"}}, "apps[0].database.driver", "pip requirement"),
    ("backup-path", {"backup": {"paths": ["uploads"]}}, "apps[0].backup.paths[0]", "absolute directory"),
    ("job-name-dot", {"jobs": [{"name": "a.b", "schedule": "daily", "command": "x"}]}, "apps[0].jobs[0].name", "no dots"),
    ("job-kind", {"jobs": [{"name": "a", "kind": "at", "schedule": "daily", "command": "x"}]}, "apps[0].jobs[0].kind", "timer, cron"),
    ("cron-schedule", {"jobs": [{"name": "a", "kind": "cron", "schedule": "* * * *", "command": "x"}]}, "apps[0].jobs[0].schedule", "five fields"),
    ("timer-schedule", {"jobs": [{"name": "a", "schedule": "every day; rm", "command": "x"}]}, "apps[0].jobs[0].schedule", "systemd calendar"),
    ("job-command", {"jobs": [{"name": "a", "schedule": "daily", "command": "a\nb"}]}, "apps[0].jobs[0].command", "one non-empty line"),
    ("job-user", {"jobs": [{"name": "a", "schedule": "daily", "command": "x", "user": "Bad User"}]}, "apps[0].jobs[0].user", "valid user"),
]  # fmt: skip


@pytest.mark.parametrize("app, field, fragment", [pytest.param(a, f, m, id=i) for i, a, f, m in BAD])
def test_bad_app_data_fields_give_one_problem_each(minimal_raw, tmp_path, app, field, fragment):
    """Each bad database/backup/job field is one problem line naming that field."""
    problems = _problems(_with_app(minimal_raw, **app), tmp_path)
    assert [p.split(": ", 1)[0] for p in problems] == [field], problems
    assert fragment in problems[0]


def test_two_apps_cannot_share_a_database_or_role(minimal_raw, tmp_path):
    raw = copy.deepcopy(minimal_raw)
    raw["apps"] = [
        {"name": "a", "port": 5001, "database": {"engine": "postgresql", "name": "shared"}},
        {"name": "b", "port": 5002, "database": {"engine": "postgresql", "name": "shared", "role": "b"}},
        {"name": "c", "port": 5003, "database": {"engine": "postgresql", "role": "b"}},
    ]
    problems = _problems(raw, tmp_path)
    assert problems == [
        "apps[1].database.name: 'shared' is already used by app 'a'",
        "apps[2].database.role: 'b' is already used by app 'b'",
    ]


def test_two_jobs_of_one_app_cannot_share_a_name(minimal_raw, tmp_path):
    job = {"name": "snap", "schedule": "daily", "command": "x"}
    problems = _problems(_with_app(minimal_raw, jobs=[job, job]), tmp_path)
    assert problems == ["apps[0].jobs[1].name: 'snap' is already used by apps[0].jobs[0]"]


@pytest.mark.parametrize(
    "section, values, field",
    [
        ("postgres", {"port": 443}, "postgres.port"),
        ("backups", {"dir": "/var"}, "backups.dir"),
        ("backups", {"dir": "backups"}, "backups.dir"),
        ("backups", {"keep_days": 0}, "backups.keep_days"),
        ("backups", {"schedule": ""}, "backups.schedule"),
        ("backups", {"drill_schedule": "weekly'"}, "backups.drill_schedule"),
        ("monitor", {"max_disk_used": 101}, "monitor.max_disk_used"),
        ("monitor", {"max_load_per_core": 0}, "monitor.max_load_per_core"),
        ("monitor", {"disks": ["var"]}, "monitor.disks[0]"),
        ("monitor", {"max_backup_age_hours": 0}, "monitor.max_backup_age_hours"),
    ],
)
def test_bad_host_data_fields_give_one_problem_each(minimal_raw, tmp_path, section, values, field):
    raw = copy.deepcopy(minimal_raw)
    raw[section] = values
    assert [p.split(": ", 1)[0] for p in _problems(raw, tmp_path)] == [field]


def test_empty_drill_schedule_switches_the_drill_off(minimal_raw, tmp_path):
    raw = copy.deepcopy(minimal_raw)
    raw["backups"] = {"drill_schedule": ""}
    assert _parse(raw, tmp_path).backups.drill_schedule == ""


@pytest.mark.parametrize(
    "schedule, ok",
    [("*/5 * * * *", True), ("55 23 * * 1-5", True), ("0 2 * * sun", True), ("@daily", True),
     ("* * * *", False), ("* * * * * *", False), ("@sometimes", False), ("0 2 * * ; rm", False)],
)  # fmt: skip
def test_cron_schedules(schedule, ok):
    assert is_cron_schedule(schedule) is ok
