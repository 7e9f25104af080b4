"""How an app's dependencies get into its venv: a requirements file, uv.lock, poetry.lock or a plain pyproject.toml.

The method is the app's ``install`` setting, or (``auto``) the first of these the
app's directory holds: ``uv.lock``, ``poetry.lock``, the requirements file,
``pyproject.toml``. uv and poetry come from PyPI at a pinned version, each in a
tool venv of vpskit's own (``TOOLS_DIR``), and install into the app's venv. uv is
installed for every app: it creates the venvs and installs requirements files in
seconds where ``python -m venv`` and pip take tens; pip stays the fallback.

The install is a stamped step (``stamped.stamped_step``): its key is the content
of the install files (the whole app directory's tree for ``pip install .``), the
Python version and the extra packages, so it runs again only when one of them
changed. The method is decided on the host when the step runs, from the files of
the commit being deployed.

A package index other than PyPI (``index_url``: a mirror or caching index) reaches
uv and pip through their environment, and stays out of the key: it changes where
packages come from, not which ones are installed. A lock file's install (uv.lock,
poetry.lock) downloads what the lock file names.
"""

from __future__ import annotations

import shlex
from urllib.parse import urlsplit

from pyinfra import host
from pyinfra.api import FactBase, StringCommand, operation

from .snapshot import planned, snapshot_fact

# Where vpskit keeps the tools it installs from PyPI, one venv per tool and version.
TOOLS_DIR = "/opt/vpskit/tools"
# The versions vpskit installs; a new pin gets a venv of its own.
TOOLS = {"uv": "0.13.9", "poetry": "2.5.1"}
METHODS = ("auto", "requirements", "pyproject", "uv", "poetry")
# The system's CA bundle for the tools' HTTPS (a private CA the host trusts works too).
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
PIP = "--quiet --disable-pip-version-check"
# Tools that are one static binary: their venv needs no pip of its own (see ``tool_install_command``).
BINARY_TOOLS = ("uv",)
# Where Debian and Ubuntu keep the pip wheel ``python -m venv`` installs from (python3-pip-whl).
PIP_WHEELS = "/usr/share/python-wheels"


def tool_dir(tool: str) -> str:
    return f"{TOOLS_DIR}/{tool}-{TOOLS[tool]}"


def tool_bin(tool: str) -> str:
    return f"{tool_dir(tool)}/bin/{tool}"


def install_files(method: str, requirements: str) -> tuple[str, ...]:
    """The files (in the app's directory) a method reads, in the order ``auto`` looks for them."""
    return {
        "auto": ("uv.lock", "poetry.lock", requirements, "pyproject.toml"),
        "uv": ("uv.lock", "pyproject.toml"),
        "poetry": ("poetry.lock", "pyproject.toml"),
        "requirements": (requirements,),
        "pyproject": ("pyproject.toml",),
    }[method]


def install_alternatives(method: str, requirements: str, app_dir: str) -> tuple[tuple[str, ...], ...]:
    """Paths in the repo of which one group must all exist for ``method`` to have something to install from."""
    sub = "" if app_dir in ("", ".") else app_dir.strip("/") + "/"
    files = install_files(method, requirements)
    groups = [(f,) for f in files] if method == "auto" else [files]
    return tuple(tuple(sub + f for f in g) for g in groups)


def tools_needed(method: str) -> list[str]:
    """The tools a method may need on the host (``auto`` may find either lock file)."""
    return {"auto": ["uv", "poetry"], "uv": ["uv"], "poetry": ["poetry"]}.get(method, [])


def tools_wanted(method: str) -> list[str]:
    """The tools vpskit installs for an app: uv always (it builds every venv, in seconds), poetry where the method may need it."""
    return list(dict.fromkeys(["uv", *tools_needed(method)]))


def tool_trigger(method: str, tool: str) -> tuple[str, ...]:
    """The lock file whose presence makes ``auto`` need ``tool`` (empty: always installed)."""
    return (f"{tool}.lock",) if method == "auto" and tool != "uv" else ()


