"""A venv app's releases: each commit built beside the live one, then switched to health-gated.

    <apps_dir>/<name>/repo.git             bare clone, fetched as the deploy user
    <apps_dir>/<name>/releases/<sha12>/    one checkout per commit; .venv -> ../../venvs/<key>
    <apps_dir>/<name>/venvs/<key>/         venvs keyed by the install files' hash, shared by releases
    <apps_dir>/<name>/shared/<path>        kept across releases (``instance``), linked into each
    <apps_dir>/<name>/current              -> releases/<sha12>: what gunicorn serves

``.env``, ``data/`` and the logs stay outside the releases. One ``AppRelease`` fact
says which commit is live, which one the config asks for and which one the last
run deployed; ``release_decision`` turns that into what the run does. The switch
itself is ``vpskit-app activate`` on the host (``files/vpskit-app``), the same code
``vpskit-app rollback`` runs.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from pyinfra import host
from pyinfra.api import FactBase, StringCommand, operation

from .batched import directory_present
from .checkout import GIT, ask_remote, files_check, remote_answer
from .install import install_key, venv_command
from .render import FILES_DIR
from .revision import Decision, is_commit, say
from .snapshot import snapshot_fact
from .stamped import as_user
from .validated import checked_file

APP_COMMAND = "/usr/local/bin/vpskit-app"
SETTINGS_DIR = "/etc/vpskit/apps"
# Decisions that build a release.
BUILDS = ("deploy", "rebuild")
# The commit the last run deployed, in the app's directory (``vpskit-app`` reads it too).
DEPLOYED = ".vpskit-deployed"

# ------------------------------------------------------------------------ facts


class AppRelease(FactBase):
    """
    Returns an app's live release, the commit its config asks for and the one the last run deployed; None without the app's directory.

    .. code:: python

        {"live": "3f2c0a1b9d8e", "deployed": "3f2c…", "target": "9a1b…", "legacy": False, "skipped": False, "error": ""}

    A branch or tag is resolved with ``git ls-remote`` as ``user`` (not before the
    deploy key is on the host: ``skipped``); a commit in the app's own clone.
    """

    slow = True  # asks the app's remote: not read again with the others after a change (snapshot.py)

    def command(self, root, repo, ref, user, ssh_env="", key_file=""):
        r = shlex.quote(root)
        local = f"{GIT} --git-dir={r}/repo.git rev-parse --verify -q {shlex.quote(ref + '^{commit}')} 2>/dev/null"
        parts = [
            f"[ -d {r} ] || exit 0",
            f'echo live=$(basename "$(readlink {r}/current 2>/dev/null)" 2>/dev/null)',
            f"echo deployed=$(cat {r}/{DEPLOYED} 2>/dev/null)",
            f"[ -d {r}/src/.git ] && echo legacy=1",
            f"echo python=$({r}/current/.venv/bin/python -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])' 2>/dev/null)",
        ]
        parts.append(f"echo target=$({local})" if is_commit(ref) else ask_remote(repo, ref, user, ssh_env, key_file))
        return "; ".join(parts) + "; true"

    def process(self, output):
        data = remote_answer(output, {"live": "", "deployed": "", "target": "", "legacy": False, "python": ""})
        data["legacy"] = bool(data["legacy"])
        data["target"] = data.pop("remote") or data["target"]
        return data


# ------------------------------------------------------------------- commands


@dataclass(frozen=True)
class Build:
    """How one app's release is built: where, from what, and with which install."""

    name: str
    root: str
    repo: str
    ref: str
    user: str
    python: str
    python_version: str
    app_dir: str = "."
    install: str = "auto"
    requirements: str = "requirements.txt"
    packages: tuple[str, ...] = ("gunicorn",)
    build: str = ""
    build_dir: str = "."
    shared: tuple[str, ...] = ()
    ssh_env: str = ""
    needs: tuple[tuple[str, ...], ...] = ()
    missing: str = ""
    rebuild: bool = False  # build the commit's release again even when complete (another Python)
    index_url: str = ""  # the package index uv and pip install from ('' for PyPI); not part of the venv's key


