"""One web app on the host: git checkout, venv, .env with kept secrets, gunicorn unit, logrotate.

Everything is decided by facts read before the run and yields commands only
when something differs, so a second run changes nothing. Steps that depend on
the checkout (pip install, migrations, front-end build) are keyed by a stamp
file: they run when their key (requirements hash, commit) differs from the
stamp, or when the checkout itself changes in this run.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import shlex
from dataclasses import dataclass

from pyinfra import host
from pyinfra.api import FactBase, OperationError, StringCommand, deploy, operation
from pyinfra.operations import files, server, systemd

from .batched import directory_present, unit_running
from .config import App, Web
from .facts import OutputLines
from .postgres import database_driver_packages, secret_env_path
from .render import render
from .snapshot import planned, snapshot_fact
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
SECRET_BYTES = 48
GIT = "git -c safe.directory='*'"


@dataclass(frozen=True)
class AppPaths:
    """Where one app lives on the host."""

    name: str
    apps_dir: str
    logs_dir: str

    @property
    def root(self) -> str:
        return f"{self.apps_dir.rstrip('/')}/{self.name}"

    @property
    def src(self) -> str:
        return f"{self.root}/src"

    @property
    def venv(self) -> str:
        return f"{self.root}/venv"

    @property
    def env(self) -> str:
        return f"{self.root}/.env"

    @property
    def data(self) -> str:
        return f"{self.root}/data"

    @property
    def ssh_dir(self) -> str:
        return f"{self.root}/.ssh"

    @property
    def deploy_key(self) -> str:
        return f"{self.ssh_dir}/deploy_key"

    @property
    def logs(self) -> str:
        return f"{self.logs_dir.rstrip('/')}/{self.name}"

    @property
    def unit(self) -> str:
        return f"app-{self.name}.service"

    @property
    def unit_file(self) -> str:
        return f"/etc/systemd/system/{self.unit}"

    @property
    def logrotate(self) -> str:
        return f"/etc/logrotate.d/app-{self.name}"


def app_paths(app: App, web: Web) -> AppPaths:
    return AppPaths(app.name, web.apps_dir, web.log_dir)


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


def env_value(value: str) -> str:
    """A value as systemd's EnvironmentFile and sh both read it back unchanged."""
    if value and all(ch.isalnum() or ch in "_./:@%+,=-" for ch in value):
        return value
    return f"'{value}'"


def env_file_text(app: App, paths: AppPaths, kept: dict[str, str], new_secret=None) -> str:
    """The app's .env: vpskit's own variables, the configured env, then the secrets.

    ``kept`` holds secrets already on the host; missing ones come from ``new_secret()``.
    """
    new_secret = new_secret or (lambda: secrets.token_urlsafe(SECRET_BYTES))
    lines = [f"# Managed by vpskit: environment of app {app.name}. Edit env in vpskit.toml.", f"DATA_DIR={paths.data}"]
    lines += [f"{k}={env_value(v)}" for k, v in app.env.items()]
    lines += [f"{name}={kept.get(name) or new_secret()}" for name in app.secrets]
    return "\n".join(lines) + "\n"


def unit_text(app: App, paths: AppPaths, user: str, workers: int) -> str:
    cls = WORKER_CLASSES[worker_class(app)][0]
    protect_home = not any(p.startswith(("/home", "/root")) for p in (paths.root, paths.logs))
    return render(
        "gunicorn.service.j2",
        app=app,
        paths=paths,
        user=user,
        workers=workers,
        worker_class=cls,
        protect_home=protect_home,
        secret_env=secret_env_path(app.name) if app.database.uses_postgres else "",
    )


def as_user(user: str, command: str, secret_env: str = "") -> str:
    """``command`` run by ``user`` with its own HOME (the run itself is root).

    With ``secret_env`` (a root-only env file holding ``DATABASE_URL``) root reads
    the file and hands the URL to ``user`` in the environment, never on a command line.
    """
    run = f"sudo -u {user} -H sh -c {shlex.quote(command)}"
    if not secret_env:
        return run
    return f"set -a && . {shlex.quote(secret_env)} && set +a && sudo --preserve-env=DATABASE_URL -u {user} -H sh -c {shlex.quote(command)}"


