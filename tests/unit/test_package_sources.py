"""Where packages come from: apt's caching proxy ([server] apt_proxy) and the Python package index ([server] pip_index_url).

Both are refused when unsafe; the proxy is written before apt first runs, the index reaches every uv and pip
run that fills a venv, and neither changes anything on a host whose config leaves them empty.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from pyinfra.facts.files import File
from pyinfra.facts.server import OsRelease

from operations import app as app_mod
from operations import install, system
from operations.app import VenvAppSpec, app_present
from operations.checkout import AppPaths
from operations.config import parse_config
from operations.facts import FileState
from operations.install import ToolVersion, install_command, install_key, tool_install_command, tool_installed, venv_command
from operations.releases import Build, build_command
from operations.render import sha256
from operations.system import APT_PROXY_CONF, BaseSettings, apt_proxy_set
from tests.unit.conftest import config_problems
from tests.unit.hoststub import check_spec, fact, on_stub, run_op
from tests.unit.test_plan import plan_of

PROXY = "http://10.0.0.5:3142"
INDEX = "http://10.0.0.5:3141/root/pypi/+simple/"
# What pip gets for INDEX: the index, and its host trusted without TLS.
PIP_ENV = f"PIP_INDEX_URL={INDEX} PIP_TRUSTED_HOST=10.0.0.5:3141 "
PROXY_FILE = (
    "// Managed by vpskit ([server] apt_proxy): apt fetches http:// package sources through this\n"
    "// caching proxy; https:// sources (which such a proxy cannot cache) connect directly.\n"
    f'Acquire::http::Proxy "{PROXY}";\n'
)

# ------------------------------------------------------------------ the config


def with_server(minimal_raw, **fields) -> dict:
    return {**minimal_raw, "server": {**minimal_raw["server"], **fields}}


@pytest.mark.parametrize(
    "url",
    ["http://10.0.0.5:3142", "http://apt-cache:3142/", "https://proxy.example.com", "http://[fd00::5]:3142"],
)
def test_an_apt_proxy_with_or_without_a_port_is_accepted(minimal_raw, tmp_path, url):
    assert parse_config(with_server(minimal_raw, apt_proxy=url), base_dir=str(tmp_path)).server.apt_proxy == url


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("ftp://10.0.0.5:3142", "must start with http:// or https://, got 'ftp://10.0.0.5:3142'"),
        ("10.0.0.5:3142", "must start with http:// or https://"),
        ("http:10.0.0.5", "must start with http:// or https://"),
        ("HTTP://10.0.0.5:3142", "must start with http:// or https://"),
        ("http://", "names no valid host, got 'http://'"),
        ("http://:3142", "names no valid host"),
        ("http://apt_cache:3142", "names no valid host"),
        ("http://10.0.0.5:99999", "is not a valid URL (host or port)"),
        ("http://10.0.0.5:0", "must have a port 1-65535"),
        ("http://[cache]:3142", "is not a valid URL (host or port)"),
        ("http://10.0.0.5 :3142", "must be a URL of plain characters (no spaces, quotes, $, backslashes or line breaks)"),
        ('http://10.0.0.5:3142";', "must be a URL of plain characters"),
        ("http://10.0.0.5:3142'", "must be a URL of plain characters"),
        ("http://$(reboot):3142", "must be a URL of plain characters"),
        ("http://`reboot`", "must be a URL of plain characters"),
        ("http://10.0.0.5:3142\n", "must be a URL of plain characters"),
        ("http://10.0.0.5:3142\\", "must be a URL of plain characters"),
        ("http://cache:3142/debian", "must be the proxy's address only (scheme, host, optional port), got 'http://cache:3142/debian'"),
        ("http://cache:3142/?x=1", "must be the proxy's address only"),
    ],
)
def test_an_unsafe_or_malformed_apt_proxy_is_refused_in_one_line_naming_the_field(minimal_raw, tmp_path, url, fragment):
    problems = config_problems(with_server(minimal_raw, apt_proxy=url), tmp_path)
    assert len(problems) == 1 and problems[0].startswith("server.apt_proxy: ") and fragment in problems[0], problems


@pytest.mark.parametrize(
    "url", ["http://ops:s3cret@10.0.0.5:3142", "http://ops@10.0.0.5:3142", "ftp://ops:s3cret@cache", "http://ops:s 3cret@cache:99999"]
)
def test_an_apt_proxy_with_a_user_or_password_is_refused_without_repeating_it(minimal_raw, tmp_path, url):
    """apt.conf.d is world-readable; the refusal does not print the password either."""
    (problem,) = config_problems(with_server(minimal_raw, apt_proxy=url), tmp_path)
    assert problem.startswith("server.apt_proxy: must not hold a user or password") and "ops" not in problem


def test_the_apt_proxy_reaches_the_base_system(minimal_raw, tmp_path, monkeypatch):
    plan = plan_of(minimal_raw, tmp_path, monkeypatch, server={"address": "203.0.113.10", "apt_proxy": PROXY})
    assert plan.base_system == BaseSettings(apt_proxy=PROXY)
    assert plan_of(minimal_raw, tmp_path, monkeypatch).base_system.apt_proxy == ""


# ------------------------------------------------------------------ the operation


def proxy_file(content: str = PROXY_FILE, mode: str = "644") -> dict:
    return {"sha256": sha256(content), "mode": mode, "user": "root", "group": "root"}


@pytest.mark.parametrize("current", [None, proxy_file('Acquire::http::Proxy "http://old:3142";\n')], ids=["missing", "another proxy"])
def test_an_apt_proxy_is_written_root_owned_and_world_readable(current):
    done = run_op(apt_proxy_set, {fact(FileState, path=APT_PROXY_CONF): current}, url=PROXY)
    upload, install = done.commands
    assert upload[:2] == ("upload", PROXY_FILE.encode())
    assert install.startswith(f"chmod 644 {upload[2]} && chown root:root {upload[2]} && ") and install.endswith(
        f"mv -f {upload[2]} {APT_PROXY_CONF}"
    )


def test_an_apt_proxy_file_with_that_proxy_is_left_alone():
    check_spec(apt_proxy_set, {FileState: proxy_file()}, {"url": PROXY}, [])


def test_an_apt_proxy_file_with_another_mode_only_gets_its_mode_back():
    check_spec(
        apt_proxy_set,
        {FileState: proxy_file(mode="600")},
        {"url": PROXY},
        [f"chmod 644 {APT_PROXY_CONF} && chown root:root {APT_PROXY_CONF}"],
    )


def test_an_emptied_apt_proxy_removes_the_file():
    check_spec(apt_proxy_set, {FileState: proxy_file()}, {"url": ""}, [f"rm -f {APT_PROXY_CONF}"])


def test_no_apt_proxy_and_no_file_is_a_noop():
    done = check_spec(apt_proxy_set, {FileState: None}, {}, [])
    assert done.noops == [f"{APT_PROXY_CONF} is absent"]


@pytest.mark.parametrize("proxy", [PROXY, ""], ids=["proxy", "none"])
def test_the_base_system_sets_the_apt_proxy_before_its_first_apt_command(monkeypatch, proxy):
    """A first deploy's apt update already goes through the proxy; an emptied one is removed before it too."""
    order: list[tuple[str, dict]] = []

    def recorder(name):
        def record(*_, **kwargs):
            order.append((name, kwargs))
            return record if name == "facts_through_snapshot" else SimpleNamespace(will_change=True)

        return record

    steps = ("apt_proxy_set", "checked_file", "apt_unlocked", "apt_updated", "apt_upgraded", "packages_installed", "facts_through_snapshot")
    for name in steps:
        monkeypatch.setattr(system, name, recorder(name))
    release = {"id": "debian", "version_id": "12", "version_codename": "bookworm"}
    with on_stub({OsRelease: release, fact(File, path=system.DEPLOYS_LOG): None}):
        system.base_system._inner(BaseSettings(apt_proxy=proxy))
    assert order[0] == ("apt_proxy_set", {"name": "apt's caching proxy" if proxy else "No apt caching proxy", "url": proxy})
    assert {"apt_unlocked", "apt_updated", "packages_installed"} <= {name for name, _ in order[1:]}


