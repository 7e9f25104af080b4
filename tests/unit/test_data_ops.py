"""Pure pieces of the data layer: backup items, unit/cron text, facts' parsing, health settings."""

from __future__ import annotations

import json
import subprocess

from operations.backup import BackupItem, backup_items
from operations.config import App, AppBackup, Database, Job
from operations.monitor import AppCheck, Thresholds, health_settings
from operations.postgres import (
    AppDatabaseState,
    database_driver_packages,
    ident,
    secret_env_path,
    setting_names,
    settings_live_command,
)
from operations.render import render
from operations.schedule import AppJobFiles, cron_escape, cron_file, job_unit, systemd_exec_quote

PG = Database(engine="postgresql")


def test_backup_items_cover_databases_sqlite_and_paths_of_present_apps():
    apps = [
        App("dibby", 5001, database=PG, backup=AppBackup(paths=("/srv/dibby/uploads/", "/data/Uploads"))),
        App("notes", 5002, database=Database(engine="sqlite", path="/srv/notes/db.sqlite3")),
        App("static", 5003),
        App("gone", 5004, database=PG, state="absent"),
        App("nobackup", 5005, database=PG, backup=AppBackup(enabled=False)),
    ]
    assert backup_items(apps) == [
        BackupItem("pg", "dibby", "dibby"),
        BackupItem("files", "dibby-files-uploads", "/srv/dibby/uploads"),
        BackupItem("files", "dibby-files-uploads-2", "/data/Uploads"),
        BackupItem("sqlite", "notes", "/srv/notes/db.sqlite3"),
    ]


def test_backup_conf_is_shell_with_one_item_per_line():
    text = render(
        "backup.conf.j2", dir="/var/backups/vpskit", keep_days=7, status_dir="/var/lib/vpskit", pg_port=5432,
        items=[BackupItem("pg", "dibby", "dibby"), BackupItem("files", "dibby-files-up", "/srv/up")],
    )  # fmt: skip
    assert "KEEP_DAYS=7\n" in text and "PG_PORT=5432\n" in text
    assert "ITEMS='\npg dibby dibby\nfiles dibby-files-up /srv/up\n'\n" in text


def test_exec_start_quoting_keeps_percent_dollar_and_quotes_literal():
    assert systemd_exec_quote('echo "100%" $HOME \\n') == '"echo \\"100%%\\" $$HOME \\\\n"'


def test_cron_command_escapes_percent():
    assert cron_escape("date +%s && echo 50%") == "date +\\%s && echo 50\\%"


def test_job_names_have_no_dots():
    job = Job("snapshot", "*-*-* 23:55:00", "x")
    assert job_unit("dibby", job) == "dibby-snapshot"
    assert cron_file("dibby", job) == "/etc/cron.d/vpskit-dibby-snapshot"
    assert "." not in cron_file("dibby", job).rsplit("/", 1)[1]


def test_timer_and_service_units():
    timer = render("oneshot.timer.j2", unit="dibby-snapshot.service", schedule="*-*-* 23:55:00")
    assert "OnCalendar=*-*-* 23:55:00\nPersistent=true\nUnit=dibby-snapshot.service\n" in timer
    assert "WantedBy=timers.target" in timer
    service = render(
        "oneshot.service.j2", description="d", user="appuser", group="appuser", workdir="/srv/app",
        env_files=["/srv/app/.env", "-/etc/vpskit/secrets/app.env"], environment={"PATH": "/srv/app/venv/bin:/usr/bin"},
        exec_start='/bin/sh -c "flask snapshot"', after=["postgresql.service"],
    )  # fmt: skip
    lines = service.splitlines()
    for line in (
        "Type=oneshot",
        "User=appuser",
        "WorkingDirectory=/srv/app",
        "EnvironmentFile=/srv/app/.env",
        "EnvironmentFile=-/etc/vpskit/secrets/app.env",
        'Environment="PATH=/srv/app/venv/bin:/usr/bin"',
        'ExecStart=/bin/sh -c "flask snapshot"',
        "After=network-online.target postgresql.service",
    ):
        assert line in lines, (line, service)


def test_cron_file_has_user_field_and_shell():
    text = render("cron-job.j2", description="d", schedule="*/5 * * * *", user="appuser", command="cd /srv && x")
    assert text.splitlines()[-1] == "*/5 * * * * appuser cd /srv && x"
    assert "SHELL=/bin/sh" in text


