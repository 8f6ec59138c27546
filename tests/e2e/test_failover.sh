#!/bin/bash
# Endpoint failover in the relay: clients pinned to endpoint A of
# api.openai.com (like an application with cached DNS) while A refuses,
# resets before the first byte, or is blackholed; B is alive. Zero failed
# requests, all answered by B; a direct (non-enrolled) client fails at the
# same time, which proves the fault is real. A is used again once it is back.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_require detourd fakellm

fake_std || exit 1
CONF_DOWN_HOLD_MS=1000 conf_write "$W/detour.conf"
detourd_start "$W/detour.conf" || exit 1

PIN_A=(--resolve "$HOST_OAI:443:$A4")

# burst MODE: 10 sequential + 5 parallel requests pinned to A
burst() {
	local mode=$1 i r fails=0 notb=0 max=0 t
	snap
	local f0; f0=$(verdict $A4 443 | sed -n 's/^failures=//p')
	for i in $(seq 1 10); do
		r=$(chat enrolled "${PIN_A[@]}" 2>&1 | tail -n 1)
		set -- $r
		[ "$1" = 200 ] || { fails=$((fails + 1)); note "$mode request $i: '$r'"; continue; }
		[ "$2" = B ] || notb=$((notb + 1))
		t=$(awk -v t="$5" 'BEGIN { printf "%d", t * 1000 }'); [ "$t" -gt $max ] && max=$t
	done
	local pids=()
	for i in 1 2 3 4 5; do chat enrolled "${PIN_A[@]}" >"$W/par.$mode.$i" 2>&1 & pids+=($!); done
	wait "${pids[@]}"
	for i in 1 2 3 4 5; do
		r=$(tail -n 1 "$W/par.$mode.$i")
		[[ $r =~ ^200\ B ]] || { fails=$((fails + 1)); note "$mode parallel request $i: '$r'"; }
	done
	check "$mode: 15 requests pinned to A, zero failed" "$fails failed" [ $fails -eq 0 ]
	check "$mode: all answered by B" "$notb answered by another than B" [ $notb -eq 0 ]
	check "$mode: every one went through the proxy" "redirected grew by $(delta redirected), want 15" \
		[ "$(delta redirected)" -eq 15 ]
	note "$mode: slowest sequential request ${max} ms"
	local f1; f1=$(verdict $A4 443 | sed -n 's/^failures=//p')
	check "$mode: the agent counted A's failures (verdicts map)" "failures ${f0:-?} -> ${f1:-?}; $(verdict $A4 443 | tr '\n' ' ')" \
		[ "${f1:-0}" -gt "${f0:-0}" ]
}

# A back: wait (bounded) until a pinned request is answered by A again
a_back() {
	check "$1: once A is back it answers again (within 6 s)" "still not answered by A" wait_for 6 a_answers
}
a_answers() { [[ $(chat enrolled "${PIN_A[@]}" 2>/dev/null) =~ ^200\ A ]]; }

r=$(chat enrolled "${PIN_A[@]}")
check "healthy: a request pinned to A is answered by A" "curl said '$r'" bash -c "[[ '$r' =~ ^200\ A ]]"

# 1. reset before the first byte
fake_fault A '{"mode":"reset"}'
r=$(chat other "${PIN_A[@]}" 2>&1 | tail -n 1)
check "reset: a direct client to A fails" "curl said '$r'" bash -c "! [[ '$r' =~ ^200 ]]"
burst reset
fake_fault A '{"mode":"ok"}'
a_back reset

# 2. refused: nothing listens on A:443
fake_stop A
r=$(chat other "${PIN_A[@]}" 2>&1 | tail -n 1)
check "refuse: a direct client to A fails" "curl said '$r'" bash -c "! [[ '$r' =~ ^200 ]]"
burst refuse
fake_start A "$A4:443" "[$A6]:443" || exit 1
a_back refuse

# 3. blackhole: A's frames go to a MAC nobody has, connect() hangs
in_cli ip neigh replace $A4 lladdr 02:00:00:00:00:01 dev c0 nud permanent
r=$(chat other "${PIN_A[@]}" --connect-timeout 2 2>&1 | tail -n 1)
check "blackhole: a direct client to A hangs and fails" "curl said '$r'" bash -c "! [[ '$r' =~ ^200 ]]"
burst blackhole
in_cli ip neigh del $A4 dev c0
a_back blackhole

note "verdicts: $(bpftool -j map dump pinned "$PIN/verdicts" 2>/dev/null | "$PY" "$E2E_LIB_DIR/bpfjson.py" verdicts | tr '\n' ';')"
check "the agent is still alive" "detourd exited" alive "$DETOURD_PID"
e2e_finish
