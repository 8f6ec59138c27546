#!/bin/bash
# End-to-end tests: tests/e2e/run.sh BUILD_DIR [test_NAME.sh ...]
#
# Runs every tests/e2e/test_*.sh (or the ones named) against the binaries in
# BUILD_DIR, each with a time limit (E2E_TIMEOUT seconds, default 120), then
# checks that it left nothing behind (cgroup, world directory, netns, mount).
# Prints the tests' "ok - ..." / "not ok - ..." lines and ends with exactly one
# line "e2e: N passed, N failed" (tests/run-all.sh parses it).
# Needs root. Traffic stays on loopback and inside the tests' own namespaces.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
b=${1:-build}
[ $# -gt 0 ] && shift
case $b in
/*) build=$b ;;
*) if [ -d "$b" ]; then build=$(cd "$b" && pwd); else build=$root/$b; fi ;;
esac
limit=${E2E_TIMEOUT:-120}

if [ $# -gt 0 ]; then
	tests=()
	for t in "$@"; do
		case $t in */*) tests+=("$t") ;; test_*) tests+=("$here/$t") ;; *) tests+=("$here/test_$t.sh") ;; esac
	done
else
	tests=("$here"/test_*.sh)
fi

passed=0 failed=0
t_start=$(date +%s)
cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
netns_before=$(ip netns list 2>/dev/null | sort)
log=$(mktemp /tmp/detour-e2e-run.XXXXXX)
trap 'rm -f "$log"' EXIT

if [ "$(id -u)" -ne 0 ]; then
	echo "not ok - e2e: needs root (BPF programs, cgroups, network namespaces)"
	echo "e2e: 0 passed, 1 failed"
	exit 1
fi

i=0
for t in "${tests[@]}"; do
	i=$((i + 1))
	name=$(basename "$t" .sh); name=${name#test_}
	tag="r$$-$i"
	echo "# ---- $name"
	t0=$(date +%s)
	DETOUR_E2E_TAG=$tag timeout -k 15 "$limit" bash "$t" "$build" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	p=$(grep -c '^ok - ' "$log")
	f=$(grep -c '^not ok - ' "$log")
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		echo "not ok - $name: timed out after ${limit}s"; f=$((f + 1))
	elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "not ok - $name: exited with status $rc without saying why"; f=$((f + 1))
	elif [ "$rc" -eq 0 ] && [ "$p" -eq 0 ]; then
		echo "not ok - $name: passed nothing"; f=$((f + 1))
	fi

	# whatever a test creates must be gone once it has exited, even after a
	# failure or a timeout
	left=""
	if [ -n "$cg2" ] && [ -d "$cg2/detour-e2e-$tag" ]; then
		left="$left cgroup $cg2/detour-e2e-$tag;"
		for d in "$cg2/detour-e2e-$tag"/*/ "$cg2/detour-e2e-$tag"; do
			[ -s "$d/cgroup.procs" ] && echo 1 >"$d/cgroup.kill" 2>/dev/null
		done
		sleep 0.5
		rmdir "$cg2/detour-e2e-$tag"/*/ "$cg2/detour-e2e-$tag" 2>/dev/null
	fi
	for d in /tmp/detour-e2e-"$tag".*; do
		[ -e "$d" ] || continue
		left="$left directory $d;"
		grep -q " $d/" /proc/mounts || rm -rf "$d"
	done
	grep -q "/tmp/detour-e2e-$tag\." /proc/mounts && left="$left mounts;"
	[ "$(ip netns list 2>/dev/null | sort)" = "$netns_before" ] || left="$left network namespaces;"
	if [ -n "$left" ]; then
		echo "not ok - $name: left behind:$left"; f=$((f + 1))
	else
		echo "ok - $name: left nothing behind"; p=$((p + 1))
	fi
	echo "# $name: $p passed, $f failed, $(( $(date +%s) - t0 ))s"
	passed=$((passed + p))
	failed=$((failed + f))
done

echo "# e2e took $(( $(date +%s) - t_start ))s with $build"
echo "e2e: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
