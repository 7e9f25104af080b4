"""One deploy at a time per host, and a log line for every deploy.

pyinfra runs each operation as a remote command of its own: no process on the host
lives as long as a run. The lock is therefore a record, ``/run/vpskit/deploy.lock``
(tmpfs: a reboot, which ends every run, clears it), naming the run that holds it:
who started it (``user@controller``), the controller's PID, when, the SSH session it
came in on (the host's sshd process of that connection, with its start time, so a
reused PID is not taken for it) and each app's commit at that moment.

A run that dies (killed, failed, its network gone) leaves the record, but its session
ends with its connection: the next run sees that, logs the dead run as unfinished and
takes the lock over. Runs over connectors without a session (``@docker``, ``@local``)
start on the controller's machine: a run from the same machine checks the holder's PID there.

``deploy_lock_taken`` takes the lock first thing, before any fact decides anything, while
pyinfra prepares the run: a plain command, not an operation, so it counts as no change.
``--dry`` takes no lock (it only says who holds one). The last operation,
``deploy_lock_released``, appends the run's line to ``/var/log/vpskit/deploys.log`` and
frees the lock, also without counting as a change; an operation that fails does the same
with ``result=failed``. The log is kept under 1 MiB, with one older file beside it.
"""

from __future__ import annotations

import getpass
import os
import re
import secrets
import shlex
import socket
import sys
import time
from dataclasses import dataclass

from pyinfra import host, logger, state
from pyinfra.api import OperationError, StringCommand, operation
from pyinfra.api.arguments import CONNECTOR_ARGUMENT_KEYS, pop_global_arguments
from pyinfra.api.state import BaseStateCallback

from .facts import OutputLines

LOCK_DIR = "/run/vpskit"
LOG_FILE = "/var/log/vpskit/deploys.log"
LOG_MAX_BYTES = 1 << 20
# Seconds a command waits for another run's take or release of the lock (each takes milliseconds).
GUARD_WAIT = 30

# Shell functions of every lock command. A record is key=value lines; "app.NAME=SHA PATH" per app.
_FUNCTIONS = r"""
field() { sed -n "s/^$1=//p" "$2" 2>/dev/null | head -n 1; }
started_at() { sed 's/.*) //' /proc/"$1"/stat 2>/dev/null | cut -d' ' -f20; }
session_of() {
  p=$$
  while [ "${p:-0}" -gt 1 ] 2>/dev/null; do
    case "$(cat /proc/"$p"/comm 2>/dev/null)" in sshd|sshd-session) echo "$p $(started_at "$p")"; return;; esac
    p=$(sed 's/.*) //' /proc/"$p"/stat 2>/dev/null | cut -d' ' -f2)
  done
}
liveness() {
  s=$(field session "$1"); [ -n "$s" ] || { echo unknown; return; }
  set -- $s; [ -n "$2" ] && [ "$(started_at "$1")" = "$2" ] && echo alive || echo dead
}
head_of() { git -c safe.directory='*' -C "$1" rev-parse HEAD 2>/dev/null || echo -; }
short() { if [ "$1" = - ]; then echo -; else echo "$1" | cut -c1-12; fi; }
changes() {
  sed -n 's/^app\.//p' "$1" | {
    out=
    while IFS='= ' read -r name old path; do
      new=$(head_of "$path")
      [ "$old" = "$new" ] || out="$out${out:+,}$name:$(short "$old")..$(short "$new")"
    done
    echo "${out:-none}"
  }
}
entry() {
  echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) by=$(field by "$1") pid=$(field pid "$1") start=$(field started "$1") result=$2 apps=$(changes "$1")$3"
}
append() {
  mkdir -p "$(dirname "$LOG")" && chmod 750 "$(dirname "$LOG")" || return 1
  [ "$(stat -c %s "$LOG" 2>/dev/null || echo 0)" -lt "$MAX" ] || mv -f "$LOG" "$LOG.1"
  printf '%s\n' "$1" >> "$LOG" && chgrp adm "$(dirname "$LOG")" "$LOG" 2>/dev/null; chmod 640 "$LOG"
}
"""


