#!/usr/bin/env bash
# bench/run.sh [--smoke] [BUILD_DIR]: detour's benchmarks (`make bench`).
#
# Everything runs in private network and mount namespaces: a loopback-only
# network, a private bpffs, cgroups under $CG2/detour-bench-PID, all removed
# on exit. Prints a block of figures per benchmark, then one summary line per
# figure. --smoke: a ~30 s version that proves the bench still works.
# --proxy: the proxy block only (about 2 min), e.g. to compare two builds.
# --instructions: detourd and HAProxy under callgrind, user-space instructions
# per proxied request (about 1 min; not timing, so not disturbed by other jobs
# on the CPUs). --profile=FILE: the same, and detourd's profile of its longer
# run kept in FILE (callgrind_annotate FILE).
#
#   connect()    bench/connect_cost: ns a connect() pays with the hook attached
#   relay        bench/http_latency through detourd vs direct, to fakellm
#   proxy        bench/tls_load: detourd's TLS proxy vs HAProxy vs direct, to
#                fakellm over TLS: latency at fixed rates (also through a relay
#                of bytes, the floor of any proxy), throughput, streams
#   translation  bench/xlate_cost: µs per translated 4 KB request and per
#                streamed event, next to the same-family passthrough
#   routing      bench/route_cost: ns per load-balancing decision, 10 members,
#                each strategy; whole plans (tiered, sticky, with rate-limit
#                budgets); the budget check; a request's needs
#   usage        bench/usage_cost: what cost accounting adds to an answer: the
#                usage read from a relayed answer or stream, a price lookup
#   uplink       bench/uplink_cost: ns the uplink XDP program costs a frame
#   fakellm      bench/fakellm-rps.sh: the fake provider's request rate
#   transitions  bench/transition.sh: the health engine's verdicts under load
#                while the primary provider fails (outage, refused, blackhole,
#                slow, 429, flapping) and recovers
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SMOKE=0 PROXY_ONLY=0 INSTR=0 PROFILE='' BUILD=
for arg in "$@"; do
	case $arg in
	--smoke) SMOKE=1 ;;
	--proxy) PROXY_ONLY=1 ;;
	--instructions) INSTR=1 PROXY_ONLY=1 ;;
	--profile=?*) INSTR=1 PROXY_ONLY=1 PROFILE=$(realpath -m "${arg#--profile=}") ;;
	-h|--help) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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

# proxy block: DURATION/WARMUP seconds per run, ROUNDS of the closed-loop
# runs; STREAMS streams started over RAMP seconds, of WORDS tokens TOKEN_MS apart
if [ "$SMOKE" = 1 ]; then
	CONNECTS=6000 REQUESTS=500 ROUNDS=1
	DURATION=0.5 WARMUP=0.2 STREAMS=50 RAMP=0.2 WORDS=10 TOKEN_MS=50
else
	CONNECTS=60000 REQUESTS=4000 ROUNDS=3
	DURATION=5 WARMUP=1 STREAMS=1000 RAMP=3 WORDS=60 TOKEN_MS=100
fi
UPSTREAM=127.0.0.2:8080
RELAY_PORT=15001
# the proxy block: fakellm over TLS as api.openai.com, HAProxy in front of it
PROVIDER=127.0.0.2:443 PROVIDER_ADMIN=127.0.0.1:9100 HAPROXY=127.0.0.3:443
# HAProxy's TCP relay: the client's TLS passed to fakellm as bytes
HAPROXY_RELAY=127.0.0.4:443
HOST=api.openai.com
RATES="1000 10000"
RATE_CONNS=16 MAX_CONNS=64
# the core split: the load generator and fakellm share CPU 0, the proxy under
# test (detourd or HAProxy, one thread each) has CPU 1 to itself
CPU_LOAD=0 CPU_PROXY=1
PIDS=()
SUMMARY=()
W='' HOSTS_BOUND=''

if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=$(command -v python3); fi

