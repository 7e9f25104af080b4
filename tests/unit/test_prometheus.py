"""Prometheus: its config fields, what the plan asks of it, and the files it writes (loopback flags, rules, routes)."""

from __future__ import annotations

import re

import pytest
from pyinfra.api import OperationError

import operations.fail2ban as fail2ban_mod
from operations.config import parse_config
from operations.config.stack import PROMETHEUS_PORTS
from operations.distro import Distro
from operations.monitor import AppCheck
from operations.plan import Plan
from operations.postgres import RoleMemberships, monitoring_role
from operations.prometheus import (
    ALERTMANAGER,
    BLACKBOX,
    EVERY,
    METRICS_FILE,
    MTAIL,
    NGINX,
    NODE,
    PORTS,
    POSTGRES,
    PROMETHEUS,
    AlertLimits,
    PrometheusSpec,
    alert_rules,
    alertmanager_config,
    blackbox_config,
    contribution,
    defaults_file,
    receivers,
    scrape_config,
)
from operations.render import FILES_DIR, render
from tests.unit.conftest import config_problems

from .hoststub import check_spec

UBUNTU = Distro("ubuntu", "24.04", "noble")
APP = {
    "name": "shop",
    "port": 5001,
    "repo": "https://g.example/s.git",
    "domains": ["shop.example.com"],
    "database": {"engine": "postgresql"},
}
PROBE = AppCheck("shop", "app-shop.service", "https://127.0.0.1/health", "shop.example.com")


def plan_of(minimal_raw, tmp_path, monkeypatch, distro=UBUNTU, **sections) -> Plan:
    monkeypatch.setattr(fail2ban_mod, "snapshot_fact", lambda *a, **k: {"mtime": 0})
    return Plan(parse_config({**minimal_raw, **sections}, base_dir=str(tmp_path)), distro)


# ------------------------------------------------------------------ config


def test_prometheus_is_off_by_default_with_15_days_retention_and_the_guides_thresholds(minimal_raw, tmp_path):
    m = parse_config(minimal_raw, base_dir=str(tmp_path)).monitor
    assert (m.prometheus, m.prometheus_retention, m.prometheus_retention_size) == (False, "15d", "2GB")
    a = m.alerts
    assert (a.cpu_percent, a.memory_percent, a.disk_percent, a.for_minutes, a.error_rate_percent) == (80, 85, 80, 5, 5)


@pytest.mark.parametrize(
    ("extra", "line"),
    [
        ({"monitoring": {"prometheus": True}}, "monitoring: unknown section: Prometheus and alerts are set in [monitor]"),
        ({"monitor": {"prometheus_retention": "15 days"}}, "monitor.prometheus_retention: "),
        ({"monitor": {"prometheus_retention_size": "2G"}}, "monitor.prometheus_retention_size: "),
        ({"monitor": {"alerts": {"cpu_percent": 0}}}, "monitor.alerts.cpu_percent: must be a percentage 1-100, got 0"),
        ({"monitor": {"alerts": {"cpu_percnt": 90}}}, "monitor.alerts.cpu_percnt: unknown key (did you mean 'cpu_percent'?)"),
        (
            {"monitor": {"prometheus": True}, "apps": [{**APP, "port": 9100}]},
            "apps[0].port: 9100 is taken by Prometheus on this host",
        ),
    ],
)
def test_a_mistake_is_one_line_naming_the_field(minimal_raw, tmp_path, extra, line):
    found = config_problems({**minimal_raw, **extra}, tmp_path)
    assert len(found) == 1 and found[0].startswith(line), found


def test_an_app_may_use_prometheus_ports_while_prometheus_is_off(minimal_raw, tmp_path):
    parse_config({**minimal_raw, "apps": [{**APP, "port": 9090}]}, base_dir=str(tmp_path))


def test_the_ports_the_config_reserves_are_the_ones_the_daemons_take():
    assert set(PROMETHEUS_PORTS) == set(PORTS)


# ------------------------------------------------------------------ plan


