#!/bin/bash
# Failover mode driven by the health engine (issue 5 §4). While OpenAI (fakellm
# A/B) is healthy, an unmodified keep-alive client (the official openai npm
# SDK, in the enrolled cgroup) talks to it directly: zero redirects, its
# sockets' local end is the client's own address. The primary then hangs
# (blackhole at the HTTP level): the probes fail, the verdict leaves HEALTHY in
# the provider_health map, and the agent aborts the enrolled applications'
# direct connections to OpenAI (sock_diag SOCK_DESTROY): the SDK's hung
# keep-alive request fails with a connection error, the SDK retries as it does
# by default, is redirected and answered by Groq: zero failed requests. Held
# connections show what is destroyed (enrolled, over IPv4, IPv6 and
# IPv4-mapped IPv6) and what is not (a non-enrolled cgroup's, one carrying the
# proxy's mark, one to an address no provider has). Recovery: the verdict is
# HEALTHY again and new connections go direct. The same with an operator's
# drain (detourctl drain/undrain), also one recorded while the agent was down.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_require detourd fakellm detourctl
sdk_require openai || exit 1

fake_std G D N || exit 1
KEY_APP=sk-app-own-key-0001
MARK=0x44540001
proxy_conf "first_byte_timeout_ms = 1500
retry_budget_min = 1000
provider_failures_to_eject = 2
provider_eject_ms = 1000"
CONF_MODE=failover CONF_PROBES=yes CONF_HEALTH="probe_interval_ms = 200
probe_interval_down_ms = 300
probe_timeout_ms = 400" conf_write "$W/detour.conf"
detourd_start "$W/detour.conf" || exit 1
# direct, the application sees the provider's certificate; redirected, detour's
cat "$W/ca.pem" "$W/state/ca/root.pem" >"$W/roots.pem"
sdk() { sdk_run "$W/sdk.out" openai_client.mjs OPENAI_API_KEY="$KEY_APP" NODE_EXTRA_CA_CERTS="$W/roots.pem" -- "$@"; }

primary() { fake_fault A "$1" && fake_fault B "$1"; }
state() { local h; h=$(health 0); echo "${h%% *}"; } # openai: id 0
openai_chats() {
	echo $(( $(jget "$(fake_admin A GET /stats)" by_path./v1/chat/completions) +
		 $(jget "$(fake_admin B GET /stats)" by_path./v1/chat/completions) ))
}
# hold NAME CGROUP ARGS...: a holdconn.py connection, its output in $W/hold.NAME
hold() {
	local name=$1 cg=$2; shift 2
	spawn_in "$cg" "$NSC" "$W/hold.$name" "$PY" "$E2E_LIB_DIR/holdconn.py" --until "$W/release" "$@"
	E2E_PIDS+=($SPAWN_PID)
}
held() { grep -q connected "$W/hold.$1"; }
local_of() { jget "$(head -n 1 "$W/hold.$1")" connected.0; }
fate() { jget "$(tail -n 1 "$W/hold.$1")" alive; }
# sdk_lines FILTER: how many of the SDK client's request lines match a python condition on r
sdk_lines() {
	"$PY" -c 'import json, sys
n = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    if "summary" not in r and eval(sys.argv[2]): n += 1
print(n)' "$W/sdk.out" "$1" 2>/dev/null || echo 0
}

check "healthy: openai's verdict in the map is HEALTHY" "state $(state)" [ "$(state)" = 0 ]

# ---- healthy: direct ---------------------------------------------------------
snap
hold v4 enrolled --addr $A4
hold v6 enrolled --addr $A6
hold mapped enrolled --addr $A4 --mapped
hold marked enrolled --addr $A4 --mark $MARK
hold other other --addr $A4
hold unrelated enrolled --addr $N4
for h in v4 v6 mapped marked other unrelated; do
	wait_for 5 held $h || notok "held connection $h: $(cat "$W/hold.$h")"
done
check "healthy: enrolled connections go direct from the client's own address (IPv4, IPv6, mapped)" \
	"$(local_of v4) $(local_of v6) $(local_of mapped)" \
	eval '[ "$(local_of v4)" = $C4 ] && [ "$(local_of v6)" = $C6 ] && [ "$(local_of mapped)" = "::ffff:$C4" ]'

sdk --n 40 --stream no --retries 2 --pause 150 --timeout 20000 --tag failmode &
SDK_PID=$!
E2E_PIDS+=($SDK_PID)
wait_for 10 eval '[ "$(sdk_lines "r[\"ok\"]")" -ge 5 ]'
direct=$(sdk_lines 'r["ok"] and r["provider"] in ("A", "B") and r["via"] is None')
check "healthy: the SDK's first requests are answered by OpenAI directly" \
	"$direct direct of $(sdk_lines True): $(head -n 2 "$W/sdk.out")" [ "$direct" -ge 5 ]