def git_ssh_env(paths: AppPaths, app: App) -> str:
    """The GIT_SSH_COMMAND prefix for a repo read with a deploy key ('' without one)."""
    if not app.deploy_key:
        return ""
    ssh = (
        f"ssh -i {paths.deploy_key} -o IdentitiesOnly=yes -o StrictHostKeyChecking=accept-new"
        f" -o UserKnownHostsFile={paths.ssh_dir}/known_hosts"
    )
    return f"GIT_SSH_COMMAND={shlex.quote(ssh)} "


def short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ------------------------------------------------------------------------ facts


class GitCheckout(FactBase):
    """
    Returns the checkout at ``path`` and the commit the remote ``ref`` points at, or None without a checkout.

    .. code:: python

        {"head": "3f2c…", "url": "file:///srv/git/app.git", "remote": "9a1b…"}

    The remote is asked (``git ls-remote``) as ``user``, with the deploy key when given;
    before that key is on the host the remote is not asked (``"skipped": True``), and a
    remote that cannot be read gives its error (``"error": "…"``).
    """

    def command(self, path, repo, ref, user, ssh_env="", key_file=""):
        p = shlex.quote(path)
        remote = as_user(
            user,
            f"{ssh_env}{GIT} ls-remote {shlex.quote(repo)} "
            + " ".join(shlex.quote(r) for r in (f"refs/heads/{ref}", f"refs/tags/{ref}", f"refs/tags/{ref}^{{}}")),
        )
        ask = (
            f"if out=$({remote} 2>&1); then printf '%s\\n' \"$out\" | sed 's/^/remote=/'; "
            "else printf '%s\\n' \"$out\" | sed 's/^/error=/'; fi"
        )
        if key_file:
            ask = f"if [ -f {shlex.quote(key_file)} ]; then {ask}; else echo skipped=1; fi"
        return (
            f"if [ -d {p}/.git ]; then echo head=$({GIT} -C {p} rev-parse HEAD); "
            f"echo url=$({GIT} -C {p} config --get remote.origin.url); {ask}; fi"
        )

    def process(self, output):
        data: dict = {"error": "", "skipped": False}
        remotes = {}
        for line in output:
            key, _, value = line.partition("=")
            if key == "remote":
                sha, _, ref = value.partition("\t")
                if re.fullmatch(r"[0-9a-f]{40}", sha.strip()):  # not ssh's "Warning: added host key" etc.
                    remotes[ref.strip()] = sha.strip()
            elif key == "error":
                data["error"] = (data["error"] + "\n" + value.strip()).strip()
            elif key == "skipped":
                data["skipped"] = True
            else:
                data[key] = value.strip()
        if "head" not in data:
            return None
        peeled = [sha for ref, sha in remotes.items() if ref.endswith("^{}")]
        data["remote"] = peeled[0] if peeled else next(iter(remotes.values()), "")
        return data


class Stamps(FactBase):
    """
    Returns, for each named stamp, the key stored in its file and the key computed now.

    ``stamps`` maps a name to (stamp file, shell that prints the current key).

    .. code:: python

        {"requirements": ("ab12… gunicorn", "ab12… gunicorn"), "migrate": ("", "3f2c…")}
    """

    def command(self, stamps):
        parts = []
        for name, (stamp, key_cmd) in sorted(stamps.items()):
            parts.append(f'echo "{name}=$(cat {shlex.quote(stamp)})|$({key_cmd})"')
        return "{ " + "; ".join(parts) + "; } 2>/dev/null"

    def process(self, output):
        result = {}
        for line in output:
            name, _, rest = line.partition("=")
            stored, _, current = rest.partition("|")
            result[name] = (stored.strip(), current.strip())
        return result


class VenvPython(FactBase):
    """
    Returns the Python version ("3.12") of the venv at ``path``, or None without one.
    """

    def command(self, path):
        py = shlex.quote(f"{path}/bin/python")
        return f"if [ -x {py} ]; then {py} -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])'; fi"

    def process(self, output):
        return output[0].strip() if output else None


class EnvSecrets(FactBase):
    """
    Returns the values of the named variables in an env file ({} without the file).

    Used to keep generated secrets across runs; the values are never logged by vpskit.
    """

    def command(self, path, names):
        pattern = "|".join(names) or "^$"
        p = shlex.quote(path)
        return f"if [ -f {p} ]; then grep -E '^({pattern})=' {p} || true; fi"

    @staticmethod
    def default():
        return {}

    def process(self, output):
        values = {}
        for line in output:
            key, _, value = line.partition("=")
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == "'":
                value = value[1:-1]
            values[key] = value
        return values


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


