#!/bin/bash
# Backpressure, end to end: an application asks for a long streamed answer
# (~1.1 MB of events) and stops reading it. The kernel's buffers on detourd's
# side are capped (the client namespace's tcp_rmem / tcp_wmem), so the answer
# cannot hide in them: detourd must stop reading the provider rather than
# hold the answer itself. It stops after a fraction of the answer, other
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
# from_providers: bytes detourd's connections to the providers (port 443 in
# the client namespace: the application's own are redirected to loopback) have
# received, in all; counted by the kernel, whatever detourd's allocator does
from_providers() {
	in_cli ss -Htni state established '( dport = :443 )' |
		awk '{ if (match($0, /bytes_received:[0-9]+/)) n += substr($0, RSTART + 15, RLENGTH - 15) } END { print n + 0 }'
}
result() { tail -n 1 "$1"; }
# whole RESULT: every word of the stream, one [DONE], no error event
whole() {
	[ "$(jget "$1" words)" = $WORDS ] && [ "$(jget "$1" done)" = 1 ] &&
		[ "$(jget "$1" errors)" = 0 ] && [ -z "$(jget "$1" error)" ]
}
answered() { grep -q '"status"' "$1"; }
finished() { grep -q '"bytes"' "$1"; }
unfinished() { ! finished "$1"; }

r=$(chat enrolled)
check "a first request is answered through detourd" "$r" [ "${r%% *}" = 200 ]
slow "$W/go.held" "$W/log/slow.held"
wait_for 10 answered "$W/log/slow.held"
check "the held stream's head came: 200" "$(cat "$W/log/slow.held")" grep -q '"status": 200' "$W/log/slow.held"
sleep 1.5 # what the provider can push until everything in between is full
taken=$(from_providers)
sleep 0.5
check "while the application does not read, detourd stops reading the provider" \
	"$taken then $(from_providers) bytes" [ "$(from_providers)" = "$taken" ]
# detourd queues up to its high-water mark for a client (256 KB,
# DT_HTTP_HIGH_WATER) before it stops reading the provider; with what the
# sockets on either side hold, well under 640 KB of the answer is taken
note "taken from the providers while the application does not read: $taken bytes"
check "... after taking < 640 KB of the answer, not all of it" "$taken bytes" [ "$taken" -lt 655360 ]
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
