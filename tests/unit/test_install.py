"""How an app's dependencies are installed: the method its repo's files pick, the key that re-installs, the tools."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from operations import install
from operations.checkout import GitCheckout, git_checkout
from operations.install import (
    PresentFiles,
    ToolVersion,
    install_alternatives,
    install_command,
    install_key,
    missing_message,
    tool_installed,
)
from tests.unit.hoststub import check_spec, run_op

TOOL = '#!/bin/sh\necho "$(basename "$0") $*" >> "$LOG"\n'


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A git checkout with an app directory, a venv whose pip and vpskit's uv/poetry only log what they are asked."""
    monkeypatch.setattr(install, "TOOLS_DIR", str(tmp_path / "tools"))
    for binary in (tmp_path / "venv/bin/pip", Path(install.tool_bin("uv")), Path(install.tool_bin("poetry"))):
        binary.parent.mkdir(parents=True, exist_ok=True)
        binary.write_text(TOOL)
        binary.chmod(0o755)
    src = tmp_path / "src"
    (src / "backend").mkdir(parents=True)
    git(src, "init", "-q")
    return src


def git(cwd: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t", "HOME": str(cwd)}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def commit(src: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (src / name).write_text(text)
    git(src, "add", "-A")
    git(src, "commit", "-q", "--allow-empty", "-m", "x")


def run_install(src: Path, method: str = "auto", app_dir: str = ".") -> tuple[int, list[str], str]:
    """Run the install command in the app's directory: exit code, the tool calls made, stderr."""
    log = src.parent / "calls.log"
    log.unlink(missing_ok=True)
    code = src if app_dir == "." else src / app_dir
    command = install_command("shop", method, "requirements.txt", app_dir, str(src.parent / "venv"), ["gunicorn"])
    proc = subprocess.run(["sh", "-c", command], cwd=code, env={"LOG": str(log), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    calls = log.read_text().splitlines() if log.exists() else []
    return proc.returncode, calls, proc.stderr.strip()


def key(src: Path, method: str = "auto", app_dir: str = ".", python: str = "3.12") -> str:
    command = install_key(method, "requirements.txt", str(src), app_dir, python, ["gunicorn"])
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.parametrize(
    "files, tool_call",
    [
        ({"requirements.txt": "flask\n", "pyproject.toml": ""}, "pip install --quiet --disable-pip-version-check -r requirements.txt"),
        ({"uv.lock": "", "pyproject.toml": "", "requirements.txt": ""}, "uv sync --frozen --no-dev --inexact --quiet --python"),
        ({"poetry.lock": "", "pyproject.toml": ""}, "poetry install --only main --no-root --quiet"),
        ({"pyproject.toml": "[project]\n"}, "pip install --quiet --disable-pip-version-check ."),
    ],
    ids=["requirements", "uv-lock-first", "poetry-lock", "pyproject-only"],
)
def test_auto_installs_by_the_files_the_app_directory_holds(repo, files, tool_call):
    commit(repo, {f"backend/{name}": text for name, text in files.items()})
    rc, calls, _ = run_install(repo, app_dir="backend")
    assert rc == 0
    assert calls[0].startswith(tool_call), calls
    # vpskit's own packages come after, with pip.
    assert calls[1] == "pip install --quiet --disable-pip-version-check gunicorn"


def test_a_repo_with_nothing_to_install_stops_naming_the_app_and_the_files(repo):
    commit(repo, {"backend/app.py": ""})
    rc, calls, err = run_install(repo, app_dir="backend")
    assert (rc, calls) == (1, [])
    assert err == "app shop: install = 'auto' found none of uv.lock, poetry.lock, requirements.txt, pyproject.toml in backend/ in the repo"
    rc, calls, err = run_install(repo, "poetry", app_dir="backend")
    assert (rc, calls, err) == (1, [], "app shop: install = 'poetry' needs poetry.lock and pyproject.toml in backend/ in the repo")


def test_an_explicit_method_is_used_even_when_auto_would_pick_another(repo):
    commit(repo, {"uv.lock": "", "pyproject.toml": "", "requirements.txt": "flask\n"})
    assert run_install(repo, "requirements")[1][0].endswith("-r requirements.txt")


def test_the_key_changes_with_the_lock_file_or_python_only(repo):
    commit(repo, {"uv.lock": "a\n", "pyproject.toml": "", "app.py": "v1"})
    first = key(repo)
    commit(repo, {"app.py": "v2"})
    assert key(repo) == first  # code alone: the locked dependencies stay
    assert key(repo, python="3.13") != first
    commit(repo, {"uv.lock": "b\n"})
    assert key(repo) != first


def test_pip_install_dot_is_keyed_by_the_app_directory_tree(repo):
    """``pip install .`` copies the code into the venv: a code change installs it again, a change elsewhere does not."""
    commit(repo, {"backend/pyproject.toml": "[project]\n", "backend/app.py": "v1", "README": "a"})
    first = key(repo, app_dir="backend")
    commit(repo, {"README": "b"})
    assert key(repo, app_dir="backend") == first
    commit(repo, {"backend/app.py": "v2"})
    assert key(repo, app_dir="backend") != first
    assert key(repo, "pyproject", app_dir="backend") != key(repo, app_dir="backend")  # the method is in the key


def test_install_alternatives_are_paths_in_the_repo():
    assert install_alternatives("auto", "req.txt", "backend") == (
        ("backend/uv.lock",), ("backend/poetry.lock",), ("backend/req.txt",), ("backend/pyproject.toml",)
    )  # fmt: skip
    assert install_alternatives("uv", "requirements.txt", ".") == (("uv.lock", "pyproject.toml"),)


# ---------------------------------------------------------------- the tools


def test_tool_version_reads_both_tools_output():
    assert ToolVersion().process(["uv 0.13.9 (x86_64-unknown-linux-gnu)"]) == "0.13.9"
    assert ToolVersion().process(["Poetry (version 2.5.1)"]) == "2.5.1"
    assert ToolVersion().process([]) is None


def test_pinned_tool_present_is_a_noop():
    check_spec(tool_installed, {ToolVersion: install.TOOLS["uv"]}, dict(tool="uv", python="/usr/bin/python3.12"), [])


def test_tool_is_installed_from_pypi_at_its_pin_in_its_own_venv():
    d = f"/opt/vpskit/tools/poetry-{install.TOOLS['poetry']}"
    done = check_spec(tool_installed, {ToolVersion: "0.1.0"}, dict(tool="poetry", python="/usr/bin/python3.12"), [
        f"[ -x {d}/bin/poetry ] || {{ rm -rf {d} && mkdir -p /opt/vpskit/tools && /usr/bin/python3.12 -m venv {d} && "
        f"{d}/bin/pip install --quiet --disable-pip-version-check poetry=={install.TOOLS['poetry']} && chmod -R a+rX {d}; }}"
    ])  # fmt: skip
    assert "curl" not in done.commands[0]
    uv = run_op(tool_installed, {ToolVersion: "0.1.0"}, tool="uv", python="/usr/bin/python3.12").commands
    assert uv == [install.tool_install_command("uv", "/usr/bin/python3.12")]


# A python whose ``-m venv`` makes a venv with a python like itself (and a pip unless --without-pip);
# a pip run from the system's wheel fails when the wheel folder holds "fail"; any pip install puts uv in place.
FAKE_PYTHON = r"""if [ "$1" = -m ] && [ "$2" = venv ]; then
  for d; do :; done
  mkdir -p "$d/bin" && cp "$0" "$d/bin/python"
  if [ "$3" != --without-pip ]; then
    printf '#!/bin/sh\necho "pip $*" >> "$LOG"\ntouch "$(dirname "$0")/uv"\n' > "$d/bin/pip" && chmod +x "$d/bin/pip"
  fi
  exit 0
fi
case "$1" in */pip) [ -e "$(dirname "$(dirname "$1")")/fail" ] && exit 1; touch "$(dirname "$0")/uv" ;; esac
"""


def install_uv(tmp_path, monkeypatch, wheel: str) -> list[str]:
    """uv's install command run with a fake python; the system's pip wheel "works", "fails" or is "absent"."""
    monkeypatch.setattr(install, "TOOLS_DIR", str(tmp_path / "tools"))
    monkeypatch.setattr(install, "PIP_WHEELS", str(tmp_path / "wheels"))
    python = tmp_path / "python3"
    python.write_text(TOOL + FAKE_PYTHON)
    python.chmod(0o755)
    if wheel != "absent":
        (tmp_path / "wheels/pip-24.0-py3-none-any.whl").mkdir(parents=True)
        if wheel == "fails":
            (tmp_path / "wheels/fail").touch()
    log = tmp_path / "calls.log"
    proc = subprocess.run(["sh", "-c", install.tool_install_command("uv", str(python))], env={"LOG": str(log), "PATH": "/usr/bin:/bin"})
    calls = [c.replace(str(tmp_path), "T").replace(install.TOOLS["uv"], "V") for c in log.read_text().splitlines()]
    assert proc.returncode == 0 and Path(install.tool_bin("uv")).exists()
    return calls


@pytest.mark.parametrize(
    "wheel, calls",
    [
        ("works", ["python3 -m venv --without-pip T/tools/uv-V", "python T/wheels/pip-24.0-py3-none-any.whl/pip install --quiet --disable-pip-version-check uv==V"]),
        ("absent", ["python3 -m venv T/tools/uv-V", "pip install --quiet --disable-pip-version-check uv==V"]),
        ("fails", [
            "python3 -m venv --without-pip T/tools/uv-V",
            "python T/wheels/pip-24.0-py3-none-any.whl/pip install --quiet --disable-pip-version-check uv==V",
            "python3 -m venv T/tools/uv-V",
            "pip install --quiet --disable-pip-version-check uv==V",
        ]),
    ],
)  # fmt: skip
def test_uv_goes_into_a_venv_without_pip_by_the_system_pip_wheel_else_as_any_tool(tmp_path, monkeypatch, wheel, calls):
    """The venv module's own pip wheel installs uv (no pip copied into its venv first); without it, or failing, a venv with pip does."""
    assert install_uv(tmp_path, monkeypatch, wheel) == calls


def test_auto_installs_a_tool_only_for_a_checkout_with_its_lock_file():
    lock = "/srv/apps/shop/src/poetry.lock"
    args = dict(tool="poetry", python="/usr/bin/python3", when_any=(lock,))
    check_spec(tool_installed, {ToolVersion: None, PresentFiles: []}, args, [])
    assert run_op(tool_installed, {ToolVersion: None, PresentFiles: [lock]}, **args).commands[0].startswith(f"if [ -f {lock} ]; then ")
    # The checkout moves in this run: whether the lock file is there is seen when the step runs.
    moved = run_op(tool_installed, {ToolVersion: None, PresentFiles: []}, **args, checkout_moves=True)
    assert moved.commands[0].startswith(f"if [ -f {lock} ]; then ")


def test_a_new_commit_without_install_files_is_refused_before_the_checkout_moves(tmp_path):
    """Run for real: the fetched commit lacks poetry.lock, so the run stops and the checkout stays where it was."""
    origin, dest = tmp_path / "origin", tmp_path / "dest"
    origin.mkdir()
    git(origin, "init", "-q", "-b", "main")
    commit(origin, {"poetry.lock": "", "pyproject.toml": ""})
    git(tmp_path, "clone", "-q", str(origin), str(dest))
    head = git(dest, "rev-parse", "HEAD")
    git(origin, "rm", "-q", "poetry.lock")
    commit(origin, {})
    state = {"head": head.strip(), "url": str(origin), "remote": git(origin, "rev-parse", "HEAD").strip(), "error": "", "skipped": False}
    message = missing_message("shop", "poetry", "requirements.txt", ".")
    done = run_op(
        git_checkout,
        {GitCheckout: state},
        repo=str(origin), ref="main", dest=str(dest), user="u",
        needs=install_alternatives("poetry", "requirements.txt", "."), missing=message,
    )  # fmt: skip
    inner = done.commands[0].split(" sh -c ", 1)[1]  # as the deploy user; run here as ourselves
    proc = subprocess.run(
        ["sh", "-c", f"sh -c {inner}"], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    )
    assert proc.returncode == 1 and proc.stderr.strip() == message
    assert git(dest, "rev-parse", "HEAD") == head


def test_a_requirements_install_keeps_the_key_hosts_deployed_before_install_methods_have(repo):
    """The stamp written by earlier vpskit: sha256 of the requirements file, the Python version, vpskit's packages."""
    commit(repo, {"requirements.txt": "flask\n", "pyproject.toml": ""})
    digest = subprocess.run(
        ["sh", "-c", f"sha256sum < {repo}/requirements.txt | cut -c1-64"], capture_output=True, text=True
    ).stdout.strip()
    assert key(repo) == key(repo, "requirements") == f"{digest} 3.12 gunicorn"
    commit(repo, {"uv.lock": "a\n"})
    assert key(repo) != f"{digest} 3.12 gunicorn"  # a lock file wins under auto, with its own key


def run_venv(src: Path, uv: str = "works") -> tuple[int, list[str], str]:
    """The venv command with a fake python (``-m venv`` makes a venv whose pip logs) and vpskit's uv working, failing or absent."""
    tmp = src.parent
    log = tmp / "calls.log"
    log.unlink(missing_ok=True)
    python = tmp / "python3"
    python.write_text(f'{TOOL}mkdir -p "$3/bin" && cp {tmp}/venv/bin/pip "$3/bin/pip"\n')
    python.chmod(0o755)
    uv_bin = Path(install.tool_bin("uv"))
    if uv == "absent":
        uv_bin.unlink()
    else:
        uv_bin.write_text(TOOL + ('if [ "$1" = venv ]; then mkdir -p "$7/bin"; fi\n' if uv == "works" else "exit 2\n"))
    commit(src, {"requirements.txt": "flask\n"})
    command = install.venv_command("shop", "auto", "requirements.txt", ".", str(python), str(tmp / "new-venv"), str(src), ["gunicorn"])
    proc = subprocess.run(["sh", "-c", command], env={"LOG": str(log), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    calls = [c.replace(str(tmp), "T") for c in (log.read_text().splitlines() if log.exists() else [])]
    return proc.returncode, calls, proc.stderr.strip()


# The venv built without uv: python -m venv, the requirements file, vpskit's packages.
PIP_BUILD = [
    "python3 -m venv T/new-venv",
    "pip install --quiet --disable-pip-version-check -r requirements.txt",
    "pip install --quiet --disable-pip-version-check gunicorn",
]


def test_uv_builds_the_venv_and_installs_a_requirements_file(repo):
    rc, calls, err = run_venv(repo)
    assert (rc, err) == (0, "")
    assert calls == [
        "uv venv --quiet --seed --python T/python3 T/new-venv",
        "uv pip install --quiet --python T/new-venv/bin/python -r requirements.txt",
        "uv pip install --quiet --python T/new-venv/bin/python gunicorn",
    ]


def test_without_uv_python_and_pip_build_the_venv(repo):
    rc, calls, err = run_venv(repo, uv="absent")
    assert (rc, err) == (0, "")
    assert calls == PIP_BUILD


def test_when_uv_fails_pip_builds_the_venv_and_says_so(repo):
    rc, calls, err = run_venv(repo, uv="fails")
    assert rc == 0
    assert err == "vpskit: app shop: uv could not build its venv, pip builds it"
    assert calls[0].startswith("uv venv") and calls[1:] == PIP_BUILD