def missing_message(app_name: str, method: str, requirements: str, app_dir: str) -> str:
    """The one line a run stops with when the app's directory has nothing to install from."""
    where = "the repo" if app_dir in ("", ".") else f"{app_dir}/ in the repo"
    files = install_files(method, requirements)
    needed = " and ".join(files) if method in ("uv", "poetry") else ", ".join(files)
    how = "needs" if method in ("uv", "poetry") else "found none of"
    return f"app {app_name}: install = {method!r} {how} {needed} in {where}"


def _uv_env(venv: str, index_url: str = "") -> str:
    """The environment vpskit's uv runs in: the app's venv, the host's Python and CA bundle, copies out of its cache, the package index.

    uv reads an http:// index as it is; ``UV_INSECURE_HOST`` would only switch off certificate checks for https://.
    """
    index = f" UV_DEFAULT_INDEX={shlex.quote(index_url)}" if index_url else ""
    return f"UV_PROJECT_ENVIRONMENT={venv} UV_PYTHON_DOWNLOADS=never UV_SYSTEM_CERTS=1 UV_LINK_MODE=copy SSL_CERT_FILE={CA_BUNDLE}{index}"


def _pip_env(index_url: str) -> str:
    """The environment pip installs from ``index_url`` in, as the start of a shell line ('' for PyPI); an http:// index is trusted by its host."""
    if not index_url:
        return ""
    trusted = f"PIP_TRUSTED_HOST={shlex.quote(urlsplit(index_url).netloc)} " if index_url.startswith("http://") else ""
    return f"PIP_INDEX_URL={shlex.quote(index_url)} {trusted}"


def _method_commands(venv: str, requirements: str, pip: str, index_url: str = "") -> dict[str, str]:
    """The shell that installs the app's dependencies with each method, run in the app's directory (``pip``: the pip-like installer)."""
    poetry_env = f"VIRTUAL_ENV={venv} POETRY_VIRTUALENVS_CREATE=false POETRY_NO_INTERACTION=1 REQUESTS_CA_BUNDLE={CA_BUNDLE}"
    return {
        # --inexact keeps what vpskit adds (gunicorn, the worker, the driver); --no-dev: the runtime deps only.
        # --frozen downloads what uv.lock names; the index serves only the build dependencies of its sdists.
        "uv": f"{_uv_env(venv, index_url)} {tool_bin('uv')} sync --frozen --no-dev --inexact --quiet --python {venv}/bin/python",
        # The project's own package is imported from the app's directory (gunicorn --chdir), not installed;
        # poetry downloads what poetry.lock names, from the sources pyproject.toml gives.
        "poetry": f"{poetry_env} {tool_bin('poetry')} install --only main --no-root --quiet",
        "requirements": f"{pip} -r {shlex.quote(requirements)}",
        "pyproject": f"{pip} .",
    }


def install_command(
    app_name: str, method: str, requirements: str, app_dir: str, venv: str, extra: list[str], with_uv: bool = False, index_url: str = ""
) -> str:
    """Shell that installs the dependencies by ``method`` (``auto``: the first file found), then ``extra``.

    Requirements files, a plain pyproject.toml and ``extra`` go through pip, or with
    ``with_uv`` through ``uv pip install`` (vpskit's uv must be installed), from
    ``index_url`` ('' for PyPI). Stops with ``missing_message`` when the files the method reads are not there.
    """
    if with_uv:
        pip = f"{_uv_env(venv, index_url)} {tool_bin('uv')} pip install --quiet --python {venv}/bin/python"
    else:
        pip = f"{_pip_env(index_url)}{venv}/bin/pip install {PIP}"
    commands = _method_commands(venv, requirements, pip, index_url)
    then = f" && {pip} " + " ".join(shlex.quote(p) for p in extra) if extra else ""
    fail = f"{{ echo {shlex.quote(missing_message(app_name, method, requirements, app_dir))} >&2; exit 1; }}"
    if method == "auto":
        order = [("uv", "uv.lock"), ("poetry", "poetry.lock"), ("requirements", requirements), ("pyproject", "pyproject.toml")]
        branches = " ".join(f"{'if' if i == 0 else 'elif'} [ -f {shlex.quote(f)} ]; then {commands[m]};" for i, (m, f) in enumerate(order))
        return f"{{ {branches} else {fail}; fi; }}{then}"
    present = " && ".join(f"[ -f {shlex.quote(f)} ]" for f in install_files(method, requirements))
    return f"{{ {present} || {fail}; }} && {commands[method]}{then}"


