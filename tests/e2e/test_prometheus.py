"""Prometheus, end to end: the exporters scraped, the rules loaded, an alert through Alertmanager, loopback only.

One target per distro gets one app of the example config (dibby: Flask with
PostgreSQL, behind nginx, certificate from pebble) with ``prometheus = true``,
the memory alert's threshold lowered to 1 % (and no waiting time) so that it
fires, and a generic webhook notifier aimed at a receiver on the target's own
loopback (tests/sinks.py). It is deployed twice; the second run must change nothing.
"""

from __future__ import annotations

import json
import tomllib
import urllib.parse

import pytest

from operations.prometheus import ALERTMANAGER, BLACKBOX, MTAIL, NGINX, NODE, POSTGRES, PROMETHEUS, STUB_STATUS_PORT
from tests.conftest import DISTROS
from tests.e2e.test_monitoring import hook_messages, start_webhook_sink, wait_for
from tests.rig import ROOT, dump_toml, run_pyinfra, start_target, target_config
from tests.web_fixtures import prepare_web_target

pytestmark = pytest.mark.e2e

JOBS = {"prometheus", "alertmanager", "node", "blackbox", "postgres", "nginx", "mtail", "apps"}
DAEMONS = (PROMETHEUS, ALERTMANAGER, NODE, BLACKBOX, POSTGRES, NGINX)


def config() -> dict:
    raw = tomllib.loads((ROOT / "examples" / "vpskit.toml").read_text())
    raw["apps"] = [a for a in raw["apps"] if a["name"] == "dibby"]
    for section in ("docker", "nodejs"):
        raw.pop(section, None)
    raw["server"].update(upgrade="none", packages=[])
    raw["tls"].pop("email", None)
    raw["monitor"] = {
        # The test machine is shared: its load, memory and disk are not this host's health.
        "max_load_per_core": 100, "min_memory_available": 0, "max_disk_used": 100,
        "prometheus": True,
        "alerts": {"memory_percent": 1, "for_minutes": 0},
        "notify": [{"kind": "webhook", "url": "http://127.0.0.1:8025/hook"}],
    }  # fmt: skip
    return raw


class Deployed:
    def __init__(self, target, runs, raw):
        self.target, self.runs, self.raw = target, runs, raw

    def query(self, promql: str) -> list[dict]:
        q = urllib.parse.quote(promql)
        out = self.target.out(f"curl -sS --max-time 10 'http://127.0.0.1:{PROMETHEUS.port}/api/v1/query?query={q}'")
        return json.loads(out)["data"]["result"]


@pytest.fixture(scope="module", params=DISTROS)
def deployed(request, docker_engine, deployed_images, keys, tmp_path_factory):
    distro = request.param
    target = start_target(docker_engine, deployed_images(distro), distro, publish=())
    try:
        start_webhook_sink(target)
        raw = target_config(prepare_web_target(target, config()), target, keys, connector="docker")
        cfg = tmp_path_factory.mktemp(f"prometheus-{distro}") / "vpskit.toml"
        cfg.write_text(dump_toml(raw))
        runs = {"first": run_pyinfra(cfg)}
        runs["second"] = run_pyinfra(cfg, "-v")
        yield Deployed(target, runs, raw)
    finally:
        target.remove()


def test_second_run_changes_nothing(deployed):
    assert deployed.runs["first"].changed > 0
    deployed.runs["second"].assert_quiet()


