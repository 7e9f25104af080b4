#!/usr/bin/env bash
# Every test, as suites run side by side, at most VPSKIT_TEST_JOBS (default 2, one per core of
# the 2-core CI machine) at a time, longest first: the tests that need no target (unit tests,
# bad configs), each full release's end-to-end tests in parts that deploy their own hosts, and
# the smoke suite (tests/e2e/test_smoke.py) on Ubuntu 22.04, Ubuntu 26.04 and Debian 12.
# Output lines carry the suite's label; each suite ends with its exit code and duration; the
# last lines are a table of every suite and each failure with the end of its output
# (tests/report.py). The exit code is non-zero if any part failed.
# `--e2e`: the end-to-end suites only. Other arguments are one pytest's instead of the suites:
# `scripts/test.sh --distro debian13 tests/e2e`.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTEST=(.venv/bin/pytest -ra -p no:cacheprovider --durations=15)
JOBS=${VPSKIT_TEST_JOBS:-2}
LOGS=$(mktemp -d "${TMPDIR:-/tmp}/vpskit-test-XXXXXX")
E2E=tests/e2e
# label  release  paths: the parts of one release share no host, so they can run side by side.
SUITES=(
    "ubuntu2404-web ubuntu2404 $E2E/test_web.py $E2E/test_real_apps.py $E2E/test_releases.py $E2E/test_reuse.py"
    "ubuntu2404-host ubuntu2404 $E2E/test_foundation.py $E2E/test_hardening.py $E2E/test_deploylock.py $E2E/test_killdrill.py $E2E/test_data.py $E2E/test_offsite.py"
    "ubuntu2404-stack ubuntu2404 $E2E/test_containers.py $E2E/test_routes.py $E2E/test_monitoring.py $E2E/test_prometheus.py"
    "debian13-web debian13 $E2E/test_web.py $E2E/test_real_apps.py $E2E/test_reuse.py $E2E/test_containers.py $E2E/test_releases.py $E2E/test_routes.py $E2E/test_offsite.py"
    "debian13-host debian13 $E2E/test_foundation.py $E2E/test_hardening.py $E2E/test_deploylock.py $E2E/test_killdrill.py $E2E/test_data.py $E2E/test_monitoring.py $E2E/test_prometheus.py"
    "ubuntu2204-smoke ubuntu2204 $E2E/test_smoke.py"
    "ubuntu2604-smoke ubuntu2604 $E2E/test_smoke.py"
    "debian12-smoke debian12 $E2E/test_smoke.py"
    "no-target none tests"
)
if [ "${1:-}" = --e2e ]; then
    unset 'SUITES[-1]'
elif [ $# -gt 0 ]; then
    SUITES=("custom - $*")
fi

started=$SECONDS

suite() {  # label release [paths...]
    local label=$1 distro=$2 begin=$SECONDS rc
    shift 2
    local args=("$@")
    [ "$distro" = - ] || args=(--distro "$distro" "$@")
    "${PYTEST[@]}" --junitxml="$LOGS/$label.xml" "${args[@]}" 2>&1 | tee "$LOGS/$label.log" | sed -u "s/^/[$label] /"
    rc=${PIPESTATUS[0]}
    echo "[$label] ==> exit $rc after $((SECONDS - begin)) s"
    echo "$label $rc $((SECONDS - begin))" >> "$LOGS/suites"
    return "$rc"
}

rc=0
running=0
for entry in "${SUITES[@]}"; do
    if [ "$running" -ge "$JOBS" ]; then
        wait -n || rc=1
        running=$((running - 1))
    fi
    # shellcheck disable=SC2086 # "label release paths..."
    suite $entry &
    running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
    wait -n || rc=1
    running=$((running - 1))
done
.venv/bin/python -m tests.report "$LOGS"
echo "==> $((SECONDS - started)) s in all (logs and JUnit files: $LOGS)"
[ "$rc" -eq 0 ] && echo "==> all tests passed" || echo "==> some tests FAILED (see the table and the FAILED lines above)"
exit "$rc"
