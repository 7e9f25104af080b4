"""The smoke suite of the releases the full suite does not run on (Ubuntu 22.04 and 26.04, Debian 12).

One fresh target per release gets the whole example config over SSH, the way ``make demo`` does it
(tests/example_host.py): root on port 22 first, then the deploy user on the hardened port. A second
run must change nothing, every app must answer over HTTPS with a certificate from pebble, a backup
must restore, and ``vpskit-health`` must find the host healthy. The public auditors measure it from the
test machine (tests/audit.py): ssh-audit with the release's hardened policy on the published SSH port,
sslyze against Mozilla's intermediate profile on the published HTTPS port. What the release lacks is refused
before anything changes, and so is a release vpskit does not support.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from tests.audit import PEBBLE_CERTIFICATE_ISSUES, accepted_suites, ssh_audit_release, sslyze_mozilla
from tests.conftest import SMOKE_DISTROS, distro_of
from tests.e2e.test_data import psql, run_backup
from tests.example_host import deploy_example
from tests.images import build_compose_base
from tests.rig import dump_toml, run_pyinfra, start_target, target_config
from tests.web_fixtures import https_get, wait_https

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", params=SMOKE_DISTROS)
def example(request, docker_engine, images, keys, tmp_path_factory):
    distro = request.param
    base = build_compose_base(docker_engine)
    # SSH before and after hardening; HTTPS for sslyze, which runs on the test machine.
    target = start_target(docker_engine, images[distro], distro, publish=(22, 2222, 443), nested_docker=True)
    try:
        yield deploy_example(target, keys, tmp_path_factory.mktemp(f"smoke-{distro}"), base)
    finally:
        target.remove()


def deploy_variant(example, keys, label: str, change) -> tuple:
    """Run the example config changed by ``change(raw)`` over SSH; (run, whether the host stayed the same)."""
    snapshot = "dpkg -l | md5sum; ls -l --time-style=+%s /etc/nginx/sites-enabled /etc/apt/sources.list.d /srv/apps"
    before = example.target.out(snapshot)
    raw = json.loads(json.dumps(example.raw))
    change(raw)
    path = example.config.with_name(f"{label}.toml")
    path.write_text(dump_toml(target_config(raw, example.target, keys)))
    run = run_pyinfra(path, check=False)
    return run, example.target.out(snapshot) == before


def test_the_example_deploys_over_ssh_and_a_second_run_changes_nothing(example):
    for label, run in example.runs.items():
        assert run.returncode == 0 and run.errors == 0, f"{label} run on {example.target.distro}:\n{run}"
    assert example.runs["engine"].changed > 0
    second = example.runs["second"]
    assert second.changed == 0, f"changed: {second.changed_ops}\n{second}"
    # The hardened host is reached as the deploy user on the new port, as the config says.
    state = json.loads(example.config.with_name(".vpskit-state.json").read_text())
    assert state["127.0.0.1"]["ports"][0] == example.target.ports[2222]


def test_every_app_answers_over_https_with_a_pebble_certificate(example):
    t = example.target
    apps = {a["name"]: a for a in example.raw["apps"]}
    assert set(example.domains) == {a for a in apps if a not in example.left_out}
    for app, domain in example.domains.items():
        r = https_get(t, f"https://{domain}/", "-f")
        assert r.returncode == 0, f"{app}: {r.stderr}"
        answer = json.loads(r.stdout)
        if apps[app].get("routes"):
            # A multi-service site (learnup): what no route takes goes to the service on the app's port.
            assert answer["service"] == "frontend", f"{app}: {answer}"
        else:
            assert (answer["app"], answer["greeting"]) == (app, apps[app]["env"]["GREETING"])
        issuer = t.out(f"echo | openssl s_client -connect 127.0.0.1:443 -servername {domain} 2>/dev/null | openssl x509 -noout -issuer")
        assert "Pebble" in issuer, f"{app}: {issuer}"


def test_a_backup_restores_what_it_saved(example):
    t = example.target
    note = json.dumps({"text": "kept by the backup"})
    r = https_get(t, "https://dibby.example.test/notes", "-f -X POST -H 'Content-Type: application/json'", f"-d '{note}'")
    assert r.returncode == 0, r.stderr
    assert run_backup(t).returncode == 0, t.out("journalctl -u vpskit-backup -n 30 --no-pager -o cat")
    count = "SELECT count(*) FROM notes WHERE text = 'kept by the backup'"
    psql(t, "DELETE FROM notes WHERE text = 'kept by the backup'", db="dibby")
    assert psql(t, count, db="dibby").stdout.strip() == "0"
    t.exec("vpskit-backup restore dibby")
    assert psql(t, count, db="dibby").stdout.strip() == "1"


def vpskit_health(t) -> subprocess.CompletedProcess:
    """``vpskit-health`` on the target, with only the load limit lifted (the load is the shared test machine's)."""
    conf = json.loads(t.out("cat /etc/vpskit/health.json"))
    conf["max_load_per_core"] = 100
    # Not under /tmp: Ubuntu 26.04 mounts a tmpfs there, which files copied into the container miss.
    t.put_file("/root/health-test.json", json.dumps(conf))
    return t.exec("VPSKIT_HEALTH_CONF=/root/health-test.json vpskit-health", check=False)


def test_vpskit_health_finds_the_host_healthy(example):
    health = vpskit_health(example.target)
    assert health.returncode == 0, health.stdout
    for app in example.domains:
        assert re.search(rf"^ok\s+app {app}\s", health.stdout, re.M), health.stdout
        # certbot's certificate of the app (its lineage is named after the app).
        assert re.search(rf"^ok\s+cert {app}\s+expires ", health.stdout, re.M), health.stdout


def _caddy(raw):
    from tests.web_fixtures import with_caddy

    raw.update(with_caddy(raw))


def _python_3_12(raw):
    raw["python"]["version"] = "3.12"


def _compose_from_distro(raw):
    from tests.example_host import example_raw

    raw["apps"] += [a for a in example_raw()["apps"] if a.get("kind") == "compose"]


# What each release's archive lacks that a config may ask for, and the one line that refuses it.
LACKS = {
    "ubuntu2204": (_caddy, '[web].proxy = "caddy": Ubuntu 22.04 has no caddy package. Set [web] proxy = "nginx"'),
    "ubuntu2604": (_python_3_12, "Python 3.12 is not available on Ubuntu 26.04: it can have Python 3.14 (its own)"),
    "debian12": (_compose_from_distro, '[docker].source = "distro": Debian 12\'s docker.io has no `docker compose` (v2)'),
}


def test_what_the_release_lacks_is_refused_before_anything_changes(example, keys):
    change, line = LACKS[example.target.distro]
    run, unchanged = deploy_variant(example, keys, "lacking", change)
    assert run.returncode != 0 and line in run.output, run.output[-3000:]
    assert "Starting operation" not in run.output and unchanged


def test_an_unsupported_release_is_refused_naming_the_supported_ones(example, keys):
    t = example.target
    distro = distro_of(t.distro)
    t.exec("cp --remove-destination /usr/lib/os-release /etc/os-release.vpskit-test")
    t.exec(
        f'sed -i \'s/^VERSION_ID=.*/VERSION_ID="{distro.version}9"/; s/^PRETTY_NAME=.*/PRETTY_NAME="Elsewhere 9"/\' /etc/os-release.vpskit-test'
    )
    t.exec("cp --remove-destination /etc/os-release.vpskit-test /etc/os-release")
    try:
        run, unchanged = deploy_variant(example, keys, "unsupported", lambda raw: None)
    finally:
        t.exec("ln -sf ../usr/lib/os-release /etc/os-release && rm -f /etc/os-release.vpskit-test")
    assert run.returncode != 0
    assert "vpskit supports Ubuntu 22.04, Ubuntu 24.04, Ubuntu 26.04, Debian 12, Debian 13; this host runs Elsewhere 9" in run.output
    assert "Starting operation" not in run.output and unchanged


# Measured by the public auditors. ssh-audit runs last: its scans may make sshd penalise the test
# machine's address (OpenSSH 9.8+), and the Caddy test before it still deploys over SSH.


def test_tls_is_mozillas_intermediate_profile_by_sslyze(example):
    """Only the pebble certificate's trust and five-year lifetime may fail sslyze's check; DHE uses RFC 7919's ffdhe2048."""
    for app, domain in example.domains.items():
        result = sslyze_mozilla(example.target.ports[443], domain)
        suites = accepted_suites(result.output)
        print(f"\n[{example.target.distro}] sslyze intermediate {domain}: {result.failures or 'compliant'}; TLS 1.2: {suites}")
        assert set(result.failures) <= PEBBLE_CERTIFICATE_ISSUES, f"{app}: {result.failures}\n{result}"
        # Mozilla's DHE suites are RSA-signed: with an RSA certificate (certbot before 2.0 makes those) nginx
        # serves them with the ssl_dhparam group vpskit ships; with an ECDSA one no DHE suite can be used.
        dhe = {suite: kex for suite, kex in suites.items() if suite.startswith("TLS_DHE_")}
        if any(suite.startswith("TLS_ECDHE_RSA_") for suite in suites):
            assert dhe and set(dhe.values()) == {"DH (2048 bits)"}, f"{app}: {suites}"
        else:
            assert not dhe and any(suite.startswith("TLS_ECDHE_ECDSA_") for suite in suites), f"{app}: {suites}"


@pytest.mark.needs_caddy
def test_caddy_in_front_passes_sslyze_and_its_certificates_are_in_the_health_report(example, keys):
    """The same host switched to Caddy: Mozilla intermediate by sslyze (Go's TLS has no DHE suites), and the health
    report checks the certificates Caddy got from pebble (named by domain, as Caddy keeps them), not certbot's."""
    t = example.target
    run, _ = deploy_variant(example, keys, "caddy", _caddy)
    assert run.returncode == 0 and run.errors == 0, run
    for app, domain in example.domains.items():
        r = wait_https(t, f"https://{domain}/")
        assert r.returncode == 0, f"{app}: {r.stderr}"
        result = sslyze_mozilla(t.ports[443], domain)
        suites = accepted_suites(result.output)
        print(f"\n[{t.distro}] sslyze intermediate {domain} (Caddy): {result.failures or 'compliant'}; TLS 1.2: {suites}")
        assert set(result.failures) <= PEBBLE_CERTIFICATE_ISSUES, f"{app}: {result.failures}\n{result}"
        assert suites and not [s for s in suites if s.startswith("TLS_DHE_")], suites
    health = vpskit_health(t)
    print(f"\n[{t.distro}] vpskit-health with Caddy:\n{health.stdout}")
    assert health.returncode == 0, health.stdout
    certs = re.findall(r"^(\S+)\s+cert (\S+)\s+expires ", health.stdout, re.M)
    # Caddy keeps one certificate per name: every domain of every app it serves.
    names = [d for a in example.raw["apps"] if a["name"] in example.domains for d in a.get("domains", [])]
    assert sorted(certs) == sorted(("ok", domain) for domain in names), health.stdout
    stored = t.out("ls /var/lib/caddy/.local/share/caddy/certificates/*/")
    assert all(domain in stored.split() for domain in names), stored


def test_sshd_passes_ssh_audits_hardened_policy_for_its_release(example):
    """The release's own policy; on Ubuntu 26.04 only the documented key exchange for pyinfra's SSH library is reported."""
    result = ssh_audit_release(example.target.ports[2222], example.target.distro)
    print(f"\n[{example.target.distro}] ssh-audit: {result.output.strip()}")
