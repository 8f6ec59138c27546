#!/usr/bin/env bash
# bench/run.sh [--smoke] [BUILD_DIR]: detour's benchmarks (`make bench`).
#
# Everything runs in private network and mount namespaces: a loopback-only
# network, a private bpffs, cgroups under $CG2/detour-bench-PID, all removed
# on exit. Prints a block of figures per benchmark, then one summary line per
# figure. --smoke: a ~10 s version that proves the bench still works.
#
#   connect()    bench/connect_cost: ns a connect() pays with the hook attached
#   relay        bench/http_latency through detourd vs direct, to fakellm
#   fakellm      bench/fakellm-rps.sh: the fake provider's request rate
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SMOKE=0 BUILD=
for arg in "$@"; do
	case $arg in
	--smoke) SMOKE=1 ;;
	-h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "bench: unknown option $arg" >&2; exit 2 ;;
	*) BUILD=$arg ;;
	esac
done
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac

if [ "${DETOUR_BENCH_INNER:-}" != "$$" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "bench: needs root (BPF, cgroups, namespaces)" >&2; exit 1
	fi
	# unshare execs in place: same pid, so signals reach this script
	DETOUR_BENCH_INNER=$$ exec unshare --net --mount --propagation private -- \
		bash "$0" "$@"
fi

if [ "$SMOKE" = 1 ]; then
	CONNECTS=6000 REQUESTS=500
else
	CONNECTS=60000 REQUESTS=4000
fi
UPSTREAM=127.0.0.2:8080
RELAY_PORT=15001
PIDS=()
SUMMARY=()
W=

if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=$(command -v python3); fi

cleanup() {
	local pid cg
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	if [ -n "${CGROOT:-}" ] && [ -d "$CGROOT" ]; then
		for cg in "$CGROOT"/*/; do rmdir "$cg" 2>/dev/null || true; done
		rmdir "$CGROOT" 2>/dev/null || echo "bench: could not remove $CGROOT" >&2
	fi
	if [ -n "$W" ]; then
		if ! mountpoint -q "$W/bpf" || umount "$W/bpf"; then
			rm -rf "$W"
		else
			echo "bench: could not unmount $W/bpf" >&2
		fi
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die() { echo "bench: $*" >&2; [ -n "$W" ] && tail -n 20 "$W"/*.log >&2 2>/dev/null; exit 1; }
section() { printf '\n== %s\n' "$*"; }

# wait_for TIMEOUT_S COMMAND...: poll every 50 ms
wait_for() {
	local tries=$(($1 * 20)); shift
	until "$@" >/dev/null 2>&1; do
		tries=$((tries - 1))
		[ "$tries" -gt 0 ] || return 1
		sleep 0.05
	done
}

listening() { [ -n "$(ss -Hltn "src $1")" ]; }

# sh -c "$IN_CGROUP" DIR COMMAND...: COMMAND, as a member of cgroup DIR
# (an exec, so that the pid of the sh is the pid of COMMAND)
# shellcheck disable=SC2016 # expanded by that sh
IN_CGROUP='echo $$ >"$0/cgroup.procs" && exec "$@"'

# start NAME CGROUP COMMAND...: a background process of ours, log in $W/NAME.log
start() {
	sh -c "$IN_CGROUP" "$2" "${@:3}" >"$W/$1.log" 2>&1 &
	PIDS+=($!)
}

# connects the hook redirected so far (the per-CPU stats map, summed)
redirected() {
	bpftool -j map dump pinned "$W/bpf/detour/stats" |
		"$PY" "$ROOT/tests/e2e/bpfjson.py" stats | sed -n 's/^redirected=//p'
}

# field NAME LINE: the value of NAME=... in an http_latency result line
field() { sed -n "s/.*\\b$1=\\([0-9.]*\\).*/\\1/p" <<<"$2"; }

# ---- the world -----------------------------------------------------------------

ip link set lo up
W=$(mktemp -d /tmp/detour-bench.XXXXXX)
mkdir "$W/bpf"
mount -t bpf bpf "$W/bpf"
CG2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
[ -n "$CG2" ] || die "no cgroup v2 mount in /proc/mounts"
CGROOT=$CG2/detour-bench-$$
mkdir "$CGROOT" "$CGROOT/enrolled" "$CGROOT/direct" "$CGROOT/agent" "$CGROOT/upstream"

for bin in detourd bench/connect_cost bench/http_latency; do
	[ -x "$BUILD/$bin" ] || die "missing $BUILD/$bin (not built yet?)"
done

echo "detour bench$([ "$SMOKE" = 1 ] && echo ' (smoke)'): $(uname -sr), $(nproc) CPU(s), $(date -u +%FT%TZ)"

# ---- connect() -------------------------------------------------------------------

section "connect() cost of the hook"
"$BUILD/bench/connect_cost" --connects "$CONNECTS" >"$W/connect.out" || {
	cat "$W/connect.out"; die "connect_cost failed"; }
grep -v '^summary: ' "$W/connect.out"
mapfile -t -O "${#SUMMARY[@]}" SUMMARY < <(sed -n 's/^summary: //p' "$W/connect.out")

# ---- relay -------------------------------------------------------------------------

section "relay latency: sequential POSTs to $UPSTREAM, direct vs through detourd"
if [ -x "$BUILD/fakellm" ]; then
	FAKE=("$BUILD/fakellm") FAKE_NAME=fakellm
else
	FAKE=("$PY" "$ROOT/tests/e2e/fakellm_standin.py") FAKE_NAME="fakellm stand-in (python)"
fi
start upstream "$CGROOT/upstream" "${FAKE[@]}" --listen "$UPSTREAM" --quiet
wait_for 10 listening "$UPSTREAM" || die "$FAKE_NAME did not start"

cat >"$W/detour.conf" <<EOF
[detour]
listen = 127.0.0.1:$RELAY_PORT
listen6 = [::1]:$RELAY_PORT
pin_dir = $W/bpf/detour
state_dir = $W/state
heartbeat_interval_ms = 100

[enroll]
cgroup = $CGROOT/enrolled

[provider bench]
hosts = ${UPSTREAM%:*}
port = ${UPSTREAM#*:}
EOF
start detourd "$CGROOT/agent" "$BUILD/detourd" -c "$W/detour.conf" --pidfile "$W/detourd.pid"
wait_for 10 test -s "$W/detourd.pid" || die "detourd did not start"
wait_for 5 listening "127.0.0.1:$RELAY_PORT" || die "detourd is not listening"

echo "upstream: $FAKE_NAME; $REQUESTS requests per run, µs"
printf '  %-28s %10s %10s %10s\n' "" p50 p99 mean
before=$(redirected)
for mode in new keepalive; do
	flag=() label="new connection per request"
	[ "$mode" = keepalive ] && flag=(--keepalive) label="keep-alive connection"
	for path in direct relay; do
		cg=$CGROOT/direct
		[ "$path" = relay ] && cg=$CGROOT/enrolled
		out=$(sh -c "$IN_CGROUP" "$cg" "$BUILD/bench/http_latency" --connect "$UPSTREAM" \
			--requests "$REQUESTS" "${flag[@]}") || die "http_latency ($path, $mode) failed"
		declare "p50_$path=$(field p50_us "$out")" "p99_$path=$(field p99_us "$out")"
		printf '  %-28s %10s %10s %10s\n' "$path, $mode" "$(field p50_us "$out")" \
			"$(field p99_us "$out")" "$(field mean_us "$out")"
	done
	# shellcheck disable=SC2154 # p50_*, p99_* are set by declare above
	SUMMARY+=("relay added latency, $label: $(awk -v a="$p50_relay" -v b="$p50_direct" \
		'BEGIN { printf "%+.1f", a - b }') µs at p50 (p99: direct $p99_direct µs, relayed $p99_relay µs)")
done
relayed=$(($(redirected) - before))
echo "  (connects redirected by the hook during the relay runs: $relayed)"
[ "$relayed" -ge "$REQUESTS" ] || die "the relay runs were not redirected"

# ---- fakellm -------------------------------------------------------------------------

section "fakellm request rate"
if [ -x "$ROOT/bench/fakellm-rps.sh" ]; then
	"$ROOT/bench/fakellm-rps.sh" "$BUILD" | tee "$W/fakellm-rps.out" || die "fakellm-rps.sh failed"
	mapfile -t -O "${#SUMMARY[@]}" SUMMARY < <(grep '^fakellm: ' "$W/fakellm-rps.out")
else
	echo "bench/fakellm-rps.sh is not there yet: skipped"
fi

section "summary"
printf '%s\n' "${SUMMARY[@]}"