def test_off_nothing_is_planned_and_nothing_is_watched(minimal_raw, tmp_path, monkeypatch):
    plan = plan_of(minimal_raw, tmp_path, monkeypatch, apps=[APP])
    assert plan.prometheus is None and plan.postgres["monitor_role"] == "" and plan.health["metrics_file"] == ""
    assert not any(u.startswith("prometheus") for u in plan.contribution.units)


def test_on_with_a_postgres_app_behind_nginx_every_exporter_runs(minimal_raw, tmp_path, monkeypatch):
    monitor = {"prometheus": True, "max_backup_age_hours": 30, "min_cert_days": 10, "disks": ["/", "/srv"], "remind_hours": 12,
               "alerts": {"memory_percent": 90}, "notify": [{"kind": "webhook", "url": "https://hooks.example.com/x"}]}  # fmt: skip
    plan = plan_of(minimal_raw, tmp_path, monkeypatch, apps=[APP], monitor=monitor)
    p = plan.prometheus
    assert p.daemons == (PROMETHEUS, ALERTMANAGER, NODE, BLACKBOX, POSTGRES, NGINX, MTAIL)
    assert p.probes == (AppCheck("shop", "app-shop.service", "https://127.0.0.1/", "shop.example.com"),)
    assert p.alerts == AlertLimits(memory_percent=90, backup_age_hours=30, cert_days=10, disks=("/", "/srv"))
    assert (p.backup_items, p.repeat_hours, p.notifiers[0]["url"]) == (("shop",), 12, "https://hooks.example.com/x")
    assert {d.unit for d in EVERY} <= set(plan.contribution.units)
    # The packages join the base system's apt run (deploy.py writes their /etc/default files before it).
    assert {d.package for d in EVERY} <= set(plan.contribution.packages)
    assert plan.postgres["monitor_role"] == "prometheus" and plan.health["metrics_file"] == METRICS_FILE


def test_without_apps_only_prometheus_alertmanager_and_the_node_exporter(minimal_raw, tmp_path, monkeypatch):
    p = plan_of(minimal_raw, tmp_path, monkeypatch, monitor={"prometheus": True}).prometheus
    assert p.daemons == (PROMETHEUS, ALERTMANAGER, NODE)
    assert contribution(p).units == ("prometheus.service", "prometheus-alertmanager.service", "prometheus-node-exporter.service")


def test_caddy_gets_no_nginx_exporter(minimal_raw, tmp_path, monkeypatch):
    p = plan_of(minimal_raw, tmp_path, monkeypatch, apps=[APP], web={"proxy": "caddy"}, monitor={"prometheus": True}).prometheus
    assert NGINX not in p.daemons and MTAIL not in p.daemons and BLACKBOX in p.daemons
    assert "HighErrorRate" not in alert_rules(p)


def test_a_discord_notifier_on_a_release_whose_alertmanager_has_no_discord_receiver_stops_the_run(minimal_raw, tmp_path, monkeypatch):
    monitor = {"prometheus": True, "notify": [{"kind": "discord", "url": "https://discord.com/api/webhooks/1/x"}]}
    with pytest.raises(OperationError, match=r"monitor.notify\[0\]: Ubuntu 22.04's Alertmanager has no Discord receiver"):
        plan_of(minimal_raw, tmp_path, monkeypatch, distro=Distro("ubuntu", "22.04", "jammy"), monitor=monitor)
    assert plan_of(minimal_raw, tmp_path, monkeypatch, monitor=monitor).prometheus.notifiers[0]["kind"] == "discord"


# ------------------------------------------------------------------ files


def test_every_daemon_listens_on_loopback_on_its_usual_port():
    spec = PrometheusSpec(postgres=True, nginx=True, probes=(PROBE,))
    ports = {}
    for d in spec.daemons[:-1]:
        args = re.search(r'^ARGS="(.*)"$', defaults_file(spec, d), re.M).group(1)
        ports[d.job] = re.search(r"--web.listen-address=(\S+)", args).group(1)
    assert ports == {
        "prometheus": "127.0.0.1:9090", "alertmanager": "127.0.0.1:9093", "node": "127.0.0.1:9100",
        "blackbox": "127.0.0.1:9115", "postgres": "127.0.0.1:9187", "nginx": "127.0.0.1:9113",
    }  # fmt: skip
    assert spec.daemons[-1] is MTAIL and "HOST=127.0.0.1\nPORT=3903\nLOGS=/var/log/nginx/access.log\n" in defaults_file(spec, MTAIL)
    # An empty cluster address: no gossip listener on 0.0.0.0:9094.
    assert defaults_file(spec, ALERTMANAGER).endswith(' --cluster.listen-address="\n')
    assert "--nginx.scrape-uri=http://127.0.0.1:8089/stub_status" in defaults_file(spec, NGINX)