def _sub(path: str) -> str:
    return "" if path.strip("/") in ("", ".") else "/" + path.strip("/")


def building(b: Build, app_dir: bool = False) -> str:
    """Where a new release is checked out and built (with ``app_dir``: the app's directory in it); a fixed path, which the install key and commands name."""
    return f"{b.root}/releases/.building" + (_sub(b.app_dir) if app_dir else "")


def fetch_command(b: Build) -> str:
    """Shell (as the app's user): fetch ``ref``, note its commit in ``.vpskit-next``, check it out in ``building`` unless its release is complete."""
    r = shlex.quote(b.root)
    repo = f"{r}/repo.git"
    git = f"git --git-dir={repo}"
    n = shlex.quote(building(b))
    unknown = shlex.quote(f"app {b.name}: {b.ref} is no branch, tag or commit of {b.repo}")
    check = files_check(building(b), "HEAD", b.needs, b.missing)
    checkout = [
        f"git clone --quiet --shared --no-checkout repo.git {n}",
        f'git -C {n} checkout --quiet --detach "$C"',
        *([check] if check else []),
    ]
    steps = [
        f"cd {r}",
        f"{{ [ -d {repo} ] || {b.ssh_env}git clone --quiet --bare {shlex.quote(b.repo)} {repo}; }}",
        f"{git} remote set-url origin {shlex.quote(b.repo)}",
        f"{b.ssh_env}{git} fetch --quiet --force --prune --tags origin '+refs/heads/*:refs/heads/*'",
        f"{{ C=$({git} rev-parse --verify -q {shlex.quote(b.ref + '^{commit}')}) || {{ echo {unknown} >&2; exit 1; }}; }}",
        'echo "$C" > .vpskit-next',
        f"rm -rf {n} && mkdir -p releases venvs shared",
        # A complete release (its marker written last) is reused: a pin back to an older commit.
        " && ".join(checkout)
        if b.rebuild
        else f'if [ ! -f "releases/$(echo $C | cut -c1-12)/.vpskit-release" ]; then {" && ".join(checkout)}; fi',
    ]
    return " && ".join(steps)


def build_command(b: Build) -> str:
    """Shell (as the app's user): the checkout in ``building`` gets its shared paths, venv and front-end build, then becomes its release."""
    r = shlex.quote(b.root)
    new = building(b)
    n = shlex.quote(new)
    code = building(b, app_dir=True)
    venv = f"{r}/venvs/$V"
    key = install_key(b.install, b.requirements, new, b.app_dir, b.python_version, list(b.packages))
    create = venv_command(b.name, b.install, b.requirements, b.app_dir, b.python, venv, code, list(b.packages), b.index_url)
    steps = []
    for path in b.shared:
        p = shlex.quote(path.strip("/"))
        # The in-place checkout's copy (an install from before releases) moves to shared/ once.
        legacy = f"src{_sub(b.app_dir)}/{p}"
        steps.append(f"{{ [ -e shared/{p} ] || {{ [ -d {legacy} ] && mv {legacy} shared/{p}; }} || mkdir -p shared/{p}; }}")
        steps.append(f"rm -rf {shlex.quote(code)}/{p} && ln -s {r}/shared/{p} {shlex.quote(code)}/{p}")
    steps += [
        f'K="$({key})"',
        'V=$(echo "$K" | sha256sum | cut -c1-16)',
        f'if [ "$(cat {venv}/.vpskit-requirements 2>/dev/null)" != "$K" ]; then {create} && echo "$K" > {venv}/.vpskit-requirements; fi',
        f'ln -sfn ../../venvs/"$V" {n}/.venv',
    ]
    if b.build:
        steps.append(f"(cd {shlex.quote(new + _sub(b.build_dir))} && {b.build})")
    steps += [
        f'printf "commit=%s\\nbuilt=%s\\n" "$C" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > {n}/.vpskit-release',
        f'rm -rf "$D" && mv {n} "$D"',
    ]
    return f"cd {r} && C=$(cat .vpskit-next) && D=releases/$(echo $C | cut -c1-12) && if [ -d {n} ]; then {' && '.join(steps)}; fi"


