"""An app's place on the host and its code: directories, deploy key, git checkout and ``.env`` (secrets kept).

Shared by the venv apps (``app.app_present``) and the compose apps (``compose.compose_app``).
"""

from __future__ import annotations

import re
import secrets
import shlex
from dataclasses import dataclass, field
from io import BytesIO

from pyinfra import host
from pyinfra.api import FactBase, FileUploadCommand, OperationError, StringCommand, operation
from pyinfra.operations import files

from .batched import directory_present
from .config.apps import REFERENCE
from .postgres import read_password, secret_env_path
from .render import sha256
from .revision import release_decision, say
from .snapshot import planned, snapshot_fact
from .stamped import as_user
from .validated import checked_file

SECRET_BYTES = 48
# Left in the .env text by the controller, filled in on the host from the app's secret env file.
PASSWORD_REF = "${DB_PASSWORD}"
# awk program replacing every PASSWORD_REF with $PW (an alphanumeric password: no regex or '&' in it).
_FILL = "awk '{ gsub(/[$][{]DB_PASSWORD[}]/, ENVIRON[\"PW\"]); print }'"
_UNFILL = 'awk \'{ if (ENVIRON["PW"] != "") gsub(ENVIRON["PW"], "${DB_PASSWORD}"); print }\''
GIT = "git -c safe.directory='*'"


@dataclass(frozen=True)
class AppPaths:
    """Where one app lives on the host."""

    name: str
    apps_dir: str
    logs_dir: str
    app_dir: str = "."
    # Releases beside each other (``releases`` module): the code is the live release's.
    released: bool = False

    @property
    def root(self) -> str:
        return f"{self.apps_dir.rstrip('/')}/{self.name}"

    @property
    def src(self) -> str:
        """The checkout the app runs from: the ``current`` release, or the one in-place checkout."""
        return f"{self.root}/current" if self.released else f"{self.root}/src"

    @property
    def code(self) -> str:
        """The app's own directory in the checkout (``app_dir``): where it runs and its install files are."""
        sub = self.app_dir.strip("/")
        return self.src if sub in ("", ".") else f"{self.src}/{sub}"

    @property
    def venv(self) -> str:
        return f"{self.src}/.venv" if self.released else f"{self.root}/venv"

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


