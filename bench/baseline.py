"""The baseline: vpskit's steps as a plain Ansible playbook (bench/ansible/site.yml), run over SSH.

The playbook's variables are built here from the same config, with vpskit's own
names for paths and units; the contents of the files it manages are copied from
the target vpskit deployed, so both tools aim at exactly one state.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from operations.app import in_app_env, pip_packages
from operations.appspecs import app_paths
from operations.backup import BACKUP_CONF, BACKUP_SCRIPT, BACKUP_UNIT, CONFIG_DIR, DRILL_UNIT, STATUS_DIR, backup_items
from operations.certbot import ACME_WEBROOT, CERTBOT_ENV_DROPIN, DEPLOY_HOOK, certbot_command
from operations.config import Config
from operations.distro import RELEASE_KEYS, RELEASES
from operations.fail2ban import JAIL_LOCAL
from operations.firewall import wanted_rules
from operations.monitor import HEALTH_CONF, HEALTH_SCRIPT
from operations.nginx import DEFAULT_SITE, NGINX_CONF, STOCK_DEFAULT_SITE, site_path
from operations.postgres import secret_env_path
from operations.schedule import UNIT_DIR, cron_file, job_unit
from operations.ssh import DROPIN
from operations.system import APT_LOCK_CONF, AUTO_UPGRADES_CONF, UNATTENDED_CONF
from operations.users import sudoers_path
from tests.harness import Target

from .measure import parse_recap

SAMPLE_APPS = Path(__file__).resolve().parent.parent / "examples" / "apps"
PLAYBOOK_DIR = Path(__file__).resolve().parent / "ansible"
ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))
UPGRADE = {"full": "dist", "safe": "safe", "none": "no"}


def managed(config: Config, distro: str) -> tuple[dict[str, list[str]], list[dict], list[str], list[dict], list[str]]:
    """What the deploy manages: (files by concern, directories, services, databases, backup status files)."""
    apps = [a for a in config.apps if a.state == "present"]
    pg_apps = [a for a in apps if a.database.uses_postgres]
    items = backup_items(apps)
    user = config.deploy_user.name
    files: dict[str, list[str]] = {
        "base": [APT_LOCK_CONF, AUTO_UPGRADES_CONF, UNATTENDED_CONF],
        "authorized_keys": [f"/home/{user}/.ssh/authorized_keys"],
        "user": [sudoers_path(user)],
        "sshd": [DROPIN],
        "fail2ban": [JAIL_LOCAL] if config.fail2ban.enabled else [],
        "postgres_settings": [],
        "postgres_hba": [],
        "scripts": [HEALTH_SCRIPT, HEALTH_CONF],
        "units": [],
        "cron": [],
    }
    services = ["fail2ban"] if config.fail2ban.enabled else []
    if pg_apps:
        etc = f"/etc/postgresql/{RELEASES[RELEASE_KEYS[distro]].postgres}/main"
        files["postgres_settings"].append(f"{etc}/conf.d/vpskit.conf")
        files["postgres_hba"].append(f"{etc}/pg_hba.conf")
        services.append("postgresql")
    timers = []
    directories = [{"path": CONFIG_DIR, "mode": "755"}]
    if items:
        files["scripts"] += [BACKUP_SCRIPT, BACKUP_CONF]
        directories.append({"path": config.backups.dir, "mode": "700"})
        timers.append(BACKUP_UNIT)
        if config.backups.drill_schedule:
            timers.append(DRILL_UNIT)
    for app in apps:
        for job in app.jobs:
            if job.kind == "cron":
                files["cron"].append(cron_file(app.name, job))
            else:
                timers.append(job_unit(app.name, job))
    if files["cron"]:
        services.append("cron")
    files["units"] = [f"{UNIT_DIR}/{t}.{suffix}" for t in timers for suffix in ("service", "timer")]
    services += [f"{t}.timer" for t in timers]
    databases = [{"db": a.db_name, "role": a.db_role, "secret": secret_env_path(a.name)} for a in pg_apps]
    status = [f"{STATUS_DIR}/backup/{i.name}.status" for i in items]
    return files, directories, services, databases, status


def requirements_app(name: str, install: str = "auto", requirements: str = "requirements.txt") -> bool:
    """Whether the baseline playbook can install this sample app: it knows `pip install -r` only (no pyproject, uv, poetry)."""
    return install == "requirements" or (install == "auto" and (SAMPLE_APPS / name / requirements).is_file())


def web_managed(config: Config, target: Target) -> tuple[dict[str, list[str]], dict]:
    """The web stack's files by concern, and the playbook variables for its apps and sites."""
    # The venv apps behind nginx installed from a requirements file (the bench leaves compose apps out).
    apps = [
        a
        for a in config.apps
        if a.state == "present" and a.repo and not a.is_compose and requirements_app(a.name, a.install, a.requirements)
    ]
    files: dict[str, list[str]] = {"nginx": [], "certbot": [], "app_env": [], "app_units": [], "logrotate": []}
    if not apps:
        return files, {"web_apps": [], "sites": [], "certs": []}
    sites = [a for a in apps if a.domains]
    files["nginx"] = [NGINX_CONF, DEFAULT_SITE, *(site_path(a.name) for a in sites)]
    if config.tls.mode == "letsencrypt":
        files["certbot"] = [DEPLOY_HOOK, *([CERTBOT_ENV_DROPIN] if config.tls.acme_ca_bundle else [])]
    user = config.deploy_user.name
    web_apps = []
    for app in apps:
        paths = app_paths(app, config.web)
        files["app_env"].append(paths.env)
        files["app_units"].append(paths.unit_file)
        files["logrotate"].append(paths.logrotate)
        web_apps.append(
            {
                "name": app.name,
                "repo": app.repo,
                "branch": app.branch,
                "root": paths.root,
                "data": paths.data,
                "logs": paths.logs,
                "src": paths.src,
                "venv": paths.venv,
                "python": target.out(f"readlink -f {paths.venv}/bin/python3"),
                "requirements": f"{paths.src}/{app.requirements}",
                "pip": " ".join(pip_packages(app)),
                "unit": paths.unit,
                "migrate": migrate(app, paths),
                "build": f"cd {paths.src}/{app.build_dir} && {app.build}" if app.build else "",
            }
        )
    certs = [
        {"name": a.name, "live": f"/etc/letsencrypt/live/{a.name}/fullchain.pem", "command": certbot_command(a.name, a.domains, config.tls)}
        for a in sites
        if config.tls.mode == "letsencrypt"
    ]
    return files, {
        "web_apps": web_apps,
        "deploy_user": user,
        "acme_webroot": ACME_WEBROOT,
        "stock_default_site": STOCK_DEFAULT_SITE,
        "certs": certs,
    }


