"""One venv app on the host: its releases, migrations and seed, gunicorn unit, logrotate.

Everything is decided by facts read before the run and yields commands only
when something differs, so a second run changes nothing. The directories and
``.env`` are ``checkout``'s; each commit's release is built and switched to by
``releases``.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from dataclasses import dataclass

from pyinfra import host
from pyinfra.api import FactBase, deploy
from pyinfra.operations import files, server, systemd

from .batched import unit_running
from .checkout import AppPaths, Code, app_env, app_files_purged, app_place
from .config import App
from .facts import OutputLines
from .install import TOOLS, install_alternatives, missing_message, tool_installed, tool_trigger, tools_wanted
from .postgres import database_driver_packages, secret_env_path
from .releases import (
    BUILDS,
    SETTINGS_DIR,
    Build,
    activate_command,
    building,
    in_next_release,
    release_built,
    release_fetched,
    release_state,
)
from .render import render
from .revision import release_decision
from .stamped import as_user, stamped_steps
from .validated import checked_file

# gunicorn --worker-class and the pip packages each needs besides gunicorn.
WORKER_CLASSES = {
    "sync": ("sync", ()),
    "gthread": ("gthread", ()),
    "eventlet": ("eventlet", ("eventlet",)),
    "gevent": ("gevent", ("gevent",)),
    "uvicorn": ("uvicorn_worker.UvicornWorker", ("uvicorn-worker",)),
}
DEFAULT_WORKER_CLASS = {"flask": "sync", "fastapi": "uvicorn", "other": "sync"}
# Memory one gunicorn worker of a small app is budgeted.
WORKER_MEMORY_MB = 128


@dataclass(frozen=True)
class VenvAppSpec(Code):
    """One venv app as ``app_present`` deploys it: its code and ``.env`` (``Code``), how it is installed and served."""

    port: int = 8000
    entry: str = "app:app"  # what gunicorn loads
    worker_class: str = "sync"  # a key of WORKER_CLASSES
    workers: int = 0  # 0: the number app_present is given
    threads: int = 1
    timeout: int = 30
    health_path: str = "/"
    health_timeout: int = 60  # seconds a new release has to answer on health_path
    app_dir: str = "."
    install: str = "auto"  # install.METHODS
    requirements: str = "requirements.txt"
    packages: tuple[str, ...] = ("gunicorn",)  # pip installs them besides the install files
    build: str = ""
    build_dir: str = "."
    migrate: str = ""
    seed: str = ""
    keep_releases: int = 5
    shared_paths: tuple[str, ...] = ("instance",)


# ------------------------------------------------------------------ pure logic


def worker_class(app: App) -> str:
    """The short worker class name in effect for ``app``."""
    return app.worker_class or DEFAULT_WORKER_CLASS[app.kind]


def pip_packages(app: App) -> list[str]:
    """What pip installs besides the requirements file: gunicorn, the worker's package, the database driver."""
    return ["gunicorn", *WORKER_CLASSES[worker_class(app)][1], *database_driver_packages(app)]


