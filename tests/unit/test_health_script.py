"""The health report's checks (files/vpskit-health), fed with made-up host state."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
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


def test_certificate_expiry(tmp_path):
    live = tmp_path / "live" / "dibby.example.test"
    live.mkdir(parents=True)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "10", "-subj", "/CN=dibby.example.test",
         "-keyout", str(live / "key.pem"), "-out", str(live / "cert.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    pattern = str(tmp_path / "live" / "*" / "cert.pem")
    assert statuses(health.check_certs(pattern, 14)) == [("FAIL", "cert dibby.example.test")]
    assert statuses(health.check_certs(pattern, 5)) == [("ok", "cert dibby.example.test")]
    later = datetime.now(UTC).replace(year=datetime.now().year + 1)
    assert statuses(health.check_certs(pattern, 0, now=later)) == [("FAIL", "cert dibby.example.test")]


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
