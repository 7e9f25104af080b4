"""Scheduled health checks and notifications, end to end.

One fresh target per distro (docker connector) gets a small config: no apps, the
health timer every 20 s, and three notifiers aimed at stand-ins listening on the
target's own loopback (tests/sinks.py run there with its python3): a generic
webhook, a Slack-shaped one, and an SMTP relay with STARTTLS and a login whose
password comes from this process's environment. fail2ban is the watched unit the
tests stop and start.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time

import pytest

from tests.conftest import DISTROS
from tests.rig import ROOT, dump_toml, run_pyinfra, start_target, target_config

pytestmark = pytest.mark.e2e

INTERVAL = 20  # seconds between checks (the default is 5 minutes)
HOOKS = "/var/tmp/webhook.jsonl"
MAILS = "/var/tmp/mail.jsonl"
STATE = "/var/lib/vpskit/health-state.json"
PASSWORD_ENV = "VPSKIT_TEST_RELAY_PASSWORD"
WATCHED = "fail2ban.service"

CONFIG = {
    "server": {"hostname": "mon1", "upgrade": "none"},
    "deploy_user": {"name": "appuser"},
    "monitor": {
        # The test machine is shared: its load, memory and disk are not this host's health.
        "max_load_per_core": 100, "min_memory_available": 0, "max_disk_used": 100,
        "schedule": f"*:*:0/{INTERVAL}",
        "remind_hours": 24,
        "notify": [
            {"kind": "webhook", "url": "http://127.0.0.1:8025/hook"},
            {"kind": "slack", "url": "http://127.0.0.1:8025/slack"},
            {"kind": "email", "smtp_host": "127.0.0.1", "smtp_port": 2525, "smtp_user": "alerts", "password_env": PASSWORD_ENV,
             "mail_from": "vps@example.test", "mail_to": ["ops@example.test"]},
        ],
    },
}  # fmt: skip


class Deployed:
    def __init__(self, target, runs, password, new_password):
        self.target, self.runs, self.password, self.new_password = target, runs, password, new_password


def start_sinks(target, tmp_path) -> None:
    """The webhook receiver and the SMTP relay on the target's loopback; the relay's certificate trusted there."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    target.put_file("/opt/sinks/key.pem", (tmp_path / "key.pem").read_text(), mode=0o600)
    target.put_file("/opt/sinks/cert.pem", (tmp_path / "cert.pem").read_text())
    target.put_file("/usr/local/share/ca-certificates/sink.crt", (tmp_path / "cert.pem").read_text())
    target.exec("update-ca-certificates >/dev/null")
    start_webhook_sink(target)
    start_smtp_sink(target)


def start_webhook_sink(target) -> None:
    """A receiver on the target's loopback, port 8025, recording each POST (path and body) in HOOKS."""
    target.put_file("/opt/sinks/sinks.py", (ROOT / "tests" / "sinks.py").read_text())
    target.exec(f"systemd-run --unit=webhook-sink python3 /opt/sinks/sinks.py webhook 8025 {HOOKS}")
    target.exec("for i in $(seq 1 50); do ss -Hltn | grep -q 127.0.0.1:8025 && exit 0; sleep 0.2; done; exit 1")


def start_smtp_sink(target) -> None:
    target.exec(f"systemd-run --unit=smtp-sink python3 /opt/sinks/sinks.py smtp 2525 {MAILS} /opt/sinks/cert.pem /opt/sinks/key.pem")
    target.exec("for i in $(seq 1 50); do ss -Hltn | grep -q 127.0.0.1:2525 && exit 0; sleep 0.2; done; exit 1")


@pytest.fixture(scope="module", params=DISTROS)
def deployed(request, docker_engine, deployed_images, keys, tmp_path_factory):
    distro = request.param
    target = start_target(docker_engine, deployed_images(distro), distro, publish=())
    try:
        tmp = tmp_path_factory.mktemp(f"monitoring-{distro}")
        start_sinks(target, tmp)
        cfg = tmp / "vpskit.toml"
        cfg.write_text(dump_toml(target_config(CONFIG, target, keys, connector="docker")))
        password, new_password = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        runs = {
            # As verbose as pyinfra gets, with diffs: the password must not show.
            "first": run_pyinfra(cfg, "-vvv", "--diff", env={PASSWORD_ENV: password}),
            "second": run_pyinfra(cfg, env={PASSWORD_ENV: password}),
            # A new password: a dry run shows that the notifiers' file would change, not what it holds.
            "rotated_dry": run_pyinfra(cfg, "--dry", "--diff", "-vvv", env={PASSWORD_ENV: new_password}),
            "no_password": run_pyinfra(cfg, env={PASSWORD_ENV: ""}, check=False),
        }
        yield Deployed(target, runs, password, new_password)
    finally:
        target.remove()


def lines(target, path) -> list[dict]:
    out = target.exec(f"cat {path} 2>/dev/null", check=False).stdout
    return [json.loads(line) for line in out.splitlines()]


def hook_messages(target, path="/hook") -> list[dict]:
    return [json.loads(r["body"]) for r in lines(target, HOOKS) if r["path"] == path]