def venv_command(
    app_name: str, method: str, requirements: str, app_dir: str, python: str, venv: str, code: str, extra: list[str], index_url: str = ""
) -> str:
    """Shell that creates ``venv`` (a shell word: it may name a variable) anew and installs the app's dependencies into it, from its directory ``code``.

    With vpskit's uv on the host, ``uv venv`` and uv's installer do it (seconds instead of
    pip's tens of seconds; the venv still gets pip, from ``index_url`` like the rest). Without
    uv, or when uv fails, it is ``python -m venv`` and pip, as without uv at all.
    """
    uv, v, cd = shlex.quote(tool_bin("uv")), venv, f"cd {shlex.quote(code)}"
    args = (app_name, method, requirements, app_dir, venv, extra)
    with_uv = f"{uv} venv --quiet --seed --python {shlex.quote(python)} {v} && ({cd} && {install_command(*args, with_uv=True, index_url=index_url)})"
    with_pip = f"{shlex.quote(python)} -m venv {v} && ({cd} && {install_command(*args, index_url=index_url)})"
    said = shlex.quote(f"vpskit: app {app_name}: uv could not build its venv, pip builds it")
    uv_env = _uv_env(venv, index_url)
    return f"rm -rf {v} && {{ [ -x {uv} ] && {uv_env} {with_uv} || {{ {{ [ ! -x {uv} ] || echo {said} >&2; }} && rm -rf {v} && {with_pip}; }}; }}"


def install_key(method: str, requirements: str, git_dir: str, app_dir: str, python_version: str, extra: list[str]) -> str:
    """Shell printing the install's key: its files' content, the Python version, the extra packages and tool pins.

    ``pip install .`` copies the project itself into the venv: its key is the app
    directory's tree, so any change of the code installs it again.
    """
    files = " ".join(shlex.quote(f) for f in install_files(method, requirements))
    sums = f'for f in {files}; do [ -f "$f" ] && echo "$f $(sha256sum < "$f")"; done'
    if method in ("auto", "pyproject"):
        sub = "" if app_dir in ("", ".") else app_dir.strip("/")
        tree = f"git -c safe.directory='*' -C {shlex.quote(git_dir)} rev-parse HEAD:{shlex.quote(sub)}"
        # auto: the tree only when pyproject.toml is what gets installed.
        sums = f"{{ {sums}; }}; " + (
            f"echo tree $({tree})"
            if method == "pyproject"
            else f"[ -f uv.lock ] || [ -f poetry.lock ] || [ -f {shlex.quote(requirements)} ] || echo tree $({tree})"
        )
    sub = app_dir.strip("/")
    code = git_dir if sub in ("", ".") else f"{git_dir}/{sub}"
    words = " ".join([method, python_version, *extra, *(f"{t}={TOOLS[t]}" for t in tools_needed(method))])
    key = f'echo "$(cd {shlex.quote(code)} 2>/dev/null && {{ {sums}; }} | sha256sum | cut -c1-64) {words}"'
    if method not in ("auto", "requirements"):
        return key
    # A requirements install keeps the key it had before there were other methods, so hosts
    # deployed then do not install and restart their apps once more for nothing.
    req = shlex.quote(f"{code}/{requirements}")
    plain = f'echo "$(sha256sum < {req} | cut -c1-64) {" ".join([python_version, *extra])}"'
    if method == "requirements":
        return plain
    c = shlex.quote(code)
    return f"if [ ! -f {c}/uv.lock ] && [ ! -f {c}/poetry.lock ] && [ -f {req} ]; then {plain}; else {key}; fi"


# ------------------------------------------------------------------------ facts


