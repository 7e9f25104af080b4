#!/usr/bin/env bash
# Every test: first those that need no target (unit tests, bad configs), then one pytest
# per distro side by side, each deploying its distro's hosts once and running its tests
# in file order. Output lines carry the distro; the exit code is non-zero if any part failed.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTEST=(.venv/bin/pytest -ra -p no:cacheprovider "$@")

"${PYTEST[@]}" --distro none || exit 1

pids=()
for distro in ubuntu2404 debian12; do
    ("${PYTEST[@]}" --distro "$distro" tests/e2e 2>&1 | sed -u "s/^/[$distro] /") &
    pids+=($!)
done
rc=0
for pid in "${pids[@]}"; do
    wait "$pid" || rc=1
done
[ "$rc" -eq 0 ] && echo "==> all tests passed" || echo "==> some tests FAILED (see the [distro] lines above)"
exit "$rc"
