"""The benchmark's arithmetic and parsers: what `make bench` reports is read right from pyinfra, wrk and Ansible."""

from __future__ import annotations

import pytest

from bench.measure import Figure, count_commands, count_facts, parse_recap, parse_wrk, ratio, slope
from bench.run import generated_apps, one_app_change

PYINFRA_VV = """\
--> Loading config...
    [@docker/abc123] Loaded fact server.OsRelease
localhost: >>> docker container inspect abc123
[@docker/abc123] >>> docker exec -i abc123 sh -c 'cat /etc/os-release'
[@docker/abc123] >>> docker exec -i abc123 sh -c 'if [ -f /etc/x ]; then
  sha256sum /etc/x; fi'
    [@docker/abc123] Loaded fact operations.facts.FileState (path=/etc/x)
[@docker/abc123] noop: /etc/x is up to date
[127.0.0.1] >>> sudo -H -n sh -c 'dpkg -l'
"""


def test_commands_and_facts_are_counted_from_pyinfra_verbose_output():
    """Every '[host] >>>' line is one command on the host (not continuation lines, not the connector's own
    commands on localhost); facts by 'Loaded fact'."""
    assert count_commands(PYINFRA_VV) == 3
    assert count_facts(PYINFRA_VV) == 2
    assert count_commands("\x1b[1m[host]\x1b[0m >>> ls\n") == 1


def test_figure_reports_median_min_max_of_its_runs():
    f = Figure([3.0, 1.0, 2.0, 10.0])
    assert f.median == 2.5
    assert f.as_dict() == {"median": 2.5, "min": 1.0, "max": 10.0, "runs": [3.0, 1.0, 2.0, 10.0]}
    assert Figure().as_dict() == {"runs": []}


def test_ratio_and_slope():
    assert ratio(5.0, 20.0) == 0.25
    assert ratio(None, 2.0) is None and ratio(2.0, 0) is None
    assert slope({1: 5.0, 2: 6.0, 4: 8.0, 6: 10.0}) == 1.0
    assert slope({1: 5.0}) is None


WRK = """\
Running 10s test @ https://dibby.example.test/
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    12.34ms    5.67ms  89.01ms   75.00%
    Req/Sec     1.23k   123.45     1.50k    70.00%
  Latency Distribution
     50%  850.00us
     75%   14.00ms
     90%   18.00ms
     99%    1.20s
  24567 requests in 10.01s, 3.45MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 3
Requests/sec:   2454.32
Transfer/sec:    352.11KB
"""


def test_wrk_output_gives_rate_latency_percentiles_and_all_errors():
    assert parse_wrk(WRK) == {"rps": 2454.32, "p50_ms": 0.85, "p99_ms": 1200.0, "errors": 6, "requests": 24567}


def test_wrk_without_errors_reports_zero_and_garbage_is_refused():
    clean = WRK.replace("  Socket errors: connect 0, read 2, write 0, timeout 1\n", "").replace("  Non-2xx or 3xx responses: 3\n", "")
    assert parse_wrk(clean)["errors"] == 0
    with pytest.raises(ValueError):
        parse_wrk("unable to connect to dibby.example.test:https Connection refused")


def test_ansible_recap_is_read_from_the_last_play_recap():
    out = (
        "PLAY RECAP *********\n"
        "target                     : ok=41   changed=0    unreachable=0    failed=0    skipped=3    rescued=0    ignored=0\n"
    )
    assert parse_recap(out) == {"ok": 41, "changed": 0, "unreachable": 0, "failed": 0, "skipped": 3}
    with pytest.raises(ValueError):
        parse_recap("ERROR! the playbook could not be found")


EXAMPLE = {
    "server": {"hostname": "web1"},
    "apps": [
        {
            "name": "dibby",
            "port": 5001,
            "repo": "file:///srv/git/dibby.git",
            "domains": ["dibby.example.test"],
            "backup": {"paths": ["/home/appuser/apps/dibby/uploads"]},
            "jobs": [{"name": "snapshot", "schedule": "*-*-* 23:55:00", "command": "flask snapshot"}],
        },
        {"name": "grades", "port": 5002},
    ],
}


