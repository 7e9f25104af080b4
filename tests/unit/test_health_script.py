"""The health report's checks (files/vpskit-health), fed with made-up host state."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import re
import subprocess
import sys
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from operations.render import FILES_DIR

_loader = importlib.machinery.SourceFileLoader("vpskit_health", str(FILES_DIR / "vpskit-health"))
_spec = importlib.util.spec_from_loader("vpskit_health", _loader)
health = importlib.util.module_from_spec(_spec)
_loader.exec_module(health)

NOW = 1_800_000_000


def statuses(results):
    return [(status, name) for status, name, _ in results]


def test_load_memory_and_disk_thresholds(tmp_path):
    assert statuses(health.check_load(2.0, load=3.9, cores=2)) == [("ok", "cpu")]
    assert statuses(health.check_load(2.0, load=4.1, cores=2)) == [("FAIL", "cpu")]
    meminfo = "MemTotal:       1000000 kB\nMemFree:          10000 kB\nMemAvailable:     90000 kB\n"
    assert statuses(health.check_memory(10, meminfo)) == [("FAIL", "memory")]
    assert statuses(health.check_memory(5, meminfo)) == [("ok", "memory")]
    assert statuses(health.check_disks([str(tmp_path)], 100)) == [("ok", f"disk {tmp_path}")]
    assert statuses(health.check_disks([str(tmp_path)], 0)) == [("FAIL", f"disk {tmp_path}")]
    assert statuses(health.check_disks([str(tmp_path / "nope")], 90))[0][0] == "FAIL"


def test_required_units_must_be_active_optional_ones_only_when_installed():
    states = {"postgresql.service": ("loaded", "active"), "cron.service": ("loaded", "failed"),
              "nginx.service": ("not-found", "inactive"), "fail2ban.service": ("loaded", "inactive")}  # fmt: skip
    results = health.check_units(["postgresql.service", "cron.service"], ["nginx.service", "fail2ban.service"], state=states.get)
    assert statuses(results) == [("ok", "postgresql.service"), ("FAIL", "cron.service"), ("FAIL", "fail2ban.service")]


def _write_status(tmp_path, kind, name, **values):
    d = tmp_path / kind
    d.mkdir(exist_ok=True)
    (d / f"{name}.status").write_text("".join(f"{k}={v}\n" for k, v in values.items()))


def test_backup_age_failure_and_missing_backups(tmp_path):
    good = tmp_path / "dibby.dump"
    good.write_text("x")
    _write_status(tmp_path, "backup", "fresh", state="ok", time=NOW - 3600, file=good, message="verified")
    _write_status(tmp_path, "backup", "old", state="ok", time=NOW - 30 * 3600, file=good, message="verified")
    _write_status(tmp_path, "backup", "failed", state="failed", time=NOW - 60, file="", message="dump failed")
    _write_status(tmp_path, "backup", "gone", state="ok", time=NOW - 60, file=tmp_path / "deleted.dump", message="")
    _write_status(tmp_path, "backup", "skipped", state="skipped", time=NOW - 60, file="", message="no source yet")
    results = health.check_backups(["fresh", "old", "failed", "gone", "skipped", "never"], str(tmp_path), 26, now=NOW)
    assert statuses(results) == [
        ("ok", "backup fresh"), ("FAIL", "backup old"), ("FAIL", "backup failed"),
        ("FAIL", "backup gone"), ("ok", "backup skipped"), ("FAIL", "backup never"),
    ]  # fmt: skip


def test_backup_times_for_prometheus_count_only_good_runs(tmp_path):
    _write_status(tmp_path, "backup", "fresh", state="ok", time=NOW - 3600, file="f", message="verified")
    _write_status(tmp_path, "backup", "failed", state="failed", time=NOW - 60, file="", message="dump failed")
    _write_status(tmp_path, "backup", "skipped", state="skipped", time=NOW - 60, file="", message="no source yet")
    text = health.backup_metrics(["fresh", "failed", "skipped", "never"], str(tmp_path))
    samples = [line for line in text.splitlines() if not line.startswith("#")]
    assert samples == [
        f'vpskit_backup_last_success_timestamp_seconds{{item="fresh"}} {NOW - 3600}',
        'vpskit_backup_last_success_timestamp_seconds{item="failed"} 0',
        f'vpskit_backup_last_success_timestamp_seconds{{item="skipped"}} {NOW - 60}',
        'vpskit_backup_last_success_timestamp_seconds{item="never"} 0',
    ]
    assert "# TYPE vpskit_backup_last_success_timestamp_seconds gauge" in text


def test_the_timer_writes_the_metrics_file_whole_and_readable(tmp_path):
    path = tmp_path / "vpskit.prom"
    health.write_metrics(str(path), "x 1\n")
    assert path.read_text() == "x 1\n" and oct(path.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in tmp_path.iterdir()] == ["vpskit.prom"]


def test_drill_results(tmp_path):
    _write_status(tmp_path, "drill", "a", state="ok", time=NOW - 86400, file="f", message="tables=1 rows=5")
    _write_status(tmp_path, "drill", "b", state="failed", time=NOW - 86400, file="f", message="dump lists 2 tables")
    results = health.check_drills(["a", "b", "c"], str(tmp_path), now=NOW)
    assert statuses(results) == [("ok", "restore drill a"), ("FAIL", "restore drill b"), ("WARN", "restore drill c")]


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        code = 200 if self.headers["Host"] == "dibby.example.test" else 404
        self.send_response(code)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def web():
    server = HTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()


def test_app_checks_unit_and_http_answer_with_host_header(web):
    up = {"name": "dibby", "unit": "dibby.service", "url": web, "host": "dibby.example.test"}
    wrong_host = {**up, "name": "other", "host": "other.example.test"}
    refused = {**up, "name": "down", "url": "http://127.0.0.1:9/"}
    results = health.check_apps([up, wrong_host, refused], state=lambda unit: ("loaded", "active"))
    assert statuses(results) == [
        ("ok", "app dibby"), ("ok", "app dibby http"),
        ("ok", "app other"), ("FAIL", "app other http"),
        ("ok", "app down"), ("FAIL", "app down http"),
    ]  # fmt: skip
    stopped = health.check_apps([{"name": "dibby", "unit": "dibby.service"}], state=lambda unit: ("loaded", "inactive"))
    assert statuses(stopped) == [("FAIL", "app dibby")]


def test_a_site_behind_basic_auth_answering_401_is_healthy():
    site = {"name": "admin", "unit": "", "url": "https://127.0.0.1/healthz", "host": "admin.example.test"}
    results = health.check_apps(
        [{**site, "basic_auth": True}, site], state=lambda unit: ("loaded", "active"), status_of=lambda url, host: 401
    )
    assert statuses(results) == [("ok", "app admin http"), ("FAIL", "app admin http")]


def _self_signed(path, name: str, days: int):
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", str(days), "-subj", f"/CN={name}",
         "-keyout", str(path.with_suffix(".key")), "-out", str(path)],
        check=True, capture_output=True,
    )  # fmt: skip


def test_certificate_expiry(tmp_path):
    _self_signed(tmp_path / "live" / "dibby.example.test" / "cert.pem", "dibby.example.test", 10)
    certs = health.glob.glob(str(tmp_path / "live" / "*" / "cert.pem"))
    assert statuses(health.check_certs(certs, 14)) == [("FAIL", "cert dibby.example.test")]
    assert statuses(health.check_certs(certs, 5)) == [("ok", "cert dibby.example.test")]
    later = datetime.now(UTC).replace(year=datetime.now().year + 1)
    assert statuses(health.check_certs(certs, 0, now=later)) == [("FAIL", "cert dibby.example.test")]


def test_caddys_certificates_are_in_the_report_like_certbots(tmp_path):
    """Caddy keeps CERT_DIR/<issuer>/<name>/<name>.crt; its internal CA's (``tls internal``, 12-hour, self-renewing) are left out."""
    _self_signed(tmp_path / "live" / "dibby.example.test" / "cert.pem", "dibby.example.test", 90)
    caddy = tmp_path / "caddy" / "certificates"
    _self_signed(
        caddy / "acme-v02.api.letsencrypt.org-directory" / "grades.example.test" / "grades.example.test.crt", "grades.example.test", 10
    )
    _self_signed(caddy / "localhost-14000-dir" / "shop.example.test" / "shop.example.test.crt", "shop.example.test", 90)
    _self_signed(caddy / "local" / "admin.example.test" / "admin.example.test.crt", "admin.example.test", 1)
    (caddy / "localhost-14000-dir" / "shop.example.test" / "shop.example.test.json").write_text("{}")
    _self_signed(tmp_path / "caddy" / "pki" / "authorities" / "local" / "root.crt", "Caddy Local Authority", 3650)

    conf = {"cert_glob": str(tmp_path / "live" / "*" / "cert.pem"), "caddy_cert_dir": str(caddy)}
    results = health.check_certs(health.cert_paths(conf), 14)
    assert statuses(results) == [  # both places, when both are named
        ("ok", "cert dibby.example.test"),
        ("FAIL", "cert grades.example.test"),
        ("ok", "cert shop.example.test"),
    ]
    details = {name: detail for _, name, detail in results}
    assert re.fullmatch(r"expires \d{4}-\d\d-\d\d \(10 days, minimum 14\)", details["cert grades.example.test"])
    # The config names what the front proxy serves: certbot's lineages (nginx) or Caddy's certificates.
    caddy_only = health.check_certs(health.cert_paths({**conf, "cert_glob": ""}), 14)
    assert statuses(caddy_only) == [("FAIL", "cert grades.example.test"), ("ok", "cert shop.example.test")]
    assert statuses(health.check_certs(health.cert_paths({**conf, "caddy_cert_dir": ""}), 14)) == [("ok", "cert dibby.example.test")]
    assert health.caddy_certs(str(tmp_path / "no-caddy-here")) == []


