"""The backup command's own rules, run locally with bash on SQLite files and directories.

The PostgreSQL item here points at a port nobody listens on: its dump fails, as
it does on a host whose PostgreSQL is down.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from operations.backup import BackupItem
from operations.render import FILES_DIR, render

SCRIPT = FILES_DIR / "vpskit-backup"
DAY = 86400


@pytest.fixture
def host(tmp_path):
    """A backup config in tmp_path: a SQLite file, an uploads directory, and a database that cannot be dumped."""
    (tmp_path / "uploads").mkdir()
    (tmp_path / "uploads" / "a.txt").write_text("receipt\n")
    db = sqlite3.connect(tmp_path / "notes.sqlite3")
    db.execute("create table n (t text)")
    db.executemany("insert into n values (?)", [("x",)] * 20)
    db.commit()
    db.close()
    items = [
        BackupItem("sqlite", "notes", str(tmp_path / "notes.sqlite3")),
        BackupItem("files", "notes-files-uploads", str(tmp_path / "uploads")),
    ]
    return Host(tmp_path, items)


class Host:
    def __init__(self, root: Path, items):
        self.root, self.items = root, items
        self.backups = root / "backups"
        self.configure(items)

    def configure(self, items, keep_days=7):
        conf = render(
            "backup.conf.j2", dir=str(self.backups), keep_days=keep_days, status_dir=str(self.root / "status"), pg_port=1, items=items
        )
        (self.root / "backup.conf").write_text(conf)

    def run(self, *args) -> subprocess.CompletedProcess:
        env = {**os.environ, "VPSKIT_BACKUP_CONF": str(self.root / "backup.conf"), "VPSKIT_BACKUP_LOCK": str(self.root / "lock")}
        return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=60)

    def files(self, item) -> list[str]:
        return sorted(p.name for p in (self.backups / item).iterdir())

    def status(self, kind, item) -> dict:
        text = (self.root / "status" / kind / f"{item}.status").read_text()
        return dict(line.split("=", 1) for line in text.splitlines())


def age(path: Path, days: float) -> None:
    t = time.time() - days * DAY
    os.utime(path, (t, t))


def test_a_good_run_writes_verified_private_backups_and_exits_0(host):
    r = host.run("run")
    assert r.returncode == 0, r.stderr
    (sqlite_backup,) = host.files("notes")
    assert sqlite_backup.startswith("notes-") and sqlite_backup.endswith(".sqlite3")
    assert (host.backups / "notes-files-uploads").stat().st_mode & 0o777 == 0o700
    assert (host.backups / "notes" / sqlite_backup).stat().st_mode & 0o777 == 0o600
    assert sqlite3.connect(host.backups / "notes" / sqlite_backup).execute("select count(*) from n").fetchone() == (20,)
    assert host.status("backup", "notes")["state"] == "ok"
    assert "notes: wrote" in (host.backups / "backup.log").read_text()


def test_a_failed_dump_exits_1_and_keeps_every_earlier_backup(host):
    assert host.run("run").returncode == 0
    before = {i: host.files(i) for i in ("notes", "notes-files-uploads")}
    host.configure([BackupItem("pg", "dibby", "dibby"), *host.items])
    for _ in range(2):
        r = host.run("run")
        assert r.returncode == 1
        assert "backup FAILED for 1 of 3 items: dibby" in r.stderr
    assert host.status("backup", "dibby")["state"] == "failed"
    assert host.files("dibby") == []  # no in-progress file left behind
    for item, names in before.items():
        assert set(names) <= set(host.files(item))


def test_retention_deletes_old_backups_but_never_the_newest_good_one(host):
    assert host.run("run").returncode == 0
    time.sleep(1.1)
    assert host.run("run").returncode == 0
    for p in (host.backups / "notes").iterdir():
        age(p, 400)
    # A failing run (the SQLite file is unreadable as a database) deletes nothing.
    (host.root / "notes.sqlite3").write_text("not a database")
    old = host.files("notes")
    assert host.run("run").returncode == 1
    assert host.files("notes") == old
    # A good run deletes what is older than keep_days and keeps the new one.
    (host.root / "notes.sqlite3").unlink()
    sqlite3.connect(host.root / "notes.sqlite3").execute("create table n (t text)").connection.commit()
    assert host.run("run").returncode == 0
    (left,) = host.files("notes")
    assert left not in old


def test_prune_keeps_the_newest_backup_even_when_it_is_old(host):
    """Only backups older than keep_days go, and the newest good one stays whatever its age."""
    assert host.run("run").returncode == 0
    (only,) = host.files("notes")
    age(host.backups / "notes" / only, 400)
    # A skipped source (gone) does not prune; a good run of another item leaves this one alone.
    (host.root / "notes.sqlite3").unlink()
    assert host.run("run").returncode == 0
    assert host.files("notes") == [only]
    assert host.status("backup", "notes")["state"] == "skipped"


def test_restore_puts_back_the_newest_backup(host):
    assert host.run("run").returncode == 0
    (host.root / "uploads" / "a.txt").unlink()
    (host.root / "notes.sqlite3").unlink()
    assert host.run("restore", "notes-files-uploads").returncode == 0
    assert host.run("restore", "notes").returncode == 0
    assert (host.root / "uploads" / "a.txt").read_text() == "receipt\n"
    assert sqlite3.connect(host.root / "notes.sqlite3").execute("select count(*) from n").fetchone() == (20,)


def test_restore_of_a_named_backup_into_another_file(host):
    assert host.run("run").returncode == 0
    (name,) = host.files("notes")
    target = host.root / "copy.sqlite3"
    assert host.run("restore", "notes", str(host.backups / "notes" / name), "--into", str(target)).returncode == 0
    assert sqlite3.connect(target).execute("select count(*) from n").fetchone() == (20,)


def test_restore_refuses_a_corrupt_backup_and_leaves_the_live_file(host):
    assert host.run("run").returncode == 0
    (name,) = host.files("notes")
    (host.backups / "notes" / name).write_text("garbage")
    r = host.run("restore", "notes")
    assert r.returncode == 1 and "does not verify" in r.stderr
    assert sqlite3.connect(host.root / "notes.sqlite3").execute("select count(*) from n").fetchone() == (20,)


def test_drill_checks_the_newest_backups_and_records_the_result(host):
    assert host.run("drill").returncode == 0
    assert host.status("drill", "notes")["state"] == "skipped"
    assert host.run("run").returncode == 0
    assert host.run("drill").returncode == 0
    assert host.status("drill", "notes")["message"] == "tables=1 rows=20 integrity=ok"
    assert host.status("drill", "notes-files-uploads")["message"] == "files=1"
    (name,) = host.files("notes")
    (host.backups / "notes" / name).write_text("garbage")
    assert host.run("drill").returncode == 1
    assert host.status("drill", "notes")["state"] == "failed"


@pytest.mark.parametrize("args, code", [((), 2), (("restore",), 2), (("restore", "nope"), 2), (("list", "nope"), 2)])
def test_usage_errors_exit_2(host, args, code):
    assert host.run(*args).returncode == code


def test_a_second_run_waits_for_no_one_and_exits_3_when_locked(host):
    lock = host.root / "lock"
    with subprocess.Popen(["flock", str(lock), "sleep", "5"]) as holder:
        time.sleep(0.3)
        r = host.run("run")
        holder.kill()
    assert r.returncode == 3 and "holds" in r.stderr
