#!/bin/bash
# The health engine's own signals, with no client traffic through the proxy:
# - active probes: OpenAI (fakellm A/B) failing its model list (503) goes
#   DOWN from probes alone, in the provider_health map, and comes back
#   through probes once it answers again; DeepSeek's opt-in TTFT probe is a
#   chat completion whose cost is logged and published with the probe
#   counts (provider_health, `detourctl status`) and counted in the cost
#   accounting (`detourctl spend`, application "(probe)");
# - kernel TCP signals: direct connects (a cgroup detour does not redirect,
#   as in failover mode) refused by Groq's endpoints, which is not probed,
#   are counted in the pinned tcp_signals map and eject it; resets too;
# - netlink: a blackhole route to DeepSeek's addresses, then the client
#   veth set down, turn the verdicts DOWN at once with the reason ("route
#   lost", "uplink down"); restored, the providers are probed at once and
#   HEALTHY again;
# - a reload that turns probes off stops them.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_require detourd detourctl fakellm

fake_std G D || exit 1
proxy_conf "provider_failures_to_eject = 2
provider_eject_ms = 1000"
# Groq is not probed; DeepSeek's probe is a one-token completion, once a minute at most
CONF_PROVIDERS=${CONF_PROVIDERS/"key_file = $W/keys/groq"/"key_file = $W/keys/groq
probe = no"}
CONF_PROVIDERS=${CONF_PROVIDERS/"key_file = $W/keys/deepseek"/"key_file = $W/keys/deepseek
probe_ttft_model = deepseek-chat
probe_ttft_per_hour = 60"}
CONF_PROBES=yes
CONF_HEALTH="probe_interval_ms = 300
probe_interval_down_ms = 200
probe_timeout_ms = 1000"
detourd_start || exit 1

OAI=0 GROQ=1 DS=2
ctl() { "$DETOURCTL" --pin-dir "$PIN" "$@"; }
# status NAME PATH: a field of provider NAME in `detourctl status --json` ("" if none)
status() { jget "$(ctl status --json | "$PY" -c 'import json,sys
print(json.dumps([p for p in json.load(sys.stdin)["providers"] if p["name"] == sys.argv[1]][0]))' "$1")" "$2"; }
# field NAME=: its value in health_fields' line on stdin
field() { tr ' ' '\n' | sed -n "s/^$1=//p"; }
state_is() { local h; h=$(health "$1"); [ "${h%% *}" = "$2" ] && [[ "$h" == *"$3"* ]]; }
fake_count() { jget "$(fake_admin "$1" GET /stats)" "$2"; }
path_count() { fake_admin "$1" GET /stats | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["by_path"][sys.argv[1]])' "$2"; }
oai_count() { echo $(( $(path_count A "$1") + $(path_count B "$1") )); }
# tcp FIELD ADDR...: that counter of tcp_signals summed over the endpoints (port 443)
tcp() {
	local f=$1 a n=0 v; shift
	for a in "$@"; do
		v=$(bpftool -j map dump pinned "$PIN/tcp_signals" 2>/dev/null |
			"$PY" "$E2E_LIB_DIR/bpfjson.py" verdict "$a" 443 | sed -n "s/^$f=//p")
		n=$((n + ${v:-0}))
	done
	echo $n
}

# ---- active probes ---------------------------------------------------------------

wait_for 5 eval '[ "$(oai_count /v1/models)" -ge 2 ]'
check "probes: OpenAI's model list is asked without any client" "$(oai_count /v1/models) model-list calls" \
	[ "$(oai_count /v1/models)" -ge 2 ]
check "... and the verdict stays HEALTHY" "$(health $OAI)" state_is $OAI 0 ""

fake_fault A '{"mode":"status","status":503}' && fake_fault B '{"mode":"status","status":503}'
wait_for 5 state_is $OAI 3 "consecutive failures"
check "probes answered 503: OpenAI goes DOWN in the map from probes alone" "$(health $OAI)" \
	state_is $OAI 3 "2 consecutive failures"
fake_fault A '{"mode":"ok"}' && fake_fault B '{"mode":"ok"}'
wait_for 10 state_is $OAI 0 ""
check "answering again: half-open probe trials bring it back to HEALTHY" "$(health $OAI)" \
	state_is $OAI 0 "trials succeeded"
check "... and no chat completion was ever sent to OpenAI" "$(oai_count /v1/chat/completions)" \
	[ "$(oai_count /v1/chat/completions)" = 0 ]

wait_for 5 grep -q "provider deepseek: TTFT probe cost" "$DETOURD_LOG"
check "TTFT probe (opt-in): a one-token completion to DeepSeek, its cost logged" \
	"$(grep -c 'TTFT probe cost' "$DETOURD_LOG") cost lines; $(path_count D /v1/chat/completions) completions" \
	eval '[ "$(path_count D /v1/chat/completions)" -ge 1 ] && grep -q "provider deepseek: TTFT probe cost [0-9]* input + [0-9]* output tokens" "$DETOURD_LOG"'
check "... once: the next probes within the hour are model lists" "$(path_count D /v1/chat/completions) completions" \
	[ "$(path_count D /v1/chat/completions)" = 1 ]
check "Groq (probe = no) is never probed" "$(fake_count G requests) requests" [ "$(fake_count G requests)" = 0 ]

# the counts are written again every second
wait_for 3 eval '[ "$(health_fields $DS | field probes.output_tokens)" -ge 1 ]'
h=$(health_fields $DS)
check "its cost in the provider_health map: one TTFT probe, its input and output tokens" \
	"$(tr ' ' '\n' <<<"$h" | grep '^probes\.' | tr '\n' ' ')" \
	eval '[ "$(field probes.ttft_probes <<<"$h")" = 1 ] && [ "$(field probes.input_tokens <<<"$h")" -ge 1 ] &&
	      [ "$(field probes.output_tokens <<<"$h")" -ge 1 ] && [ "$(field probes.sent <<<"$h")" -ge 2 ]'
check "... and the probes that found OpenAI failing (503) counted as failed" \
	"$(health_fields $OAI | tr ' ' '\n' | grep '^probes\.' | tr '\n' ' ')" \
	eval '[ "$(health_fields $OAI | field probes.failed)" -ge 2 ] && [ "$(health_fields $OAI | field probes.ttft_probes)" = 0 ]'
check "detourctl status --json shows them per provider" \
	"deepseek: $(status deepseek probes); openai: $(status openai probes)" \
	eval '[ "$(status deepseek probes.ttft_probes)" = 1 ] && [ "$(status deepseek probes.input_tokens)" -ge 1 ] &&
	      [ "$(status deepseek probes.output_tokens)" -ge 1 ] && [ "$(status openai probes.failed)" -ge 2 ]'
spend=$("$DETOURCTL" -c "$W/detour.conf" spend --json 2>&1)
check "... and in the cost accounting, under the application (probe)" "$spend" \
	"$PY" -c 'import json,sys; r=[r for r in json.loads(sys.argv[1])["rows"] if r["app"] == "(probe)"]
assert len(r) == 1 and r[0]["provider"] == "deepseek" and r[0]["model"] == "deepseek-chat", r
assert r[0]["requests"] >= 1 and r[0]["input_tokens"] >= 1 and r[0]["output_tokens"] >= 1, r' "$spend"
st=$(ctl status)
check "... and the table (a probes section)" "$(grep -A4 '^probes' <<<"$st")" \
	eval 'grep -A4 "^probes" <<<"$st" | grep -Eq "^  deepseek +[0-9]+ +[0-9]+ +1 +[1-9][0-9]* +[1-9]"'

# ---- kernel TCP signals --------------------------------------------------------------

fake_fault G '{"mode":"refuse"}'
r=$(ccurl other "https://$HOST_GROQ/openai/v1/models"; ccurl other "https://$HOST_GROQ/openai/v1/models")
n=$(tcp connect_fail $G4 $G6)
check "refused direct connects to Groq are counted in the pinned tcp_signals map" "$n connect_fail; curl: $r" \
	[ "$n" -ge 2 ]
wait_for 2 state_is $GROQ 3 ""
check "... and reach the health engine: Groq is DOWN without a probe or a proxied request" \
	"$(health $GROQ)" state_is $GROQ 3 "connects failed or reset, none succeeded"
check "... logged per event" "$(grep 'tcp: groq' "$DETOURD_LOG" | tail -1)" \
	grep -q "tcp: groq .*: connect_fail (a direct socket): Connection refused" "$DETOURD_LOG"
check "... and shown by detourctl status --json, summed over Groq's endpoints" \
	"$(status groq tcp); map: $n" eval '[ "$(status groq tcp.connect_fail)" -ge "$n" ]'
check "... and in its table" "$(grep -A4 '^kernel TCP signals' <<<"$(ctl status)")" \
	eval 'ctl status | grep -A4 "^kernel TCP signals" | grep -Eq "^  groq +[0-9]+ +[1-9]"'
fake_fault G '{"mode":"reset"}'
ccurl other "https://$HOST_GROQ/openai/v1/models" >/dev/null
wait_for 2 eval '[ "$(tcp resets_recv $G4 $G6)" -ge 1 ]'
check "connections reset by Groq are counted (resets_recv) and reach the agent" \
	"$(tcp resets_recv $G4 $G6) resets" \
	eval '[ "$(tcp resets_recv $G4 $G6)" -ge 1 ] && grep -q "tcp: groq .*: reset_recv (a direct socket)" "$DETOURD_LOG"'

# ---- routes and links -----------------------------------------------------------------

wait_for 5 state_is $DS 0 ""
t0=$(now_ms)
in_cli ip route add blackhole $D4/32 && in_cli ip -6 route add blackhole $D6/128
wait_for 2 state_is $DS 3 "route lost"
note "blackhole routes added -> DOWN in the map: $(( $(now_ms) - t0 )) ms (two ip runs and 50 ms polls included)"
check "blackhole routes to DeepSeek: DOWN at once, reason in the map" "$(health $DS)" \
	state_is $DS 3 "route lost"
check "... OpenAI, still routed, is not touched" "$(health $OAI)" state_is $OAI 0 ""
in_cli ip route del blackhole $D4/32 && in_cli ip -6 route del blackhole $D6/128
wait_for 5 state_is $DS 0 ""
check "routes back: probed at once, HEALTHY again" "$(health $DS)" state_is $DS 0 "trials succeeded"
check "... the way there logged" "$(grep 'net: deepseek' "$DETOURD_LOG" | tail -2)" \
	grep -q "net: deepseek .*: route-back" "$DETOURD_LOG"

t0=$(now_ms)
in_cli ip link set c0 down
wait_for 2 eval 'state_is $DS 3 "uplink down" && state_is $OAI 3 "uplink down"'
note "veth down -> DOWN in the map: $(( $(now_ms) - t0 )) ms (50 ms polls included)"
check "client veth down: every provider DOWN at once, \"uplink down\"" \
	"deepseek: $(health $DS); openai: $(health $OAI)" \
	eval 'state_is $DS 3 "uplink down" && state_is $OAI 3 "uplink down"'
in_cli ip link set c0 up
wait_for 8 eval 'state_is $DS 0 "" && state_is $OAI 0 ""'
check "veth up: re-probed, HEALTHY again" "deepseek: $(health $DS); openai: $(health $OAI)" \
	eval 'state_is $DS 0 "trials succeeded" && state_is $OAI 0 "trials succeeded"'

# ---- reload -------------------------------------------------------------------------

CONF_PROBES=no conf_write "$W/detour.conf"
kill -HUP "$DETOURD_PID"
wait_for 5 grep -q "probes stopped" "$DETOURD_LOG"
n0=$(oai_count /v1/models)
sleep 1 # three probe intervals
n1=$(oai_count /v1/models)
check "SIGHUP with probes = no: probing stops" "$((n1 - n0)) model-list calls after the reload" \
	eval 'grep -q "probes stopped" "$DETOURD_LOG" && [ $n1 = $n0 ]'

out="$(ctl status; ctl status --json)"
check "no key appears in detourctl status" "$(grep -cF -e "$KEY_GROQ" -e "$KEY_DEEPSEEK" <<<"$out") lines" \
	eval '! grep -qF -e "$KEY_GROQ" -e "$KEY_DEEPSEEK" <<<"$out"'
check "the agent is still alive" "detourd exited" alive "$DETOURD_PID"
e2e_finish