def _script(body: str, lock_dir: str, log_file: str, guarded: bool = True) -> str:
    """``body`` with the lock's functions and paths; ``guarded``: holding the guard lock (takes and releases never interleave)."""
    d = shlex.quote(lock_dir)
    guard = (
        f"umask 077; mkdir -p {d} && exec 9>>{d}/deploy.lock.guard && flock -w {GUARD_WAIT} 9 || "
        "{ echo 'vpskit: cannot take the deploy lock guard' >&2; exit 1; }\n"
    )
    return f"L={d}/deploy.lock; LOG={shlex.quote(log_file)}; MAX={LOG_MAX_BYTES}\n{_FUNCTIONS}\n" + (guard if guarded else "") + body


def take_command(
    token: str, by: str, pid: int, apps: dict[str, str], takeover: str = "", lock_dir: str = LOCK_DIR, log_file: str = LOG_FILE
) -> str:
    """
    Shell that takes the deploy lock for this run, unless a live run holds it.

    Prints ``taken``, after ``took-over`` and the dead holder's record when it replaced one
    (whose line it logs as ``result=unfinished``), or ``held`` and the holder's record with its
    ``liveness=`` (``alive``, or ``unknown`` without an SSH session). ``takeover``: the token of
    a holder the controller knows to be dead (its PID on this machine is gone).
    """
    record = [f"token={token}", f"by={by}", f"pid={int(pid)}"]
    lines = " ".join(shlex.quote(line) for line in record)
    heads = "".join(
        f"; printf 'app.%s=%s %s\\n' {shlex.quote(name)} \"$(head_of {shlex.quote(path)})\" {shlex.quote(path)}"
        for name, path in apps.items()
    )
    body = (
        'if [ -s "$L" ]; then\n'
        '  alive=$(liveness "$L")\n'
        f'  if [ "$(field token "$L")" != {shlex.quote(takeover or "-")} ] && [ "$alive" != dead ]; then\n'
        '    echo held; cat "$L"; echo "liveness=$alive"; exit 0\n'
        "  fi\n"
        '  append "$(entry "$L" unfinished)"; echo took-over; cat "$L"; echo "liveness=$alive"\n'
        "fi\n"
        f'{{ printf \'%s\\n\' {lines}; echo "started=$(date -u +%Y-%m-%dT%H:%M:%SZ)"; echo "session=$(session_of)"{heads}; }}'
        ' > "$L.new" && mv -f "$L.new" "$L" && echo taken'
    )
    return _script(body, lock_dir, log_file)


def release_command(token: str, result: str = "ok", step: str = "", lock_dir: str = LOCK_DIR, log_file: str = LOG_FILE) -> str:
    """
    Shell that logs this run's line (``result``; ``step``: the operation that failed) and frees the lock.

    Prints ``released``, or ``lost`` when the lock is not this run's any more (nothing is changed then).
    """
    extra = f' step="{re.sub(r"[^A-Za-z0-9 |:._/-]", "", step)}"' if step else ""
    body = (
        f'[ "$(field token "$L")" = {shlex.quote(token)} ] || {{ echo lost; exit 0; }}\n'
        f'append "$(entry "$L" {shlex.quote(result)} {shlex.quote(extra)})" && rm -f "$L" && echo released'
    )
    return _script(body, lock_dir, log_file)


@dataclass(frozen=True)
class Holder:
    """The run holding a host's deploy lock, as its record says."""

    token: str
    by: str  # user@controller
    pid: int  # the controller's pyinfra process
    started: str
    liveness: str = "unknown"  # alive / dead (its SSH session), unknown (no session recorded)

    @property
    def controller(self) -> str:
        return self.by.rpartition("@")[2]

    def describe(self) -> str:
        return f"{self.by} (PID {self.pid} there), started {self.started}"