# ------------------------------------------------------------------ the package index: config


@pytest.mark.parametrize(
    "url", [INDEX, "https://pypi.corp.example/simple", "http://devpi:3141/root/pypi/+simple/?x=1&y=2", "http://[fd00::5]/"]
)
def test_a_package_index_with_or_without_a_port_and_path_is_accepted(minimal_raw, tmp_path, url):
    assert parse_config(with_server(minimal_raw, pip_index_url=url), base_dir=str(tmp_path)).server.pip_index_url == url


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("ftp://10.0.0.5/simple", "must start with http:// or https://, got 'ftp://10.0.0.5/simple'"),
        ("pypi.corp.example/simple", "must start with http:// or https://"),
        ("https:///simple", "names no valid host, got 'https:///simple'"),
        ("https://pypi_corp/simple", "names no valid host"),
        ("https://pypi.corp.example:70000/simple", "is not a valid URL (host or port)"),
        ("https://pypi.corp.example/my simple", "must be a URL of plain characters"),
        ('https://pypi.corp.example/"simple"', "must be a URL of plain characters"),
        ("https://pypi.corp.example/$(id)", "must be a URL of plain characters"),
        ("https://pypi.corp.example/simple\nPIP_X=1", "must be a URL of plain characters"),
    ],
)
def test_an_unsafe_or_malformed_package_index_is_refused_in_one_line_naming_the_field(minimal_raw, tmp_path, url, fragment):
    problems = config_problems(with_server(minimal_raw, pip_index_url=url), tmp_path)
    assert len(problems) == 1 and problems[0].startswith("server.pip_index_url: ") and fragment in problems[0], problems