def _checkout_fact(repo: str, ref: str, dest: str, user: str, ssh_env: str = "", key_file: str = "", **_):
    return [(GitCheckout, {"path": dest, "repo": repo, "ref": ref, "user": user, "ssh_env": ssh_env, "key_file": key_file})]


@planned(_checkout_fact)
@operation()
def git_checkout(repo: str, ref: str, dest: str, user: str, ssh_env: str = "", key_file: str = ""):
    """
    Ensure ``dest`` is a checkout of ``repo`` at the commit ``ref`` points at now, owned by ``user``.

    + repo: git URL
    + ref: branch or tag
    + dest: checkout directory (its parent must be writable by ``user``)
    + user: who clones and owns the checkout
    + ssh_env: GIT_SSH_COMMAND prefix for a deploy key
    + key_file: the deploy key's path on the host ('' without one)

    **Example:**

    .. code:: python

        git_checkout(repo="https://git.example.com/shop.git", ref="main", dest="/srv/apps/shop/src", user="appuser")
    """
    ((fact, kwargs),) = _checkout_fact(repo, ref, dest, user, ssh_env, key_file)
    state = snapshot_fact(fact, **kwargs)
    d = shlex.quote(dest)
    if state is None:
        yield StringCommand(as_user(user, f"{ssh_env}git clone --quiet --branch {shlex.quote(ref)} {shlex.quote(repo)} {d}"))
        return
    if state["error"]:
        raise OperationError(f"cannot read {repo}: {state['error']}")
    if not state["remote"] and not state["skipped"]:
        raise OperationError(f"{repo} has no branch or tag {ref!r}")
    commands = []
    if state.get("url") != repo:
        commands.append(f"git -C {d} remote set-url origin {shlex.quote(repo)}")
    if state["skipped"] or state.get("head") != state["remote"] or commands:
        commands.append(f"{ssh_env}git -C {d} fetch --quiet origin {shlex.quote(ref)}")
        commands.append(f"git -C {d} reset --quiet --hard FETCH_HEAD")
    if not commands:
        host.noop(f"{dest} is at {ref} ({state['head'][:12]})")
        return
    yield StringCommand(as_user(user, " && ".join(commands)))


@planned(lambda path, **_: [(VenvPython, {"path": path})])
@operation()
def venv(path: str, python: str, version: str, user: str):
    """
    Ensure a virtualenv made with ``python`` (of ``version``) exists at ``path``, owned by ``user``.

    A venv of another Python version is replaced.

    + path: venv directory
    + python: interpreter that creates it
    + version: its "3.X" version
    + user: owner

    **Example:**

    .. code:: python

        venv(path="/srv/apps/shop/venv", python="/usr/bin/python3.12", version="3.12", user="appuser")
    """
    current = snapshot_fact(VenvPython, path=path)
    if current == version:
        host.noop(f"{path} runs Python {version}")
        return
    p = shlex.quote(path)
    yield StringCommand(f"rm -rf {p} && " + as_user(user, f"{shlex.quote(python)} -m venv {p}"))


def stamped_command(command: str, key_cmd: str, stamp: str, cwd: str) -> str:
    """Run ``command`` in ``cwd`` unless ``stamp`` holds the current key; record the key on success."""
    s = shlex.quote(stamp)
    return (
        f'cd {shlex.quote(cwd)} && k="$({key_cmd})" && '
        f'if [ "$(cat {s} 2>/dev/null)" != "$k" ]; then {{ {command} ; }} && printf \'%s\\n\' "$k" > {s}; fi'
    )