# who holds connections to OpenAI's endpoints in the client namespace
openai_socks() { in_cli ss -Htnp state established "( dst $A4:443 or dst $B4:443 or dst [$A6]:443 or dst [$B6]:443 )"; }
check "healthy: fakellm is connected to by node itself" "$(openai_socks)" \
	wait_for 3 eval 'openai_socks | grep -q "\"node\""'
node_socks() { openai_socks | awk '/"node"/ { print $3 }' | sort; }
s1=$(node_socks) n1=$(sdk_lines True)
wait_for 5 eval '[ "$(sdk_lines True)" -ge $((n1 + 3)) ]'
check "healthy: the SDK keeps its connection alive (the same socket 3 requests later)" \
	"'$s1' then '$(node_socks)'" eval '[ -n "$s1" ] && [ "$s1" = "$(node_socks)" ]'
check "healthy: no connect was redirected, each counted pass_healthy" \
	"redirected +$(delta redirected), pass_healthy +$(delta pass_healthy)" \
	eval '[ "$(delta redirected)" -eq 0 ] && [ "$(delta pass_healthy)" -ge 4 ]'

# ---- the primary hangs ---------------------------------------------------------
snap
t0=$(now_ms)
primary '{"mode":"hang"}'
wait_for 10 eval '[ "$(state)" != 0 ]'
t1=$(now_ms)
k=$(sdk_lines True) # the SDK's requests done by the flip; the next one is hung
h=$(health 0)
check "hang: the verdict leaves HEALTHY in the map (probes time out)" "$h" [ "${h%% *}" != 0 ]
note "verdict flipped $((t1 - t0)) ms after the fault: $h"
wait_for 5 grep -q "failover: openai: aborted" "$DETOURD_LOG"
line=$(grep "failover: openai: aborted" "$DETOURD_LOG" | head -n 1)
n=$(sed -n 's/.*aborted \([0-9]*\) direct.*/\1/p' <<<"$line")
check "hang: the agent aborts the direct connections and logs how many (the SDK's and 3 held)" \
	"'$line'" [ "${n:-0}" -ge 4 ]
touch "$W/release"
for h in v4 v6 mapped marked other unrelated; do wait_for 5 eval "[ \$(wc -l <\"$W/hold.$h\") -ge 2 ]"; done
check "hang: enrolled direct connections destroyed (IPv4, IPv6, IPv4-mapped)" \
	"v4 $(tail -n 1 "$W/hold.v4"), v6 $(tail -n 1 "$W/hold.v6"), mapped $(tail -n 1 "$W/hold.mapped")" \
	eval '[ "$(fate v4)" = False ] && [ "$(fate v6)" = False ] && [ "$(fate mapped)" = False ]'
check "hang: the proxy-marked, the non-enrolled and the unrelated connections untouched" \
	"marked $(tail -n 1 "$W/hold.marked"), other $(tail -n 1 "$W/hold.other"), unrelated $(tail -n 1 "$W/hold.unrelated")" \
	eval '[ "$(fate marked)" = True ] && [ "$(fate other)" = True ] && [ "$(fate unrelated)" = True ]'
c0=$(openai_chats)

wait "$SDK_PID"
done=$(sdk_lines True) errors=$(sdk_lines 'not r["ok"]')
check "hang: zero failed SDK requests (the hung one retried after its connection was aborted)" \
	"$done of 40 ran, $errors failed: $(grep '"ok":false' "$W/sdk.out" | head -n 2)" \
	eval '[ "$done" -eq 40 ] && [ "$errors" -eq 0 ]'
groq=$(sdk_lines 'r["ok"] and r["via"] == "groq"')
check "hang: after the flip the SDK's requests are redirected and answered by Groq" \
	"$groq via groq: $(tail -n 2 "$W/sdk.out")" [ "$groq" -ge 5 ]
slow=$(sdk_lines 'r["ms"] >= 1000')
note "SDK: $(sdk_lines True) requests, $groq via Groq, slowest $("$PY" -c 'import json, sys
print(max(json.loads(l).get("ms", 0) for l in open(sys.argv[1])))' "$W/sdk.out") ms, $slow over 1 s"
hung=$("$PY" -c 'import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("i") == int(sys.argv[2]): print(r["ms"], "ms, answered by", r["via"] or r["provider"])' "$W/sdk.out" $((k + 1)))
note "the SDK's hung request $((k + 1)) took $hung (retried by the SDK after the abort); $line"
late=$(sdk_lines "r[\"i\"] > $k + 1 and r[\"via\"] is None")
check "hang: no SDK request went directly to OpenAI after the one that hung" "$late direct after request $((k + 1))" \
	[ "$late" -eq 0 ]
