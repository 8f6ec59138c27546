#!/bin/bash
# Backpressure, end to end: an application asks for a long streamed answer
# (~0.9 MB of events) and stops reading it. The kernel's buffers on detourd's
# side are capped (the client namespace's tcp_rmem / tcp_wmem), so the answer
# cannot hide in them: detourd must stop reading the provider rather than
# hold the answer itself. Its memory stays far below the answer's size, other
# requests are served meanwhile, and once the application reads again the
# whole stream arrives intact.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_require detourd fakellm

WORDS=4096 # fakellm's longest answer
fake_start A "$A4:443" "[$A6]:443" --words=$WORDS || exit 1
fake_start B "$B4:443" "[$B6]:443" --words=$WORDS || exit 1
proxy_conf
CONF_PROVIDERS="[provider openai]
hosts = $HOST_OAI
family = openai"
# at most 64 KB in a socket buffer on detourd's side (autotuning's ceiling)
in_cli sysctl -qw net.ipv4.tcp_rmem="4096 16384 65536" net.ipv4.tcp_wmem="4096 16384 65536"
detourd_start || exit 1
CA=$W/state/ca/root.pem CURL_CA=$W/state/ca/root.pem

# slow RELEASE-FILE LOG: slowreader.py from the enrolled cgroup, in the background
slow() {
	spawn_in enrolled "$NSC" "$2" "$PY" "$E2E_LIB_DIR/slowreader.py" --addr "$A4" \
		--cacert "$CA" --until "$1" --max 20
	E2E_PIDS+=($SPAWN_PID)
}
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$DETOURD_PID/status"; }
result() { tail -n 1 "$1"; }
# whole RESULT: every word of the stream, one [DONE], no error event
whole() {
	[ "$(jget "$1" words)" = $WORDS ] && [ "$(jget "$1" done)" = 1 ] &&
		[ "$(jget "$1" errors)" = 0 ] && [ -z "$(jget "$1" error)" ]
}
answered() { grep -q '"status"' "$1"; }
finished() { grep -q '"bytes"' "$1"; }
unfinished() { ! finished "$1"; }

# one short request first: detourd's one-time allocations (the leaf, the
# upstream connection) are made before its memory is measured
r=$(chat enrolled)
check "a first request is answered through detourd" "$r" [ "${r%% *}" = 200 ]
before=$(rss_kb)
slow "$W/go.held" "$W/log/slow.held"
wait_for 10 answered "$W/log/slow.held"
check "the held stream's head came: 200" "$(cat "$W/log/slow.held")" grep -q '"status": 200' "$W/log/slow.held"
sleep 1.5 # what the provider can push until everything in between is full
peak=$before
for _ in 1 2 3 4 5; do
	now=$(rss_kb)
	[ "$now" -gt "$peak" ] && peak=$now
	sleep 0.2
done
note "detourd VmRSS: $before KB before the held stream, $peak KB at most while held"
# detourd queues up to its high-water mark for a client (256 KB,
# DT_HTTP_HIGH_WATER) before it stops reading the provider, plus a read or two
check "while the application does not read, detourd holds < 384 KB of it, not the answer" \
	"grew $((peak - before)) KB" [ $((peak - before)) -lt 384 ]
r=$(chat enrolled)
check "meanwhile another request is answered" "$r" [ "${r%% *}" = 200 ]
check "the held stream is not finished early" "$(cat "$W/log/slow.held")" unfinished "$W/log/slow.held"

touch "$W/go.held"
wait_for 20 finished "$W/log/slow.held"
r=$(result "$W/log/slow.held")
check "read again: the whole stream arrives, all $WORDS words, one [DONE], no error" "$r" whole "$r"
check "the answer was far larger than the socket buffers and what detourd held (> 800 KB)" \
	"$(jget "$r" bytes) bytes" [ "$(jget "$r" bytes)" -gt 800000 ]

e2e_finish