def parse_holder(lines: list[str]) -> Holder | None:
    """A lock record (``key=value`` lines) as a ``Holder``; None without one."""
    values: dict[str, str] = {}
    for line in lines:
        key, _, value = line.strip().partition("=")
        values.setdefault(key, value)
    if "token" not in values:
        return None
    pid = values.get("pid", "")
    return Holder(
        values["token"],
        values.get("by", "?"),
        int(pid) if pid.isdigit() else 0,
        values.get("started", "?"),
        values.get("liveness", "unknown"),
    )


def parse_take(lines: list[str]) -> tuple[bool, Holder | None, Holder | None]:
    """A take command's answer: (taken, the live holder when not taken, the dead holder taken over)."""
    lines = [line.strip() for line in lines if line.strip()]
    if lines and lines[0] == "held":
        return False, parse_holder(lines[1:]), None
    if lines and lines[0] == "took-over" and lines[-1] == "taken":
        return True, None, parse_holder(lines[1:-1])
    if lines and lines[-1] == "taken":
        return True, None, None
    raise OperationError(f"unexpected answer taking the deploy lock: {' / '.join(lines) or 'nothing'}")


def controller_name() -> str:
    """``user@host`` of the machine running pyinfra, as the lock and the log name it."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return re.sub(r"[^A-Za-z0-9@._-]", "_", f"{user}@{socket.gethostname()}")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid > 0


def dead_here(holder: Holder, me: str, alive=None) -> bool:
    """Whether ``holder``, without an SSH session to tell, ran on this controller and its process is gone (``alive``: the PID check)."""
    return holder.liveness == "unknown" and holder.controller == me.rpartition("@")[2] and not (alive or pid_alive)(holder.pid)


def is_dry_run(argv: list[str] | None = None) -> bool:
    """Whether pyinfra was started with ``--dry``: it keeps that only in its command line (``argv``: ``sys.argv``)."""
    return "--dry" in (sys.argv if argv is None else argv)[1:]


class DeployLockHolder(OutputLines):
    """
    Returns the record of the run holding the deploy lock (``key=value`` lines, with ``liveness=``), ``[]`` when free.

    Read-only (it makes no directory and takes no guard): what ``--dry`` reports instead of taking the lock.
    """

    def command(self, lock_dir=LOCK_DIR):
        return _script('if [ -s "$L" ]; then cat "$L"; echo "liveness=$(liveness "$L")"; fi', lock_dir, LOG_FILE, guarded=False)


def _run(command: str) -> list[str]:
    """Run ``command`` on the host as its facts run (sudo as configured): outside pyinfra's operations, so no change is counted."""
    arguments, _ = pop_global_arguments(state, host, dict(host.current_op_global_arguments or {}))
    connector = {key: value for key, value in arguments.items() if key in CONNECTOR_ARGUMENT_KEYS}
    ok, output = host.run_shell_command(StringCommand(command), **connector)
    if not ok:
        raise OperationError(f"deploy lock: {' / '.join(output.stderr_lines) or 'the command failed'}")
    return output.stdout_lines


@dataclass
class DeployLock:
    """This run's hold on a host's deploy lock (``deploy_lock_taken``); None for a dry run."""

    token: str
    holder: str
    released: bool = False

    def release(self, result: str = "ok", step: str = "") -> None:
        """Log this run's line with ``result`` and free the lock (once)."""
        if self.released:
            return
        self.released = True
        answer = _run(release_command(self.token, result, step))
        if "lost" in answer:
            logger.warning(
                f"vpskit: {host.name}: the deploy lock was taken over by another run before this one ended; it is left to that run"
            )


class _ReleaseOnFailure(BaseStateCallback):
    """Logs the run as failed and frees the lock when an operation fails on the lock's host (pyinfra stops there)."""

    def __init__(self, lock: DeployLock, locked_host):
        self.lock, self.host = lock, locked_host

    def operation_host_error(self, state, host, op_hash, retry_count=0, max_retries=0):  # noqa: ARG002 - pyinfra's signature
        if host is not self.host or state.get_op_data_for_host(host, op_hash).global_arguments.get("_ignore_errors"):
            return
        names = ", ".join(sorted(state.get_op_meta(op_hash).names))
        try:
            self.lock.release("failed", names)
        except Exception as e:  # noqa: BLE001 - the run's own error is the one to report
            logger.warning(f"vpskit: {host.name}: could not release the deploy lock: {e}")


