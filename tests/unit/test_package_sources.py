"""Where packages come from: apt's caching proxy ([server] apt_proxy), refused when unsafe, written before apt first runs."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from pyinfra.facts.files import File
from pyinfra.facts.server import OsRelease

from operations import system
from operations.config import parse_config
from operations.facts import FileState
from operations.render import sha256
from operations.system import APT_PROXY_CONF, BaseSettings, apt_proxy_set
from tests.unit.conftest import config_problems
from tests.unit.hoststub import check_spec, fact, on_stub, run_op
from tests.unit.test_plan import plan_of

PROXY = "http://10.0.0.5:3142"
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