def test_a_package_index_with_a_user_or_password_is_refused_without_repeating_it(minimal_raw, tmp_path):
    (problem,) = config_problems(with_server(minimal_raw, pip_index_url="https://ci:t0ken@pypi.corp.example/simple"), tmp_path)
    assert problem.startswith("server.pip_index_url: must not hold a user or password") and "t0ken" not in problem


def test_the_package_index_reaches_every_venv_app(minimal_raw, tmp_path, monkeypatch):
    app = {"name": "shop", "port": 8000, "repo": "https://git.example.com/shop.git"}
    plan = plan_of(minimal_raw, tmp_path, monkeypatch, server={"address": "203.0.113.10", "pip_index_url": INDEX}, apps=[app])
    assert [a.pip_index_url for a in plan.web_apps["apps"]] == [INDEX]
    assert [a.pip_index_url for a in plan_of(minimal_raw, tmp_path, monkeypatch, apps=[app]).web_apps["apps"]] == [""]


def test_the_app_hands_the_package_index_to_its_release_and_its_tools(monkeypatch):
    """The build of its venv and the install of vpskit's uv and poetry both get it."""
    calls: dict[str, list[dict]] = {}

    def recorder(name):
        def record(*_, **kwargs):
            calls.setdefault(name, []).append(kwargs)
            return SimpleNamespace(will_change=False)

        return record

    for name in ("app_env", "release_fetched", "tool_installed", "release_built", "checked_file", "unit_running"):
        monkeypatch.setattr(app_mod, name, recorder(name))
    monkeypatch.setattr(app_mod, "app_place", lambda *_: "")
    monkeypatch.setattr(app_mod, "release_state", lambda *_: None)
    shop = VenvAppSpec("shop", "https://git.example.com/shop.git")
    with on_stub():
        app_present._inner(
            shop, AppPaths("shop", "/srv/apps", "/var/log/apps"), "appuser", "/usr/bin/python3.12", "3.12", 3, pip_index_url=INDEX
        )
    assert [c["index_url"] for c in calls["tool_installed"]] == [INDEX, INDEX]  # uv, and poetry for a poetry.lock
    assert calls["release_built"][0]["build"].index_url == INDEX


# ------------------------------------------------------------------ the package index: commands


def test_without_a_package_index_the_commands_name_none():
    """A host whose config leaves it empty gets the very commands it got before the setting existed."""
    for method in install.METHODS:
        for with_uv in (False, True):
            command = install_command("shop", method, "requirements.txt", ".", "/v", ["gunicorn"], with_uv)
            assert command == install_command("shop", method, "requirements.txt", ".", "/v", ["gunicorn"], with_uv, index_url="")
            assert "INDEX" not in command and "TRUSTED" not in command
        command = venv_command("shop", method, "requirements.txt", ".", "/usr/bin/python3", "/v", "/c", ["gunicorn"])
        assert "INDEX" not in command and "TRUSTED" not in command
    for tool in install.TOOLS:
        assert "INDEX" not in tool_install_command(tool, "/usr/bin/python3")


def test_an_https_index_is_not_made_a_trusted_host():
    command = install_command("shop", "requirements", "r.txt", ".", "/v", [], index_url="https://pypi.corp.example/simple?a=1&b=2")
    assert "PIP_INDEX_URL='https://pypi.corp.example/simple?a=1&b=2' /v/bin/pip install" in command and "TRUSTED" not in command


# A tool that logs its name, arguments and the package index it was given.
INDEX_TOOL = '#!/bin/sh\necho "$(basename "$0") $* [uv=$UV_DEFAULT_INDEX pip=$PIP_INDEX_URL trusted=$PIP_TRUSTED_HOST]" >> "$LOG"\n'
SEEN = f"[uv={INDEX} pip= trusted=]"
PIP_SEEN = f"[uv= pip={INDEX} trusted=10.0.0.5:3141]"


