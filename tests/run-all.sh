#!/bin/sh
# make test: unit tests, then end-to-end tests; the last line is the total.
set -u
build=${1:-build}
here=$(dirname "$0")
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"$here/run-unit.sh" "$build" 2>&1 | tee -a "$log"
"$here/e2e/run.sh" "$build" 2>&1 | tee -a "$log"
passed=0 failed=0
for line in $(sed -n 's/^\(unit\|e2e\): \([0-9]*\) passed, \([0-9]*\) failed.*/\2:\3/p' "$log"); do
	passed=$((passed + ${line%%:*}))
	failed=$((failed + ${line##*:}))
done
# a suite that printed no count at all (crashed runner) is a failure
suites=$(grep -cE '^(unit|e2e): [0-9]+ passed' "$log")
[ "$suites" -eq 2 ] || failed=$((failed + 1))
echo "$passed passed, $failed failed"
[ $failed -eq 0 ] && [ $passed -gt 0 ]