class ToolVersion(FactBase):
    """
    Returns the version a tool in vpskit's tool venv reports (``"0.13.9"``), or None without it.
    """

    def command(self, binary):
        b = shlex.quote(binary)
        return f"if [ -x {b} ]; then {b} --version; fi"

    def process(self, output):
        if not output:
            return None
        # "uv 0.13.9 (abc 2026-01-01)", "Poetry (version 2.5.1)"
        words = output[0].replace("(", " ").replace(")", " ").split()
        return next((w for w in words if w[:1].isdigit()), None)


# ------------------------------------------------------------------- operations


class PresentFiles(FactBase):
    """
    Returns which of ``paths`` exist as files now.
    """

    def command(self, paths):
        return "; ".join(f"[ -f {shlex.quote(p)} ] && echo {shlex.quote(p)}" for p in paths) + "; true"

    def process(self, output):
        return [line.strip() for line in output if line.strip()]


def tool_install_command(tool: str, python: str, index_url: str = "") -> str:
    """Shell that installs ``tool`` at its pin into its venv, from ``index_url`` ('' for PyPI), unless another app's step did earlier in the run.

    A tool of ``BINARY_TOOLS`` gets a venv without pip, filled by the pip wheel the
    system's venv module would copy in, run from the wheel itself: 3 s less than
    ``python -m venv`` installing pip first (measured on Ubuntu 24.04). Without that
    wheel, or when it fails, it is ``python -m venv`` and the venv's own pip, as for the others.
    """
    d, py, spec = shlex.quote(tool_dir(tool)), shlex.quote(python), shlex.quote(f"{tool}=={TOOLS[tool]}")
    env = _pip_env(index_url)
    with_pip = f"{py} -m venv {d} && {env}{d}/bin/pip install {PIP} {spec}"
    if tool in BINARY_TOOLS:
        wheel = (
            f'w=$(ls -d {PIP_WHEELS}/pip-*.whl 2>/dev/null | tail -n 1) && [ -n "$w" ] && '
            f'{py} -m venv --without-pip {d} && {env}{d}/bin/python "$w/pip" install {PIP} {spec}'
        )
        with_pip = f"{{ {wheel}; }} || {{ rm -rf {d} && {with_pip}; }}"
    return (
        f"[ -x {shlex.quote(tool_bin(tool))} ] || {{ rm -rf {d} && mkdir -p {shlex.quote(TOOLS_DIR)} && {with_pip} && chmod -R a+rX {d}; }}"
    )


def _tool_facts(tool: str, when_any: tuple[str, ...] = (), **_) -> list:
    return [(ToolVersion, {"binary": tool_bin(tool)}), *([(PresentFiles, {"paths": tuple(when_any)})] if when_any else [])]


@planned(_tool_facts)
@operation()
def tool_installed(tool: str, python: str, when_any: tuple[str, ...] = (), checkout_moves: bool = False, index_url: str = ""):
    """
    Ensure vpskit's pinned ``tool`` (uv or poetry) is installed from PyPI in a venv of its own under ``TOOLS_DIR``.

    With ``when_any``, only when one of those files (a lock file in an app's checkout)
    exists: read before the run, and again when the run moves the checkout.

    + tool: "uv" or "poetry" (the version is ``TOOLS[tool]``)
    + python: interpreter that creates the tool's venv
    + when_any: files of which one must exist for the tool to be needed (empty: always needed)
    + checkout_moves: the checkout holding those files changes in this run
    + index_url: the package index pip installs it from ('' for PyPI); a change of it installs nothing again

    **Example:**

    .. code:: python

        tool_installed(tool="uv", python="/usr/bin/python3.12", when_any=("/srv/apps/api/src/uv.lock",))
    """
    version = TOOLS[tool]
    if snapshot_fact(ToolVersion, binary=tool_bin(tool)) == version:
        host.noop(f"{tool} {version} is installed")
        return
    if when_any and not checkout_moves and not snapshot_fact(PresentFiles, paths=tuple(when_any)):
        host.noop(f"{tool} is not needed (no {', '.join(when_any)})")
        return
    install = tool_install_command(tool, python, index_url)
    if when_any:
        needed = " || ".join(f"[ -f {shlex.quote(p)} ]" for p in when_any)
        install = f"if {needed}; then {install}; fi"
    yield StringCommand(install)
