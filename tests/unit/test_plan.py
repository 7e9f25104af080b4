"""The wiring: what each concern contributes, how the config maps onto the operations' plain arguments, and the sshd guard."""

from __future__ import annotations

import pytest
from pyinfra.api import OperationError

import operations.fail2ban as fail2ban_mod
import operations.ssh as ssh_mod
from operations.config import parse_config
from operations.contribution import Contribution, combined
from operations.distro import Distro
from operations.plan import Plan
from operations.schedule import Job
from operations.ssh import SshdPolicy, SshdState
from operations.system import BaseSettings
from tests.unit.hoststub import on_stub

UBUNTU = Distro("ubuntu", "24.04", "noble")


def plan_of(minimal_raw, tmp_path, monkeypatch, **sections) -> Plan:
    monkeypatch.setattr(fail2ban_mod, "snapshot_fact", lambda *a, **k: {"mtime": 0})  # the host has /var/log/auth.log
    return Plan(parse_config({**minimal_raw, **sections}, base_dir=str(tmp_path)), UBUNTU)


def test_contributions_add_up_in_order_each_once():
    parts = [Contribution(("ufw",)), Contribution(("postgresql",), ("postgresql.service",)), Contribution(("ufw",), ("cron.service",))]
    assert combined(parts) == Contribution(("ufw", "postgresql"), ("postgresql.service", "cron.service"))


def test_a_bare_host_gets_the_firewall_and_fail2ban_packages_and_watches_only_its_health_timer(minimal_raw, tmp_path, monkeypatch):
    plan = plan_of(minimal_raw, tmp_path, monkeypatch)
    assert plan.contribution == Contribution(packages=("ufw", "fail2ban", "iptables"), units=("vpskit-health.timer",))
    assert plan.health["units"] == ["vpskit-health.timer"] and plan.backups is None and plan.docker is None and not plan.databases


def test_units_the_health_report_watches_come_from_each_concern(minimal_raw, tmp_path, monkeypatch):
    apps = [
        {
            "name": "shop", "port": 5001, "repo": "https://g.example/s.git", "domains": ["shop.example.com"],
            "database": {"engine": "postgresql"},
            "jobs": [{"name": "ping", "schedule": "*/5 * * * *", "command": "true", "kind": "cron"},
                     {"name": "report", "schedule": "daily", "command": "flask report"}],
        },
        {"name": "memo", "port": 5003, "kind": "compose", "repo": "file:///srv/git/memo.git", "compose_file": "compose.yaml",
         "domains": ["memo.example.com"]},
    ]  # fmt: skip
    plan = plan_of(minimal_raw, tmp_path, monkeypatch, apps=apps, web={"proxy": "caddy"}, firewall={"enabled": False})
    assert plan.contribution.units == (
        "postgresql.service", "docker.service", "caddy.service", "vpskit-backup.timer", "vpskit-restore-drill.timer",
        "cron.service", "shop-report.timer", "vpskit-health.timer",
    )  # fmt: skip
    assert "ufw" not in plan.contribution.packages and {"postgresql", "cron", "logrotate"} <= set(plan.contribution.packages)
    assert plan.firewall is None and plan.docker["compose_apps"] == ["memo"]
    assert [c["job"] for c in plan.jobs] == [Job("ping", "*/5 * * * *", "true", "cron"), Job("report", "daily", "flask report")]
    assert plan.jobs[0]["secret_env_file"] == "/etc/vpskit/secrets/shop.env"


def test_the_config_maps_onto_the_operations_specs(minimal_raw, tmp_path, monkeypatch):
    plan = plan_of(
        minimal_raw, tmp_path, monkeypatch,
        server={"address": "203.0.113.10", "ssh_port": 2222, "timezone": "Europe/Berlin", "upgrade": "safe"},
        ssh={"max_auth_tries": 2, "allow_users": ["appuser", "ops"]},
    )  # fmt: skip
    assert plan.base_system == BaseSettings(timezone="Europe/Berlin", upgrade="safe")
    assert plan.sshd["port"] == 2222 and plan.sshd["policy"] == SshdPolicy(max_auth_tries=2, allow_users=("appuser", "ops"))
    assert plan.firewall["ssh_port"] == 2222


def test_sshd_hardened_alone_on_a_host_without_sshd_says_so():
    with on_stub({SshdState: None}), pytest.raises(OperationError, match="sshd is not installed on this host"):
        ssh_mod.sshd_hardened._inner(port=2222, deploy_user="appuser")


def test_no_operation_takes_an_argument_pyinfra_keeps_for_itself():
    """``name`` (and every other global argument) is pyinfra's: an operation's own argument of that name never arrives."""
    import importlib
    import inspect
    import pkgutil

    from pyinfra.api.arguments import all_argument_meta

    import operations

    reserved = set(all_argument_meta) | {"name"}
    clashes = []
    for info in pkgutil.iter_modules(operations.__path__):
        module = importlib.import_module(f"operations.{info.name}")
        for attr, obj in vars(module).items():
            inner = getattr(obj, "_inner", None)
            if inner is not None and obj.__module__ == module.__name__:
                clashes += [f"{module.__name__}.{attr}({p})" for p in inspect.signature(inner).parameters if p in reserved]
    assert clashes == []


def test_the_health_reports_thresholds_come_from_the_monitor_section(minimal_raw, tmp_path, monkeypatch):
    monitor = {"max_disk_used": 70, "disks": ["/", "/srv"], "min_cert_days": 20, "remind_hours": 6}
    health = plan_of(minimal_raw, tmp_path, monkeypatch, monitor=monitor).health
    assert (health["max_disk_used"], health["disks"], health["min_cert_days"], health["remind_hours"]) == (70, ["/", "/srv"], 20, 6)
    assert health["max_load_per_core"] == 2.0 and health["metrics_file"] == ""
