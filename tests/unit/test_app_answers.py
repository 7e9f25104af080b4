"""After a restart the app must answer on its health path; otherwise the run fails naming it, with its error log."""

from __future__ import annotations

import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from operations import fail2ban
from operations.app import answer_command
from operations.config import App, parse_config
from operations.distro import Distro
from operations.plan import Plan
from operations.stamped import stamped_command


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_response(200 if self.path == "/api/v1/health/" else 500)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def port():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_port
    server.shutdown()


def wait(port: int, path: str, tmp_path, timeout: int = 2) -> subprocess.CompletedProcess:
    log = tmp_path / "error.log"
    log.write_text("".join(f"line {i}\n" for i in range(30)) + "ModuleNotFoundError: No module named 'app'\n")
    command = answer_command("api", sys.executable, port, path, str(log), timeout=timeout)
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=30)


def test_an_app_answering_on_its_health_path_passes(port, tmp_path):
    assert wait(port, "/api/v1/health/", tmp_path).returncode == 0


def test_an_app_that_does_not_answer_fails_naming_it_with_its_error_log(port, tmp_path):
    run = wait(port, "/", tmp_path)
    assert run.returncode == 1
    first, *log = run.stderr.splitlines()
    assert first.startswith(f"app api does not answer at http://127.0.0.1:{port}/ within 2s (HTTP 500); last lines of ")
    assert log[-1] == "ModuleNotFoundError: No module named 'app'" and len(log) == 20
    refused = wait(1, "/", tmp_path, timeout=1)
    assert refused.returncode == 1 and "Connection refused" in refused.stderr


def test_the_answer_is_stamped_when_it_comes_and_forgotten_when_it_does_not(port, tmp_path):
    """After a restart the check runs even with the stamp current; a failed check removes it, so the next run checks again."""
    stamp = tmp_path / ".vpskit-answered"
    log = tmp_path / "error.log"
    log.write_text("RuntimeError: payments provider unreachable\n")

    def check(path: str) -> subprocess.CompletedProcess:
        answer = answer_command("api", sys.executable, port, path, str(log), timeout=1, stamp=str(stamp))
        command = stamped_command(answer, "echo abc123", str(stamp), str(tmp_path), always=True)
        return subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=30)

    assert check("/api/v1/health/").returncode == 0 and stamp.read_text() == "abc123\n"
    failed = check("/")
    assert failed.returncode == 1 and not stamp.exists()
    assert "app api does not answer" in failed.stderr and "RuntimeError: payments provider unreachable" in failed.stderr
    assert check("/api/v1/health/").returncode == 0 and stamp.read_text() == "abc123\n"


def test_the_health_report_checks_the_health_path_and_knows_basic_auth(minimal_raw, tmp_path, monkeypatch):
    monkeypatch.setattr(fail2ban, "snapshot_fact", lambda *a, **k: {"mtime": 0})  # the host has /var/log/auth.log
    minimal_raw["web"] = {"proxy": "caddy"}
    minimal_raw["apps"] = [
        {
            "name": "api",
            "port": 8000,
            "repo": "https://git.example.com/api.git",
            "domains": ["api.example.com"],
            "health_path": "/api/v1/utils/health-check/",
            "basic_auth": {"user": "admin", "hash": "$2a$14$" + "a" * 53},
        }
    ]
    plan = Plan(parse_config(minimal_raw, base_dir=str(tmp_path)), Distro("ubuntu", "24.04", "noble"))
    (app,) = plan.health["apps"]
    assert (app["url"], app["basic_auth"]) == ("https://127.0.0.1/api/v1/utils/health-check/", True)
    assert App("x", 1).health_path == "/"
