"""The bench and the demo build on the public test harness only, and on no private name of vpskit."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests import harness

ROOT = Path(__file__).resolve().parents[2]
USERS = sorted([*ROOT.glob("bench/*.py"), ROOT / "tests" / "demo.py"])


@pytest.mark.parametrize("path", USERS, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_only_the_public_harness_and_public_names(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("tests", "operations"):
            if node.module.startswith("tests"):
                assert node.module == "tests.harness", f"{path.name} imports {node.module}"
            assert not [a.name for a in node.names if a.name.startswith("_")], f"{path.name}: private names from {node.module}"
        if isinstance(node, ast.Import):
            assert not [a.name for a in node.names if a.name.startswith("tests")], f"{path.name} imports the tests package"


def test_the_harness_offers_every_name_it_lists():
    assert all(hasattr(harness, name) for name in harness.__all__)