def default_workers(cpus: int, memory_mb: int, apps: int, kind: str = "sync") -> int:
    """(2 x CPU cores) + 1, capped so all apps' workers fit in memory; 1 for eventlet/gevent.

    Async workers serve many connections each, and Flask-SocketIO needs one.
    """
    if kind in ("eventlet", "gevent"):
        return 1
    by_cpu = 2 * max(cpus, 1) + 1
    by_memory = max(memory_mb // (max(apps, 1) * WORKER_MEMORY_MB * 2), 1)
    return max(min(by_cpu, by_memory), 1)


def unit_text(app: VenvAppSpec, paths: AppPaths, user: str, workers: int) -> str:
    cls = WORKER_CLASSES[app.worker_class][0]
    protect_home = not any(p.startswith(("/home", "/root")) for p in (paths.root, paths.logs))
    return render(
        "gunicorn.service.j2",
        app=app,
        paths=paths,
        user=user,
        workers=workers,
        worker_class=cls,
        protect_home=protect_home,
        secret_env=secret_env_path(app.name) if app.postgres else "",
    )


def in_app_env(paths: AppPaths, command: str) -> str:
    """``command`` in the live checkout with the venv on PATH and the app's .env loaded."""
    return f"set -a && . {paths.env} && set +a && PATH={paths.venv}/bin:$PATH && cd {paths.code} && {command}"


# Polls a URL until it answers below 400; prints the last status or error when time runs out.
_PROBE = """
import sys, time, urllib.error, urllib.request
url, deadline, last = sys.argv[1], time.time() + float(sys.argv[2]), "no answer"
while True:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            code = r.status
    except urllib.error.HTTPError as e:
        code = e.code
    except OSError as e:
        code, last = None, str(getattr(e, "reason", e))
    if code is not None and code < 400:
        sys.exit(0)
    last = f"HTTP {code}" if code is not None else last
    if time.time() > deadline:
        print(last)
        sys.exit(1)
    time.sleep(0.25)
"""


def answer_command(app_name: str, python: str, port: int, path: str, error_log: str, timeout: int = 60) -> str:
    """Shell that waits for the app to answer ``path`` on its loopback port, or fails naming it with its error log's end."""
    url = f"http://127.0.0.1:{int(port)}{path}"
    say = shlex.quote(f"app {app_name} does not answer at {url} within {timeout}s")
    log = shlex.quote(error_log)
    return (
        f"if ! out=$({shlex.quote(python)} -c {shlex.quote(_PROBE)} {shlex.quote(url)} {int(timeout)}); then "
        f'echo {say} "($out); last lines of" {log}: >&2; tail -n 20 {log} >&2; exit 1; fi'
    )


# ------------------------------------------------------------------------ facts


class HostSize(FactBase):
    """
    Returns the CPU count and memory (MiB) in one round trip: ``{"cpus": 2, "memory_mb": 1987}``.
    """

    def command(self):
        return "nproc; awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo"

    def process(self, output):
        return {"cpus": int(output[0]), "memory_mb": int(output[1])}


class UnitFiles(OutputLines):
    """
    Returns the systemd unit files in /etc/systemd/system whose names start with ``prefix``.
    """

    def command(self, prefix):
        return f"cd /etc/systemd/system && ls -1d {shlex.quote(prefix)}* 2>/dev/null || true"


# ------------------------------------------------------------------- operations


# ----------------------------------------------------------------------- deploys


def app_settings(app: VenvAppSpec, paths: AppPaths, user: str) -> str:
    """The JSON ``vpskit-app`` reads for the app: where it lives, how gunicorn runs it, where it answers."""
    return (
        json.dumps(
            {
                "name": app.name,
                "kind": "venv",
                "root": paths.root,
                "git_dir": f"{paths.root}/repo.git",
                "app_dir": app.app_dir,
                "unit": paths.unit,
                "port": app.port,
                "health_path": app.health_path,
                "health_timeout": app.health_timeout,
                "user": user,
                "env_files": [paths.env, *([secret_env_path(app.name)] if app.postgres else [])],
                "error_log": f"{paths.logs}/error.log",
                "keep": app.keep_releases,
                "gunicorn": {
                    "worker_class": WORKER_CLASSES[app.worker_class][0],
                    "threads": app.threads,
                    "timeout": app.timeout,
                    "entry": app.entry,
                },
            },
            indent=2,
        )
        + "\n"
    )


@deploy("App")
def app_present(
    app: VenvAppSpec,
    paths: AppPaths,
    user: str,
    python: str,
    python_version: str,
    workers: int,
    deploy_key: str = "",
    brought: dict[str, str] | None = None,
    db_port: int = 5432,
    pip_index_url: str = "",
):
    """
    Ensure ``app`` serves the commit its config asks for, built as a release beside the live one and switched to health-gated.

    A new commit gets its own checkout and (when its install files changed) venv, its
    migrations, a trial boot on a socket of its own, then the switch with gunicorn's
    graceful reload; it is switched back when it does not answer on its port. A
    changed .env or unit restarts the app.

    + app: the app (``VenvAppSpec``)
    + paths: where the app lives on the host (``AppPaths(name, apps_dir, logs_dir, released=True)``)
    + user: the deploy user who owns the app
    + python: interpreter for the venv (``/usr/bin/python3.12``)
    + python_version: its "3.X" version
    + workers: gunicorn workers when the app does not set them
    + deploy_key: the deploy key's private key text ('' without one)
    + brought: the app's ``secrets_from`` values, read on the controller (never printed)
    + db_port: PostgreSQL's port, for ``${DB_PORT}`` in env values
    + pip_index_url: the package index (a mirror) uv and pip install the venv and vpskit's tools from; '' for PyPI.
      Changing it rebuilds nothing: a venv is keyed by what it holds, not where that came from

    **Example:**

    .. code:: python

        shop = VenvAppSpec("shop", "https://git.example.com/shop.git", port=5001, migrate="flask db upgrade")
        app_present(shop, AppPaths("shop", "/srv/apps", "/var/log/apps"), "appuser", "/usr/bin/python3.12", "3.12", workers=5)
    """
    n = app.name
    paths = dataclasses.replace(paths, released=True)
    ssh_env = app_place(app, paths, user, deploy_key)
    key_file = paths.deploy_key if app.deploy_key else ""
    state = release_state(paths.root, app.repo, app.ref, user, ssh_env, key_file)
    decision = release_decision(n, app.ref, state, python_version)
    deploying = decision.action in BUILDS
    env_op = app_env(app, paths, user, brought, db_port)
    target = (state or {}).get("target", "")[:12] or app.ref
    build = Build(
        name=n,
        root=paths.root,
        repo=app.repo,
        ref=app.ref,
        user=user,
        python=python,
        python_version=python_version,
        app_dir=app.app_dir,
        install=app.install,
        requirements=app.requirements,
        packages=app.packages,
        build=app.build,
        build_dir=app.build_dir,
        shared=app.shared_paths,
        ssh_env=ssh_env,
        needs=install_alternatives(app.install, app.requirements, app.app_dir),
        missing=missing_message(n, app.install, app.requirements, app.app_dir),
        rebuild=decision.action == "rebuild",
        index_url=pip_index_url,
    )
    fetch = (
        f"rebuild release {target} for Python {python_version}" if build.rebuild else f"fetch {app.ref} ({target}) beside the live release"
    )
    release_fetched(name=f"{n}: {fetch}", build=build, decision=decision)
    for tool in tools_wanted(app.install):
        tool_installed(
            name=f"{n}: {tool} {TOOLS[tool]} " + ("for its venv" if tool == "uv" else "for its locked dependencies"),
            tool=tool,
            python=python,
            when_any=tuple(f"{code}/{f}" for code in (paths.code, building(build, app_dir=True)) for f in tool_trigger(app.install, tool)),
            checkout_moves=deploying,
            index_url=pip_index_url,
        )
    built = release_built(
        name=f"{n}: release {target} built (venv reused when its install files did not change)", build=build, decision=decision
    )
    # Migrations and seeds reach the app's PostgreSQL with the URL the gunicorn unit gets.
    db_env = secret_env_path(app.name) if app.postgres else ""
    if deploying and app.migrate:
        server.shell(
            name=f"{n}: migrations (release {target})",
            commands=[as_user(user, in_next_release(paths.root, app.app_dir, paths.env, app.migrate), db_env)],
        )
    if app.seed:
        seed_keys = {"seed": (f"{paths.root}/.vpskit-seeded", "echo seeded")}
        plan = [("seed", "seed data (once)", in_next_release(paths.root, app.app_dir, paths.env, app.seed), False, db_env)]
        stamped_steps(n, plan, seed_keys, cwd=paths.root, user=user)

    checked_file(name=f"{n}: vpskit-app settings", dest=f"{SETTINGS_DIR}/{n}.json", content=app_settings(app, paths, user), mode="644")
    unit = checked_file(
        name=f"{n}: gunicorn unit",
        dest=paths.unit_file,
        content=unit_text(app, paths, user, app.workers or workers),
        mode="644",
    )
    checked_file(
        name=f"{n}: logrotate",
        dest=paths.logrotate,
        content=render("logrotate-app.j2", paths=paths, user=user),
        validate="logrotate -d {path}",
        mode="644",
    )
    restart = env_op.will_change or unit.will_change or decision.action == "rebuild"
    if built.will_change:
        server.shell(
            name=f"{n}: switch to release {target} (health-gated: switched back if it does not answer on {app.health_path})",
            commands=[activate_command(n, paths.root, restart, unit.will_change, legacy=bool(state and state["legacy"]))],
        )
        unit_running(name=f"{n}: gunicorn running", unit=paths.unit)
        return
    unit_running(name=f"{n}: gunicorn running", unit=paths.unit, daemon_reload=unit.will_change, restarted=restart)
    if restart:
        server.shell(
            name=f"{n}: answers on {app.health_path}",
            commands=[
                answer_command(n, f"{paths.venv}/bin/python", app.port, app.health_path, f"{paths.logs}/error.log", app.health_timeout)
            ],
        )


@deploy("Remove app")
def app_absent(paths: AppPaths, purge: bool = False):
    """
    Ensure an app marked absent is gone: unit and its timers, logrotate config (code and data kept unless ``purge``).

    The nginx site and certificate are removed with the web stack (``nginx``, ``certbot`` modules).

    + paths: where the app lives on the host
    + purge: also delete its code, data and logs

    **Example:**

    .. code:: python

        app_absent(AppPaths("oldapp", "/srv/apps", "/var/log/apps"), purge=True)
    """
    name = paths.name
    units = host.get_fact(UnitFiles, prefix=f"app-{name}")
    mine = [u for u in units if u == paths.unit or u.startswith(f"app-{name}-")]
    for unit in sorted(mine, key=lambda u: not u.endswith(".timer")):
        systemd.service(name=f"{name}: stop {unit}", service=unit, running=False, enabled=False)
    removed = [files.file(name=f"{name}: remove {u}", path=f"/etc/systemd/system/{u}", present=False) for u in mine]
    if removed:
        systemd.daemon_reload(name=f"{name}: reload systemd", _if=lambda: any(op.did_change() for op in removed))
    files.file(name=f"{name}: remove logrotate", path=paths.logrotate, present=False)
    files.file(name=f"{name}: remove vpskit-app settings", path=f"{SETTINGS_DIR}/{name}.json", present=False)
    if purge:
        app_files_purged(paths)