def test_pg_hba_allows_each_app_only_its_own_database_and_no_trust():
    text = render("pg_hba.conf.j2", clients=[("dibby", "dibby"), ("grades_db", "grades_app")])
    rules = [ln.split() for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert rules == [
        ["local", "all", "postgres", "peer"],
        ["host", "dibby", "dibby", "127.0.0.1/32", "scram-sha-256"],
        ["host", "dibby", "dibby", "::1/128", "scram-sha-256"],
        ["host", "grades_db", "grades_app", "127.0.0.1/32", "scram-sha-256"],
        ["host", "grades_db", "grades_app", "::1/128", "scram-sha-256"],
    ]


def test_app_database_state_parsing():
    state = AppDatabaseState().process(
        [
            "secret=1",
            "role LOGIN=1 SUPERUSER=0 CREATEDB=1 CREATEROLE=0 REPLICATION=0 BYPASSRLS=0 ",
            "db_owner=dibby",
            "public_connect=0",
            "schema_owner=pg_database_owner",
            "public_create=0",
        ]
    )
    assert state == {
        "secret": True,
        "role": {"LOGIN": True, "SUPERUSER": False, "CREATEDB": True, "CREATEROLE": False, "REPLICATION": False, "BYPASSRLS": False},
        "db_owner": "dibby",
        "public_connect": False,
        "schema_owner": "pg_database_owner",
        "public_create": False,
    }
    assert AppDatabaseState.default() == {}


def test_app_database_state_never_puts_a_password_on_a_command_line():
    """The login check reads the password into a shell variable and hands it over in the environment."""
    command = AppDatabaseState().command("dibby", "dibby", "/etc/vpskit/secrets/dibby.env", 5432)
    assert 'PGPASSWORD="$pw"' in command and "$pw" not in command.replace('PGPASSWORD="$pw"', "").replace("pw=$(", "")


def test_identifiers_and_paths():
    assert ident('we"ird') == '"we""ird"'
    assert secret_env_path("dibby") == "/etc/vpskit/secrets/dibby.env"


def test_driver_packages_per_engine():
    assert database_driver_packages(App("a", 1, database=PG)) == ["psycopg2-binary"]
    assert database_driver_packages(App("a", 1, database=Database(engine="postgresql", driver=""))) == []
    assert database_driver_packages(App("a", 1, database=Database(engine="sqlite", path="/x"))) == []
    assert database_driver_packages(App("a", 1)) == []


def test_health_settings_list_optional_units_not_already_required():
    settings = health_settings(
        [AppCheck("dibby", "dibby.service", "https://127.0.0.1/", "dibby.example.test")],
        units=["postgresql.service", "nginx.service"], backup_items=["dibby"], drill_items=[], limits=Thresholds(max_disk_used=80),
    )  # fmt: skip
    assert settings["optional_units"] == ["fail2ban.service"]
    assert settings["apps"] == [
        {"name": "dibby", "unit": "dibby.service", "url": "https://127.0.0.1/", "host": "dibby.example.test", "basic_auth": False}
    ]
    assert settings["max_disk_used"] == 80 and settings["backup_items"] == ["dibby"]
    json.dumps(settings)


def test_installed_jobs_are_recognised_by_the_first_line_vpskit_writes():
    """Pruning removed jobs relies on this: each job file names its app and job; other vpskit units are not jobs."""
    job = Job("snapshot", "*-*-* 23:55:00", "flask --app app snapshot-balances")
    timer_service = render(
        "oneshot.service.j2", description=f"my-shop job {job.name}: {job.command}", user="u", group="u", workdir="",
        env_files=[], environment={}, exec_start="x", after=[],
    )  # fmt: skip
    cron = render("cron-job.j2", description="job ping of app my-shop", schedule="* * * * *", user="u", command="x")
    output = [
        f"/etc/systemd/system/{job_unit('my-shop', job)}.service:{timer_service.splitlines()[0]}",
        f"{cron_file('my-shop', Job('ping', '* * * * *', 'x', kind='cron'))}:{cron.splitlines()[0]}",
        "/etc/systemd/system/vpskit-backup.service:# Managed by vpskit: vpskit backup of databases and files",
        "/etc/systemd/system/app-my-shop.service:# Managed by vpskit: gunicorn for app my-shop. Secrets live in x, never here.",
    ]
    assert AppJobFiles().process(output) == {
        ("my-shop", "snapshot"): ("timer", "my-shop-snapshot"),
        ("my-shop", "ping"): ("cron", "/etc/cron.d/vpskit-my-shop-ping"),
    }


def test_with_caddy_in_front_the_report_checks_caddys_certificates_and_not_nginx():
    """What the front proxy serves: certbot's lineages and nginx, or Caddy's certificates (nginx is stopped then)."""

    def settings(**kw):
        return health_settings([], units=["caddy.service"] if kw else [], backup_items=[], drill_items=[], **kw)

    nginx, caddy = settings(), settings(caddy=True)
    assert (nginx["cert_glob"], nginx["caddy_cert_dir"]) == ("/etc/letsencrypt/live/*/cert.pem", "")
    assert (caddy["cert_glob"], caddy["caddy_cert_dir"]) == ("", "/var/lib/caddy/.local/share/caddy/certificates")
    assert nginx["optional_units"] == ["nginx.service", "fail2ban.service"]
    assert caddy["optional_units"] == ["fail2ban.service"] and caddy["units"] == ["caddy.service"]


# ------------------------------------------- PostgreSQL's new settings: reload or restart

FAKE_PG = {
    # runuser -u postgres -- CMD...: runs CMD.
    "runuser": 'shift 3; exec "$@"',
    # postgres ... -C NAME: the value the config files give ($FILES holds NAME=VALUE lines).
    "postgres": 'for a; do n=$a; done; sed -n "s/^$n=//p" "$FILES"',
    # psql ... -p PORT ...: the running server's NAME=VALUE lines, or an error when nothing listens there.
    "psql": 'while [ "$1" != -p ]; do shift; done; [ "$2" = "$(cat "$PORT")" ] && cat "$RUNNING" || exit 2',
    "systemctl": 'echo "systemctl $*" >> "$LOG"',
}


def pg_settings_applied(tmp_path, files: dict, running: dict | None) -> list[str]:
    """settings_live_command run with fake PostgreSQL tools: the files' values against the running server's (None: not running)."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    for name, body in FAKE_PG.items():
        (bin_ / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_ / name).chmod(0o755)
    (tmp_path / "files").write_text("".join(f"{k}={v}\n" for k, v in files.items()))
    (tmp_path / "running").write_text("".join(f"{k}={v}\n" for k, v in sorted((running or {}).items())))
    (tmp_path / "port").write_text(str((running or {}).get("port", "")))
    pid = tmp_path / "postmaster.pid"
    if running:
        pid.write_text(f"123\n/data\n1700000000\n{running['port']}\n/var/run/postgresql\nlocalhost\n")
    command = settings_live_command("16", sorted(files))
    command = command.replace("/usr/lib/postgresql/16/bin/postgres", str(bin_ / "postgres"))
    command = command.replace("/var/lib/postgresql/16/main/postmaster.pid", str(pid))
    env = {
        "PATH": f"{bin_}:/usr/bin:/bin",
        **{k.upper(): str(tmp_path / k) for k in ("files", "running", "port")},
        "LOG": str(tmp_path / "log"),
    }
    subprocess.run(["sh", "-c", command], env=env, check=True)
    return (tmp_path / "log").read_text().splitlines()


WRITTEN = {"listen_addresses": "localhost", "password_encryption": "scram-sha-256", "port": "5432"}


def test_new_settings_the_running_server_already_has_only_reload_it(tmp_path):
    """A fresh cluster runs Debian's defaults, which are what vpskit writes: no 2.5 s restart."""
    assert pg_settings_applied(tmp_path, WRITTEN, running=dict(WRITTEN)) == ["systemctl reload postgresql"]


def test_a_setting_the_running_server_has_otherwise_restarts_it(tmp_path):
    """A new port (or any listed setting that differs) needs the restart; the server is asked on the port it runs on."""
    assert pg_settings_applied(tmp_path, WRITTEN | {"port": "5433"}, running=dict(WRITTEN)) == ["systemctl restart postgresql"]


def test_a_server_not_running_is_restarted(tmp_path):
    assert pg_settings_applied(tmp_path, WRITTEN, running=None) == ["systemctl restart postgresql"]


def test_setting_names_are_the_fragments_assignments():
    assert setting_names(render("postgresql.conf.j2", port=5432)) == ["listen_addresses", "password_encryption", "port"]
    assert setting_names("# a = 1\nwork_mem = '4MB'\n\nport=5\n") == ["port", "work_mem"]
