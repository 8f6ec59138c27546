#!/bin/bash
# Operator control of the health verdicts and their publishing: drain takes a
# provider out of routing (fakellm counts no request to it) and shows in
# `detourctl status` and in the provider_health map (bpftool); undrain puts
# it back; force keeps a failing provider in use; model verdicts are in the
# model_health map with named fields; `detourctl watch` prints a DOWN
# transition as it happens; overrides outlive a restart of detourd (the
# pinned overrides map); unknown providers and bad arguments are refused.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_require detourd detourctl fakellm

fake_std G D || exit 1
KEY_APP=sk-app-own-key-0001
proxy_conf "first_byte_timeout_ms = 1500
retry_budget_min = 1000
provider_failures_to_eject = 2
provider_eject_ms = 30000"
detourd_start || exit 1
CURL_CA=$W/state/ca/root.pem

ctl() { "$DETOURCTL" --pin-dir "$PIN" "$@"; }
# fields_are LINE NAME=VALUE...: health_fields' LINE has each of them (provider ids
# follow the configuration's order in a fresh pin dir: openai 0, groq 1)
fields_are() { local l=" $1 " f; shift; for f; do [[ "$l" == *" $f "* ]] || return 1; done; }
ask() {
	CURL_OUT=$W/answer CURL_W='%{http_code} %header{x-detour-provider}' ccurl enrolled \
		-H 'content-type: application/json' -H "authorization: Bearer $KEY_APP" \
		-d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello there"}]}' \
		"https://$HOST_OAI/v1/chat/completions"
}
# ask N times; prints how many answers did not come from $1
ask_n() {
	local want=$1 n=$2 bad=0 r
	for ((i = 0; i < n; i++)); do r=$(ask); [ "$r" = "200 $want" ] || bad=$((bad + 1)); done
	echo $bad
}
openai_calls() {
	echo $(( $(jget "$(fake_admin A GET /stats)" requests) + $(jget "$(fake_admin B GET /stats)" requests) ))
}
primary() { fake_fault A "$1" && fake_fault B "$1"; }

# ---- model verdicts in model_health ------------------------------------------
r=$(ask)
check "healthy: OpenAI answers" "$r" [ "$r" = "200 openai" ]
wait_for 3 test -n "$(health_fields 0 gpt-4o-mini)"
m=$(health_fields 0 gpt-4o-mini)
check "the model's verdict is in model_health, fields named (BTF)" "'$m'" fields_are "$m" state=0 override=0

j=$(ctl status --json)
check "status --json parses, with the provider's and the model's verdict" "$(jget "$j" providers.0)" \
	"$PY" -c 'import json,sys
d = json.loads(sys.argv[1]); p = [p for p in d["providers"] if p["name"] == "openai"][0]
h = p["health"]
assert h["state"] == "healthy" and h["override"] == "none" and h["calls"] >= 1, h
for k in ("reason", "reason_text", "since_ms", "until_ms", "ejections", "consecutive_failures",
          "ttft_baseline_us", "connect_baseline_us", "error_rate_percent", "slow_rate_percent"):
    assert k in h, k
m = [m for m in p["models"] if m["model"] == "gpt-4o-mini"]
assert len(m) == 1 and m[0]["state"] == "healthy", p["models"]' "$j"

# ---- drain, undrain ------------------------------------------------------------
out=$(ctl drain openai); rc=$?
check "drain openai: applied by the running detourd" "exit $rc: $out" \
	eval '[ $rc -eq 0 ] && [ "$out" = "openai: drained (applied)" ]'
h=$(health_fields 0)
check "... DOWN (3) with the override (1) in provider_health" "$h" fields_are "$h" state=3 override=1 reason_text=drained_by_operator
st=$(ctl status)
check "... and in status: the health row says down, drained" "$(echo "$st" | grep -A3 '^health')" \
	eval 'echo "$st" | grep -Eq "^  openai +- +down +drained by operator .* drained *$"'
n0=$(openai_calls)
bad=$(ask_n groq 3)
n1=$(openai_calls)
check "while drained: every request answered by Groq, none sent to OpenAI" "$bad not by groq; OpenAI got $((n1 - n0))" \
	eval '[ $bad -eq 0 ] && [ $((n1 - n0)) -eq 0 ]'