cleanup() {
	local pid cg
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	[ -n "$HOSTS_BOUND" ] && umount /etc/hosts
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

# start NAME CGROUP COMMAND...: a background process of ours, log in $W/NAME.log,
# its pid in STARTED
start() {
	sh -c "$IN_CGROUP" "$2" "${@:3}" >"$W/$1.log" 2>&1 &
	STARTED=$!
	PIDS+=("$STARTED")
}

# connects the hook redirected so far (the per-CPU stats map, summed)
redirected() {
	bpftool -j map dump pinned "$W/bpf/detour/stats" |
		"$PY" "$ROOT/tests/e2e/bpfjson.py" stats | sed -n 's/^redirected=//p'
}

# summary TEXT...: one summary line, the words joined
summary() { SUMMARY+=("$*"); }

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

for bin in detourd fakellm bench/connect_cost bench/http_latency bench/tls_load bench/xlate_cost bench/route_cost bench/usage_cost bench/uplink_cost; do
	[ -x "$BUILD/$bin" ] || die "missing $BUILD/$bin (not built yet?)"
done
command -v haproxy >/dev/null || die "haproxy is not installed (make deps)"
PROXY_WRAP=()
if [ "$INSTR" = 1 ]; then
	command -v callgrind_control >/dev/null || die "--instructions needs valgrind (apt-get install valgrind)"
	PROXY_WRAP=(valgrind --tool=callgrind --callgrind-out-file="$W/callgrind.out.%p")
fi
# as detour.service's LimitNOFILE, or as close as we may: STREAMS streams are
# twice as many sockets in the proxy
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -gt $((STREAMS * 2 + 256)) ] || die "open files limit $(ulimit -n): too low"

# A throwaway CA and a certificate for $HOST, which resolves to fakellm's
# address through a hosts file bound over /etc/hosts in our mount namespace
PKI=$W/pki
mkdir "$PKI"
(
	cd "$PKI"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
		-keyout ca.key -out ca.pem -subj "/CN=detour bench CA" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout srv.key -out srv.csr -subj "/CN=$HOST"
	printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\n' "$HOST" >srv.ext
	openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
		-extfile srv.ext -out srv.pem
	cat srv.pem srv.key >haproxy.pem
) >"$W/openssl.log" 2>&1 || die "openssl: $(tail -n 3 "$W/openssl.log")"
printf '127.0.0.1 localhost\n::1 localhost\n%s %s\n' "${PROVIDER%:*}" "$HOST" >"$W/hosts"
mount --bind "$W/hosts" /etc/hosts
HOSTS_BOUND=1

echo "detour bench$([ "$SMOKE" = 1 ] && echo ' (smoke)'): $(uname -sr), $(nproc) CPU(s), $(date -u +%FT%TZ)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) (the CPUs may be shared with other jobs)"

# ---- connect() -------------------------------------------------------------------

if [ "$PROXY_ONLY" = 0 ]; then
	section "connect() cost of the hook"
	"$BUILD/bench/connect_cost" --connects "$CONNECTS" >"$W/connect.out" || {
		cat "$W/connect.out"; die "connect_cost failed"; }
	grep -v '^summary: ' "$W/connect.out"
	mapfile -t -O "${#SUMMARY[@]}" SUMMARY < <(sed -n 's/^summary: //p' "$W/connect.out")
fi

# ---- relay -------------------------------------------------------------------------

section "relay latency: sequential POSTs to $UPSTREAM, direct vs through detourd"
start upstream "$CGROOT/upstream" "$BUILD/fakellm" --listen "$UPSTREAM" --quiet
wait_for 10 listening "$UPSTREAM" || die "fakellm did not start"
# the proxy block's provider, started now: detourd resolves its name at start
start provider "$CGROOT/upstream" taskset -c "$CPU_LOAD" "$BUILD/fakellm" --listen "$PROVIDER" \
	--tls-cert "$PKI/srv.pem" --tls-key "$PKI/srv.key" --admin "$PROVIDER_ADMIN" \
	--words 64 --quiet
PROVIDER_PID=$STARTED
wait_for 10 listening "$PROVIDER" || die "fakellm (TLS) did not start"

cat >"$W/detour.conf" <<EOF
[detour]
listen = 127.0.0.1:$RELAY_PORT
listen6 = [::1]:$RELAY_PORT
pin_dir = $W/bpf/detour
state_dir = $W/state
heartbeat_interval_ms = 100
log_level = warn

[proxy]
intercept_tls = yes
upstream_ca_bundle = $PKI/ca.pem

[enroll]
cgroup = $CGROOT/enrolled