@pytest.fixture
def tools(tmp_path, monkeypatch):
    """vpskit's uv and poetry, and a python whose ``-m venv`` makes a venv with a pip, all logging what they are given."""
    monkeypatch.setattr(install, "TOOLS_DIR", str(tmp_path / "tools"))
    monkeypatch.setattr(install, "PIP_WHEELS", str(tmp_path / "no-wheels"))
    uv = Path(install.tool_bin("uv"))
    for binary in (uv, Path(install.tool_bin("poetry")), tmp_path / "pip"):
        binary.parent.mkdir(parents=True, exist_ok=True)
        binary.write_text(INDEX_TOOL + ('if [ "$1" = venv ]; then mkdir -p "$7/bin"; fi\n' if binary == uv else ""))
        binary.chmod(0o755)
    python = tmp_path / "python3"
    python.write_text(f'{INDEX_TOOL}for d; do :; done; mkdir -p "$d/bin" && cp {tmp_path}/pip "$d/bin/pip"\n')
    python.chmod(0o755)
    (tmp_path / "code").mkdir()
    return tmp_path


def run_logged(tmp_path: Path, command: str) -> list[str]:
    """Run ``command``; the tool calls it made, with tmp_path as T."""
    log = tmp_path / "calls.log"
    log.unlink(missing_ok=True)
    proc = subprocess.run(["sh", "-c", command], env={"LOG": str(log), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return [c.replace(str(tmp_path), "T") for c in log.read_text().splitlines()]


@pytest.mark.parametrize(
    "files", [["requirements.txt"], ["pyproject.toml"], ["uv.lock", "pyproject.toml"]], ids=["requirements", "pyproject", "uv.lock"]
)
def test_uv_builds_a_venv_and_installs_into_it_from_the_index(tools, files):
    for name in files:
        (tools / "code" / name).write_text("")
    command = venv_command(
        "shop", "auto", "requirements.txt", ".", str(tools / "python3"), str(tools / "venv"), str(tools / "code"), ["gunicorn"], INDEX
    )
    calls = run_logged(tools, command)
    assert calls[0] == f"uv venv --quiet --seed --python T/python3 T/venv {SEEN}"  # pip, seeded from the index too
    assert len(calls) == 3 and all(c.startswith("uv ") and c.endswith(SEEN) for c in calls)


def test_pip_builds_a_venv_from_the_index_without_uv(tools):
    (tools / "code" / "requirements.txt").write_text("")
    Path(install.tool_bin("uv")).unlink()
    command = venv_command(
        "shop", "auto", "requirements.txt", ".", str(tools / "python3"), str(tools / "venv"), str(tools / "code"), ["gunicorn"], INDEX
    )
    assert run_logged(tools, command)[1:] == [
        f"pip install --quiet --disable-pip-version-check -r requirements.txt {PIP_SEEN}",
        f"pip install --quiet --disable-pip-version-check gunicorn {PIP_SEEN}",
    ]


def test_uv_comes_from_the_index_by_the_system_pip_wheel_too():
    assert tool_install_command("uv", "/usr/bin/python3", INDEX).count(f"{PIP_ENV}/opt/vpskit/tools/uv-") == 2


@pytest.mark.parametrize("tool", ["uv", "poetry"])
def test_vpskits_tools_come_from_the_index(tools, tool):
    Path(install.tool_bin(tool)).unlink()  # not installed yet
    calls = run_logged(tools, tool_install_command(tool, str(tools / "python3"), INDEX))
    assert calls[-1] == f"pip install --quiet --disable-pip-version-check {tool}=={install.TOOLS[tool]} {PIP_SEEN}"


def test_a_new_package_index_rebuilds_no_venv_and_installs_no_tool_again():
    """The venv's key and the tools' check say what is installed, not where it came from."""
    key = install_key("auto", "requirements.txt", "/srv/apps/shop/releases/.building", ".", "3.12", ["gunicorn"])
    shop = {"name": "shop", "root": "/srv/apps/shop", "repo": "file:///r.git", "ref": "main", "user": "appuser"}
    for index in ("", INDEX):
        command = build_command(Build(**shop, python="/usr/bin/python3.12", python_version="3.12", index_url=index))
        assert f'K="$({key})"' in command and 'if [ "$(cat /srv/apps/shop/venvs/$V/.vpskit-requirements 2>/dev/null)" != "$K" ]' in command
        check_spec(tool_installed, {ToolVersion: install.TOOLS["uv"]}, dict(tool="uv", python="/usr/bin/python3.12", index_url=index), [])


def test_the_index_is_quoted_where_it_reaches_a_shell():
    odd = "https://pypi.corp.example/simple?a=1&b=(2)"
    assert f"UV_DEFAULT_INDEX={shlex.quote(odd)} " in venv_command("shop", "uv", "r.txt", ".", "/usr/bin/python3", "/v", "/c", [], odd)