detourd_stop || true
out=$(ctl drain deepseek); rc=$?
check "drain with detourd stopped: recorded for its start" "exit $rc: $out" \
	eval '[ $rc -eq 0 ] && [ "$out" = "deepseek: drained (recorded; detourd applies it when it starts)" ]'
j=$(ctl status --json)
check "... status lists both overrides: openai's applied, deepseek's pending" "$(jget "$j" overrides)" \
	"$PY" -c 'import json,sys
o = json.loads(sys.argv[1])["overrides"]
assert [(x["provider"], x["model"], x["override"], x["configured"], x["applied"]) for x in o] == \
	[("deepseek", None, "drained", True, False), ("openai", None, "drained", True, True)], o' "$j"
detourd_start || exit 1
h=$(health_fields 0)
check "drain outlives a restart of detourd (re-applied from the pinned map)" "$h" fields_are "$h" state=3 override=1
h=$(health_fields 2)
check "... and the one recorded while it was stopped is applied at its start" "$h" fields_are "$h" state=3 override=1
st=$(ctl status)
check "... status: both applied" "$(echo "$st" | grep -A3 '^operator overrides')" \
	eval '[ "$(echo "$st" | grep -cE "^  (openai|deepseek) +- +drained +applied$")" = 2 ]'
ctl undrain deepseek >/dev/null
n0=$(openai_calls)
bad=$(ask_n groq 2)
n1=$(openai_calls)
check "... and still no request goes to OpenAI" "$bad not by groq; OpenAI got $((n1 - n0))" \
	eval '[ $bad -eq 0 ] && [ $((n1 - n0)) -eq 0 ]'

out=$(ctl undrain openai); rc=$?
check "undrain openai" "exit $rc: $out" eval '[ $rc -eq 0 ] && [ "$out" = "openai: override cleared (applied)" ]'
h=$(health_fields 0)
check "... HEALTHY (0) again, no override" "$h" fields_are "$h" state=0 override=0 reason_text=override_cleared
r=$(ask)
check "... and OpenAI answers again" "$r" [ "$r" = "200 openai" ]

# ---- watch: a DOWN transition as it happens -------------------------------------
ctl watch --timeout 20 >"$W/watch.out" 2>&1 &
WATCH_PID=$!
E2E_PIDS+=($WATCH_PID)
sleep 0.3 # its first reading: changes are counted from there
primary '{"mode":"reset"}'
bad=$(ask_n groq 2)
h=$(health_fields 0)
check "primary resets: answered by Groq, OpenAI DOWN" "$bad not by groq; $h" \
	eval '[ $bad -eq 0 ] && fields_are "$h" state=3 override=0'
# the deciding signal may be the proxy's failures or the kernel's resets: either reason
wait_for 3 grep -q ' openai: healthy -> down (' "$W/watch.out"
check "watch printed the transition: time, provider, from -> to, reason" "$(cat "$W/watch.out")" \
	grep -Eq '^20[0-9-]{8}T[0-9:.]{12}Z openai: healthy -> down \((2 consecutive failures|[0-9]+ connects failed or reset, none succeeded)\)$' "$W/watch.out"
stop_pid "$WATCH_PID" 2

# ---- force: a failing provider stays in use --------------------------------------
out=$(ctl force openai); rc=$?
primary '{"mode":"status","status":503}' # counted by fakellm, against the model too
h=$(health_fields 0)
check "force openai while it fails: HEALTHY (0), override forced (2)" "exit $rc: $out; $h" \
	eval '[ $rc -eq 0 ] && fields_are "$h" state=0 override=2 reason_text=forced_by_operator'
n0=$(openai_calls)
bad=$(ask_n groq 3)
n1=$(openai_calls)
h=$(health_fields 0)
check "... every request still tried on OpenAI first (answering 503, then Groq), verdict unmoved" \
	"$bad not by groq; OpenAI got $((n1 - n0)); $h" \
	eval '[ $bad -eq 0 ] && [ $((n1 - n0)) -ge 3 ] && fields_are "$h" state=0 override=2'