[provider bench]
hosts = ${UPSTREAM%:*}
port = ${UPSTREAM#*:}

[provider openai]
hosts = $HOST
family = openai
EOF
mkdir "$W/state"
start detourd "$CGROOT/agent" "${PROXY_WRAP[@]}" "$BUILD/detourd" -c "$W/detour.conf" --pidfile "$W/detourd.pid"
DETOURD_PID=$STARTED
wait_for 60 test -s "$W/detourd.pid" || die "detourd did not start"
wait_for 30 listening "127.0.0.1:$RELAY_PORT" || die "detourd is not listening"

if [ "$PROXY_ONLY" = 0 ]; then
	echo "upstream: fakellm; $REQUESTS requests per run, µs"
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
fi

# ---- proxy ---------------------------------------------------------------------------

section "proxy: HTTPS to $HOST (fakellm over TLS): direct, through detourd, through HAProxy"

# Each proxy has CPU_PROXY to itself; detourd with all its threads (libcurl's
# resolver threads, created later by its main thread, inherit the mask).
taskset -a -p -c "$CPU_PROXY" "$DETOURD_PID" >/dev/null
export HAP_LISTEN=$HAPROXY HAP_RELAY=$HAPROXY_RELAY HAP_CERT=$PKI/haproxy.pem \
	HAP_UPSTREAM=$PROVIDER HAP_CA=$PKI/ca.pem
start haproxy "$CGROOT/direct" taskset -c "$CPU_PROXY" "${PROXY_WRAP[@]}" haproxy -db \
	-f "$ROOT/bench/haproxy.cfg"
HAPROXY_PID=$STARTED
wait_for 30 listening "$HAPROXY" || die "haproxy did not start"
echo "cores: load generator and fakellm on CPU $CPU_LOAD, the proxy under test on CPU $CPU_PROXY" \
	"(detourd: one event loop; HAProxy: nbthread 1)"

# tls_load TARGET ARGS...: bench/tls_load on CPU_LOAD as TARGET's client
#   direct   not enrolled, to fakellm, trusting the bench CA
#   detourd  enrolled, to fakellm's address: the hook sends it to detourd.
#            It trusts only detourd's CA, so an answer proves the path.
#   haproxy  not enrolled, to HAProxy, trusting the bench CA
#   relay    not enrolled, through HAProxy's TCP relay to fakellm, trusting
#            the bench CA: what a hop costs with no TLS or HTTP work at all
# --watch-pid: the proxy (direct: fakellm), for its CPU and memory.
tls_load() {
	local target=$1 cg=$CGROOT/direct addr=$PROVIDER ca=$PKI/ca.pem pid=$PROVIDER_PID
	shift
	case $target in
	detourd) cg=$CGROOT/enrolled ca=$W/state/ca/root.pem pid=$DETOURD_PID ;;
	haproxy) addr=$HAPROXY pid=$HAPROXY_PID ;;
	relay) addr=$HAPROXY_RELAY pid=$HAPROXY_PID ;;
	esac
	echo "# $target: $*" >>"$W/tls_load.log"
	sh -c "$IN_CGROUP" "$cg" taskset -c "$CPU_LOAD" "$BUILD/bench/tls_load" \
		--connect "$addr" --ca "$ca" --sni "$HOST" --watch-pid "$pid" "$@" \
		2>>"$W/tls_load.log" || die "tls_load $target $*: $(tail -n 3 "$W/tls_load.log")"
}

fault() {
	curl -sSf --max-time 3 -d "$1" "http://$PROVIDER_ADMIN/fault" >/dev/null ||
		die "fakellm's admin did not take the fault $1"
}

# overloaded TARGET RATE: more than 1% of that open-loop run's requests found
# no free connection or were not answered in time; behind: how many. tls_load
# counts them over the warm-up and the window both.
late_of() { echo $((R[$1,$2,late] + R[$1,$2,unsent] + R[$1,$2,unanswered])); }
due_in_run() { awk -v n="$1" -v d="$DURATION" -v w="$WARMUP" 'BEGIN { printf "%d", n * (d + w) }'; }
overloaded() { [ "$(late_of "$1" "$2")" -gt $(($(due_in_run "$2") / 100)) ]; }
behind() { echo "$(late_of "$1" "$2") of $(due_in_run "$2") requests late or unsent"; }
# sub A B: A - B, signed; judge CONDITION: met or missed
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.1f", a - b }'; }
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
judge() { if awk "BEGIN { exit !($1) }"; then echo met; else echo missed; fi; }