def in_next_release(root: str, app_dir: str, env: str, command: str) -> str:
    """``command`` in the release about to go live, with its venv on PATH and the app's .env loaded."""
    d = f"{root}/releases/$(cut -c1-12 {shlex.quote(root)}/.vpskit-next)"
    return f'set -a && . {env} && set +a && PATH="{d}/.venv/bin:$PATH" && cd "{d}{_sub(app_dir)}" && {command}'


def activate_command(name: str, root: str, restart: bool, daemon_reload: bool, legacy: bool = False) -> str:
    """Switch the app to the release just built (``vpskit-app activate``), recording it as deployed.

    ``legacy``: the app ran from an in-place checkout; once the release serves, that
    checkout is kept as ``src.before-releases`` and its venv removed.
    """
    r = shlex.quote(root)
    flags = " --restart" if restart else ""
    reload = "systemctl daemon-reload && " if daemon_reload else ""
    command = f'{reload}{APP_COMMAND} activate {shlex.quote(name)} "$(cat {r}/.vpskit-next)" --record{flags}'
    if legacy:
        command += f" && rm -rf {r}/src.before-releases {r}/venv && mv {r}/src {r}/src.before-releases"
    return command


# ------------------------------------------------------------------- operations


def app_command_installed():
    """``vpskit-app`` on the host, and the directory of the apps' settings it reads (venv and compose apps)."""
    directory_present(name="vpskit-app settings directory", path=SETTINGS_DIR, user="root", group="root", mode="755")
    return checked_file(name="vpskit-app command", content=(FILES_DIR / "vpskit-app").read_bytes(), dest=APP_COMMAND, mode="755")


def _release_fact(root: str, repo: str, ref: str, user: str, ssh_env: str = "", key_file: str = "", **_):
    return [(AppRelease, {"root": root, "repo": repo, "ref": ref, "user": user, "ssh_env": ssh_env, "key_file": key_file})]


def release_state(root: str, repo: str, ref: str, user: str, ssh_env: str = "", key_file: str = "") -> dict | None:
    """The ``AppRelease`` fact, read with the run's other planned facts."""
    ((fact, kwargs),) = _release_fact(root, repo, ref, user, ssh_env, key_file)
    return snapshot_fact(fact, **kwargs)


@operation()
def release_fetched(build: Build, decision: Decision):
    """
    Ensure the commit the config asks for is fetched and, unless its release is complete, checked out beside the live one.

    + build: where and how (``Build``)
    + decision: ``release_decision`` for this run; only "deploy" fetches (anything else is said, when there is something to say)

    **Example:**

    .. code:: python

        release_fetched(Build("shop", "/srv/apps/shop", "https://git.example.com/shop.git", "main", "appuser",
                              "/usr/bin/python3.12", "3.12"), Decision("deploy"))
    """
    say(decision)
    if decision.action not in BUILDS:
        host.noop(f"{build.root}/current is the release to serve")
        return
    yield StringCommand(as_user(build.user, fetch_command(build)))


@operation()
def release_built(build: Build, decision: Decision):
    """
    Ensure the commit ``release_fetched`` checked out is a complete release: shared paths linked, its venv, its front-end build.

    + build: where and how (``Build``)
    + decision: ``release_decision`` for this run; only "deploy" builds

    **Example:**

    .. code:: python

        release_built(Build("shop", "/srv/apps/shop", "https://git.example.com/shop.git", "main", "appuser",
                            "/usr/bin/python3.12", "3.12"), Decision("deploy"))
    """
    if decision.action not in BUILDS:
        host.noop(f"{build.root}/current is the release to serve")
        return
    yield StringCommand(as_user(build.user, build_command(build)))