@operation()
def stamped_step(
    command: str, key_cmd: str, stamp: str, cwd: str, user: str, known: tuple[str, str], force: bool = False, secret_env: str = ""
):
    """
    Ensure ``command`` has run for the current key (a requirements hash, a commit).

    + command: shell run as ``user`` in ``cwd``
    + key_cmd: shell printing the current key
    + stamp: file recording the key of the last successful run
    + cwd: working directory
    + user: who runs it
    + known: (stored, current) keys as read before the run (``Stamps`` fact)
    + force: the key will change in this run (the checkout moves), so run
    + secret_env: root-only env file whose ``DATABASE_URL`` the command gets ('' for none)

    **Example:**

    .. code:: python

        stamped_step(command="venv/bin/pip install -r requirements.txt", key_cmd="sha256sum requirements.txt",
                     stamp="/srv/apps/shop/venv/.vpskit-requirements", cwd="/srv/apps/shop", user="appuser",
                     known=stamps["requirements"])
    """
    stored, current = known
    if not force and stored and stored == current:
        host.noop(f"{stamp} is current")
        return
    yield StringCommand(as_user(user, stamped_command(command, key_cmd, stamp, cwd), secret_env))


# ----------------------------------------------------------------------- deploys


def stamped_steps(app_name: str, plan: list[tuple], keys: dict[str, tuple[str, str]], cwd: str, user: str) -> list:
    """
    A ``stamped_step`` for each entry of ``plan`` whose stamp is in ``keys``, in the plan's order.

    + app_name: the app (names the operations)
    + plan: (stamp, label, command, also run when, secret env file or '') in the order they must run
    + keys: stamp name -> (stamp file, shell printing the current key), from ``stamp_keys``
    + cwd: working directory of the commands
    + user: who runs them

    The stored and current keys of all of them are read in one ``Stamps`` fact.
    """
    known = host.get_fact(Stamps, stamps=keys)
    return [
        stamped_step(
            name=f"{app_name}: {label}",
            command=command,
            key_cmd=keys[stamp][1],
            stamp=keys[stamp][0],
            cwd=cwd,
            user=user,
            known=known[stamp],
            force=force,
            secret_env=secret_env,
        )
        for stamp, label, command, force, secret_env in plan
        if stamp in keys
    ]


def in_app_env(paths: AppPaths, command: str) -> str:
    """``command`` in the checkout with the venv on PATH and the app's .env loaded."""
    return f"set -a && . {paths.env} && set +a && PATH={paths.venv}/bin:$PATH && cd {paths.src} && {command}"


def stamp_keys(app: App, paths: AppPaths, python_version: str) -> dict[str, tuple[str, str]]:
    """Each checkout-dependent step: (stamp file, shell printing its key)."""
    req = shlex.quote(f"{paths.src}/{app.requirements}")
    head = f"{GIT} -C {shlex.quote(paths.src)} rev-parse HEAD"
    steps = {
        "requirements": (
            f"{paths.venv}/.vpskit-requirements",
            f'echo "$(sha256sum < {req} | cut -c1-64) {python_version} {" ".join(pip_packages(app))}"',
        )
    }
    if app.build:
        steps["build"] = (f"{paths.root}/.vpskit-built", f'echo "$({head}) {short_hash(app.build)}"')
    if app.migrate:
        steps["migrate"] = (f"{paths.root}/.vpskit-migrated", f'echo "$({head}) {short_hash(app.migrate)}"')
    if app.seed:
        steps["seed"] = (f"{paths.root}/.vpskit-seeded", "echo seeded")
    return steps


def app_code(app: App, web: Web, user: str, deploy_key: str = ""):
    """The app's directories, deploy key, git checkout and .env (secrets kept); returns (checkout op, .env op).

    Shared by the venv apps (``app_present``) and the compose apps (``compose.compose_app``).
    """
    paths = app_paths(app, web)
    n = app.name
    directory_present(name=f"{n}: app directory", path=paths.root, user=user, group="www-data", mode="750")
    directory_present(name=f"{n}: data directory", path=paths.data, user=user, group=user, mode="750")
    directory_present(name=f"{n}: log directory", path=paths.logs, user=user, group="adm", mode="750")
    ssh_env = ""
    if app.deploy_key:
        directory_present(name=f"{n}: ssh directory", path=paths.ssh_dir, user=user, group=user, mode="700")
        checked_file(name=f"{n}: deploy key", dest=paths.deploy_key, content=deploy_key, mode="600", user=user, group=user)
        ssh_env = git_ssh_env(paths, app)

    code = git_checkout(
        name=f"{n}: checkout {app.branch}",
        repo=app.repo,
        ref=app.branch,
        dest=paths.src,
        user=user,
        ssh_env=ssh_env,
        key_file=paths.deploy_key if app.deploy_key else "",
    )
    env_op = checked_file(
        name=f"{n}: environment (.env)",
        dest=paths.env,
        # Read when the operation runs: secrets restored earlier in this run (off-host recovery) are kept.
        content=lambda: env_file_text(app, paths, host.get_fact(EnvSecrets, path=paths.env, names=list(app.secrets))),
        mode="600",
        user=user,
        group=user,
    )
    return code, env_op


