#!/bin/sh
# Run each libFuzzer harness for SECONDS on a scratch copy of its corpus;
# prints "fuzz: N passed, N failed" (a harness passes when it finds nothing).
set -u
seconds=$1; shift
here=$(cd "$(dirname "$0")" && pwd)
passed=0 failed=0
for bin in "$@"; do
	name=$(basename "$bin" | sed 's/^fuzz_//')
	work=$(mktemp -d)
	cp -r "$here/corpus/$name/." "$work/" 2>/dev/null
	if "$bin" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
		-artifact_prefix="$work/" "$work" >"$work.log" 2>&1; then
		passed=$((passed + 1))
		echo "ok - fuzz $name: $(grep '^Done' "$work.log")"
	else
		failed=$((failed + 1))
		echo "not ok - fuzz $name: crash or leak; log and artifact follow"
		tail -40 "$work.log"
		ls "$work"/crash-* "$work"/leak-* 2>/dev/null
	fi
	rm -rf "$work" "$work.log"
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