def deploy_lock_taken(apps: dict[str, str] | None = None, wait: int = 60, dry: bool = False, pause: float = 5.0) -> DeployLock | None:
    """
    Take the host's deploy lock for this run, or stop naming the run that holds it.

    Call it first in a deploy file, before facts decide anything: it runs while pyinfra
    prepares, as a plain command (no operation, no change counted). A holder whose SSH
    session has ended (or, without one, whose PID on this machine is gone) is dead: its
    run is logged as unfinished and the lock taken over. A live holder is waited for up
    to ``wait`` seconds. A dry run takes nothing: it says who holds the lock, if anyone.
    End the deploy with ``deploy_lock_released``; a failing operation releases it too.

    + apps: app name -> its checkout on the host, whose commits the deploy log compares
    + wait: seconds to wait for a live holder (0: stop at once)
    + dry: only report a holder (``is_dry_run()``: pyinfra's ``--dry``)
    + pause: seconds between two tries while waiting

    **Example:**

    .. code:: python

        lock = deploy_lock_taken(apps={"shop": "/srv/apps/shop/src"}, wait=120, dry=is_dry_run())
        ...  # the deploy
        deploy_lock_released(name="Log the deploy and release its lock", lock=lock)
    """
    me = controller_name()
    if dry:
        holder = parse_holder(host.get_fact(DeployLockHolder))
        if holder and holder.liveness != "dead" and not dead_here(holder, me):
            logger.warning(f"vpskit: {host.name}: a deploy by {holder.describe()} holds the host; this dry run shows the host as it is now")
        return None
    token = secrets.token_hex(8)
    deadline = time.monotonic() + max(0, wait)
    takeover, waiting = "", False
    while True:
        taken, holder, dead = parse_take(_run(take_command(token, me, os.getpid(), apps or {}, takeover)))
        if taken:
            if dead:
                logger.warning(
                    f"vpskit: {host.name}: took over the deploy lock of a run that ended without releasing it: {dead.describe()}"
                )
            lock = DeployLock(token, me)
            state.add_callback_handler(_ReleaseOnFailure(lock, host._get_module()))
            return lock
        if dead_here(holder, me):
            takeover = holder.token
            continue
        left = deadline - time.monotonic()
        if left <= 0:
            raise OperationError(
                f"another deploy holds this host: {holder.describe()}. Run again when it has ended"
                + ("" if wait else ", or give server.deploy_lock_wait seconds to wait for it")
                + f" (a lock you know to be dead: remove {LOCK_DIR}/deploy.lock on the host)"
            )
        if not waiting:
            waiting = True
            logger.warning(f"vpskit: {host.name}: waiting up to {wait} s for the deploy by {holder.describe()}")
        time.sleep(min(pause, left))


@operation()
def deploy_lock_released(lock: DeployLock | None):
    """
    Log this deploy and release the host's deploy lock; counted as no change.

    The line in ``/var/log/vpskit/deploys.log`` says when the run ended, who ran it
    (``by=user@controller``, ``pid=``), when it started, ``result=ok`` and which apps
    moved from which commit to which (``apps=shop:3f2c1a2b3c4d..9a1b2c3d4e5f`` or
    ``apps=none``). Runs only when pyinfra executes (not while it detects changes).

    + lock: what ``deploy_lock_taken`` returned (None for a dry run: nothing to do)

    **Example:**

    .. code:: python

        deploy_lock_released(name="Log the deploy and release its lock", lock=lock)
    """
    if lock is None:
        host.noop("a dry run holds no deploy lock")
        return
    if state.is_executing:
        lock.release("ok")
    host.noop(f"deploy logged in {LOG_FILE}, lock released")
    yield from ()