def migrate(app, paths) -> str:
    """The app's migrations with its .env and, for a PostgreSQL app, its DATABASE_URL."""
    if not app.migrate:
        return ""
    command = in_app_env(paths, app.migrate)
    if app.database.uses_postgres:
        command = f"set -a && . {secret_env_path(app.name)} && set +a && {command}"
    return command


def copy_files(target: Target, paths: list[str], dest: Path) -> dict[str, dict]:
    """Copy ``paths`` out of the target below ``dest``; their mode and owner by path."""
    proc = subprocess.run(
        ["docker", "exec", target.id, "tar", "-C", "/", "-cf", "-", *[p.lstrip("/") for p in paths]],
        capture_output=True,
        timeout=120,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"cannot copy {paths} out of the target: {proc.stderr.decode()}")
    meta = {}
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        for member in tar.getmembers():
            if member.isfile():
                tar.extract(member, dest, filter="data")
                meta["/" + member.name] = {"mode": f"{member.mode:o}", "owner": member.uname, "group": member.gname}
    return meta


def playbook_vars(config: Config, target: Target, packages: list[str], workdir: Path) -> dict:
    """The playbook's variables for ``config`` on ``target`` (which vpskit has deployed)."""
    files, directories, services, databases, status = managed(config, target.distro)
    web_files, web = web_managed(config, target)
    files |= web_files
    files_dir = workdir / "files"
    meta = copy_files(target, [p for group in files.values() for p in group], files_dir)
    s, du = config.server, config.deploy_user
    return {
        "files_dir": str(files_dir),
        "files": {k: [{"path": p, **meta[p]} for p in paths] for k, paths in files.items()},
        "directories": directories,
        "packages": packages,
        "apt_cache_seconds": s.apt_cache_hours * 3600,
        "apt_upgrade": UPGRADE[s.upgrade],
        "hostname": s.hostname,
        "timezone": s.timezone,
        "user": du.name,
        "user_shell": du.shell,
        "user_groups": ["sudo", *du.groups],
        "ufw_rules": [r.spec() for r in sorted(wanted_rules(s.ssh_port, config.firewall.ssh_limit, config.firewall.allow))],
        "services": services,
        "pg_port": config.postgres.port,
        "databases": databases,
        "backup_unit": BACKUP_UNIT,
        "backup_status": status,
        **web,
    }


def run_playbook(config: Config, port: int, variables: dict, workdir: Path, timeout: int = 1200) -> tuple[float, dict, str]:
    """One ``ansible-playbook`` run over SSH as the deploy user: (seconds, recap, output)."""
    inventory = workdir / "inventory.ini"
    inventory.write_text(
        "[vps]\n"
        f"target ansible_host=127.0.0.1 ansible_port={port} ansible_user={config.deploy_user.name} "
        f"ansible_ssh_private_key_file={config.path(config.deploy_user.private_key)}\n"
    )
    var_file = workdir / "vars.json"
    var_file.write_text(json.dumps(variables, indent=2))
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(PLAYBOOK_DIR / "ansible.cfg"),
        "ANSIBLE_HOME": str(workdir / "ansible-home"),
        "ANSIBLE_NOCOLOR": "1",
    }
    cmd = [ANSIBLE_PLAYBOOK, "-i", str(inventory), str(PLAYBOOK_DIR / "site.yml"), "-e", f"@{var_file}"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - start
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise RuntimeError(f"ansible-playbook exited {proc.returncode}:\n{output[-6000:]}")
    return seconds, parse_recap(output), output


def ansible_version() -> str:
    proc = subprocess.run([ANSIBLE_PLAYBOOK, "--version"], capture_output=True, text=True)
    return proc.stdout.splitlines()[0] if proc.returncode == 0 else "unavailable"