def wait_for(what, condition, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if value := condition():
            return value
        time.sleep(1)
    raise AssertionError(f"no {what} within {timeout} s")


def state(target) -> dict:
    """What the timer's last check saved (empty before the first one)."""
    saved = target.exec(f"cat {STATE} 2>/dev/null", check=False).stdout
    return json.loads(saved) if saved else {"items": {}, "checked": 0}


def checked_since(target, t: float) -> bool:
    return state(target)["checked"] > t


def test_second_run_changes_nothing(deployed):
    assert deployed.runs["first"].changed > 0
    deployed.runs["second"].assert_quiet()


def test_the_relay_password_lands_only_in_a_root_only_file_and_is_never_printed(deployed):
    t = deployed.target
    assert t.out("stat -c '%a %U %G' /etc/vpskit/notify.json") == "600 root root"
    assert deployed.password in t.out("cat /etc/vpskit/notify.json")
    for name, run in deployed.runs.items():
        assert deployed.password not in run.output, name
        assert deployed.new_password not in run.output, name
    grep = t.exec(f"grep -rlF {deployed.password} /etc/systemd/system /etc/vpskit/health.json /var/log /var/lib/vpskit", check=False)
    assert grep.stdout == ""
    assert "Health notifiers | Where health notifications go" in deployed.runs["rotated_dry"].changed_ops
    # The dry run changed nothing: the host still has the first password.
    assert deployed.password in t.out("cat /etc/vpskit/notify.json")


def test_a_missing_password_variable_stops_the_run_naming_the_field(deployed):
    run = deployed.runs["no_password"]
    assert run.returncode != 0
    assert f"monitor.notify[2].password_env: environment variable {PASSWORD_ENV} is not set" in run.output


def test_the_timer_runs_the_check_on_schedule(deployed):
    t = deployed.target
    assert t.out("systemctl is-enabled vpskit-health.timer") == "enabled"
    assert t.out("systemctl is-active vpskit-health.timer") == "active"
    wait_for("scheduled check", lambda: checked_since(t, time.time() - INTERVAL), 3 * INTERVAL)
    assert t.out("vpskit-health | tail -n 1") == "healthy"


def test_notify_test_reaches_every_notifier(deployed):
    t = deployed.target
    r = t.exec("vpskit-health --notify-test", check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert [m["event"] for m in hook_messages(t)][-1] == "test"
    slack = hook_messages(t, "/slack")[-1]
    assert list(slack) == ["text"] and slack["text"].startswith("vpskit mon1: test message")
    mail = lines(t, MAILS)[-1]
    assert mail["tls"] is True and mail["auth"] == ["alerts", deployed.password]
    assert "Subject: vpskit mon1: test message" in mail["data"]


def test_notify_test_names_a_notifier_that_fails(deployed):
    t = deployed.target
    t.exec("systemctl stop smtp-sink")
    try:
        r = t.exec("vpskit-health --notify-test", check=False)
    finally:
        start_smtp_sink(t)
    assert r.returncode == 1
    assert "FAIL  monitor.notify[2] (email 127.0.0.1): ConnectionRefusedError" in r.stdout
    assert "ok    monitor.notify[0] (webhook 127.0.0.1)" in r.stdout


def test_a_failure_its_recovery_and_no_storm_when_it_flaps(deployed):
    t = deployed.target
    start = time.time()
    wait_for("a check", lambda: checked_since(t, start), INTERVAL + 15)
    assert not any(item["failing"] for item in state(t)["items"].values()), state(t)
    before = len(hook_messages(t))

    stopped = time.time()
    t.exec(f"systemctl stop {WATCHED}")
    failing = wait_for("failure message", lambda: [m for m in hook_messages(t)[before:] if m["event"] == "failing"], INTERVAL + 15)
    assert time.time() - stopped <= INTERVAL + 15
    assert failing[0]["new"] == [WATCHED] and WATCHED in failing[0]["failing"] and failing[0]["host"] == "mon1"
    assert any(f"FAILING {WATCHED}" in m["text"] for m in hook_messages(t, "/slack"))
    assert any(f"Subject: vpskit mon1: FAILING {WATCHED}" in m["data"] for m in lines(t, MAILS))

    t.exec(f"systemctl start {WATCHED}")
    recovered = wait_for("recovery message", lambda: [m for m in hook_messages(t)[before:] if m["event"] == "recovered"], INTERVAL + 15)
    assert recovered[0]["recovered"] == [WATCHED] and recovered[0]["healthy"] is True
    told = len(hook_messages(t))

    # A second failure cycle within remind_hours: the check sees it fail and recover, and tells nobody.
    t.exec(f"systemctl stop {WATCHED}")
    wait_for("a check that sees the failure", lambda: state(t)["items"].get(WATCHED, {}).get("failing"), INTERVAL + 15)
    t.exec(f"systemctl start {WATCHED}")
    for what in ("a check that sees the recovery", "one more check"):
        since = time.time()
        wait_for(what, lambda: checked_since(t, since), INTERVAL + 15)  # noqa: B023 - called right here
    assert not state(t)["items"][WATCHED]["failing"]
    assert len(hook_messages(t)) == told, hook_messages(t)[told:]
    assert t.exec("systemctl is-failed vpskit-health.service", check=False).stdout.strip() != "failed"
