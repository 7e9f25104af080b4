"""The Python scripts vpskit installs on the host run on the oldest system python3 of a supported release."""

from __future__ import annotations

import ast

import pytest

from operations.distro import RELEASES
from operations.render import FILES_DIR

SCRIPTS = sorted(p for p in FILES_DIR.iterdir() if p.is_file() and p.read_text(errors="replace").startswith("#!/usr/bin/env python3"))
OLDEST = min(tuple(int(n) for n in r.python.split(".")) for r in RELEASES.values())
# Names the standard library gained after the oldest python3 (3.11: datetime.UTC, tomllib).
NEWER = {("datetime", "UTC"), ("tomllib", None)}


def test_there_are_scripts_to_check():
    assert {p.name for p in SCRIPTS} >= {"vpskit-app", "vpskit-health", "vpskit-compose-check"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_is_python_of_the_oldest_release(script):
    tree = ast.parse(script.read_text(), feature_version=OLDEST)
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            used.add((node.value.id, node.attr))
        elif isinstance(node, ast.ImportFrom):
            used |= {(node.module, a.name) for a in node.names} | {(node.module, None)}
        elif isinstance(node, ast.Import):
            used |= {(a.name, None) for a in node.names}
    assert not used & NEWER, f"{script.name} uses {sorted(used & NEWER, key=str)}, which Python {OLDEST} lacks"