def test_every_daemon_listens_on_loopback_only(deployed):
    t = deployed.target
    listeners = t.out("ss -Hltn | awk '{print $4}'").split()
    ours = {d.port for d in (*DAEMONS, MTAIL)} | {STUB_STATUS_PORT}
    for port in ours:
        assert f"127.0.0.1:{port}" in listeners, (port, listeners)
    beyond = [a for a in listeners if not a.startswith(("127.", "[::1]:"))]
    # Only sshd and the front proxy face the network (Alertmanager's cluster port 9094 does not exist).
    assert {a.rsplit(":", 1)[1] for a in beyond} <= {"22", "2222", "80", "443"}, beyond
    for d in DAEMONS:
        assert f"--web.listen-address=127.0.0.1:{d.port}" in t.out(f"cat /etc/default/{d.package}")
        assert t.out(f"systemctl is-active {d.unit}") == "active"
    assert "HOST=127.0.0.1" in t.out("cat /etc/default/mtail") and t.out("systemctl is-active mtail") == "active"


def test_retention_is_bounded(deployed):
    args = deployed.target.out("cat /proc/$(systemctl show -p MainPID --value prometheus.service)/cmdline | tr '\\0' ' '")
    assert "--storage.tsdb.retention.time=15d" in args and "--storage.tsdb.retention.size=2GB" in args


def test_every_job_is_scraped(deployed):
    def all_up():
        up = {r["metric"]["job"]: r["value"][1] for r in deployed.query("up")}
        return up if set(up) == JOBS and set(up.values()) == {"1"} else None

    wait_for("every job up == 1", all_up, 90)
    assert [r["value"][1] for r in deployed.query('probe_success{app="dibby"}')] == ["1"]
    assert [r["value"][1] for r in deployed.query("pg_up")] == ["1"]
    assert [r["value"][1] for r in deployed.query("nginx_up")] == ["1"]
    # The probes themselves went through nginx: mtail counted their answers.
    wait_for("nginx answers counted by mtail", lambda: deployed.query('vpskit_http_responses_total{code="200"}'), 60)
    assert deployed.query("probe_ssl_earliest_cert_expiry - time() > 0")
    assert deployed.query('vpskit_backup_last_success_timestamp_seconds{item="dibby"}') or wait_for(
        "backup metric from the health timer", lambda: deployed.query("vpskit_backup_last_success_timestamp_seconds"), 330
    )


def test_the_rules_are_loaded(deployed):
    out = deployed.target.out(f"curl -sS http://127.0.0.1:{PROMETHEUS.port}/api/v1/rules")
    names = {r["name"] for g in json.loads(out)["data"]["groups"] for r in g["rules"]}
    assert {"HighCpu", "HighMemory", "DiskFull", "TargetDown", "AppDown", "CertificateExpiry", "HighErrorRate", "BackupTooOld"} <= names


def test_a_lowered_threshold_fires_an_alert_that_reaches_the_webhook_through_alertmanager(deployed):
    t = deployed.target

    def alert_posts():
        posts = [m for m in hook_messages(t) if m.get("receiver") == "vpskit"]
        return [a for m in posts for a in m["alerts"] if a["labels"]["alertname"] == "HighMemory" and a["status"] == "firing"]

    alerts = wait_for("HighMemory through Alertmanager", alert_posts, 150)
    assert "memory" in alerts[0]["annotations"]["summary"]


def test_turned_off_every_daemon_stops_and_stays_off(deployed, tmp_path):
    """Last: it changes the host."""
    t = deployed.target
    raw = json.loads(json.dumps(deployed.raw))
    raw["monitor"]["prometheus"] = False
    cfg = tmp_path / "off.toml"
    cfg.write_text(dump_toml(raw))
    run_pyinfra(cfg)
    for d in (*DAEMONS, MTAIL):
        assert t.exec(f"systemctl is-active {d.unit}", check=False).stdout.strip() != "active", d.unit
        assert t.exec(f"systemctl is-enabled {d.unit}", check=False).stdout.strip() == "disabled", d.unit
    listeners = t.out("ss -Hltn | awk '{print $4}'").split()
    assert not [a for a in listeners if int(a.rsplit(":", 1)[1]) in {d.port for d in (*DAEMONS, MTAIL)} | {STUB_STATUS_PORT}], listeners
    run_pyinfra(cfg).assert_quiet()
