"""Off-host copies: the config rules, the restic commands and files vpskit builds, and the recovery's decisions."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sqlite3
import subprocess

import pytest
from pyinfra.api import OperationError

from operations.backup import BackupItem
from operations.config import ConfigError, parse_config
from operations.distro import Distro
from operations.offsite import (
    RECOVERY_MARK,
    RESTIC,
    OffsiteSpec,
    RecoveryState,
    ResticRepository,
    database_recovery_commands,
    forget_flags,
    offsite_conf_text,
    offsite_databases_recovered,
    offsite_files_recovered,
    offsite_repository,
    repository_password,
    restic_env_text,
    sftp_command,
    shown_repository,
)
from operations.plan import Plan
from operations.render import FILES_DIR, render
from tests.unit.hoststub import check_spec

APP = {"name": "dibby", "port": 5001, "database": {"engine": "postgresql"}, "backup": {"paths": ["/srv/uploads"]}}


def parse(tmp_path, offsite: dict, **extra):
    (tmp_path / "id.pub").write_text("ssh-ed25519 AAAAC3Nza test\n")
    raw = {
        "server": {"address": "203.0.113.10"},
        "deploy_user": {"public_keys": ["id.pub"]},
        "apps": [APP],
        "backups": {"offsite": offsite},
        **extra,
    }
    return parse_config(raw, base_dir=str(tmp_path))


def problems(tmp_path, offsite: dict, **extra) -> list[str]:
    try:
        parse(tmp_path, offsite, **extra)
    except ConfigError as e:
        return e.problems
    return []


# ------------------------------------------------------------------ config


def test_a_credential_missing_from_the_environment_is_a_config_error_naming_the_field(tmp_path, monkeypatch):
    monkeypatch.setenv("VPSKIT_TEST_KEY_ID", "AKIA")
    monkeypatch.delenv("VPSKIT_TEST_SECRET", raising=False)
    offsite = {"repository": "s3:https://s3.example.com/bucket/web1", "env": ["VPSKIT_TEST_KEY_ID", "VPSKIT_TEST_SECRET"]}
    assert problems(tmp_path, offsite) == ["backups.offsite.env[1]: $VPSKIT_TEST_SECRET is not set in the environment running pyinfra"]


@pytest.mark.parametrize(
    ("offsite", "problem"),
    [
        ({"repository": "ftp://x/y"}, "backups.offsite.repository: 'ftp://x/y' is not a restic repository"),
        ({"repository": "sftp:/nohost"}, "backups.offsite.repository: 'sftp:/nohost' is not sftp:user@host:/path"),
        ({"repository": "/var/backups/vpskit/offsite"}, "is inside backups.dir, which is copied into it"),
        ({"restore": True}, "backups.offsite.restore: needs backups.offsite.repository"),
        ({"repository": "/mnt/copy", "restore": True}, "backups.offsite.restore: needs the repository password"),
        ({"repository": "/mnt/copy", "ssh_key": "id.pub"}, "backups.offsite.ssh_key: is used only with an sftp:"),
        ({"repository": "/mnt/copy", "keep_daily": -1}, "backups.offsite.keep_daily: must be 0 or more"),
        ({"repository": "/mnt/copy", "check_subset": "5"}, "backups.offsite.check_subset: '5' is not a percentage"),
    ],
)
def test_offsite_config_mistakes_name_their_field(tmp_path, offsite, problem):
    found = problems(tmp_path, offsite)
    assert len(found) == 1 and problem in found[0], found


def test_restore_with_the_kept_password_file_and_an_sftp_key_is_a_good_config(tmp_path):
    (tmp_path / "vpskit-offsite.password").write_text("kept\n")
    (tmp_path / "backup_key").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    offsite = {"repository": "sftp://backup@backup.example.net:2222//srv/restic", "ssh_key": "backup_key", "restore": True}
    assert problems(tmp_path, offsite) == []


# ------------------------------------------------------------------ what vpskit builds


def test_keep_rules_become_restic_forget_flags_and_all_zero_keeps_everything():
    assert forget_flags(7, 4, 6) == ["--keep-daily", "7", "--keep-weekly", "4", "--keep-monthly", "6"]
    assert forget_flags(0, 4, 0) == ["--keep-weekly", "4"]
    assert forget_flags(0, 0, 0) == []


def test_sftp_repositories_get_a_batch_mode_ssh_with_the_uploaded_key_and_port():
    assert sftp_command("sftp:backup@backup.example.net:/srv/restic", "/k") == (
        "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=/etc/vpskit/offsite/known_hosts"
        " -i /k -o IdentitiesOnly=yes backup@backup.example.net -s sftp"
    )
    assert sftp_command("sftp://b@h:2222//srv/restic").endswith(" -p 2222 b@h -s sftp")
    assert sftp_command("s3:https://s3.example.com/b") == ""
    assert sftp_command("/mnt/copy") == ""


def test_the_env_file_reads_back_the_credentials_unchanged_in_sh(tmp_path):
    value = 'it\'s $HOME `x` "q"'
    text = restic_env_text("sftp:b@h:/srv/it's", [("AWS_SECRET_ACCESS_KEY", value)])
    (tmp_path / "env").write_text(text)
    out = subprocess.run(
        ["sh", "-c", f'set -a; . {tmp_path}/env; printf "%s|%s" "$RESTIC_REPOSITORY" "$AWS_SECRET_ACCESS_KEY"'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out == f"sftp:b@h:/srv/it's|{value}"


def test_offsite_conf_is_bash_listing_paths_excludes_keep_rules_and_the_check_share(tmp_path):
    spec = OffsiteSpec("/mnt/copy", "pw", paths=("/var/backups/vpskit", "/srv/apps/dibby"), excludes=("/srv/apps/dibby/src",), keep_daily=3)
    (tmp_path / "offsite.conf").write_text(offsite_conf_text(spec))
    script = f'. {tmp_path}/offsite.conf; printf "%s" "$OFFSITE_PATHS" | grep -c .; printf "%s|%s|%s" "$OFFSITE_EXCLUDES" "$OFFSITE_KEEP" "$OFFSITE_CHECK_SUBSET"'
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout
    assert out == "2\n\n/srv/apps/dibby/src\n|--keep-daily 3 --keep-weekly 4 --keep-monthly 6|5%"


def test_the_spec_repr_never_shows_the_password_credentials_or_key():
    spec = OffsiteSpec("/mnt/copy", "s3cret-pw", credentials=(("K", "s3cret-cred"),), ssh_key="s3cret-key")
    assert "s3cret" not in repr(spec)


def test_the_spec_covers_dumps_secrets_app_directories_and_outside_paths(tmp_path):
    (tmp_path / "vpskit-offsite.password").write_text("kept\n")
    config = parse(tmp_path, {"repository": "/mnt/copy", "keep_monthly": 0})
    plan = Plan(config, Distro("ubuntu", "24.04", "noble"))
    spec = plan.offsite
    assert spec.paths == ("/var/backups/vpskit", "/etc/vpskit/secrets", "/srv/apps/dibby", "/srv/uploads")
    assert spec.excludes == tuple(f"/srv/apps/dibby/{d}" for d in ("src", "venv", ".ssh", "repo.git", "releases", "venvs"))
    assert (spec.password, spec.keep_monthly, spec.restore) == ("kept", 0, False)
    assert plan.recovery_guards == [
        "/etc/vpskit/secrets",
        "/var/backups/vpskit",
        "/srv/apps/dibby/.env",
    ]
    assert Plan(parse(tmp_path, {}), Distro("ubuntu", "24.04", "noble")).offsite is None


def test_the_password_is_made_once_mode_600_and_then_kept(tmp_path, caplog):
    path = tmp_path / "vpskit-offsite.password"
    first = repository_password(path)
    assert len(first) >= 40 and oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert str(path) in caplog.text and "KEEP A COPY" in caplog.text and first not in caplog.text
    caplog.clear()
    assert repository_password(path) == first and caplog.text == ""


def test_database_recovery_loads_each_newest_dump_and_skips_items_without_one():
    items = [
        BackupItem("pg", "dibby", "dibby"),
        BackupItem("sqlite", "notes", "/srv/notes/notes.sqlite3"),
        BackupItem("files", "dibby-files-uploads", "/srv/uploads"),
    ]
    pg, sqlite = database_recovery_commands(items, "/var/backups/vpskit", 5433)
    assert pg == (
        'f=$(ls -1 /var/backups/vpskit/dibby/dibby-*.dump 2>/dev/null | sort | tail -n 1) && if [ -n "$f" ]; then '
        "runuser -u postgres -- pg_restore -p 5433 --exit-on-error --single-transaction --clean --if-exists -d dibby"
        " < \"$f\"; else echo 'vpskit: no backup of dibby in the snapshot; left as it is'; fi"
    )
    assert "/var/backups/vpskit/notes/notes-*.sqlite3" in sqlite and 'cp -- "$f" /srv/notes/notes.sqlite3' in sqlite


# ------------------------------------------------------------------ facts and operations


def test_repository_fact_tells_missing_from_wrong_password_and_unreachable():
    fact_ = ResticRepository()
    assert fact_.process(["status=0"]) == {"state": "ok", "message": ""}
    assert fact_.process(["status=absent"])["state"] == "absent"
    missing = fact_.process(
        [
            "status=1",
            "Fatal: unable to open config file: <config/> does not exist",
            "Is there a repository at the following location?",
            "sftp:b@h:/r",
        ]
    )
    assert missing["state"] == "missing"
    wrong = fact_.process(["status=1", "Fatal: wrong password or no key found"])
    assert wrong == {"state": "error", "message": "Fatal: wrong password or no key found"}


def test_a_repository_is_initialised_once_and_never_when_restoring():
    repo = {"repository": "sftp:b@h:/r"}
    check_spec(offsite_repository, {ResticRepository: {"state": "missing", "message": ""}}, repo, [f"{RESTIC} init"])
    check_spec(offsite_repository, {ResticRepository: {"state": "ok", "message": ""}}, repo, [])
    with pytest.raises(OperationError, match="none to restore from"):
        check_spec(offsite_repository, {ResticRepository: {"state": "missing", "message": ""}}, {**repo, "create": False}, [])


def test_a_wrong_password_or_unreachable_repository_stops_the_run_with_restics_words():
    state = {"state": "error", "message": "Fatal: wrong password or no key found"}
    with pytest.raises(OperationError, match="sftp:b@h:/r: Fatal: wrong password or no key found"):
        check_spec(offsite_repository, {ResticRepository: state}, {"repository": "sftp:b@h:/r"}, [])


GUARDS = ["/etc/vpskit/secrets", "/var/backups/vpskit", "/srv/apps/dibby/.env"]


def test_files_are_restored_only_on_a_host_without_data_and_only_once():
    def facts(mark, data):
        return {RecoveryState: {"mark": mark, "data": data}}

    restore = (
        f"{RESTIC} restore latest --tag vpskit --target / && install -d -m 755 /var/lib/vpskit/offsite && echo files > {RECOVERY_MARK}"
    )
    check_spec(offsite_files_recovered, facts("", []), {"guards": GUARDS}, [restore])
    done = check_spec(offsite_files_recovered, facts("", ["/etc/vpskit/secrets"]), {"guards": GUARDS}, [])
    assert done.noops == ["this host already has data: not restored over"]
    check_spec(offsite_files_recovered, facts("done", []), {"guards": GUARDS}, [])


def test_databases_are_loaded_only_after_the_files_came_back():
    items = [BackupItem("pg", "dibby", "dibby")]
    args = {"items": items, "backup_dir": "/var/backups/vpskit"}
    key = RecoveryState
    done = check_spec(
        offsite_databases_recovered,
        {key: {"mark": "files", "data": []}},
        args,
        [" && ".join([*database_recovery_commands(items, "/var/backups/vpskit", 5432), f"echo done > {RECOVERY_MARK}"])],
    )
    assert "pg_restore" in done.commands[0]
    for mark in ("", "done"):
        check_spec(offsite_databases_recovered, {key: {"mark": mark, "data": []}}, args, [])


def test_recovery_state_parses_the_mark_and_the_paths_holding_data():
    state = RecoveryState()
    assert state.process(["mark=files", "data=/etc/vpskit/secrets"]) == {"mark": "files", "data": ["/etc/vpskit/secrets"]}
    assert state.process([]) == {"mark": "", "data": []}
    assert "ls -A" in state.command(RECOVERY_MARK, GUARDS) and "/srv/apps/dibby/.env" in state.command(RECOVERY_MARK, GUARDS)


# ------------------------------------------------------------------ vpskit-backup and vpskit-health on the host


class BackupHost:
    """vpskit-backup with one SQLite item, off-host copies to a stand-in restic that records its arguments."""

    def __init__(self, root, restic_exit: int = 0):
        self.root = root
        db = sqlite3.connect(root / "notes.sqlite3")
        db.execute("create table n (t text)")
        db.commit()
        db.close()
        items = [BackupItem("sqlite", "notes", str(root / "notes.sqlite3"))]
        (root / "backup.conf").write_text(
            render("backup.conf.j2", dir=str(root / "backups"), keep_days=7, status_dir=str(root / "status"), pg_port=1, items=items)
        )
        spec = OffsiteSpec("/mnt/copy", "pw", paths=(str(root / "backups"), str(root / "gone")), excludes=("/x/src",))
        (root / "offsite.conf").write_text(offsite_conf_text(spec))
        (root / "restic").write_text(
            f'#!/bin/sh\necho "$*" >> {root}/restic.calls\n'
            f'[ "$1" = backup ] && [ {restic_exit} != 0 ] && {{ echo "Fatal: wrong password or no key found" >&2; exit {restic_exit}; }}\n'
            "exit 0\n"
        )
        (root / "restic").chmod(0o755)

    def run(self, *args):
        env = {
            **os.environ,
            "VPSKIT_BACKUP_CONF": str(self.root / "backup.conf"),
            "VPSKIT_BACKUP_LOCK": str(self.root / "lock"),
            "VPSKIT_OFFSITE_CONF": str(self.root / "offsite.conf"),
            "VPSKIT_RESTIC": str(self.root / "restic"),
        }
        return subprocess.run(["bash", str(FILES_DIR / "vpskit-backup"), *args], capture_output=True, text=True, env=env, timeout=60)

    def calls(self) -> list[str]:
        return (self.root / "restic.calls").read_text().splitlines()

    def status(self, name) -> dict:
        return dict(line.split("=", 1) for line in (self.root / "status" / "offsite" / f"{name}.status").read_text().splitlines())


def test_a_backup_run_copies_the_existing_paths_off_host_then_forgets_by_the_keep_rules(tmp_path):
    h = BackupHost(tmp_path)
    r = h.run("run")
    assert r.returncode == 0, r.stderr
    backup, forget = h.calls()
    assert backup.startswith("backup --quiet --tag vpskit --host ")
    assert backup.endswith(f" {tmp_path}/backups --exclude=/x/src")  # the missing path is left out
    assert forget == "forget --quiet --tag vpskit --group-by host,tags --keep-daily 7 --keep-weekly 4 --keep-monthly 6 --prune"
    assert h.status("copy")["state"] == "ok"


def test_a_failed_copy_fails_the_run_loudly_and_leaves_the_local_backups(tmp_path):
    h = BackupHost(tmp_path, restic_exit=1)
    r = h.run("run")
    assert r.returncode == 1
    assert "offsite: copy FAILED, local backups kept as they are: Fatal: wrong password or no key found" in r.stderr
    assert len(list((tmp_path / "backups" / "notes").glob("notes-*.sqlite3"))) == 1
    assert h.status("copy")["state"] == "failed" and len(h.calls()) == 1  # nothing forgotten after a failed copy


def test_snapshots_and_the_check_go_to_restic(tmp_path):
    h = BackupHost(tmp_path)
    assert h.run("snapshots").returncode == 0
    assert h.run("offsite-check").returncode == 0
    assert h.calls() == ["snapshots --tag vpskit", "check --read-data-subset=5%"]
    assert h.status("check")["state"] == "ok"


_loader = importlib.machinery.SourceFileLoader("vpskit_health_offsite", str(FILES_DIR / "vpskit-health"))
health = importlib.util.module_from_spec(importlib.util.spec_from_loader("vpskit_health_offsite", _loader))
_loader.exec_module(health)


def test_the_health_report_fails_on_a_stale_failed_or_missing_off_host_copy(tmp_path):
    now = 1_800_000_000
    status = tmp_path / "offsite"
    assert [s for s, *_ in health.check_offsite(str(tmp_path), 26, now=now)] == ["FAIL"]
    status.mkdir()
    for state, age_h, want in (("ok", 2, "ok"), ("ok", 30, "FAIL"), ("failed", 1, "FAIL")):
        (status / "copy.status").write_text(f"state={state}\ntime={now - age_h * 3600}\nmessage=x\n")
        results = health.check_offsite(str(tmp_path), 26, now=now)
        assert [(s, name) for s, name, _ in results] == [(want, "off-host copy")]
    (status / "check.status").write_text(f"state=failed\ntime={now}\nmessage=pack damaged\n")
    assert health.check_offsite(str(tmp_path), 26, now=now)[-1][:2] == ("FAIL", "off-host check")


def test_recovery_state_command_finds_the_mark_and_only_guards_holding_data(tmp_path):
    (tmp_path / "secrets").mkdir()
    (tmp_path / "backups").mkdir()
    (tmp_path / "backups" / "dibby").mkdir()
    guards = (str(tmp_path / "secrets"), str(tmp_path / "backups"), str(tmp_path / "app.env"))
    mark = tmp_path / "recovered"
    fact_ = RecoveryState()

    def read():
        out = subprocess.run(["sh", "-c", fact_.command(str(mark), guards)], capture_output=True, text=True)
        assert out.returncode == 0
        return fact_.process(out.stdout.splitlines()) if out.stdout else fact_.default()

    assert read() == {"mark": "", "data": [str(tmp_path / "backups")]}
    (tmp_path / "backups" / "dibby").rmdir()
    assert read() == {"mark": "", "data": []}  # a fresh host: pyinfra gives the default for no output
    mark.write_text("files\n")
    (tmp_path / "app.env").write_text("SECRET_KEY=x\n")
    assert read() == {"mark": "files", "data": [str(tmp_path / "app.env")]}


def test_a_password_in_a_repository_url_is_masked_in_messages():
    assert shown_repository("rest:https://web1:s3cret@backup.example.net:8000/web1") == (
        "rest:https://web1:***@backup.example.net:8000/web1"
    )
    assert shown_repository("sftp:backup@h:/srv/restic") == "sftp:backup@h:/srv/restic"
    with pytest.raises(OperationError) as e:
        check_spec(
            offsite_repository,
            {ResticRepository: {"state": "error", "message": "Fatal: unreachable"}},
            {"repository": "rest:https://web1:s3cret@h/r"},
            [],
        )
    assert "s3cret" not in str(e.value)
