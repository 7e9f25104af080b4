"""The shell that installs a checked file, run for real with bash on files in tmp_path; and the custom facts' parsing."""

from __future__ import annotations

import hashlib
import os
import subprocess

import pytest

from operations.facts import AptLockHolders, AptUpgradable, FileState
from operations.validated import install_checked_command

USER = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
GROUP = subprocess.run(["id", "-gn"], capture_output=True, text=True, check=True).stdout.strip()


def run(command: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=30)


@pytest.fixture
def files(tmp_path):
    """dest (does not exist yet) and a staged file with new content, in a directory with a space in its name."""
    d = tmp_path / "etc dir"
    d.mkdir()
    staged = d / "staged file"
    staged.write_text("good new\n")
    return d / "dest.conf", staged


def install(dest, staged, validate, mode="640"):
    return run(install_checked_command(str(dest), str(staged), validate, mode, USER, GROUP), dest.parent)


def mode_of(path) -> str:
    return oct(os.stat(path).st_mode & 0o7777)[2:]


# ------------------------------------------------------------------ no validator


def test_no_validator_moves_staged_into_place_with_mode(files):
    """Without a validator the staged file replaces dest, with the requested mode, and is gone from staging."""
    dest, staged = files
    dest.write_text("old\n")
    proc = install(dest, staged, None, mode="600")
    assert proc.returncode == 0, proc.stderr
    assert dest.read_text() == "good new\n"
    assert mode_of(dest) == "600"
    assert not staged.exists()


# ---------------------------------------------------------- {path}: check staged file


def test_path_validator_checks_the_staged_file_before_it_goes_live(files):
    """With {path} the validator reads the staged file while dest still holds the old content; then mv."""
    dest, staged = files
    dest.write_text("old\n")
    seen, dest_at_check = dest.parent / "seen", dest.parent / "dest-at-check"
    validate = f"cat {{path}} > '{seen}' && cat '{dest}' > '{dest_at_check}'"
    proc = install(dest, staged, validate)
    assert proc.returncode == 0, proc.stderr
    assert seen.read_text() == "good new\n"
    assert dest_at_check.read_text() == "old\n"
    assert dest.read_text() == "good new\n"
    assert mode_of(dest) == "640"
    assert not staged.exists()


def test_path_validator_pass(files):
    """A staged file the validator accepts goes live."""
    dest, staged = files
    proc = install(dest, staged, "grep -q good {path}")
    assert proc.returncode == 0, proc.stderr
    assert dest.read_text() == "good new\n"


def test_path_validator_failure_keeps_dest_and_removes_staged(files):
    """A rejected staged file never touches dest, is deleted, and the command fails."""
    dest, staged = files
    dest.write_text("old\n")
    staged.write_text("bad new\n")
    proc = install(dest, staged, "grep -q good {path}")
    assert proc.returncode != 0
    assert dest.read_text() == "old\n"
    assert not staged.exists()


def test_path_validator_failure_without_dest_creates_nothing(files):
    """A rejected first version leaves no dest file behind."""
    dest, staged = files
    proc = install(dest, staged, "false {path}")
    assert proc.returncode != 0
    assert not dest.exists() and not staged.exists()


# --------------------------------------------------- whole-config check (no {path})


def test_whole_config_validator_pass_installs_and_drops_backup(files):
    """A whole-config check that passes leaves the new file live and no .vpskit-prev backup."""
    dest, staged = files
    dest.write_text("old\n")
    proc = install(dest, staged, f"grep -q good '{dest}'")
    assert proc.returncode == 0, proc.stderr
    assert dest.read_text() == "good new\n"
    assert not (dest.parent / "dest.conf.vpskit-prev").exists()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["dest.conf"]


def test_whole_config_validator_sees_the_new_file_live(files):
    """Without {path} the check runs after the new file is in place (it checks the live config)."""
    dest, staged = files
    dest.write_text("old\n")
    seen = dest.parent / "seen"
    proc = install(dest, staged, f"cat '{dest}' > '{seen}'")
    assert proc.returncode == 0, proc.stderr
    assert seen.read_text() == "good new\n"


def test_whole_config_validator_failure_restores_previous_file(files):
    """A failed whole-config check puts the previous file back (content and mode) and fails with a message."""
    dest, staged = files
    dest.write_text("old\n")
    dest.chmod(0o604)
    staged.write_text("bad new\n")
    proc = install(dest, staged, f"grep -q good '{dest}'")
    assert proc.returncode == 1
    assert dest.read_text() == "old\n"
    assert mode_of(dest) == "604"
    assert "previous version restored" in proc.stderr
    assert sorted(p.name for p in dest.parent.iterdir()) == ["dest.conf"]


def test_whole_config_validator_failure_removes_new_file_without_predecessor(files):
    """A failed whole-config check for a file that did not exist before leaves no file at all."""
    dest, staged = files
    proc = install(dest, staged, "false")
    assert proc.returncode == 1
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []


def test_whole_config_validator_with_quotes_reports_it_verbatim(files):
    """A validator containing single quotes still restores the old file, and the error quotes it literally (no shell expansion)."""
    dest, staged = files
    dest.write_text("old\n")
    staged.write_text("bad new\n")
    validate = f"sh -c 'grep -q good \"{dest}\"'"
    proc = install(dest, staged, validate)
    assert proc.returncode == 1
    assert dest.read_text() == "old\n"
    assert f"rejected by `{validate}`; previous version restored" in proc.stderr


def test_true_and_false_validators(files):
    """The trivial validators: true installs, false (whole-config) refuses."""
    dest, staged = files
    assert install(dest, staged, "true").returncode == 0
    assert dest.read_text() == "good new\n"
    staged.write_text("next\n")
    assert install(dest, staged, "false").returncode == 1
    assert dest.read_text() == "good new\n"


# ----------------------------------------------------------------------- facts


def test_file_state_process():
    """FileState turns sha256sum + stat output into a dict; no output means no file."""
    out = ["d2a84f4b8b650937ec8f73cd8be2c74add5a911ba64df27458ed8229da804a26  ", "440 root root"]
    assert FileState().process(out) == {
        "sha256": "d2a84f4b8b650937ec8f73cd8be2c74add5a911ba64df27458ed8229da804a26",
        "mode": "440",
        "user": "root",
        "group": "root",
    }
    assert FileState().process([]) is None


def test_file_state_command_round_trip(tmp_path):
    """FileState's command, run with bash on a real file, parses to its sha256, mode and owner; a missing file gives None."""
    f = tmp_path / "conf"
    f.write_bytes(b"hello\n")
    f.chmod(0o640)
    out = run(FileState().command(str(f)), tmp_path).stdout.splitlines()
    assert FileState().process(out) == {
        "sha256": hashlib.sha256(b"hello\n").hexdigest(),
        "mode": "640",
        "user": USER,
        "group": GROUP,
    }
    missing = run(FileState().command(str(tmp_path / "missing")), tmp_path)
    assert missing.returncode == 0
    assert FileState().process(missing.stdout.splitlines()) is None


def test_apt_upgradable_lists_inst_lines_only():
    """AptUpgradable keeps the package names of Inst lines and ignores Conf lines."""
    output = [
        "Inst libc6 [2.36-9] (2.36-9+deb12u9 Debian-Security:12/stable-security [amd64])",
        "Inst openssh-server [1:9.2p1-2+deb12u3] (1:9.2p1-2+deb12u5 Debian:12.9/stable [amd64]) []",
        "Inst linux-image-6.1.0-30-amd64 (6.1.124-1 Debian-Security:12/stable-security [amd64])",
        "Conf libc6 (2.36-9+deb12u9 Debian-Security:12/stable-security [amd64])",
        "Conf openssh-server (1:9.2p1-2+deb12u5 Debian:12.9/stable [amd64])",
    ]
    assert AptUpgradable().process(output) == ["libc6", "openssh-server", "linux-image-6.1.0-30-amd64"]
    assert AptUpgradable().process([]) == [] == AptUpgradable.default()


def test_apt_upgradable_command_mode():
    """full=True simulates dist-upgrade, full=False upgrade; both without taking apt's lock."""
    assert " dist-upgrade " in AptUpgradable().command(full=True)
    assert " upgrade " in AptUpgradable().command(full=False)
    assert "Debug::NoLocking=1" in AptUpgradable().command()


def test_apt_lock_holders_process():
    """AptLockHolders returns the PIDs as ints, skipping blank or junk lines."""
    assert AptLockHolders().process(["1234", "", "567", "junk"]) == [1234, 567]
    assert AptLockHolders().process([]) == [] == AptLockHolders.default()


def test_whole_config_check_sees_no_backup_in_the_config_directory(tmp_path):
    """While a whole-config check runs, the previous file's backup is not in dest's directory (nginx would load sites-enabled/*)."""
    conf_dir, stage_dir = tmp_path / "sites-enabled", tmp_path / "tmp"
    conf_dir.mkdir()
    stage_dir.mkdir()
    dest, staged = conf_dir / "app.conf", stage_dir / "staged"
    dest.write_text("old\n")
    staged.write_text("new\n")
    seen = tmp_path / "seen"
    proc = install(dest, staged, f"ls '{conf_dir}' > '{seen}' && false")
    assert proc.returncode == 1
    assert seen.read_text().split() == ["app.conf"]
    assert dest.read_text() == "old\n"
    assert sorted(p.name for p in stage_dir.iterdir()) == []


def test_apt_lock_holders_ignores_locks_of_processes_outside_this_pid_namespace(tmp_path):
    """/proc/locks is the kernel's: another container's apt shows with PID 0 and must not count as a holder."""
    lock = tmp_path / "lock-frontend"
    lock.write_text("")
    ino = lock.stat().st_ino
    locks = tmp_path / "locks"
    locks.write_text(f"1: POSIX  ADVISORY  WRITE 0 00:2f:{ino} 0 EOF\n2: POSIX  ADVISORY  WRITE 4242 00:30:{ino} 0 EOF\n")
    fact = AptLockHolders()
    fact.locks = (str(lock),)
    command = fact.command().replace("/proc/locks", str(locks))
    out = subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=True).stdout.splitlines()
    assert fact.process(out) == [4242]