def test_retention_bounds_prometheus_by_time_and_size():
    text = defaults_file(PrometheusSpec(retention="30d", retention_size="5GB"), PROMETHEUS)
    assert "--storage.tsdb.retention.time=30d --storage.tsdb.retention.size=5GB" in text


def test_the_postgres_exporter_logs_in_by_peer_over_the_socket():
    text = defaults_file(PrometheusSpec(postgres=True, postgres_port=5433), POSTGRES)
    assert "DATA_SOURCE_NAME='user=prometheus host=/run/postgresql port=5433 dbname=postgres'" in text
    assert "local   postgres   prometheus   peer" in render("pg_hba.conf.j2", clients=[], monitor_role="prometheus")
    assert "prometheus" not in render("pg_hba.conf.j2", clients=[], monitor_role="")


def test_prometheus_scrapes_each_daemon_and_probes_each_app_through_the_blackbox_exporter():
    text = scrape_config(PrometheusSpec(probes=(PROBE,)))
    assert re.findall(r"job_name: (\S+)", text) == ["prometheus", "alertmanager", "node", "blackbox", "apps"]
    assert 'targets: ["127.0.0.1:9100"]' in text and 'targets: ["https://127.0.0.1/health"]' in text
    assert '__param_module: "app_shop"' in text and "replacement: 127.0.0.1:9115" in text
    assert "- /etc/prometheus/vpskit-rules.yml" in text and 'targets: ["127.0.0.1:9093"]' in text


def test_a_probe_sends_the_apps_name_and_counts_401_as_healthy_only_behind_basic_auth():
    text = blackbox_config((PROBE, AppCheck("intra", "", "https://127.0.0.1/", "intra.example.com", basic_auth=True)))
    shop, intra = text.split("app_intra:")
    assert 'Host: "shop.example.com"' in shop and 'server_name: "shop.example.com"' in shop and "follow_redirects: false" in shop
    assert "401" not in shop and "401]" in intra


def test_the_rules_carry_the_thresholds():
    limits = AlertLimits(cpu_percent=70, memory_percent=60, disk_percent=75, for_minutes=3, app_down_minutes=4, error_rate_percent=7,
                         backup_age_hours=30, cert_days=9, disks=("/", "/srv"))  # fmt: skip
    text = alert_rules(PrometheusSpec(probes=(PROBE,), nginx=True, backup_items=("shop",), alerts=limits))
    rule = {m.group(1): m.group(2) for m in re.finditer(r"- alert: (\w+)\n((?:\s{8}.*\n)+)", text)}
    assert "[5m]))) > 70" in rule["HighCpu"] and "for: 3m" in rule["HighCpu"]
    assert "> 60" in rule["HighMemory"] and "for: 3m" in rule["HighMemory"]
    assert 'mountpoint=~"/|/srv"' in rule["DiskFull"] and "> 75" in rule["DiskFull"]
    assert "probe_success" in rule["AppDown"] and "for: 4m" in rule["AppDown"]
    assert "< 9 * 86400" in rule["CertificateExpiry"] and "> 30 * 3600" in rule["BackupTooOld"]
    assert 'code=~"5.."' in rule["HighErrorRate"] and "> 7" in rule["HighErrorRate"] and "for: 3m" in rule["HighErrorRate"]
    assert "{{ $labels.app }}" in rule["AppDown"]  # Prometheus's own template, left for it


def test_without_apps_or_backups_their_rules_are_left_out():
    text = alert_rules(PrometheusSpec())
    assert "AppDown" not in text and "BackupTooOld" not in text and "HighMemory" in text