# callgrind_ir PID TARGET: that proxy's instructions since its counters were
# zeroed (the dump is kept as $W/TARGET.callgrind)
callgrind_ir() {
	callgrind_control -d "$1" >/dev/null 2>&1 || die "callgrind_control -d failed"
	wait_for 10 compgen -G "$W/callgrind.out.$1.*" || die "callgrind wrote no dump"
	sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$W"/callgrind.out."$1".*
	mv "$W"/callgrind.out."$1".* "$W/$2.callgrind"
}

# instructions_per_request TARGET PID: TARGET's user-space instructions per
# request, from two closed-loop runs of different lengths on 16 new
# connections: what does not scale with the requests (the handshakes, the idle
# loop, measured alone and subtracted by time) cancels out of their difference.
instructions_per_request() {
	local target=$1 pid=$2 idle ir_4='' ir_8='' n_4='' n_8='' d out

	tls_load "$target" --max --connections 16 --duration 2 --warmup 0 >/dev/null
	callgrind_control -z "$pid" >/dev/null 2>&1
	sleep 4
	idle=$(callgrind_ir "$pid" "$target")
	for d in 4 8; do
		callgrind_control -z "$pid" >/dev/null 2>&1
		out=$(tls_load "$target" --max --connections 16 --duration "$d" --warmup 0)
		declare "ir_$d=$(callgrind_ir "$pid" "$target")" "n_$d=$(field requests "$out")"
		echo "  $target, $d s: $(field requests "$out") requests, $(field errors "$out") errors" >&2
	done
	echo "  $target: instructions $ir_4 and $ir_8; idle: $idle in 4 s" >&2
	if [ -z "$idle" ] || [ -z "$ir_4" ] || [ -z "$ir_8" ] || [ "$n_8" -le "$n_4" ]; then
		die "$target: no instruction count (callgrind dumps, or the longer run answered no more requests)"
	fi
	awk -v a="$ir_8" -v b="$ir_4" -v i="$idle" -v n="$n_8" -v m="$n_4" \
		'BEGIN { printf "%.0f", (a - b - i) / (n - m) }'
}

if [ "$INSTR" = 1 ]; then
	section "proxy: user-space instructions per request (callgrind)"
	ir_haproxy=$(instructions_per_request haproxy "$HAPROXY_PID")
	ir_detourd=$(instructions_per_request detourd "$DETOURD_PID")
	[ -z "$PROFILE" ] || cp "$W/detourd.callgrind" "$PROFILE"
	summary "proxy: user-space instructions per request: detourd $ir_detourd, HAProxy" \
		"$ir_haproxy (callgrind; kernel time not included)"
	section "summary"
	printf '%s\n' "${SUMMARY[@]}"
	exit 0
fi

TARGETS="direct detourd haproxy"
LATENCY_TARGETS="direct relay detourd haproxy"
declare -A R
ERRORS=0

echo
echo "streams: $STREAMS at once (started over $RAMP s), $WORDS tokens each, one every $TOKEN_MS ms"
printf '  %-10s %10s %17s %10s %10s %10s %10s %6s %5s\n' "" "KB/stream" "RSS KB before→open" \
	"1st p50" "1st p99" "gap+ p50" "gap+ p99" errors cpu
