"""Where one deploy's time goes: every command run on the host, timed, the slowest listed at the end.

    VPSKIT_CONFIG=... python -m bench.profile -y inventory.py deploy.py

Runs the pyinfra CLI in this process with the host's command, upload and download
calls timed; prints the total, the time spent waiting on the host, and the
slowest commands (BENCH_PROFILE_TOP, default 20) to stderr when pyinfra exits.
"""

from __future__ import annotations

import atexit
import os
import sys
import time

from pyinfra.api.host import Host

_started = time.perf_counter()
_calls: list[tuple[float, str]] = []


def _timed(method, describe):
    def call(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return method(self, *args, **kwargs)
        finally:
            _calls.append((time.perf_counter() - start, describe(args)))

    return call


def _report() -> None:
    waited = sum(d for d, _ in _calls)
    top = int(os.environ.get("BENCH_PROFILE_TOP", "20"))
    lines = [f"profile: {time.perf_counter() - _started:.2f}s in all, {len(_calls)} calls to the host taking {waited:.2f}s"]
    for seconds, what in sorted(_calls, reverse=True)[:top]:
        lines.append(f"profile: {seconds:7.3f}s  {what}")
    print("\n".join(lines), file=sys.stderr)


def main() -> None:
    Host.run_shell_command = _timed(Host.run_shell_command, lambda a: " ".join(str(a[0]).split())[:160])
    Host.put_file = _timed(Host.put_file, lambda a: f"upload {a[1]}")
    Host.get_file = _timed(Host.get_file, lambda a: f"download {a[0]}")
    atexit.register(_report)
    from pyinfra_cli.main import main as pyinfra_main

    sys.argv = ["pyinfra", *sys.argv[1:]]
    pyinfra_main()


if __name__ == "__main__":
    main()
