"""The end of `make test` names every failure: the suite, the test and the tail of its output."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.report import read_suites, render

ROOT = Path(__file__).resolve().parents[2]

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="3">
<testcase classname="tests.e2e.test_web" name="test_ok" time="1.0"/>
<testcase classname="tests.e2e.test_web" name="test_deploy[ubuntu2404]" time="2.0">
<failure message="AssertionError: pyinfra exited 1">{body}</failure></testcase>
<testcase classname="tests.e2e.test_web" name="test_skipped" time="0"><skipped message="no"/></testcase>
</testsuite></testsuites>
"""


def write_suite(folder: Path, label: str, rc: int, seconds: int, xml: str | None = None, log: str = "") -> None:
    with open(folder / "suites", "a") as f:
        f.write(f"{label} {rc} {seconds}\n")
    if xml is not None:
        (folder / f"{label}.xml").write_text(xml)
    (folder / f"{label}.log").write_text(log)


def test_a_failed_test_is_named_with_its_release_and_the_end_of_its_deploy(tmp_path):
    body = "\n".join(f"deploy line {i}" for i in range(100)) + "\n--> Error: nginx -t failed"
    write_suite(tmp_path, "ubuntu2404-web", 1, 300, JUNIT.format(body=body))
    write_suite(
        tmp_path, "debian12-smoke", 0, 200, JUNIT.replace("<failure", "<skipped").replace("</failure>", "</skipped>").format(body="")
    )
    text = render(tmp_path, read_suites(tmp_path))
    assert "==> FAILED [ubuntu2404-web] tests.e2e.test_web::test_deploy[ubuntu2404]" in text
    assert "--> Error: nginx -t failed" in text and "deploy line 99" in text
    assert "deploy line 10\n" not in text  # only the tail
    assert "FAILED [debian12-smoke]" not in text
    assert text.rstrip().endswith("2 passed, 1 failed")


def test_a_suite_that_died_without_a_report_shows_the_end_of_its_log(tmp_path):
    write_suite(tmp_path, "debian13-host", 137, 1200, None, log="collected 40 items\n" + "Killed\n")
    text = render(tmp_path, read_suites(tmp_path))
    assert "==> FAILED [debian13-host] exit 137, no test report (pytest crashed or was killed)" in text
    assert "Killed" in text
    assert text.rstrip().endswith("0 passed, 1 failed")


def test_a_broken_report_counts_as_no_report(tmp_path):
    write_suite(tmp_path, "ubuntu2204-smoke", 2, 5, "<testsuites><testcase", log="ERROR collecting tests/e2e/test_smoke.py")
    text = render(tmp_path, read_suites(tmp_path))
    assert "no test report" in text and "ERROR collecting" in text


def test_the_suites_of_the_test_script_cover_every_end_to_end_module_on_the_full_releases():
    """Each full release runs every end-to-end module in exactly one of its parts."""
    from tests.conftest import DISTROS

    script = (ROOT / "scripts" / "test.sh").read_text()
    entries = [line.strip().strip('"').split() for line in script.split("SUITES=(", 1)[1].split(")", 1)[0].splitlines() if line.strip()]
    modules = sorted(p.name for p in (ROOT / "tests" / "e2e").glob("test_*.py") if p.name not in ("test_smoke.py", "test_config_errors.py"))
    for distro in DISTROS:
        parts = [Path(p).name for label, release, *paths in entries if release == distro for p in paths]
        assert sorted(parts) == sorted(set(parts)), f"{distro}: a module in two parts"
        assert sorted(parts) == modules, f"{distro}: parts {sorted(parts)} != modules {modules}"


def test_the_test_script_is_valid_bash():
    assert subprocess.run(["bash", "-n", str(ROOT / "scripts" / "test.sh")]).returncode == 0
