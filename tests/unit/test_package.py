"""A built wheel installs on its own: templates and files come with it, inside vpskit's package."""

from __future__ import annotations

import configparser
import hashlib
import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from operations.distro import RELEASES
from operations.render import render
from tests.unit.template_samples import SAMPLES

ROOT = Path(__file__).resolve().parents[2]
# What a source distribution holds: the build sees nothing else of the checkout.
SOURCES = ("setup.cfg", "pyproject.toml", "README.md", "operations", "templates", "files")

# Run inside the fresh venv: render every sample and list the shipped files, all from the installed copy.
PROBE = """
import hashlib, json, sys
import operations
from operations.render import FILES_DIR, TEMPLATES_DIR, render
samples = json.load(sys.stdin)
print(json.dumps({
    "package": operations.__file__,
    "templates": sorted(p.name for p in TEMPLATES_DIR.iterdir()),
    "rendered": {name: render(name, **context) for name, context in samples.items()},
    "files": {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in FILES_DIR.iterdir()},
}))
"""


def run(*cmd, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, **kwargs)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel pip builds from a copy of the sources (the build leaves build/ and egg-info behind)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp / "dist"), str(src))
    (built,) = (tmp / "dist").glob("vpskit-*.whl")
    return built


def test_the_wheel_holds_every_module_template_and_file_under_the_package(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    top = {n.split("/", 1)[0] for n in names}
    assert top == {"operations", next(t for t in top if t.endswith(".dist-info"))}, "nothing but vpskit's own package at the top"
    want = {f"operations/{p.relative_to(ROOT / 'operations').as_posix()}" for p in (ROOT / "operations").rglob("*.py")}
    want |= {f"operations/templates/{p.name}" for p in (ROOT / "templates").iterdir()}
    want |= {f"operations/files/{p.name}" for p in (ROOT / "files").iterdir()}
    assert sorted(want - names) == []


def test_an_installed_wheel_renders_every_template_and_carries_every_file(wheel, tmp_path):
    """Installed non-editably into a fresh venv, run from elsewhere: every template renders as from the checkout."""
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", str(venv))
    python = venv / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel))
    # Its dependencies (jinja2 and the rest) come from this venv, placed after the fresh venv's own
    # site-packages; vpskit's editable install here is not activated (its .pth is not read).
    fresh_site = run(str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    Path(fresh_site, "vpskit-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    assert set(SAMPLES) == {p.name for p in (ROOT / "templates").iterdir()}, "a sample context for each template"
    proc = run(str(python), "-I", "-c", PROBE, input=json.dumps(SAMPLES), cwd=tmp_path)
    got = json.loads(proc.stdout)

    assert Path(got["package"]).is_relative_to(Path(fresh_site))
    assert got["templates"] == sorted(SAMPLES)
    assert got["rendered"] == {name: render(name, **json.loads(json.dumps(ctx))) for name, ctx in SAMPLES.items()}
    assert got["files"] == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (ROOT / "files").iterdir()}


def setup_cfg() -> configparser.ConfigParser:
    """setup.cfg, the package's metadata and requirements."""
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(ROOT / "setup.cfg")
    return cfg


def release_names() -> list[str]:
    """The supported releases as a sentence names them, one phrase per distro: 'Ubuntu 22.04/24.04/26.04'."""
    versions: dict[str, list[str]] = {}
    for release in RELEASES.values():
        distro, _, version = release.name.partition(" ")
        versions.setdefault(distro, []).append(version)
    return [f"{distro} {'/'.join(v)}" for distro, v in versions.items()]


def test_the_package_description_names_every_supported_release():
    """PyPI's one line says which releases vpskit takes, all of ``distro.RELEASES``."""
    description = setup_cfg()["metadata"]["description"]
    assert [name for name in release_names() if name not in description] == []


def pyinfra_minors() -> list[tuple[int, int]]:
    """The pyinfra minor versions setup.cfg takes, the ones the tests ran on: ``pyinfra>=3.10,<3.12`` is 3.10 and 3.11."""
    requires = setup_cfg()["options"]["install_requires"]
    pin = re.search(r"^pyinfra>=(\d+)\.(\d+),<(\d+)\.(\d+)$", requires, re.MULTILINE)
    assert pin, "setup.cfg pins pyinfra to the minor versions the tests ran on, as pyinfra>=X.Y,<X.Z"
    major, low, upper_major, high = map(int, pin.groups())
    assert upper_major == major and high > low, f"setup.cfg's pyinfra pin {pin[0]} spans no minor versions of one major"
    return [(major, minor) for minor in range(low, high)]


def test_the_installed_pyinfra_is_a_minor_version_the_tests_ran_on():
    """vpskit leans on pyinfra's internals (facts, connectors, operation arguments): a new minor version is tested first."""
    version = importlib.metadata.version("pyinfra")
    major, minor = map(int, version.split(".")[:2])
    tested = ", ".join(f"{a}.{b}" for a, b in pyinfra_minors())
    assert (major, minor) in pyinfra_minors(), (
        f"pyinfra {version} is installed; setup.cfg pins the minor versions the tests ran on ({tested}). "
        f"Install one of them (pip install -e .), or run the unit and end-to-end tests on {major}.{minor} "
        "and then widen the pin in setup.cfg."
    )