@dataclass(frozen=True)
class Code:
    """An app's code and environment on the host: its repo, whether a deploy key reads it, what its ``.env`` holds."""

    name: str
    repo: str
    ref: str = "main"
    deploy_key: bool = False  # the key's text is passed on its own (never printed)
    env: dict[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ("SECRET_KEY",)  # generated once, kept
    postgres: bool = False  # a PostgreSQL database of its own: DB_* references and DATABASE_URL
    db_name: str = ""
    db_role: str = ""


def env_value(value: str) -> str:
    """A value as systemd's EnvironmentFile and sh both read it back unchanged."""
    if value and all(ch.isalnum() or ch in "_./:@%+,=-" for ch in value):
        return value
    return f"'{value}'"


def env_file_text(
    app: Code, paths: AppPaths, kept: dict[str, str], new_secret=None, brought: dict[str, str] | None = None, db_port: int = 5432
) -> str:
    """The app's .env: vpskit's own variables, the configured env, the generated secrets, then the brought ones.

    ``kept`` holds secrets already on the host; missing ones come from ``new_secret()``.
    ``brought``: the ``secrets_from`` values read on the controller. ``${NAME}`` in env
    values is filled in from these and the database's names; ``${DB_PASSWORD}`` stays
    for the host to fill in (``filled_env_file``).
    """
    new_secret = new_secret or (lambda: secrets.token_urlsafe(SECRET_BYTES))
    brought = brought or {}
    generated = {name: kept.get(name) or new_secret() for name in app.secrets}
    values = {**generated, **brought}
    if app.postgres:
        values |= {"DB_NAME": app.db_name, "DB_USER": app.db_role, "DB_HOST": "127.0.0.1", "DB_PORT": str(db_port)}

    def fill(value: str) -> str:
        return re.sub(REFERENCE, lambda m: values.get(m.group(1), m.group(0)), value)

    lines = [f"# Managed by vpskit: environment of app {app.name}. Edit env in vpskit.toml.", f"DATA_DIR={paths.data}"]
    lines += [f"{k}={env_value(fill(v))}" for k, v in app.env.items()]
    lines += [f"{name}={value}" for name, value in generated.items()]
    lines += [f"{name}={env_value(value)}" for name, value in brought.items()]
    return "\n".join(lines) + "\n"


def git_ssh_env(paths: AppPaths, app: Code) -> str:
    """The GIT_SSH_COMMAND prefix for a repo read with a deploy key ('' without one)."""
    if not app.deploy_key:
        return ""
    ssh = (
        f"ssh -i {paths.deploy_key} -o IdentitiesOnly=yes -o StrictHostKeyChecking=accept-new"
        f" -o UserKnownHostsFile={paths.ssh_dir}/known_hosts"
    )
    return f"GIT_SSH_COMMAND={shlex.quote(ssh)} "


def ask_remote(repo: str, ref: str, user: str, ssh_env: str = "", key_file: str = "") -> str:
    """Shell printing ``remote=SHA\\tREF`` for the branch or tag ``ref`` (``git ls-remote`` as ``user``), or ``error=`` lines.

    With ``key_file``, only once that deploy key is on the host (``skipped=1`` before).
    """
    remote = as_user(
        user,
        f"{ssh_env}{GIT} ls-remote {shlex.quote(repo)} "
        + " ".join(shlex.quote(r) for r in (f"refs/heads/{ref}", f"refs/tags/{ref}", f"refs/tags/{ref}^{{}}")),
    )
    ask = (
        f"if out=$({remote} 2>&1); then printf '%s\\n' \"$out\" | sed 's/^/remote=/'; else printf '%s\\n' \"$out\" | sed 's/^/error=/'; fi"
    )
    if key_file:
        ask = f"if [ -f {shlex.quote(key_file)} ]; then {ask}; else echo skipped=1; fi"
    return ask


def remote_answer(output: list[str], data: dict) -> dict:
    """``ask_remote``'s lines read into ``data``: ``remote`` (the commit, a tag peeled), ``error``, ``skipped``; other ``key=value`` lines as they are."""
    data = {"error": "", "skipped": False, **data}
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
    peeled = [sha for ref, sha in remotes.items() if ref.endswith("^{}")]
    data["remote"] = peeled[0] if peeled else next(iter(remotes.values()), "")
    return data


class GitCheckout(FactBase):
    """
    Returns the checkout at ``path`` and the commit the remote ``ref`` points at, or None without a checkout.

    .. code:: python

        {"head": "3f2c…", "url": "file:///srv/git/app.git", "remote": "9a1b…"}

    The remote is asked (``git ls-remote``) as ``user``, with the deploy key when given;
    before that key is on the host the remote is not asked (``"skipped": True``), and a
    remote that cannot be read gives its error (``"error": "…"``).
    """

    slow = True  # asks the app's remote: not read again with the others after a change (snapshot.py)

    def command(self, path, repo, ref, user, ssh_env="", key_file="", deployed_file=""):
        p = shlex.quote(path)
        ask = ask_remote(repo, ref, user, ssh_env, key_file)
        deployed = f"echo deployed=$(cat {shlex.quote(deployed_file)} 2>/dev/null); " if deployed_file else ""
        return (
            f"if [ -d {p}/.git ]; then echo head=$({GIT} -C {p} rev-parse HEAD); {deployed}"
            f"echo url=$({GIT} -C {p} config --get remote.origin.url); {ask}; fi"
        )

    def process(self, output):
        data = remote_answer(output, {})
        return data if "head" in data else None


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


class FilledEnvState(FactBase):
    """
    Returns the sha256 of the env file at ``path`` with the database password put back as ``${DB_PASSWORD}``, and its mode and owner.

    The password is read from ``secret_path`` on the host and handed to awk in its
    environment: it is in no command line and no output.

    .. code:: python

        {"sha256": "ab12…", "mode": "600", "user": "appuser", "group": "appuser"}
    """

    def command(self, path, secret_path):
        p = shlex.quote(path)
        return (
            f"if [ -f {p} ]; then {read_password(secret_path)} 2>/dev/null; "
            f"PW=\"$pw\" {_UNFILL} {p} | sha256sum | cut -c1-64; stat -c '%a %U %G' {p}; fi"
        )

    def process(self, output):
        if len(output) < 2:
            return None
        mode, user, group = output[1].split()
        return {"sha256": output[0].strip(), "mode": mode, "user": user, "group": group}


@planned(lambda dest, secret_path, **_: [(FilledEnvState, {"path": dest, "secret_path": secret_path})])
@operation()
def filled_env_file(dest: str, content, secret_path: str, user: str, group: str, mode: str = "600"):
    """
    Ensure an env file holds ``content`` with ``${DB_PASSWORD}`` filled in on the host from ``secret_path``.

    + dest: the env file
    + content: its text with ``${DB_PASSWORD}`` where the password goes (never printed: may hold secrets), or
      a function returning it, called when the operation runs
    + secret_path: root-only env file whose ``DATABASE_URL`` holds the password (``postgres.app_database``)
    + user: owner
    + group: group
    + mode: octal mode

    **Example:**

    .. code:: python

        filled_env_file(dest="/srv/apps/api/.env", content="POSTGRES_PASSWORD='${DB_PASSWORD}'\\n",
                        secret_path="/etc/vpskit/secrets/api.env", user="appuser", group="appuser")
    """
    if callable(content):
        content = content()
    state = snapshot_fact(FilledEnvState, path=dest, secret_path=secret_path)
    if state and state["sha256"] == sha256(content) and (state["mode"], state["user"], state["group"]) == (mode, user, group):
        host.noop(f"{dest} is up to date")
        return
    staged = host.get_temp_filename(f"vpskit-staged:{dest}:{sha256(content)}")
    yield FileUploadCommand(BytesIO(content.encode()), staged, remote_temp_filename=host.get_temp_filename(staged))
    s, d, filled = shlex.quote(staged), shlex.quote(dest), shlex.quote(staged + ".filled")
    yield StringCommand(
        f'( umask 077 && {read_password(secret_path)} && [ -n "$pw" ] && PW="$pw" {_FILL} {s} > {filled} ) && rm -f {s} && '
        f"chmod {mode} {filled} && chown {user}:{group} {filled} && mv -f {filled} {d}"
    )


def _checkout_fact(repo: str, ref: str, dest: str, user: str, ssh_env: str = "", key_file: str = "", deployed_file: str = "", **_):
    kwargs = {"path": dest, "repo": repo, "ref": ref, "user": user, "ssh_env": ssh_env, "key_file": key_file}
    return [(GitCheckout, {**kwargs, **({"deployed_file": deployed_file} if deployed_file else {})})]


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
    deployed_file: str = "",
    app_name: str = "",
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
    + deployed_file: file holding the commit the last run deployed: a checkout moved back from it on the host
      (``vpskit-app rollback``) stays while ``ref`` still points at it ('' for none)
    + app_name: the app, named in what the run says about such a rollback

    **Example:**

    .. code:: python

        git_checkout(repo="https://git.example.com/shop.git", ref="main", dest="/srv/apps/shop/src", user="appuser")
    """
    ((fact, kwargs),) = _checkout_fact(repo, ref, dest, user, ssh_env, key_file, deployed_file)
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
    if deployed_file:
        head, remote = state.get("head", ""), state["remote"]
        decision = release_decision(
            app_name, ref, {**state, "live": head[:12], "target": remote, "deployed": state.get("deployed", ""), "legacy": False}
        )
        say(decision)
        if decision.action == "keep":
            host.noop(f"{dest} stays at {head[:12]} (rolled back on the host)")
            return
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


def app_place(app: Code, paths: AppPaths, user: str, deploy_key: str = "") -> str:
    """The app's directories and deploy key; returns the GIT_SSH_COMMAND prefix git needs ('' without a key)."""
    n = app.name
    directory_present(name=f"{n}: app directory", path=paths.root, user=user, group="www-data", mode="750")
    directory_present(name=f"{n}: data directory", path=paths.data, user=user, group=user, mode="750")
    directory_present(name=f"{n}: log directory", path=paths.logs, user=user, group="adm", mode="750")
    if not app.deploy_key:
        return ""
    directory_present(name=f"{n}: ssh directory", path=paths.ssh_dir, user=user, group=user, mode="700")
    checked_file(name=f"{n}: deploy key", dest=paths.deploy_key, content=deploy_key, mode="600", user=user, group=user)
    return git_ssh_env(paths, app)


def app_env(app: Code, paths: AppPaths, user: str, brought: dict[str, str] | None = None, db_port: int = 5432):
    """The app's .env (generated secrets kept, ``${DB_PASSWORD}`` filled in on the host); returns its operation."""
    n = app.name

    # Read when the operation runs: secrets restored earlier in this run (off-host recovery) are kept.
    def content() -> str:
        kept = snapshot_fact(EnvSecrets, path=paths.env, names=tuple(app.secrets))
        return env_file_text(app, paths, kept, brought=brought, db_port=db_port)

    if app.postgres and any(PASSWORD_REF in value for value in app.env.values()):
        return filled_env_file(
            name=f"{n}: environment (.env)",
            dest=paths.env,
            content=content,
            secret_path=secret_env_path(n),
            user=user,
            group=user,
        )
    return checked_file(name=f"{n}: environment (.env)", dest=paths.env, content=content, mode="600", user=user, group=user)


def app_code(
    app: Code,
    paths: AppPaths,
    user: str,
    deploy_key: str = "",
    needs: tuple = (),
    missing: str = "",
    brought: dict[str, str] | None = None,
    db_port: int = 5432,
    deployed_file: str = "",
):
    """The app's directories, deploy key, in-place git checkout and .env (secrets kept); returns (checkout op, .env op).

    ``needs``, ``missing`` and ``deployed_file``: as ``git_checkout`` takes them.
    ``brought`` and ``db_port``: the brought secrets and PostgreSQL's port, as ``env_file_text`` takes them.
    """
    ssh_env = app_place(app, paths, user, deploy_key)
    code = git_checkout(
        name=f"{app.name}: checkout {app.ref}",
        repo=app.repo,
        ref=app.ref,
        dest=paths.src,
        user=user,
        ssh_env=ssh_env,
        key_file=paths.deploy_key if app.deploy_key else "",
        needs=needs,
        missing=missing,
        deployed_file=deployed_file,
        app_name=app.name,
    )
    return code, app_env(app, paths, user, brought, db_port)


def app_files_purged(paths: AppPaths):
    """Remove an absent app's code, data and logs (``purge = true``); used inside a ``@deploy`` of the app's removal."""
    files.directory(name=f"{paths.name}: purge code and data", path=paths.root, present=False)
    files.directory(name=f"{paths.name}: purge logs", path=paths.logs, present=False)