def test_alertmanager_sends_to_the_health_checks_notifiers_and_repeats_at_the_reminder_interval():
    notifiers = (
        {"label": "a", "kind": "webhook", "url": "https://hooks.example.com/x"},
        {"label": "b", "kind": "slack", "url": "https://hooks.slack.com/services/T/B/x"},
        {"label": "c", "kind": "ntfy", "url": "https://ntfy.sh/topic"},
        {"label": "d", "kind": "email", "smtp_host": "smtp.example.com", "smtp_port": 587, "smtp_security": "starttls",
         "smtp_user": "alerts", "password": "s3cret", "mail_from": "vps@example.com", "mail_to": ["a@example.com", "b@example.com"]},
    )  # fmt: skip
    got = receivers(notifiers)
    assert [c["url"] for c in got["webhook_configs"]] == ["https://hooks.example.com/x", "https://ntfy.sh/topic"]
    assert got["slack_configs"] == [{"api_url": "https://hooks.slack.com/services/T/B/x", "send_resolved": True}]
    assert got["email_configs"] == [
        {"to": "a@example.com, b@example.com", "from": "vps@example.com", "smarthost": "smtp.example.com:587", "require_tls": True,
         "send_resolved": True, "auth_username": "alerts", "auth_password": "s3cret"}
    ]  # fmt: skip
    text = alertmanager_config(PrometheusSpec(notifiers=notifiers, repeat_hours=12))
    assert "repeat_interval: 12h" in text and '"auth_password": "s3cret"' in text


def test_an_ssl_relay_without_login_needs_no_starttls():
    n = {"kind": "email", "smtp_host": "smtp.example.com", "smtp_port": 465, "smtp_security": "ssl", "smtp_user": "",
         "password": "", "mail_from": "v@example.com", "mail_to": ["a@example.com"]}  # fmt: skip
    (cfg,) = receivers((n,))["email_configs"]
    assert cfg["require_tls"] is False and "auth_username" not in cfg


# ------------------------------------------------------------------ the exporter's PostgreSQL role


def test_the_monitoring_role_is_made_once_and_only_reads_statistics():
    psql = "runuser -u postgres -- psql -X -q -t -A -v ON_ERROR_STOP=1 -v VERBOSITY=terse -p 5432 -d postgres -c "
    spec = {"role": "prometheus"}
    check_spec(monitoring_role, {RoleMemberships: None}, spec, [psql + """'CREATE ROLE "prometheus" LOGIN IN ROLE pg_monitor'"""])
    check_spec(
        monitoring_role, {RoleMemberships: {"login": False, "member_of": []}}, spec,
        [psql + """'ALTER ROLE "prometheus" LOGIN'""", psql + """'GRANT pg_monitor TO "prometheus"'"""],
    )  # fmt: skip
    check_spec(monitoring_role, {RoleMemberships: {"login": True, "member_of": ["pg_monitor"]}}, spec, [])


def test_the_role_fact_reads_login_and_memberships():
    fact = RoleMemberships()
    assert fact.process(["role: 1 pg_monitor pg_read_all_stats"]) == {"login": True, "member_of": ["pg_monitor", "pg_read_all_stats"]}
    assert fact.process(["role: 0 "]) == {"login": False, "member_of": []}
    # No row: no such role (or no PostgreSQL yet).
    assert fact.process([]) is None


def test_mtail_counts_nginx_answers_by_status_from_the_combined_log_format():
    """The program's pattern, as Python reads it (RE2 and Python agree on it), against nginx's combined lines."""
    program = (FILES_DIR / "vpskit-nginx.mtail").read_text()
    pattern = re.search(r"^/(.*)/ \{$", program, re.M).group(1).replace("?P<", "?P<")
    lines = [
        '203.0.113.7 - - [30/Nov/2026:07:00:00 +0000] "GET /health HTTP/2.0" 200 12 "-" "curl/8.5.0"',
        '203.0.113.7 - bob [30/Nov/2026:07:00:01 +0000] "POST /x?a=\\x22 200 HTTP/1.1" 502 0 "https://r.example/" "Mozilla/5.0"',
    ]
    assert [re.match(pattern, line).group("code") for line in lines] == ["200", "502"]