fault "{\"mode\":\"slow\",\"token_ms\":$TOKEN_MS}"
for t in $TARGETS; do
	# a few short streams first: one-time costs (detourd's leaf certificate,
	# the upstream TLS context) belong in the "before" memory, not per stream
	tls_load "$t" --sse 4 --duration 0.01 --words 2 --token-ms "$TOKEN_MS" >/dev/null
	out=$(tls_load "$t" --sse "$STREAMS" --duration "$RAMP" --words "$WORDS" --token-ms "$TOKEN_MS")
	for k in kb_per_stream rss_before_kb rss_open_kb ttfe_p50_us ttfe_p99_us \
		 gap_p50_us gap_p99_us errors open_at_sample cpu_pct; do
		R[$t,$k]=$(field "$k" "$out")
	done
	ERRORS=$((ERRORS + R[$t,errors]))
	if [ "$t" = direct ]; then mem=("-" "-"); else
		mem=("${R[$t,kb_per_stream]}" "${R[$t,rss_before_kb]}→${R[$t,rss_open_kb]}"); fi
	printf '  %-10s %10s %17s %10s %10s %10s %10s %6s %5s\n' "$t" "${mem[@]}" \
		"${R[$t,ttfe_p50_us]}" "${R[$t,ttfe_p99_us]}" "${R[$t,gap_p50_us]}" \
		"${R[$t,gap_p99_us]}" "${R[$t,errors]}" "${R[$t,cpu_pct]}"
	[ "${R[$t,open_at_sample]}" = "$STREAMS" ] ||
		echo "  ($t: only ${R[$t,open_at_sample]} streams were open when the memory was read)"
done
fault '{"mode":"ok"}'
echo "  (1st: time to the first event, µs, with an upstream connect when the proxy"
echo "   has no idle one; gap+: how much later than fakellm's pacing an event came"
echo "   after the one before it, µs; memory: VmRSS of the proxy; cpu: the proxy's, % of a CPU)"
summary "proxy: memory per open stream ${R[detourd,kb_per_stream]} KB (target < 64 KB:" \
	"$(judge "${R[detourd,kb_per_stream]} < 64")); HAProxy ${R[haproxy,kb_per_stream]} KB"
summary "proxy: $STREAMS streams, added by detourd: first event" \
	"$(sub "${R[detourd,ttfe_p50_us]}" "${R[direct,ttfe_p50_us]}") µs at p50, event gaps" \
	"$(sub "${R[detourd,gap_p50_us]}" "${R[direct,gap_p50_us]}") µs at p50," \
	"$(sub "${R[detourd,gap_p99_us]}" "${R[direct,gap_p99_us]}") µs at p99" \
	"(HAProxy: $(sub "${R[haproxy,ttfe_p50_us]}" "${R[direct,ttfe_p50_us]}")," \
	"$(sub "${R[haproxy,gap_p50_us]}" "${R[direct,gap_p50_us]}")," \
	"$(sub "${R[haproxy,gap_p99_us]}" "${R[direct,gap_p99_us]}") µs)"

echo
echo "latency: open loop, $RATE_CONNS keep-alive connections, ${DURATION} s after ${WARMUP} s of warm-up;"
echo "µs from when each request was due; late: found no free connection; unsent: not sent"
echo "or not answered 3 s after the window (overload); cpu: the proxy's (direct: fakellm's),"
echo "% of one CPU; relay: HAProxy passing the TLS bytes to fakellm (mode tcp), the floor"
echo "of any proxy: one more hop, no TLS or HTTP work"
printf '  %-16s %9s %9s %9s %9s %9s %7s %7s %6s %5s\n' "" achieved p50 p99 max "p50 added" \
	late unsent errors cpu
for rate in $RATES; do
	for t in $LATENCY_TARGETS; do
		out=$(tls_load "$t" --rate "$rate" --connections "$RATE_CONNS" \
			--duration "$DURATION" --warmup "$WARMUP")
		for k in achieved_rps p50_us p99_us max_us late unsent unanswered errors cpu_pct; do
			R[$t,$rate,$k]=$(field "$k" "$out")
		done
		ERRORS=$((ERRORS + R[$t,$rate,errors]))
		added=-
		[ "$t" != direct ] && added=$(sub "${R[$t,$rate,p50_us]}" "${R[direct,$rate,p50_us]}")
		printf '  %-16s %9s %9s %9s %9s %9s %7s %7s %6s %5s\n' "$t, $rate/s" \
			"${R[$t,$rate,achieved_rps]}" "${R[$t,$rate,p50_us]}" "${R[$t,$rate,p99_us]}" \
			"${R[$t,$rate,max_us]}" "$added" "${R[$t,$rate,late]}" \
			"$((R[$t,$rate,unsent] + R[$t,$rate,unanswered]))" "${R[$t,$rate,errors]}" \
			"${R[$t,$rate,cpu_pct]}"
	done
	p50=$(sub "${R[detourd,$rate,p50_us]}" "${R[direct,$rate,p50_us]}")
	verdict="target < 50 µs: $(judge "$p50 < 50")"
	# a run that fell behind measures its own queue, not what a proxy adds
	if overloaded detourd "$rate"; then
		verdict="target < 50 µs: missed, detourd fell behind, $(behind detourd "$rate")"
	elif overloaded direct "$rate"; then
		verdict="not judged: the direct run fell behind, $(behind direct "$rate")"
	fi
	summary "proxy: p50 added at $rate rps: $p50 µs ($verdict);" \
		"p99 added $(sub "${R[detourd,$rate,p99_us]}" "${R[direct,$rate,p99_us]}") µs;" \
		"HAProxy: p50 $(sub "${R[haproxy,$rate,p50_us]}" "${R[direct,$rate,p50_us]}") µs," \
		"p99 $(sub "${R[haproxy,$rate,p99_us]}" "${R[direct,$rate,p99_us]}") µs$(overloaded haproxy "$rate" &&
		echo ", HAProxy fell behind, $(behind haproxy "$rate")");" \
		"a relay of bytes (HAProxy, mode tcp): p50 $(sub "${R[relay,$rate,p50_us]}" \
		"${R[direct,$rate,p50_us]}") µs$(overloaded relay "$rate" && echo ", fell behind")"
