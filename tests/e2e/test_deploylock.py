"""The deploy lock and the deploy log, end to end on the deployed Ubuntu 24.04 host.

Each scenario holds dpkg's lock on the host for a while, so that a first run sits in
"Wait for apt locks" (the lock taken, the host untouched) while a second run, a dry run
or a kill comes. The ``deployed`` host's own runs (first, second over SSH, third over
the docker connector) are the log's first lines.
"""

from __future__ import annotations

import re
import threading
import time
from contextlib import contextmanager

import pytest

from operations.deploylock import controller_name
from tests.e2e.conftest import write
from tests.rig import parse_results, run_pyinfra, start_pyinfra, target_config

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("deployed", ["ubuntu2404"], indirect=True)]

LOG = "/var/log/vpskit/deploys.log"
LOCK = "/run/vpskit/deploy.lock"
APT_WAIT = "Starting operation: Base system | Wait for apt locks"
LINE = re.compile(
    r"^(?P<end>\S+Z) by=(?P<by>\S+) pid=(?P<pid>\d+) start=(?P<start>\S+Z) result=(?P<result>\w+) apps=(?P<apps>\S+)(?P<rest>.*)$"
)


class Background:
    """A deploy run started in the background, its output collected as it comes."""

    def __init__(self, config):
        self.proc = start_pyinfra(config)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True)
        self._reader.start()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float = 300) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if any(text in line for line in list(self.lines)):
                return
            assert self.proc.poll() is None, f"the run ended before {text!r}:\n{self.output[-3000:]}"
            time.sleep(0.2)
        raise AssertionError(f"no {text!r} within {timeout} s:\n{self.output[-3000:]}")

    def finish(self, timeout: float = 900) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=30)
        return code


def hold_dpkg(target, seconds: int) -> None:
    """Hold dpkg's lock on the host for ``seconds``: a deploy started meanwhile waits in "Wait for apt locks"."""
    unit = f"hold-dpkg-{time.monotonic_ns()}"
    target.exec(
        f'systemd-run --unit={unit} python3 -c "import fcntl,time;'
        f"f=open('/var/lib/dpkg/lock-frontend','w');fcntl.lockf(f,fcntl.LOCK_EX);time.sleep({seconds})\""
    )
    time.sleep(1)


@contextmanager
def first_run_waiting(deployed, seconds: int):
    """A run started while dpkg is held for ``seconds``: inside the block it holds the deploy lock and waits in
    "Wait for apt locks"; it must end well after it."""
    hold_dpkg(deployed.target, seconds)
    first = Background(deployed.config)
    try:
        first.wait_for(APT_WAIT)
        yield first
    finally:
        assert first.finish() == 0, first.output[-3000:]


def log_lines(target) -> list[re.Match]:
    lines = target.out(f"cat {LOG}").splitlines()
    matches = [LINE.match(line) for line in lines]
    assert all(matches), lines
    return matches


def config_with(deployed, keys, tmp_path, name: str, connector: str = "ssh", **server) -> str:
    """The deployed host's config with ``server`` settings (``connector``: how pyinfra reaches it)."""
    raw = {**deployed.raw, "server": {**deployed.raw["server"], **server}}
    if connector == "docker":
        raw = target_config(raw, deployed.target, keys, connector="docker")
    return write(tmp_path / f"{name}.toml", raw)


def test_every_run_is_logged_with_who_when_and_its_result(deployed):
    t = deployed.target
    lines = log_lines(t)
    assert len(lines) >= 3  # the fixture's three runs, later tests' runs after them
    for m in lines[:3]:
        assert (m["by"], m["result"], m["apps"]) == (controller_name(), "ok", "none")
        assert m["start"] <= m["end"]
    assert lines[0]["end"] <= lines[1]["start"] and lines[1]["end"] <= lines[2]["start"]
    assert t.exec(f"test -e {LOCK}", check=False).returncode != 0  # released
    assert t.out(f"stat -c '%a %U %G' {LOG}") == "640 root adm"


def test_a_second_run_stops_naming_the_holder_and_a_dry_run_goes_on(deployed, keys, tmp_path):
    t = deployed.target
    before = len(log_lines(t))
    with first_run_waiting(deployed, 60) as first:
        second = run_pyinfra(config_with(deployed, keys, tmp_path, "nowait", deploy_lock_wait=0), check=False, timeout=300)
        assert second.returncode != 0
        assert f"another deploy holds this host: {controller_name()} (PID {first.proc.pid} there), started 20" in second.output, second
        # A dry run neither waits nor takes the lock: it says who holds it.
        token = t.out(f"grep ^token= {LOCK}")
        dry = run_pyinfra(deployed.config, "--dry", timeout=600)
        assert f"a deploy by {controller_name()} (PID {first.proc.pid} there)" in dry.output, dry
        assert t.out(f"grep ^token= {LOCK}") == token
    lines = log_lines(t)[before:]
    assert [(m["pid"], m["result"]) for m in lines] == [(str(first.proc.pid), "ok")]  # neither the stopped nor the dry run


def test_a_second_run_waits_for_the_first_and_changes_nothing(deployed, keys, tmp_path):
    t = deployed.target
    before = len(log_lines(t))
    with first_run_waiting(deployed, 20) as first:
        second = Background(config_with(deployed, keys, tmp_path, "wait", deploy_lock_wait=600))
        assert second.finish() == 0, second.output[-3000:]
    assert f"waiting up to 600 s for the deploy by {controller_name()} (PID {first.proc.pid} there)" in second.output
    changed, errors, _, changed_ops = parse_results(second.output)
    assert (changed, errors) == (0, 0), f"changed: {changed_ops}\n{second.output[-3000:]}"
    one, two = log_lines(t)[before:]
    assert (one["pid"], two["pid"]) == (str(first.proc.pid), str(second.proc.pid))
    assert one["end"] <= two["start"]


@pytest.mark.parametrize("connector", ["ssh", "docker"])
def test_a_run_killed_while_holding_the_lock_is_taken_over(deployed, keys, tmp_path, connector):
    t = deployed.target
    before = len(log_lines(t))
    config = config_with(deployed, keys, tmp_path, connector, connector=connector)
    hold_dpkg(t, 15)
    killed = Background(config)
    killed.wait_for(APT_WAIT)
    killed.proc.kill()
    assert killed.finish(timeout=60) == -9
    assert f"pid={killed.proc.pid}" in t.out(f"cat {LOCK}")  # left behind
    nxt = run_pyinfra(config_with(deployed, keys, tmp_path, "next", deploy_lock_wait=30), timeout=900)
    assert nxt.errors == 0
    assert "took over the deploy lock of a run that ended without releasing it" in nxt.output, nxt
    dead, ok = log_lines(t)[before:]
    assert (dead["pid"], dead["result"], ok["result"]) == (str(killed.proc.pid), "unfinished", "ok")
    assert t.exec(f"test -e {LOCK}", check=False).returncode != 0