m=$(health_fields 0 gpt-4o-mini)
check "... while its model's own verdict, in model_health, is DOWN (3) from the 503s" "$m" \
	fields_are "$m" state=3 override=0
j=$(ctl status --json)
check "... status --json says forced" "$(jget "$j" providers.0.health)" \
	eval '[ "$(jget "$j" providers.0.health.override)" = forced ]'
primary '{"mode":"ok"}'
ctl undrain openai >/dev/null

# ---- models ----------------------------------------------------------------------
ctl watch --json --count 1 --timeout 10 >"$W/watch.json" 2>&1 &
WATCH_PID=$!
E2E_PIDS+=($WATCH_PID)
sleep 0.3
out=$(ctl drain groq llama-3.3-70b-versatile); rc=$?
m=$(health_fields 1 llama-3.3-70b-versatile)
check "drain a model: DOWN with its override in model_health" "exit $rc: $out; $m" \
	eval '[ $rc -eq 0 ] && fields_are "$m" state=3 override=1'
wait "$WATCH_PID"; rc=$?
check "watch --json: the model's change as one JSON line" "exit $rc: $(cat "$W/watch.json")" \
	"$PY" -c 'import json,sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 1, lines
c = json.loads(lines[0])
assert (c["provider"], c["model"], c["from"], c["to"], c["reason"]) == \
	("groq", "llama-3.3-70b-versatile", "healthy", "down", "drained"), c
assert c["reason_text"] == "drained by operator" and c["time"].endswith("Z"), c' "$W/watch.json"
ctl undrain groq llama-3.3-70b-versatile >/dev/null
m=$(health_fields 1 llama-3.3-70b-versatile)
check "... undrained" "$m" fields_are "$m" override=0

# ---- refusals ---------------------------------------------------------------------
ctl drain nosuch >/dev/null 2>"$W/err"; rc=$?
check "an unknown provider is refused: exit 1, the configured ones named" "exit $rc: $(cat "$W/err")" \
	eval '[ $rc -eq 1 ] && grep -q "no provider named .nosuch. (configured: openai, groq, deepseek)" "$W/err"'
ctl force >/dev/null 2>&1; rc=$?
check "force without a provider: usage, exit 2" "exit $rc" [ $rc -eq 2 ]
ctl watch --count x >/dev/null 2>&1; rc=$?
check "watch --count x: usage, exit 2" "exit $rc" [ $rc -eq 2 ]
ctl watch --count 1 --timeout 0.3 >/dev/null 2>&1; rc=$?
check "watch: --timeout before --count changes: exit 1" "exit $rc" [ $rc -eq 1 ]

# ---- a reload that removes a provider ------------------------------------------------
ctl drain groq >/dev/null
m=$(health_fields 1 llama-3.3-70b-versatile)
check "before the reload: groq's model verdict is in model_health" "'$m'" fields_are "$m" override=0
CONF_PROVIDERS=${CONF_PROVIDERS//$'member = groq:llama-3.3-70b-versatile\n'/}
CONF_PROVIDERS=${CONF_PROVIDERS/\[provider groq\]*\[provider deepseek\]/[provider deepseek]}
conf_write "$W/detour.conf"
kill -HUP "$DETOURD_PID"
wait_for 5 eval '[ -z "$(health_fields 1 llama-3.3-70b-versatile)" ]'
m=$(health_fields 1 llama-3.3-70b-versatile)
check "groq removed by a reload: its model's verdict left model_health" "'$m'" [ -z "$m" ]
j=$(ctl status --json)
check "... its drain stays recorded, for a provider by that name no longer configured" "$(jget "$j" overrides)" \
	"$PY" -c 'import json,sys
d = json.loads(sys.argv[1])
assert "groq" not in [p["name"] for p in d["providers"]], d["providers"]
assert [(x["provider"], x["model"], x["override"], x["configured"], x["applied"])
	for x in d["overrides"]] == [("groq", None, "drained", False, False)], d["overrides"]' "$j"
check "the agent is still alive" "detourd exited" alive "$DETOURD_PID"
e2e_finish