done

echo
echo "throughput: closed loop, $MAX_CONNS keep-alive connections, ${DURATION} s after ${WARMUP} s of warm-up;"
echo "$ROUNDS rounds, the targets in turn, so that a slow spell of the shared CPUs hits each"
echo "target alike; the summary takes each target's median round"
printf '  %-12s %9s %9s %9s %5s %16s %6s\n' "" "req/s" "p50 µs" "p99 µs" cpu "req/CPU-second" errors
for round in $(seq "$ROUNDS"); do
	for t in $TARGETS; do
		out=$(tls_load "$t" --max --connections "$MAX_CONNS" --duration "$DURATION" --warmup "$WARMUP")
		for k in achieved_rps p50_us p99_us errors cpu_pct; do R[$t,max,$k]=$(field "$k" "$out"); done
		ERRORS=$((ERRORS + R[$t,max,errors]))
		R[$t,max,per_cpu]=$(awk -v r="${R[$t,max,achieved_rps]}" -v c="${R[$t,max,cpu_pct]}" \
			'BEGIN { if (c > 0) printf "%.0f", r * 100 / c; else print 0 }')
		R[$t,rounds_rps]+=" ${R[$t,max,achieved_rps]}"
		R[$t,rounds_per_cpu]+=" ${R[$t,max,per_cpu]}"
		printf '  %-12s %9s %9s %9s %5s %16s %6s\n' "$t #$round" "${R[$t,max,achieved_rps]}" \
			"${R[$t,max,p50_us]}" "${R[$t,max,p99_us]}" "${R[$t,max,cpu_pct]}" \
			"${R[$t,max,per_cpu]}" "${R[$t,max,errors]}"
	done
done
for t in $TARGETS; do
	# shellcheck disable=SC2086 # one number a word
	R[$t,max,achieved_rps]=$(median ${R[$t,rounds_rps]})
	# shellcheck disable=SC2086
	R[$t,max,per_cpu]=$(median ${R[$t,rounds_per_cpu]})
done
summary "proxy: throughput (median of $ROUNDS) detourd ${R[detourd,max,achieved_rps]} rps vs haproxy" \
	"${R[haproxy,max,achieved_rps]} rps (target ≥ haproxy:" \
	"$(judge "${R[detourd,max,achieved_rps]} >= ${R[haproxy,max,achieved_rps]}")); per proxy" \
	"CPU-second: detourd ${R[detourd,max,per_cpu]}, haproxy ${R[haproxy,max,per_cpu]}" \
	"(direct to fakellm: ${R[direct,max,achieved_rps]} rps; rounds: detourd${R[detourd,rounds_rps]}," \
	"haproxy${R[haproxy,rounds_rps]})"

if [ -s "$W/detourd.log" ]; then
	echo "  detourd logged $(wc -l <"$W/detourd.log") line(s) at warn or above; the first:"
	head -n 5 "$W/detourd.log" | sed 's/^/    /'
