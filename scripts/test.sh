#!/usr/bin/env bash
# Every test: first those that need no target (unit tests, bad configs), then the end-to-end
# suites, at most VPSKIT_TEST_JOBS (default 2, one per core of the 2-core CI machine) at a time,
# longest first: the full suite on Ubuntu 24.04 and Debian 13, then the smoke suite
# (tests/e2e/test_smoke.py) on Ubuntu 22.04, Ubuntu 26.04 and Debian 12, each as a slot frees up.
# Each suite deploys its release's hosts once and runs its tests in file order. Output lines carry
# the release; each suite ends with its exit code and duration; the exit code is non-zero if any
# part failed.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTEST=(.venv/bin/pytest -ra -p no:cacheprovider "$@")
JOBS=${VPSKIT_TEST_JOBS:-2}
SUITES=(
    "ubuntu2404 tests/e2e"
    "debian13 tests/e2e"
    "ubuntu2204 tests/e2e/test_smoke.py"
    "ubuntu2604 tests/e2e/test_smoke.py"
    "debian12 tests/e2e/test_smoke.py"
)

started=$SECONDS
"${PYTEST[@]}" --distro none || exit 1

suite() {  # distro path
    local begin=$SECONDS rc
    "${PYTEST[@]}" --distro "$1" "$2" 2>&1 | sed -u "s/^/[$1] /"
    rc=${PIPESTATUS[0]}
    echo "[$1] ==> exit $rc after $((SECONDS - begin)) s"
    return "$rc"
}

rc=0
running=0
for entry in "${SUITES[@]}"; do
    if [ "$running" -ge "$JOBS" ]; then
        wait -n || rc=1
        running=$((running - 1))
    fi
    # shellcheck disable=SC2086 # "distro path"
    suite $entry &
    running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
    wait -n || rc=1
    running=$((running - 1))
done
echo "==> $((SECONDS - started)) s in all"
[ "$rc" -eq 0 ] && echo "==> all tests passed" || echo "==> some tests FAILED (see the [release] lines above)"
exit "$rc"
