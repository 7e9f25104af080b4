"""The README stays a newcomer's page: small, its commands and config example real, its links and the docs' links whole."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from operations.config import parse_config
from operations.config.reference import anchor

from .conftest import FAKE_PUBLIC_KEY

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
LINK_RE = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", text, re.MULTILINE | re.DOTALL)


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.MULTILINE | re.DOTALL)
    return {anchor(h) for h in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}


def test_readme_is_under_12_kb():
    """What a newcomer needs fits on one page; reference material lives in docs/."""
    assert README.stat().st_size < 12 * 1024


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_relative_link_resolves(page):
    """Each link to a file of the repository (and to a heading in it) finds it."""
    broken = []
    for target in LINK_RE.findall(page.read_text()):
        if re.match(r"^[a-z]+:", target):
            continue  # https://, mailto:
        path, _, fragment = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists() or fragment and dest.suffix == ".md" and fragment not in _anchors(dest):
            broken.append(target)
    assert not broken, f"{page.name}: broken links {broken}"


def test_readme_links_every_docs_page():
    """No page under docs/ is unreachable from the README."""
    linked = {t.partition("#")[0] for t in LINK_RE.findall(README.read_text())}
    assert {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")} <= linked


def test_readme_commands_name_real_files_and_make_targets():
    """The quick start's commands refer to files that exist and make targets the Makefile has."""
    commands = "\n".join(_blocks(README.read_text(), "sh"))
    for needed in (
        ".venv/bin/pip install",
        "cp examples/vpskit.toml vpskit.toml",
        "pyinfra inventory.py deploy.py",
        "make demo",
        "make test",
    ):
        assert needed in commands
    for name in ("examples/vpskit.toml", "inventory.py", "deploy.py"):
        assert (ROOT / name).is_file(), name
    targets = set(re.findall(r"^([a-z0-9-]+):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    for page in PAGES:
        for target in re.findall(r"\bmake ([a-z][a-z0-9-]*)", page.read_text()):
            assert target in targets, f"{page.name}: make {target}"


def test_readme_config_example_is_a_valid_config(tmp_path):
    """The small config the README shows passes validation as it is (with its key file in place)."""
    (example,) = _blocks(README.read_text(), "toml")
    raw = tomllib.loads(example)
    key = tmp_path / "id_ed25519.pub"
    key.write_text(FAKE_PUBLIC_KEY)
    raw["deploy_user"]["public_keys"] = [str(key)]
    config = parse_config(raw, base_dir=str(tmp_path))
    assert config.apps[0].database.uses_postgres