fi
if [ "$ERRORS" -gt 0 ]; then
	echo "  client errors in the proxy runs ($ERRORS); the first:"
	grep -v '^#' "$W/tls_load.log" | head -n 5 | sed 's/^/    /'
fi
kill -0 "$DETOURD_PID" 2>/dev/null || die "detourd died during the proxy runs"
summary "proxy: errors seen by the clients in the proxy runs: $ERRORS;" \
	"detourd log lines at warn or above: $(wc -l <"$W/detourd.log")"

if [ "$PROXY_ONLY" = 1 ]; then
	section "summary"
	printf '%s\n' "${SUMMARY[@]}"
	exit 0
fi

# ---- translation ------------------------------------------------------------------------

section "translation cost (one core, in memory)"
if [ "$SMOKE" = 1 ]; then XLATE_ARGS="--reps 100 --blocks 3"; else XLATE_ARGS="--reps 4000 --blocks 9"; fi
# shellcheck disable=SC2086 # two options
taskset -c "$CPU_PROXY" "$BUILD/bench/xlate_cost" $XLATE_ARGS | tee "$W/xlate.out" || die "xlate_cost failed"
summary "translation: $(sed -n 's/^xlate_cost: //p' "$W/xlate.out")"

# ---- routing decision ------------------------------------------------------------------

section "routing decision cost (one core, in memory)"
if [ "$SMOKE" = 1 ]; then ROUTE_ARGS="--reps 1000 --blocks 3"; else ROUTE_ARGS="--reps 200000 --blocks 9"; fi
# shellcheck disable=SC2086 # two options
taskset -c "$CPU_PROXY" "$BUILD/bench/route_cost" $ROUTE_ARGS | tee "$W/route.out" || die "route_cost failed"
summary "routing: $(sed -n 's/^route_cost: //p' "$W/route.out")"

# ---- usage and cost ----------------------------------------------------------------------

section "usage and cost accounting per answer (one core, in memory)"
if [ "$SMOKE" = 1 ]; then USAGE_ARGS="--reps 100 --blocks 3"; else USAGE_ARGS="--reps 4000 --blocks 9"; fi
# shellcheck disable=SC2086 # two options
taskset -c "$CPU_PROXY" "$BUILD/bench/usage_cost" $USAGE_ARGS --prices "$ROOT/data/prices.conf" |
	tee "$W/usage.out" || die "usage_cost failed"
summary "usage: $(sed -n 's/^usage_cost: //p' "$W/usage.out")"

# ---- uplink ------------------------------------------------------------------------------

section "uplink XDP program cost per frame (BPF_PROG_TEST_RUN)"
if [ "$SMOKE" = 1 ]; then UPLINK_RUNS=5000; else UPLINK_RUNS=200000; fi
taskset -c "$CPU_PROXY" "$BUILD/bench/uplink_cost" --runs "$UPLINK_RUNS" | tee "$W/uplink.out" || die "uplink_cost failed"
summary "uplink: $(sed -n 's/^uplink_cost: //p' "$W/uplink.out")"

# ---- fakellm -------------------------------------------------------------------------

section "fakellm request rate"
if [ -x "$ROOT/bench/fakellm-rps.sh" ]; then
	"$ROOT/bench/fakellm-rps.sh" "$BUILD" | tee "$W/fakellm-rps.out" || die "fakellm-rps.sh failed"
	mapfile -t -O "${#SUMMARY[@]}" SUMMARY < <(grep '^fakellm: ' "$W/fakellm-rps.out")
else
	echo "bench/fakellm-rps.sh is not there yet: skipped"
fi

# ---- transitions ---------------------------------------------------------------------

section "transitions: verdicts while the primary fails and recovers (bench/transition.sh)"
SMOKE_FLAG=()
[ "$SMOKE" = 1 ] && SMOKE_FLAG=(--smoke)
if ! "$ROOT/bench/transition.sh" "$BUILD" "${SMOKE_FLAG[@]}" | tee "$W/transition.out"; then
	[ "$SMOKE" = 1 ] && die "transition.sh failed"
	summary "transition: scenario checks failed ('not ok' lines above)"
fi
mapfile -t -O "${#SUMMARY[@]}" SUMMARY < <(grep '^transition: ' "$W/transition.out")

section "summary"
printf '%s\n' "${SUMMARY[@]}"