def test_unreadable_config_exits_2(tmp_path):
    r = subprocess.run(
        [sys.executable, str(FILES_DIR / "vpskit-health")], env={"VPSKIT_HEALTH_CONF": str(tmp_path / "none.json")},
        capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 2 and "cannot read" in r.stderr


def test_report_exit_code_follows_failures(tmp_path, monkeypatch, capsys):
    conf = tmp_path / "health.json"
    conf.write_text(json.dumps({"x": 1}))
    monkeypatch.setattr(health, "CONF", str(conf))
    monkeypatch.setattr(health, "report", lambda c: [("ok", "cpu", "fine"), ("WARN", "journal", "2 lines")])
    assert health.main() == 0
    assert "healthy" in capsys.readouterr().out
    monkeypatch.setattr(health, "report", lambda c: [("ok", "cpu", "fine"), ("FAIL", "app dibby", "inactive")])
    assert health.main() == 1
    assert "UNHEALTHY: 1 problem(s): app dibby" in capsys.readouterr().out


def test_a_compose_app_is_checked_over_http_only():
    apps = [{"name": "memo", "unit": "", "url": "https://127.0.0.1/", "host": "memo.example.test"}]
    results = health.check_apps(apps, state=lambda unit: pytest.fail(f"no unit to check, got {unit!r}"), status_of=lambda url, host: 200)
    assert results == [("ok", "app memo http", "https://127.0.0.1/ (Host: memo.example.test): HTTP 200")]


# ---------------------------------------------------------------- when to notify

HOUR = 3600
DAY = 24 * HOUR


class Checks:
    """Runs ``step`` check after check, as the timer would, and keeps what each one told."""

    def __init__(self, remind=DAY):
        self.items, self.remind, self.now = {}, remind, NOW

    def check(self, *failing, after=300):
        self.now += after
        self.items, tell = health.step(self.items, {name: f"{name} is down" for name in failing}, self.now, self.remind)
        return {k: v for k, v in tell.items() if v}


def test_a_failure_is_told_once_and_its_recovery_once():
    c = Checks()
    assert c.check() == {}
    assert c.check("app dibby") == {"failing": ["app dibby"]}
    assert c.check("app dibby") == {}
    assert c.check("app dibby") == {}
    assert c.check() == {"recovered": ["app dibby"]}
    assert c.check() == {}


def test_a_new_failing_item_is_told_while_others_still_fail():
    c = Checks()
    assert c.check("app dibby") == {"failing": ["app dibby"]}
    assert c.check("app dibby", "disk /") == {"failing": ["disk /"]}
    assert c.check("disk /") == {"recovered": ["app dibby"]}
    assert c.check() == {"recovered": ["disk /"]}


def test_an_item_that_stays_failing_is_reminded_once_per_remind_hours():
    c = Checks(remind=DAY)
    assert c.check("app dibby") == {"failing": ["app dibby"]}
    assert c.check("app dibby", after=DAY - 1) == {}
    assert c.check("app dibby", after=1) == {"reminder": ["app dibby"]}
    assert c.check("app dibby", after=DAY - 300) == {}
    assert c.check("app dibby", after=300) == {"reminder": ["app dibby"]}


def test_flapping_within_the_window_sends_nothing_new():
    """Fail, recover: both told. Fail and recover again within remind_hours of the failure message: nothing."""
    c = Checks(remind=DAY)
    assert c.check("app dibby") == {"failing": ["app dibby"]}
    assert c.check() == {"recovered": ["app dibby"]}
    for _ in range(10):  # a service restarting every few minutes
        assert c.check("app dibby") == {}
        assert c.check() == {}
    # Up to FLAP_CHECKS - 1 failing checks in a row still count as flapping.
    assert [c.check("app dibby") for _ in range(health.FLAP_CHECKS - 1)] == [{}] * (health.FLAP_CHECKS - 1)
    assert c.check() == {}


def test_a_flapping_item_that_stays_down_is_told_after_flap_checks_in_a_row():
    c = Checks(remind=DAY)
    c.check("app dibby")
    c.check()
    told = [c.check("app dibby") for _ in range(health.FLAP_CHECKS)]
    assert told == [{}] * (health.FLAP_CHECKS - 1) + [{"failing": ["app dibby"]}]
    assert c.check() == {"recovered": ["app dibby"]}


def test_a_failure_after_the_window_is_told_again_and_old_records_are_forgotten():
    c = Checks(remind=DAY)
    c.check("app dibby")
    c.check()
    assert "app dibby" in c.items
    assert c.check(after=DAY) == {}
    assert c.items == {}
    assert c.check("app dibby") == {"failing": ["app dibby"]}


def test_a_failure_right_after_the_window_of_a_flapping_item_is_told():
    c = Checks(remind=2 * HOUR)
    c.check("app dibby")
    c.check()
    c.check("app dibby", after=HOUR)
    assert c.check(after=60) == {}
    assert c.check("app dibby", after=HOUR) == {"failing": ["app dibby"]}


def test_one_message_says_everything_a_check_has_to_tell():
    c = Checks()
    c.check("app dibby", "disk /")
    items, tell = health.step(c.items, {"disk /": "95% used", "cert x": "expires"}, c.now + 300, DAY)
    msg = health.message("web1", tell, items, c.now + 300)
    assert msg["event"] == "failing" and msg["title"] == "vpskit web1: FAILING cert x"
    assert msg["text"].splitlines() == ["FAILING  cert x: expires", "RECOVERED  app dibby", "also failing: disk /"]
    assert (msg["new"], msg["recovered"], msg["failing"], msg["healthy"]) == (
        ["cert x"], ["app dibby"], {"disk /": "95% used", "cert x": "expires"}, False)  # fmt: skip
    items, tell = health.step(items, {}, c.now + 600, DAY)
    msg = health.message("web1", tell, items, c.now + 600)
    assert (msg["event"], msg["title"], msg["healthy"]) == ("recovered", "vpskit web1: healthy again", True)


# ---------------------------------------------------------------- notifiers

MSG = {"event": "failing", "title": "vpskit web1: FAILING app dibby", "text": "FAILING  app dibby: inactive"}


def test_payload_shapes_of_slack_discord_ntfy_and_a_generic_webhook():
    body, headers = health.http_request({"kind": "slack"}, MSG)
    assert json.loads(body) == {"text": "vpskit web1: FAILING app dibby\nFAILING  app dibby: inactive"}
    assert headers["Content-Type"] == "application/json"
    body, _ = health.http_request({"kind": "discord"}, {**MSG, "text": "x" * 3000})
    assert list(json.loads(body)) == ["content"] and len(json.loads(body)["content"]) == 2000
    body, headers = health.http_request({"kind": "ntfy"}, MSG)
    assert body == b"FAILING  app dibby: inactive"
    assert headers == {"Title": "vpskit web1: FAILING app dibby", "Priority": "high", "Tags": "warning"}
    _, headers = health.http_request({"kind": "ntfy"}, {**MSG, "event": "recovered"})
    assert headers["Priority"] == "default"
    body, _ = health.http_request({"kind": "webhook"}, MSG)
    assert json.loads(body) == MSG


@pytest.fixture
def sink(tmp_path):
    """The tests' webhook receiver in a thread: (base URL, file of what it got)."""
    from tests.sinks import webhook_server

    out = tmp_path / "webhook.jsonl"
    server = webhook_server(0, str(out))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", out
    server.shutdown()


def received(out):
    return [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []


def test_notify_test_reaches_every_notifier_and_names_the_one_that_failed(sink, capsys):
    url, out = sink
    good = {"label": "monitor.notify[0] (slack 127.0.0.1)", "kind": "slack", "url": f"{url}/hook"}
    bad = {"label": "monitor.notify[1] (webhook 127.0.0.1)", "kind": "webhook", "url": f"{url}/fail"}
    assert health.notify_test([good], hostname="web1") == 0
    assert "vpskit web1: test message" in json.loads(received(out)[0]["body"])["text"]
    assert health.notify_test([good, bad], hostname="web1") == 1
    printed = capsys.readouterr().out
    assert "FAIL  monitor.notify[1] (webhook 127.0.0.1): HTTPError: HTTP Error 500" in printed
    assert "ok    monitor.notify[0] (slack 127.0.0.1)" in printed
    assert health.notify_test([]) == 1


@pytest.fixture
def state(tmp_path, monkeypatch):
    path = tmp_path / "state" / "health-state.json"
    monkeypatch.setattr(health, "STATE", str(path))
    return path


def test_the_timer_run_notifies_changes_and_saves_the_state(sink, state, capsys):
    url, out = sink
    hook = [{"label": "hook", "kind": "webhook", "url": f"{url}/hook"}]
    down = [("ok", "cpu", "fine"), ("FAIL", "app dibby", "dibby.service inactive"), ("WARN", "journal", "3 lines")]
    assert health.notify({"remind_hours": 24}, hook, down, now=NOW, hostname="web1") == 0
    assert health.notify({"remind_hours": 24}, hook, down, now=NOW + 300, hostname="web1") == 0
    sent = [json.loads(r["body"]) for r in received(out)]
    assert [(m["event"], m["new"], m["failing"]) for m in sent] == [("failing", ["app dibby"], {"app dibby": "dibby.service inactive"})]
    assert json.loads(state.read_text())["items"]["app dibby"]["told"] == "failing"
    assert "notified (failing): vpskit web1: FAILING app dibby" in capsys.readouterr().out


def test_when_no_notifier_delivers_the_next_check_tries_again(sink, state):
    url, out = sink
    broken = [{"label": "hook", "kind": "webhook", "url": f"{url}/fail"}]
    down = [("FAIL", "app dibby", "inactive")]
    assert health.notify({}, broken, down, now=NOW, hostname="web1") == 1
    assert not state.exists()
    hook = [{"label": "hook", "kind": "webhook", "url": f"{url}/hook"}]
    assert health.notify({}, hook, down, now=NOW + 300, hostname="web1") == 0
    assert [r["path"] for r in received(out)] == ["/fail", "/hook"]
    # One of two delivered: the state is saved (no storm on the working one), the run still fails.
    assert health.notify({}, hook + broken, [], now=NOW + 600, hostname="web1") == 1
    assert json.loads(state.read_text())["items"]["app dibby"]["told"] == "recovered"


def test_without_notifiers_the_timer_run_keeps_the_state_and_logs_only(state, capsys):
    assert health.notify({}, [], [("FAIL", "disk /", "95% used")], now=NOW, hostname="web1") == 0
    assert "UNHEALTHY: disk /" in capsys.readouterr().out
    assert json.loads(state.read_text())["items"]["disk /"]["told"] == "failing"


def test_a_crashing_check_is_itself_a_failing_item():
    assert health.run_report({}) == [("FAIL", "health check", "crashed: KeyError: 'max_load_per_core'")]


@pytest.fixture
def smtp_sink(tmp_path, monkeypatch):
    """The tests' SMTP relay with STARTTLS (a self-signed certificate the client is made to trust)."""
    from tests.sinks import smtp_server

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    real = health.ssl.create_default_context
    monkeypatch.setattr(health.ssl, "create_default_context", lambda: real(cafile=str(cert)))
    out = tmp_path / "mail.jsonl"
    server = smtp_server(0, str(out), str(cert), str(key))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], out
    server.shutdown()
    server.server_close()


def test_email_goes_through_the_relay_over_starttls_with_the_login(smtp_sink):
    port, out = smtp_sink
    notifier = {
        "label": "mail", "kind": "email", "smtp_host": "127.0.0.1", "smtp_port": port, "smtp_security": "starttls",
        "smtp_user": "alerts", "password": "s3cret pass", "mail_from": "vps@example.test", "mail_to": ["ops@example.test", "me@example.test"],
    }  # fmt: skip
    assert health.deliver([notifier], MSG) == []
    (mail,) = received(out)
    assert mail["tls"] is True and mail["auth"] == ["alerts", "s3cret pass"]
    assert (mail["from"], mail["to"]) == ("<vps@example.test>", ["<ops@example.test>", "<me@example.test>"])
    assert "Subject: vpskit web1: FAILING app dibby" in mail["data"] and "FAILING  app dibby: inactive" in mail["data"]


def test_a_relay_without_starttls_gets_no_password_in_clear(tmp_path):
    from tests.sinks import smtp_server

    out = tmp_path / "mail.jsonl"
    server = smtp_server(0, str(out))  # no certificate: no STARTTLS offered
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        notifier = {"label": "mail", "kind": "email", "smtp_host": "127.0.0.1", "smtp_port": server.server_address[1],
                    "smtp_security": "starttls", "smtp_user": "alerts", "password": "pw", "mail_from": "a@example.test",
                    "mail_to": ["b@example.test"]}  # fmt: skip
        (failed,) = health.deliver([notifier], MSG)
        assert failed[0] == "mail" and "STARTTLS" in failed[1]
        assert not out.exists()
        # Without a login, "none" sends in clear, as configured.
        assert health.deliver([{**notifier, "smtp_security": "none", "smtp_user": ""}], MSG) == []
        assert received(out)[0]["auth"] is None
    finally:
        server.shutdown()
        server.server_close()


def test_a_damaged_state_file_starts_afresh_instead_of_stopping_the_checks(state, capsys):
    state.parent.mkdir()
    state.write_text("{half")
    assert health.notify({}, [], [("FAIL", "disk /", "95% used")], now=NOW, hostname="web1") == 0
    assert "unreadable" in capsys.readouterr().err
    assert json.loads(state.read_text())["items"]["disk /"]["told"] == "failing"


def test_an_unreadable_notifier_file_is_named(tmp_path, monkeypatch, capsys):
    (tmp_path / "health.json").write_text("{}")
    (tmp_path / "notify.json").write_text("[")
    monkeypatch.setattr(health, "CONF", str(tmp_path / "health.json"))
    monkeypatch.setattr(health, "NOTIFY_CONF", str(tmp_path / "notify.json"))
    assert health.main(["--notify-test"]) == 2
    assert f"cannot read {tmp_path / 'notify.json'}" in capsys.readouterr().err
    assert health.main(["--bogus"]) == 2
