#!/bin/bash
# Fail open. A frozen agent (SIGSTOP: listener still there, heartbeat stops)
# is bypassed once the heartbeat is older than heartbeat_ttl_ms (500 ms); a
# killed agent (kill -9: listener gone, pinned links stay) is bypassed at the
# very next connect, and new connections go direct within a second.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_require detourd fakellm

fake_std || exit 1
detourd_start || exit 1

snap
r=$(chat enrolled -4)
check "agent up: enrolled request redirected" "'$r', redirected +$(delta redirected)" \
	bash -c "[[ '$r' =~ ^200\  ]] && [ $(delta redirected) -eq 1 ]"

# --- frozen agent: heartbeat goes stale, listener stays
kill -STOP "$DETOURD_PID"
sleep 0.8
snap
r=$(chat enrolled -4 --max-time 3)
check "agent frozen (SIGSTOP) 0.8 s: request succeeds" "curl said '$r'" bash -c "[[ '$r' =~ ^200\  ]]"
check "agent frozen: it went direct because the heartbeat is stale" \
	"redirected +$(delta redirected), pass_stale +$(delta pass_stale)" \
	bash -c "[ $(delta redirected) -eq 0 ] && [ $(delta pass_stale) -ge 1 ]"
r=$(chat enrolled -6 --max-time 3)
check "agent frozen: IPv6 request succeeds direct" "'$r', redirected +$(delta redirected)" \
	bash -c "[[ '$r' =~ ^200\  ]] && [ $(delta redirected) -eq 0 ]"
kill -CONT "$DETOURD_PID"
redirected_again() { snap; [[ $(chat enrolled -4 --max-time 3) =~ ^200\  ]] && [ "$(delta redirected)" -eq 1 ]; }
check "agent thawed: redirected again within 2 s" "still direct" wait_for 2 redirected_again

# --- kill -9: listener gone at once
snap
t0=$(now_ms)
kill -KILL "$DETOURD_PID"
{ wait "$DETOURD_PID"; } 2>/dev/null
DETOURD_PID=
n=0 fails=0 first=
while [ $(( $(now_ms) - t0 )) -lt 1500 ] && [ $n -lt 40 ]; do
	r=$(chat enrolled -4 --max-time 3 2>&1 | tail -n 1)
	n=$((n + 1))
	if [[ $r =~ ^200\  ]]; then
		[ -z "$first" ] && first=$(( $(now_ms) - t0 ))
	else
		fails=$((fails + 1)); note "after kill -9, request $n: '$r'"
	fi
done
check "after kill -9: first direct request done within 1 s" "first success after ${first:-never} ms" \
	[ -n "$first" ] && [ "$first" -lt 1000 ]
check "after kill -9: $n requests in 1.5 s, none failed" "$fails failed" [ $fails -eq 0 ]
check "after kill -9: none redirected" "redirected grew by $(delta redirected)" [ "$(delta redirected)" -eq 0 ]
check "after kill -9: the hook saw them and left them direct (pass_no_listener/pass_stale)" \
	"$(stats | tr '\n' ' ')" [ $(( $(delta pass_no_listener) + $(delta pass_stale) )) -ge "$n" ]
check "after kill -9: the pinned links stay attached (fail open, not detached)" \
	"bpftool cgroup show is empty" attached "$CG_ENROLLED"
r=$(chat enrolled -6 --max-time 3)
check "after kill -9: IPv6 goes direct too" "curl said '$r'" bash -c "[[ '$r' =~ ^200\  ]]"

e2e_finish
