#!/bin/bash
# Endpoint failover in the relay. Clients are pinned to endpoint A (like an
# application with cached DNS: curl --resolve) while A refuses, resets before
# the first byte, or is blackholed, and B is alive: zero failed requests, all
# answered by B. A direct (non-enrolled) client fails at the same time, which
# proves the fault is real; A is used again once it is back.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_require detourd fakellm

fake_std plain || exit 1
CONF_DOWN_HOLD_MS=1000 conf_write "$W/detour.conf"
detourd_start "$W/detour.conf" || exit 1

# the request every case repeats, and who must answer it while A is broken
req_tls()   { chat "$1" --resolve "$HOST_OAI:443:$A4" "${@:2}"; }
req_plain() { ccurl "$1" --resolve "$HOST_PLAIN:80:$A4" "${@:2}" "http://$HOST_PLAIN/v1/models"; }
REQ=req_tls WANT=B AEP="$A4 443"

# burst CASE: 10 sequential + 5 parallel requests pinned to A
burst() {
	local mode=$1 i r fails=0 notb=0 max=0 t pids=()
	snap
	local f0; f0=$(verdict $AEP | sed -n 's/^failures=//p')
	for i in $(seq 1 10); do
		r=$($REQ enrolled 2>&1 | tail -n 1)
		set -- $r
		[ "$1" = 200 ] || { fails=$((fails + 1)); note "$mode request $i: '$r'"; continue; }
		[ "$2" = "$WANT" ] || notb=$((notb + 1))
		t=$(awk -v t="$5" 'BEGIN { printf "%d", t * 1000 }'); [ "$t" -gt $max ] && max=$t
	done
	for i in 1 2 3 4 5; do $REQ enrolled >"$W/par.$mode.$i" 2>&1 & pids+=($!); done
	wait "${pids[@]}"
	for i in 1 2 3 4 5; do
		r=$(tail -n 1 "$W/par.$mode.$i")
		[[ $r =~ ^200\ $WANT ]] || { fails=$((fails + 1)); note "$mode parallel request $i: '$r'"; }
	done
	check "$mode: 15 requests pinned to A, zero failed" "$fails failed" [ $fails -eq 0 ]
	check "$mode: all answered by $WANT" "$notb answered by another" [ $notb -eq 0 ]
	check "$mode: every one went through the proxy" "redirected grew by $(delta redirected), want 15" \
		[ "$(delta redirected)" -eq 15 ]
	note "$mode: slowest sequential request ${max} ms"
	local f1; f1=$(verdict $AEP | sed -n 's/^failures=//p')
	check "$mode: the agent counted A's failures (verdicts map)" "failures ${f0:-?} -> ${f1:-?}; $(verdict $AEP | tr '\n' ' ')" \
		[ "${f1:-0}" -gt "${f0:-0}" ]
}
direct_fails() { # CASE: the same request from the non-enrolled cgroup fails
	local r; r=$($REQ other --connect-timeout 2 2>&1 | tail -n 1)
	check "$1: a direct client to A fails" "curl said '$r'" eval '! [[ $r =~ ^200 ]]'
}
a_answers() { [[ $($REQ enrolled 2>/dev/null) =~ ^200\ P?A ]]; }
a_back() { check "$1: once A is back it answers again (within 6 s)" "still not answered by A" wait_for 6 a_answers; }

check "healthy: a request pinned to A is answered by A" "$($REQ enrolled 2>&1)" a_answers

# 1. TLS endpoint that resets the connection when the ClientHello arrives
fake_stop A
rst_start RA --on data "$A4:443" "[$A6]:443" || exit 1
direct_fails "reset at the ClientHello"
burst "reset at the ClientHello"
fake_stop RA
fake_start A "$A4:443" "[$A6]:443" || exit 1
a_back "reset at the ClientHello"

# 2. TLS endpoint that resets every connection as soon as it is accepted
fake_stop A
rst_start RA --on accept "$A4:443" "[$A6]:443" || exit 1
direct_fails "reset on accept"
burst "reset on accept"
fake_stop RA
fake_start A "$A4:443" "[$A6]:443" || exit 1
a_back "reset on accept"

# 3. refused: nothing listens on A:443
fake_stop A
direct_fails refuse
burst refuse
fake_start A "$A4:443" "[$A6]:443" || exit 1
a_back refuse

# 4. blackhole: A's frames go to a MAC nobody has, connect() hangs
in_cli ip neigh replace $A4 lladdr 02:00:00:00:00:01 dev c0 nud permanent
direct_fails blackhole
burst blackhole
in_cli ip neigh del $A4 dev c0
a_back blackhole

# 5. plain HTTP endpoint (fakellm fault "reset": RST when the request's first
#    bytes arrive, before any answer)
REQ=req_plain WANT=PB AEP="$A4 80"
fake_fault PA '{"mode":"reset"}'
direct_fails "plain HTTP reset"
burst "plain HTTP reset"
fake_fault PA '{"mode":"ok"}'
a_back "plain HTTP reset"

# Not a failover case: fakellm's "reset" on a TLS listener comes after its TLS
# handshake, i.e. after A's first bytes reached the client. A transport relay
# cannot replay that elsewhere; it must pass the reset on, at once.
REQ=req_tls
fake_fault A '{"mode":"reset"}'
t0=$(now_ms); r=$(req_tls enrolled 2>&1 | tail -n 1); t=$(( $(now_ms) - t0 ))
note "reset after A's TLS handshake (after the first byte): '$r' in ${t} ms"
check "reset after the first byte: passed on to the client promptly" "'$r' after ${t} ms" \
	eval '! [[ $r =~ ^200 ]] && [ $t -lt 2000 ]'
fake_fault A '{"mode":"ok"}'

note "verdicts: $(bpftool -j map dump pinned "$PIN/verdicts" 2>/dev/null | "$PY" "$E2E_LIB_DIR/bpfjson.py" verdicts | tr '\n' ';')"
check "the agent is still alive" "detourd exited" alive "$DETOURD_PID"
e2e_finish
