"""The test package cache's pure parts: apt's proxy detection, the files a target gets, the image recipe's hash."""

from __future__ import annotations

import configparser
import http.server
import shutil
import socket
import subprocess
import threading
import tomllib
from types import SimpleNamespace

import docker
import pytest

from tests import pkgcache


def detect(tmp_path, proxy: str, path: str | None = None) -> str:
    """What apt's Proxy-Auto-Detect command prints for ``proxy`` (with ``path`` as PATH: a fake curl)."""
    script = tmp_path / "detect"
    script.write_text(pkgcache.detect_script(proxy))
    script.chmod(0o755)
    env = {"PATH": path} if path else None
    return subprocess.run([str(script), "http://deb.debian.org/debian"], capture_output=True, text=True, env=env, timeout=10).stdout


def fake_curl(tmp_path, exit_code: int) -> str:
    """A folder with a ``curl`` that exits ``exit_code``, to put first on PATH."""
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "curl").write_text(f"#!/bin/sh\nexit {exit_code}\n")
    (folder / "curl").chmod(0o755)
    return f"{folder}:/usr/bin:/bin"


@pytest.mark.parametrize(("exit_code", "said"), [(0, "http://vpskit-pkgcache:3142\n"), (6, "DIRECT\n"), (28, "DIRECT\n")])
def test_apt_uses_the_cache_only_when_curl_reaches_it(tmp_path, exit_code, said):
    assert detect(tmp_path, pkgcache.APT_PROXY, fake_curl(tmp_path, exit_code)) == said


class _Quiet(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(406)  # apt-cacher-ng answers a plain GET with an error page: it still answers
        self.end_headers()

    def log_message(self, *args):
        pass


needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="no curl on this machine")


@needs_curl
def test_a_cache_that_answers_is_the_proxy(tmp_path):
    server = http.server.HTTPServer(("127.0.0.1", 0), _Quiet)
    threading.Thread(target=server.handle_request, daemon=True).start()
    proxy = f"http://127.0.0.1:{server.server_port}"
    try:
        assert detect(tmp_path, proxy) == f"{proxy}\n"
    finally:
        server.server_close()


@needs_curl
def test_no_cache_listening_means_direct(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert detect(tmp_path, f"http://127.0.0.1:{port}") == "DIRECT\n"


@needs_curl
def test_a_cache_that_hangs_means_direct_within_about_a_second(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()  # accepts the connection, never answers
        assert detect(tmp_path, f"http://127.0.0.1:{s.getsockname()[1]}") == "DIRECT\n"


def test_the_files_point_apt_pip_and_uv_at_the_cache_by_name():
    files = {path: (content, mode) for path, content, mode in pkgcache.target_files()}
    assert set(files) == {pkgcache.APT_CONF, pkgcache.DETECT_SCRIPT, pkgcache.PIP_CONF, pkgcache.UV_CONF}
    assert files[pkgcache.APT_CONF] == (f'Acquire::http::Proxy-Auto-Detect "{pkgcache.DETECT_SCRIPT}";\n', 0o644)
    assert files[pkgcache.DETECT_SCRIPT][1] == 0o755
    pip = configparser.ConfigParser()
    pip.read_string(files[pkgcache.PIP_CONF][0])
    assert dict(pip["global"]) == {"index-url": "http://vpskit-pkgcache:5000/index/", "trusted-host": "vpskit-pkgcache"}
    assert tomllib.loads(files[pkgcache.UV_CONF][0]) == {"index-url": "http://vpskit-pkgcache:5000/index/"}


def test_the_recipe_hash_follows_the_recipe():
    files = dict(pkgcache.RECIPE_FILES)
    digest = pkgcache.recipe_digest("base", files)
    assert pkgcache.recipe_digest("base", dict(files)) == digest
    assert pkgcache.recipe_digest("other base", files) != digest
    assert pkgcache.recipe_digest("base", {**files, "Dockerfile": files["Dockerfile"] + "RUN true\n"}) != digest
    assert pkgcache.recipe_digest("base", {**files, "pkgcache-run": files["pkgcache-run"] + "\n"}) != digest


def test_the_image_builds_on_the_debian_12_test_image():
    assert pkgcache.RECIPE_FILES["Dockerfile"].startswith("FROM vpskit-test/debian:12\n")


class _Target:
    """A target whose cache container is missing; it records the files it is given."""

    distro = "debian13"

    def __init__(self):
        def missing(name):
            raise docker.errors.NotFound(name)

        self.container = SimpleNamespace(client=SimpleNamespace(containers=SimpleNamespace(get=missing)))
        self.files = []
        self.commands = []

    def put_file(self, path, content, mode=0o644):
        self.files.append(path)

    def exec(self, cmd, check=True):
        self.commands.append(cmd)


def test_without_a_cache_a_target_is_left_as_a_fresh_vps(capsys):
    target = _Target()
    assert pkgcache.use_cache(target) is False
    assert target.files == []
    # What an image of a deployed host may carry from the run that built it goes.
    assert target.commands == ["rm -f " + " ".join(path for path, _, _ in pkgcache.target_files())]
    assert capsys.readouterr().out == "package cache not reachable from debian13 target: it downloads from the archives\n"
