"""tests.rig reads pyinfra's own result table (the e2e tests' idempotence checks rely on it) and can show a run as it goes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from tests import rig
from tests.rig import parse_results

OUTPUT = """\
--> Loading config...
--> Loading inventory...
--> Connecting to hosts...
    [203.0.113.10] Connected
--> Preparing operations...
    Loading: deploy.py
    [203.0.113.10] Ready: deploy.py

--> Beginning operation run...
--> Starting operation: Base system | Make apt wait for locks held by other apt runs
    [203.0.113.10] No changes
--> Starting operation: Base system | Set hostname
    [203.0.113.10] Success

--> Results:
    Operation                                                        Hosts   Success   Error   No Change
    Base system | Make apt wait for locks held by other apt runs     1       -         -       1
    Base system | Wait for apt locks                                 1       -         -       1
    Base system | Update apt cache                                   1       1         -       -
    Base system | Upgrade packages                                   1       -         -       1
    Base system | Install essential packages                         1       1         -       -
    Base system | Set hostname                                       1       -         -       1
    Base system | Resolve the hostname locally (sudo asks for it)    1       -         -       1
    Base system | Set timezone                                       1       -         -       1
    Base system | Schedule unattended upgrades                       1       -         -       1
    Deploy user | User appuser                                       1       1         -       -
    Deploy user | Sudo rights for appuser                            1       1         -       -
    Grand total                                                      11      4         -       7

--> Disconnecting from hosts...
"""


def test_parse_results_totals_and_changed_ops():
    """The Grand total row gives (changed, errors, unchanged); rows with a Success count are the changed ops, in order."""
    assert parse_results(OUTPUT) == (
        4,
        0,
        7,
        [
            "Base system | Update apt cache",
            "Base system | Install essential packages",
            "Deploy user | User appuser",
            "Deploy user | Sudo rights for appuser",
        ],
    )


def test_parse_results_counts_errors():
    """An Error count in the table is reported, and a failed op is not listed as changed."""
    output = """\
    Operation                      Hosts   Success   Error   No Change
    Base system | Set timezone     1       -         1       -
    Grand total                    1       -         1       -
"""
    assert parse_results(output) == (0, 1, 0, [])


def test_parse_results_ignores_ansi_colours():
    """Colour codes around the cells (pyinfra without NO_COLOR) do not break parsing."""
    coloured = OUTPUT.replace("Grand total", "\x1b[1mGrand total\x1b[0m").replace(
        "1       1         -       -", "1       \x1b[32m1\x1b[0m         -       -"
    )
    assert parse_results(coloured)[:3] == (4, 0, 7)
    assert len(parse_results(coloured)[3]) == 4


def test_parse_results_reads_pyinfras_own_formatter():
    """A table printed by pyinfra_cli's print_rows (the installed pyinfra's real layout) parses the same way."""
    # In a child process: importing pyinfra_cli monkey-patches the whole interpreter (gevent).
    script = (
        "from pyinfra_cli.prints import print_rows\n"
        "emit = lambda line: print('    ' + line)\n"
        "print_rows([(emit, ['Operation', 'Hosts', 'Success', 'Error', 'No Change']),"
        " (emit, ['Base system | Set hostname', '1', '1', '-', '-']),"
        " (emit, ['Base system | Set timezone', '1', '-', '-', '1']),"
        " (emit, ['Grand total', '2', '1', '-', '1'])])\n"
    )
    lines = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.splitlines()
    assert parse_results("\n".join(lines)) == (1, 0, 1, ["Base system | Set hostname"])


def test_parse_results_without_table_raises():
    """Output without a result table (pyinfra died early) is an AssertionError quoting the output."""
    output = "--> Loading config...\n    InventoryError: invalid vpskit config vpskit.toml:\n"
    with pytest.raises(AssertionError, match="no pyinfra result table"):
        parse_results(output)


def test_parse_results_header_without_grand_total_raises():
    """A cut-off table (header, no Grand total row) is not mistaken for a result."""
    output = "    Operation   Hosts   Success   Error   No Change\n    Base system | Set hostname   1   1   -   -\n"
    with pytest.raises(AssertionError):
        parse_results(output)


def test_a_streamed_run_shows_each_line_as_it_comes_and_returns_the_whole_output(monkeypatch):
    """make demo shows pyinfra's output while it runs: the first line is out before the command ends."""
    shown = []
    monkeypatch.setattr(sys, "stdout", SimpleNamespace(write=lambda s: shown.append((time.monotonic(), s)), flush=lambda: None))
    script = "import sys, time; print('first', flush=True); time.sleep(1); print('error', file=sys.stderr)"
    code, output = rig._execute([sys.executable, "-c", script], dict(os.environ), timeout=30, stream=True)
    assert (code, output) == (0, "first\nerror\n")
    assert [s for _, s in shown] == ["first\n", "error\n"]
    assert shown[1][0] - shown[0][0] > 0.5


def test_a_streamed_run_that_outlives_its_timeout_is_stopped():
    with pytest.raises(subprocess.TimeoutExpired):
        rig._execute([sys.executable, "-c", "import time; time.sleep(30)"], dict(os.environ), timeout=1, stream=True)
