#!/bin/bash
# The health engine in the proxy: with the primary (OpenAI, fakellm A/B)
# resetting every connection (a transport failure: against the provider,
# where a 5xx counts against the model, whose verdict is logged but not in a
# map yet), its verdict goes DOWN after provider_failures_to_eject failures,
# within the request that decided it, and is in the provider_health map at
# once (bpftool); while it is DOWN no request goes there (fakellm counts
# none) and clients see no error; once the ejection is over, half-open
# trials bring it back to HEALTHY, also in the map.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_require detourd fakellm

fake_std G D || exit 1
KEY_APP=sk-app-own-key-0001
proxy_conf "first_byte_timeout_ms = 1500
retry_budget_min = 1000
provider_failures_to_eject = 2
provider_eject_ms = 1500"
detourd_start || exit 1
CURL_CA=$W/state/ca/root.pem

ask() {
	CURL_OUT=$W/answer CURL_W='%{http_code} %header{x-detour-provider}' ccurl enrolled \
		-H 'content-type: application/json' -H "authorization: Bearer $KEY_APP" \
		-d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello there"}]}' \
		"https://$HOST_OAI/v1/chat/completions"
}
openai_calls() {
	echo $(( $(jget "$(fake_admin A GET /stats)" requests) + $(jget "$(fake_admin B GET /stats)" requests) ))
}
primary() { fake_fault A "$1" && fake_fault B "$1"; }

h=$(health 0)
check "healthy: openai's verdict in the provider_health map is HEALTHY (0)" "$h" [ "${h%% *}" = 0 ]
r=$(ask)
check "healthy: OpenAI answers" "$r" [ "$r" = "200 openai" ]

primary '{"mode":"reset"}'
bad=0
for i in 1 2; do r=$(ask); [ "$r" = "200 groq" ] || bad=$((bad + 1)); done
check "primary resets: the two failing requests are answered by Groq, zero errors" "$bad bad" [ $bad -eq 0 ]
# the deciding signal is the proxy's failures or the kernel's count of the
# same resets (tcpsig), whichever the loop handles first
h=$(health 0)
check "... and the verdict is DOWN (3) in the map right after, with its reason" "$h" \
	eval '[ "${h%% *}" = 3 ] && [[ "$h" == *"2 consecutive failures" || "$h" == *"2 connects failed or reset"* ]]'
check "... logged as a change" "$(grep 'health: openai' "$DETOURD_LOG" | tail -2)" \
	grep -Eq "health: openai: healthy -> down \(2 (consecutive failures|connects failed or reset, none succeeded)\)" "$DETOURD_LOG"
n0=$(openai_calls)
bad=0
for i in 1 2 3; do r=$(ask); [ "$r" = "200 groq" ] || bad=$((bad + 1)); done
n1=$(openai_calls)
check "while DOWN: requests go straight to Groq, none to OpenAI" "$bad bad; OpenAI got $((n1 - n0))" \
	eval '[ $bad -eq 0 ] && [ $((n1 - n0)) -eq 0 ]'

primary '{"mode":"ok"}'
sleep 1.6 # the ejection (1.5 s) ends: half-open
ok=0
for i in 1 2 3 4; do r=$(ask); [ "$r" = "200 openai" ] && ok=$((ok + 1)); done
h=$(health 0)
check "recovered: the trials succeed and the verdict is HEALTHY again" "$ok answered by OpenAI; $h" \
	eval '[ $ok -ge 3 ] && [ "${h%% *}" = 0 ]'
check "the agent is still alive" "detourd exited" alive "$DETOURD_PID"
e2e_finish
