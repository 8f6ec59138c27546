#!/bin/bash
# No redirect loop: with the agent's own cgroup enrolled too, the proxy's
# upstream connections (SO_MARK / own pid) are never sent back to the proxy.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_require detourd fakellm

fake_std || exit 1
CONF_ENROLL="$CG_ENROLLED $CG_AGENT" conf_write "$W/detour.conf"
detourd_start "$W/detour.conf" || exit 1
check "the agent's own cgroup has the hooks attached" "bpftool cgroup show $CG_AGENT is empty" \
	attached "$CG_AGENT"

snap
fails=0
for i in 1 2 3 4 5; do
	r=$(chat enrolled -4)
	[[ $r =~ ^200\  ]] || { fails=$((fails + 1)); note "request $i: '$r'"; }
done
check "5 enrolled requests succeed with the agent enrolled" "$fails failed" [ $fails -eq 0 ]
check "exactly one redirect per request (no loop)" "redirected grew by $(delta redirected), want 5" \
	[ "$(delta redirected)" -eq 5 ]
check "the proxy's upstream connects were left direct as its own (pass_own)" \
	"pass_own grew by $(delta pass_own)" [ "$(delta pass_own)" -ge 5 ]

snap
r=$(chat enrolled -6)
check "IPv6 too: one redirect, upstream left alone" "'$r', redirected +$(delta redirected), pass_own +$(delta pass_own)" \
	bash -c "[[ '$r' =~ ^200\  ]] && [ $(delta redirected) -eq 1 ] && [ $(delta pass_own) -ge 1 ]"

# the agent's connections are its own even when the proxy fails over
fake_stop A
snap
r=$(chat enrolled -4 --resolve "$HOST_OAI:443:$A4")
check "failover (A refuses) with the agent enrolled: answered by B, one redirect" "'$r', redirected +$(delta redirected)" \
	bash -c "[[ '$r' =~ ^200\ B ]] && [ $(delta redirected) -eq 1 ]"
check "the agent is still alive" "detourd exited" alive "$DETOURD_PID"

e2e_finish
