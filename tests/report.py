"""The end of `make test`: one table of every suite, then each failure with the last lines that explain it.

scripts/test.sh runs each suite (one release's tests, or a part of them) as its own pytest
with a JUnit XML file and a log beside it in one folder, and a line ``LABEL RC SECONDS`` in
that folder's ``suites`` file when it ends. Two suites print side by side while they run, so
a failure can scroll far out of sight; this summary comes last and names, for every suite
that did not pass, the release, each failing test and the tail of its failure (for a failed
deploy: pyinfra's own last lines), or the tail of the suite's log when pytest wrote no XML
(it crashed, or was killed).

    python -m tests.report FOLDER
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

TAIL = 30  # lines of each failure shown


@dataclass
class Suite:
    label: str
    rc: int
    seconds: int
    passed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (test id, failure text)
    skipped: int = 0
    has_xml: bool = False


def tail(text: str, lines: int = TAIL) -> str:
    """The last ``lines`` non-empty lines of ``text``."""
    kept = [line for line in text.rstrip().splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def read_junit(suite: Suite, path: Path) -> None:
    """Counts and failures of one suite from pytest's JUnit XML."""
    root = ET.parse(path).getroot()
    suite.has_xml = True
    for case in root.iter("testcase"):
        test_id = f"{case.get('classname', '')}::{case.get('name', '')}"
        bad = case.find("failure") if case.find("failure") is not None else case.find("error")
        if bad is not None:
            suite.failed.append((test_id, (bad.get("message") or "") + "\n" + (bad.text or "")))
        elif case.find("skipped") is not None:
            suite.skipped += 1
        else:
            suite.passed += 1


def read_suites(folder: Path) -> list[Suite]:
    """Every suite that ended, in the order they ended."""
    suites = []
    listing = folder / "suites"
    for line in listing.read_text().splitlines() if listing.exists() else []:
        label, rc, seconds = line.split()
        suite = Suite(label, int(rc), int(seconds))
        xml = folder / f"{label}.xml"
        if xml.exists() and xml.stat().st_size:
            try:
                read_junit(suite, xml)
            except ET.ParseError:
                pass
        suites.append(suite)
    return suites


def render(folder: Path, suites: list[Suite]) -> str:
    """The table, then each failure; a suite that failed without naming a test shows its log's tail."""
    out = ["", "==> suites (release: passed / failed / skipped, seconds, exit code)"]
    for s in suites:
        out.append(f"    {s.label:<24} {s.passed:>4} passed {len(s.failed):>3} failed {s.skipped:>3} skipped {s.seconds:>6} s  exit {s.rc}")
    for s in suites:
        if s.rc == 0 and not s.failed:
            continue
        out.append("")
        if s.failed:
            for test_id, text in s.failed:
                out += [f"==> FAILED [{s.label}] {test_id}", tail(text)]
        else:
            log = folder / f"{s.label}.log"
            why = "no test report (pytest crashed or was killed)" if not s.has_xml else "no test failed"
            out += [f"==> FAILED [{s.label}] exit {s.rc}, {why}; the end of its output:"]
            out.append(tail(log.read_text(errors="replace"), 60) if log.exists() else "(no output)")
    passed = sum(s.passed for s in suites)
    failed = sum(len(s.failed) for s in suites) + sum(1 for s in suites if s.rc != 0 and not s.failed)
    out += ["", f"{passed} passed, {failed} failed"]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    folder = Path(argv[0])
    print(render(folder, read_suites(folder)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
