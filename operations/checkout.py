"""An app's place on the host and its code: directories, deploy key, git checkout and ``.env`` (secrets kept).

Shared by the venv apps (``app.app_present``) and the compose apps (``compose.compose_app``).
"""

from __future__ import annotations

import re
import secrets
import shlex
from dataclasses import dataclass

from pyinfra import host
from pyinfra.api import FactBase, OperationError, StringCommand, operation
from pyinfra.operations import files

from .batched import directory_present
from .config import App
from .snapshot import planned, snapshot_fact
from .stamped import as_user
from .validated import checked_file

SECRET_BYTES = 48
GIT = "git -c safe.directory='*'"


@dataclass(frozen=True)
class AppPaths:
    """Where one app lives on the host."""

    name: str
    apps_dir: str
    logs_dir: str
    app_dir: str = "."

    @property
    def root(self) -> str:
        return f"{self.apps_dir.rstrip('/')}/{self.name}"

    @property
    def src(self) -> str:
        return f"{self.root}/src"

    @property
    def code(self) -> str:
        """The app's own directory in the checkout (``app_dir``): where it runs and its install files are."""
        sub = self.app_dir.strip("/")
        return self.src if sub in ("", ".") else f"{self.src}/{sub}"

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


def git_ssh_env(paths: AppPaths, app: App) -> str:
    """The GIT_SSH_COMMAND prefix for a repo read with a deploy key ('' without one)."""
    if not app.deploy_key:
        return ""
    ssh = (
        f"ssh -i {paths.deploy_key} -o IdentitiesOnly=yes -o StrictHostKeyChecking=accept-new"
        f" -o UserKnownHostsFile={paths.ssh_dir}/known_hosts"
    )
    return f"GIT_SSH_COMMAND={shlex.quote(ssh)} "


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


def _checkout_fact(repo: str, ref: str, dest: str, user: str, ssh_env: str = "", key_file: str = "", **_):
    return [(GitCheckout, {"path": dest, "repo": repo, "ref": ref, "user": user, "ssh_env": ssh_env, "key_file": key_file})]


def files_check(dest: str, rev: str, needs: tuple[tuple[str, ...], ...], missing: str) -> str:
    """Shell that stops with ``missing`` unless commit ``rev`` of the checkout at ``dest`` holds all files of one group of ``needs``."""
    if not needs:
        return ""
    d = shlex.quote(dest)
    groups = " || ".join(
        "{ " + " && ".join(f"git -C {d} cat-file -e {shlex.quote(f'{rev}:{path}')} 2>/dev/null" for path in group) + "; }"
        for group in needs
    )
    return f"{{ {groups} || {{ echo {shlex.quote(missing)} >&2; exit 1; }}; }}"


@planned(_checkout_fact)
@operation()
def git_checkout(
    repo: str,
    ref: str,
    dest: str,
    user: str,
    ssh_env: str = "",
    key_file: str = "",
    needs: tuple[tuple[str, ...], ...] = (),
    missing: str = "",
):
    """
    Ensure ``dest`` is a checkout of ``repo`` at the commit ``ref`` points at now, owned by ``user``.

    + repo: git URL
    + ref: branch or tag
    + dest: checkout directory (its parent must be writable by ``user``)
    + user: who clones and owns the checkout
    + ssh_env: GIT_SSH_COMMAND prefix for a deploy key
    + key_file: the deploy key's path on the host ('' without one)
    + needs: groups of paths in the repo; the new commit must hold every path of one group, or the run
      stops with ``missing`` before the checkout moves to it

    **Example:**

    .. code:: python

        git_checkout(repo="https://git.example.com/shop.git", ref="main", dest="/srv/apps/shop/src", user="appuser")
    """
    ((fact, kwargs),) = _checkout_fact(repo, ref, dest, user, ssh_env, key_file)
    state = snapshot_fact(fact, **kwargs)
    d = shlex.quote(dest)
    if state is None:
        clone = f"{ssh_env}git clone --quiet --branch {shlex.quote(ref)} {shlex.quote(repo)} {d}"
        check = files_check(dest, "HEAD", needs, missing)
        yield StringCommand(as_user(user, f"{clone} && {check}" if check else clone))
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
        if needs:
            commands.append(files_check(dest, "FETCH_HEAD", needs, missing))
        commands.append(f"git -C {d} reset --quiet --hard FETCH_HEAD")
    if not commands:
        host.noop(f"{dest} is at {ref} ({state['head'][:12]})")
        return
    yield StringCommand(as_user(user, " && ".join(commands)))


def app_code(app: App, paths: AppPaths, user: str, deploy_key: str = "", needs: tuple = (), missing: str = ""):
    """The app's directories, deploy key, git checkout and .env (secrets kept); returns (checkout op, .env op).

    ``needs`` and ``missing``: files a new commit must hold, as ``git_checkout`` takes them.

    Shared by the venv apps (``app_present``) and the compose apps (``compose.compose_app``).
    """
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
        needs=needs,
        missing=missing,
    )
    env_op = checked_file(
        name=f"{n}: environment (.env)",
        dest=paths.env,
        content=env_file_text(app, paths, host.get_fact(EnvSecrets, path=paths.env, names=list(app.secrets))),
        mode="600",
        user=user,
        group=user,
    )
    return code, env_op


def app_files_purged(paths: AppPaths):
    """Remove an absent app's code, data and logs (``purge = true``); used inside a ``@deploy`` of the app's removal."""
    files.directory(name=f"{paths.name}: purge code and data", path=paths.root, present=False)
    files.directory(name=f"{paths.name}: purge logs", path=paths.logs, present=False)