def test_generated_apps_are_copies_of_the_first_app_with_their_own_names_ports_domains_and_paths():
    """Same code (repo) and jobs as the example's first app; nothing else of the config changes."""
    raw = generated_apps(EXAMPLE, 3)
    assert [a["name"] for a in raw["apps"]] == ["app1", "app2", "app3"]
    assert len({a["port"] for a in raw["apps"]}) == 3
    assert raw["apps"][1]["domains"] == ["app2.example.test"]
    assert raw["apps"][2]["backup"]["paths"] == ["/home/appuser/apps/app3/uploads"]
    assert raw["apps"][0]["jobs"] == EXAMPLE["apps"][0]["jobs"]
    assert {a["repo"] for a in raw["apps"]} == {"file:///srv/git/dibby.git"}
    assert raw["server"] == EXAMPLE["server"] and EXAMPLE["apps"][0]["name"] == "dibby"


def test_one_app_change_changes_only_the_first_app_and_differs_per_run():
    what, change = one_app_change(EXAMPLE)
    assert what.endswith("dibby")
    one, two = change(EXAMPLE, 1), change(EXAMPLE, 2)
    assert one["apps"][1] == EXAMPLE["apps"][1]
    assert one["apps"][0] != EXAMPLE["apps"][0] and one["apps"][0] != two["apps"][0]


class FakeTarget:
    distro = "ubuntu2404"

    def out(self, cmd: str) -> str:
        assert cmd.startswith("readlink -f /srv/apps/")
        return "/usr/bin/python3.12"


def test_baseline_manages_the_web_stack_files_and_steps_vpskit_does(keys):
    """The Ansible baseline covers nginx sites, each app's checkout, venv, .env, unit, logrotate and certificate."""
    import tomllib

    from bench.baseline import web_managed
    from operations.config import parse_config
    from tests.rig import ROOT

    raw = tomllib.loads((ROOT / "examples" / "vpskit.toml").read_text())
    raw["deploy_user"] |= {"public_keys": ["id_ed25519.pub"], "private_key": "id_ed25519"}
    raw["first_login"]["key"] = "id_ed25519"
    config = parse_config(raw, base_dir=str(keys))
    files, web = web_managed(config, FakeTarget())
    apps = [a.name for a in config.apps if a.repo and not a.is_compose and a.name != "journal"]
    assert apps == ["dibby", "grades"]  # journal has no requirements file: the baseline cannot install it
    assert [a["name"] for a in web["web_apps"]] == apps
    assert files["nginx"][2:] == [f"/etc/nginx/sites-enabled/app-{a}.conf" for a in apps]
    assert files["app_env"] == [f"/srv/apps/{a}/.env" for a in apps]
    assert files["app_units"] == [f"/etc/systemd/system/app-{a}.service" for a in apps]
    assert files["logrotate"] == [f"/etc/logrotate.d/app-{a}" for a in apps]
    dibby = web["web_apps"][0]
    assert dibby["python"] == "/usr/bin/python3.12" and "gunicorn" in dibby["pip"]
    assert dibby["migrate"].startswith("set -a && . ") and "python migrate.py" in dibby["migrate"]
    assert [c["name"] for c in web["certs"]] == [a.name for a in config.apps if a.name in apps and a.domains]
    assert all("certbot certonly" in c["command"] for c in web["certs"])


def test_each_distro_keeps_its_figures_in_its_own_file_and_each_run_its_load():
    from bench.run import HERE, results_file

    assert results_file("ubuntu2404") == HERE / "results.json"
    assert results_file("debian13") == HERE / "results-debian13.json"
    f = Figure()
    f.add(3.0, 1.5)
    f.add(2.0, 0.5)
    assert f.as_dict()["load_1m"] == [1.5, 0.5]
    assert "load_1m" not in Figure([1.0]).as_dict()


def test_the_cost_curve_is_drawn_from_every_results_file_holding_one(tmp_path, monkeypatch):
    import json

    from bench import curve

    (tmp_path / "results.json").write_text(json.dumps({"rerun_by_apps_detail": {"1": {"median": 2.0, "commands": 30}}}))
    (tmp_path / "results-debian13.json").write_text(json.dumps({"rerun_s": 2.0}))  # no curve measured there yet
    monkeypatch.setattr(curve, "HERE", tmp_path)
    assert list(curve.curves()) == ["ubuntu2404"]