@deploy("App")
def app_present(app: App, web: Web, user: str, python: str, python_version: str, workers: int, deploy_key: str = ""):
    """
    Ensure ``app`` is deployed, configured and running; restart it only when its code, env or unit changed.

    + app: the app's config
    + web: the ``[web]`` section (where apps and logs live)
    + user: the deploy user who owns the app
    + python: interpreter for the venv (``/usr/bin/python3.12``)
    + python_version: its "3.X" version
    + workers: gunicorn workers when the app does not set them
    + deploy_key: the deploy key's private key text ('' without one)

    **Example:**

    .. code:: python

        app_present(app, config.web, "appuser", "/usr/bin/python3.12", "3.12", workers=5)
    """
    paths = app_paths(app, web)
    n = app.name
    code, env_op = app_code(app, web, user, deploy_key)
    venv_op = venv(name=f"{n}: venv (Python {python_version})", path=paths.venv, python=python, version=python_version, user=user)

    keys = stamp_keys(app, paths, python_version)
    code_moves = code.will_change
    pip = " ".join(shlex.quote(p) for p in pip_packages(app))
    # Migrations and seeds reach the app's PostgreSQL with the URL the gunicorn unit gets.
    db_env = secret_env_path(app.name) if app.database.uses_postgres else ""
    # (stamp, label, command, also run when, secret env) in the order they must run.
    plan = [
        (
            "requirements",
            "install requirements if they changed",
            f"{paths.venv}/bin/pip install --quiet --disable-pip-version-check -r {shlex.quote(app.requirements)} {pip}",
            code_moves or venv_op.will_change,
            "",
        ),
        ("build", "front-end build", f"cd {shlex.quote(app.build_dir)} && {app.build}", code_moves, ""),
        ("migrate", "migrations", in_app_env(paths, app.migrate), code_moves, db_env),
        ("seed", "seed data (once)", in_app_env(paths, app.seed), False, db_env),
    ]
    steps = stamped_steps(n, plan, keys, cwd=paths.src, user=user)

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
    changed = [code, env_op, venv_op, unit, *steps]
    unit_running(
        name=f"{n}: gunicorn running",
        unit=paths.unit,
        daemon_reload=unit.will_change,
        restarted=any(op.will_change for op in changed),
    )


@deploy("Remove app")
def app_absent(app: App, web: Web):
    """
    Ensure an app marked absent is gone: unit and its timers, logrotate config (code and data kept unless ``purge``).

    The nginx site and certificate are removed with the web stack (``nginx``, ``certbot`` modules).

    + app: the app's config (``state = "absent"``)
    + web: the ``[web]`` section

    **Example:**

    .. code:: python

        app_absent(app, config.web)
    """
    paths = app_paths(app, web)
    units = host.get_fact(UnitFiles, prefix=f"app-{app.name}")
    mine = [u for u in units if u == paths.unit or u.startswith(f"app-{app.name}-")]
    for unit in sorted(mine, key=lambda u: not u.endswith(".timer")):
        systemd.service(name=f"{app.name}: stop {unit}", service=unit, running=False, enabled=False)
    removed = [files.file(name=f"{app.name}: remove {u}", path=f"/etc/systemd/system/{u}", present=False) for u in mine]
    if removed:
        systemd.daemon_reload(name=f"{app.name}: reload systemd", _if=lambda: any(op.did_change() for op in removed))
    files.file(name=f"{app.name}: remove logrotate", path=paths.logrotate, present=False)
    if app.purge:
        app_files_purged(app, web)


def app_files_purged(app: App, web: Web):
    """Remove an absent app's code, data and logs (``purge = true``); used inside a ``@deploy`` of the app's removal."""
    paths = app_paths(app, web)
    files.directory(name=f"{app.name}: purge code and data", path=paths.root, present=False)
    files.directory(name=f"{app.name}: purge logs", path=paths.logs, present=False)