note "OpenAI got $(( $(openai_chats) - c0 )) chat request(s) from the proxy after the flip (half-open trials)"
check "hang: the redirects are counted" "redirected +$(delta redirected)" [ "$(delta redirected)" -ge 1 ]

# ---- recovery ----------------------------------------------------------------------
primary '{"mode":"ok"}'
wait_for 15 eval '[ "$(state)" = 0 ]'
check "recovered: the verdict is HEALTHY again" "$(health 0)" [ "$(state)" = 0 ]
snap
sdk --n 3 --stream no --retries 2 --tag again
direct=$(sdk_lines 'r["ok"] and r["provider"] in ("A", "B") and r["via"] is None')
check "recovered: new connections go direct again" "$direct of 3 direct; $(head -n 1 "$W/sdk.out")" \
	[ "$direct" -eq 3 ]
check "recovered: ... not redirected" "redirected +$(delta redirected)" [ "$(delta redirected)" -eq 0 ]

# ---- an operator's drain -----------------------------------------------------------
ask() { # the provider that answered, from the answer's headers: fakellm's name, and detour's when redirected
	CURL_CA=$W/roots.pem CURL_W='%{http_code} %header{x-fakellm-name} %header{x-detour-provider}' ccurl enrolled \
		-H 'content-type: application/json' -H "authorization: Bearer $KEY_APP" \
		-d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}' \
		"https://$HOST_OAI/v1/chat/completions"
}
rm -f "$W/release"
hold drained enrolled --addr $B4
hold drained_other other --addr $B4
wait_for 5 held drained && wait_for 5 held drained_other
aborts0=$(grep -c "failover: openai: aborted" "$DETOURD_LOG")
"$DETOURCTL" --pin-dir "$PIN" drain openai >/dev/null
wait_for 5 eval '[ "$(state)" = 3 ]'
check "drain: openai's verdict is DOWN in the map" "$(health 0)" [ "$(state)" = 3 ]
wait_for 5 eval '[ "$(grep -c "failover: openai: aborted" "$DETOURD_LOG")" -gt $aborts0 ]'
touch "$W/release"
wait_for 5 eval "[ \$(wc -l <\"$W/hold.drained\") -ge 2 ] && [ \$(wc -l <\"$W/hold.drained_other\") -ge 2 ]"
check "drain: the enrolled direct connection is aborted, the non-enrolled one is not" \
	"enrolled $(tail -n 1 "$W/hold.drained"), other $(tail -n 1 "$W/hold.drained_other")" \
	eval '[ "$(fate drained)" = False ] && [ "$(fate drained_other)" = True ]'
r=$(ask)
check "drain: a new request is redirected and answered by Groq" "$r" [ "$r" = "200 G groq" ]
"$DETOURCTL" --pin-dir "$PIN" undrain openai >/dev/null
wait_for 5 eval '[ "$(state)" = 0 ]'
r=$(ask)
check "undrain: HEALTHY again, a new request goes direct to OpenAI" "$(health 0); $r" \
	eval '[ "$(state)" = 0 ] && [[ "$r" =~ ^200\ [AB]\ ?$ ]]'

# ---- drained while the agent was down ------------------------------------------------
# the connection made then is direct (no hook at all); the drain, applied at
# the next start, aborts it once the hook redirects again
check "the agent is still alive" "detourd exited" alive "$DETOURD_PID"
detourd_stop
"$DETOURCTL" --pin-dir "$PIN" drain openai >/dev/null
rm -f "$W/release"
hold restart enrolled --addr $A4
wait_for 5 held restart
detourd_start "$W/detour.conf" || exit 1
wait_for 5 grep -q "failover: openai: aborted" "$DETOURD_LOG"
line=$(grep "failover: openai: aborted" "$DETOURD_LOG" | head -n 1)
touch "$W/release"
wait_for 5 eval "[ \$(wc -l <\"$W/hold.restart\") -ge 2 ]"
check "drained while down: at the next start the direct connection is aborted" \
	"$(health 0); $(tail -n 1 "$W/hold.restart"); '$line'" \
	eval '[ "$(state)" = 3 ] && [ "$(fate restart)" = False ] && [ -n "$line" ]'
"$DETOURCTL" --pin-dir "$PIN" undrain openai >/dev/null
check "the agent is still alive" "detourd exited" alive "$DETOURD_PID"
e2e_finish
