#!/bin/bash
# Restart of detourd under load. Two unmodified clients (IPv4, IPv6) open a
# new connection every ~50 ms to api.openai.com from the enrolled cgroup while
# the agent is stopped (SIGTERM) and started again, then killed (kill -9) and
# started again. New connections succeed throughout: direct while the agent
# is down, redirected again once it is up. A connection being relayed at
# SIGTERM is drained (the agent finishes it before exiting); one being relayed
# at kill -9 is cut (the relay owned it): the client sees an error promptly,
# not a hang, and its next connection succeeds (docs/testing.md).
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_require detourd fakellm

fake_std X || exit 1
detourd_start || exit 1

load_loop() { # FAMILY: one request per line in $W/load.FAMILY: "start_ms end_ms code name ..."
	local fam=$1 i=0 r t0
	while [ ! -e "$W/load.stop" ] && [ $i -lt 2000 ]; do
		t0=$(now_ms)
		r=$(chat enrolled "-$fam" --max-time 4 2>&1 | tail -n 1)
		echo "$t0 $(now_ms) $r" >>"$W/load.$fam"
		i=$((i + 1))
		sleep 0.05
	done
}
load_loop 4 & E2E_PIDS+=($!)
load_loop 6 & E2E_PIDS+=($!)

# requests completed (and failed) since a timestamp
done_since() { cat "$W"/load.4 "$W"/load.6 2>/dev/null | awk -v t="$1" '$2 >= t' | wc -l; }

phase() { # NAME SECONDS EXPECT(up|down)
	local name=$1 secs=$2 want=$3 t0 n d
	snap; t0=$(now_ms)
	sleep "$secs"
	n=$(done_since "$t0"); d=$(delta redirected)
	check "$name: clients kept going ($n requests in ${secs}s)" "only $n" [ "$n" -ge 4 ]
	if [ "$want" = up ]; then
		check "$name: redirected" "redirected grew by $d" [ "$d" -gt 0 ]
	else
		check "$name: direct (nothing redirected)" "redirected grew by $d" [ "$d" -eq 0 ]
	fi
}

# inflight SIGNAL: a request that is being relayed (fakellm X answers only
# after 2.5 s) when the agent gets SIGNAL. RES="rc ms result" of that request.
inflight() {
	local sig=$1 t0 rc
	fake_fault X '{"mode":"slow","ttft_ms":2500}'
	t0=$(now_ms)
	ccurl enrolled -H 'content-type: application/json' -d '{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}' \
		"https://$HOST_ANT/v1/messages" >"$W/inflight.$sig" 2>&1 &
	local cpid=$!
	sleep 0.5
	[ "$sig" = KILL ] && KILL_MS=$(now_ms)
	detourd_stop "$sig" >/dev/null
	wait $cpid; rc=$?
	RES="$rc $(( $(now_ms) - t0 )) $(tail -n 1 "$W/inflight.$sig")"
	fake_fault X '{"mode":"ok"}'
}

phase "up" 1.5 up
inflight TERM; res=$RES
set -- $res
note "request being relayed at SIGTERM: curl exit $1 after $2 ms: ${*:3}"
trc=$1 tres=${*:3}
check "SIGTERM: the request being relayed was drained: it completed" "$res" \
	eval '[ "$trc" -eq 0 ] && [[ "$tres" =~ ^200\  ]]'

phase "stopped (SIGTERM)" 1.5 down
detourd_start || exit 1
phase "restarted" 1.5 up

inflight KILL; res=$RES
set -- $res
irc=$1 ims=$2
note "request being relayed at kill -9: curl exit $1 after $2 ms: ${*:3}"
check "kill -9: the relayed request was cut at once (its relay died)" "$res" \
	eval '[ "$irc" -ne 0 ] && [ "$ims" -lt 2000 ]'
r=$(chat enrolled -4)
check "kill -9: the cut client's next connection succeeds (direct)" "curl said '$r'" eval '[[ $r =~ ^200\  ]]'
phase "killed (kill -9)" 1.5 down
detourd_start || exit 1
phase "restarted after kill -9" 1.5 up

touch "$W/load.stop"
wait_for 6 eval '! jobs -r | grep -q load_loop'
total=$(cat "$W"/load.4 "$W"/load.6 | wc -l)
# a load request in flight at the kill -9 instant was being relayed by the
# process that died: cut like the one above, by design (docs/testing.md)
cut=$(cat "$W"/load.4 "$W"/load.6 | awk -v k="$KILL_MS" '$3 != 200 && $1 <= k && $2 >= k' | wc -l)
bad=$(cat "$W"/load.4 "$W"/load.6 | awk -v k="$KILL_MS" '$3 != 200 && !($1 <= k && $2 >= k)' | wc -l)
cat "$W"/load.4 "$W"/load.6 | awk '$3 != 200' | head -5 | while read -r l; do note "failed: $l"; done
note "load requests in flight at kill -9 and cut: $cut"
check "under load through 2 restarts: $((total - cut)) new connections, zero failed" "$bad failed" [ "$bad" -eq 0 ]
e2e_finish
