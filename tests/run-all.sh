#!/bin/sh
# make test: unit tests (plain and ASan/UBSan builds), end-to-end tests, a
# short smoke of every fuzz harness and of the benchmarks; the last line is
# the total.
set -u
build=${1:-build}
san=${2:-}
here=$(dirname "$0")
log=$(mktemp)
trap 'rm -f "$log"' EXIT
suites=0
run_suite() {
	suites=$((suites + 1))
	"$@" 2>&1 | tee -a "$log"
}
run_suite "$here/run-unit.sh" "$build"
[ -n "$san" ] && run_suite "$here/run-unit.sh" "$san"
run_suite "$here/e2e/run.sh" "$build"
# The sanitizer pass leaves out the transition scenarios (test_scenarios*):
# a minute and a half of steady load whose code paths the other tests
# (health, hedge, failmode, signals) already run under ASan/UBSan.
[ -n "$san" ] && run_suite "$here/e2e/run.sh" "$san" $(ls "$here"/e2e/test_*.sh | grep -v /test_scenarios)
run_suite "$here/fuzz/run.sh" 10 build-fuzz/fuzz_*
run_suite "$here/bench-smoke.sh" "$build"
passed=0 failed=0
for line in $(sed -n 's/^\(unit\|e2e\|fuzz\|bench\): \([0-9]*\) passed, \([0-9]*\) failed.*/\2:\3/p' "$log"); do
	passed=$((passed + ${line%%:*}))
	failed=$((failed + ${line##*:}))
done
# a suite that printed no count at all (crashed runner) is a failure
counted=$(grep -cE '^(unit|e2e|fuzz|bench): [0-9]+ passed' "$log")
[ "$counted" -eq "$suites" ] || failed=$((failed + 1))
echo "$passed passed, $failed failed"
[ $failed -eq 0 ] && [ $passed -gt 0 ]
