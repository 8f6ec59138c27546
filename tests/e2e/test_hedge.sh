#!/bin/bash
# Hedged requests: a request whose primary (OpenAI, fakellm A/B) has not
# answered by the hedge deadline is sent to the next member (Groq) as well;
# the first to answer wins and the other is cancelled (fakellm counts the
# request its client abandoned). The answer names the provider hedged against
# (x-detour-hedged). No hedge when the primary answers in time or when the
# retry budget is spent; a hedge that fails, or never answers, leaves the
# primary to answer (and a hedge that never answers is the one cancelled);
# when both fail, failover goes on; the proxy_stats map counts hedges (and
# `detourctl status` shows them); a client that leaves gives back its
# attempt's half-open trial slot; a cancelled primary counts as a slow call,
# never as a failure. Timing is bench's: nothing here asserts how long
# anything took.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_require detourd detourctl fakellm

fake_std G D || exit 1
KEY_APP=sk-app-own-key-0001
# conf FIRST-BYTE-TIMEOUT-MS [PROXY-LINES]: the configuration. No usual time
# is known yet, so the deadline is hedge_max_ms; the first-byte timeout is
# far beyond it but where a test wants it, so only a hedge can answer before
# the primary does. Failures eject after $EJECT (default: never here).
conf() {
	proxy_conf "first_byte_timeout_ms = $1
stream_idle_timeout_ms = 20000
provider_failures_to_eject = ${EJECT:-1000}
hedge_min_ms = 200
hedge_max_ms = 400${2:+
$2}"
	conf_write "$W/detour.conf"
}
# reload FIRST-BYTE-TIMEOUT-MS [PROXY-LINES]: that configuration, applied
reload() {
	local n0
	conf "$@"
	n0=$(log_count "configuration reloaded")
	kill -HUP "$DETOURD_PID"
	wait_for 5 eval '[ $(log_count "configuration reloaded") -gt $n0 ]'
}
log_count() { grep -c "$1" "$DETOURD_LOG"; }
conf 20000 "retry_budget_min = 1000"
# no reordering by slowness until the last part
CONF_HEALTH="min_calls = 1000000000"
detourd_start || exit 1
CURL_CA=$W/state/ca/root.pem

# ask [STREAM [CURL-ARGS...]]: one chat completion from the enrolled cgroup;
# prints "status fakellm x-detour-provider x-detour-hedged x-detour-tried"
# ("-" for a header not sent), and for a stream the count of [DONE]
ask() {
	local stream=${1:-false} h
	shift
	CURL_OUT=$W/answer CURL_W='%{http_code}' ccurl enrolled -H 'content-type: application/json' \
		-H "authorization: Bearer $KEY_APP" -D "$W/answer.h" "$@" \
		-d "{\"model\":\"gpt-4o-mini\",\"stream\":$stream,\"messages\":[{\"role\":\"user\",\"content\":\"hello there\"}]}" \
		"https://$HOST_OAI/v1/chat/completions" >"$W/answer.code" 2>/dev/null
	h() { local v; v=$(sed -n "s/^$1: *//Ip" "$W/answer.h" | tr -d '\r' | head -1); echo "${v:-$2}"; }
	echo -n "$(cat "$W/answer.code") $(h x-fakellm-name '?') $(h x-detour-provider -) $(h x-detour-hedged -) $(h x-detour-tried -)"
	[ "$stream" = true ] && echo -n " $(grep -c '^data: \[DONE\]' "$W/answer")"
	echo
}
stat_of() { jget "$(fake_admin "$1" GET /stats)" "$2"; }
# abandoned: requests OpenAI's endpoints saw their client leave
abandoned() { echo $(( $(stat_of A abandoned) + $(stat_of B abandoned) )); }
primary() { fake_fault A "$1" && fake_fault B "$1"; }
# counters: "hedges hedges_won hedges_unfunded" of the proxy_stats map
# (written on detourd's heartbeat)
counters() {
	bpftool -j map lookup pinned "$PIN/proxy_stats" key 0 0 0 0 2>/dev/null | "$PY" -c '
import json, sys
v = json.load(sys.stdin)
v = v.get("formatted", v)["value"]
print(v["hedges"], v["hedges_won"], v["hedges_unfunded"])'
}

# 1. the primary answers before the deadline: no hedge, Groq never asked
g0=$(stat_of G requests)
r=$(ask)
check "primary in time: OpenAI answers, not hedged" "$r" eval '[[ "$r" =~ ^200\ [AB]\ openai\ -\ -$ ]]'
r=$(ask true)
check "primary in time, streaming: OpenAI's stream, not hedged" "$r" eval '[[ "$r" =~ ^200\ [AB]\ openai\ -\ -\ 1$ ]]'
check "... Groq got no request, and nothing was logged as hedged" "Groq got $(( $(stat_of G requests) - g0 ))" \
	eval '[ $(stat_of G requests) -eq $g0 ] && [ $(log_count "hedged to") -eq 0 ]'
check "... and the proxy_stats map counts no hedge" "$(counters)" [ "$(counters)" = "0 0 0" ]

# 2. the primary's first byte is late (degradation) or never comes (hang):
# Groq answers, the primary's request is cancelled, zero client errors
for fault in 'slow:{"mode":"slow","ttft_ms":4000}' 'hang:{"mode":"hang"}'; do
	name=${fault%%:*}
	primary "${fault#*:}"
	for stream in false true; do
		a0=$(abandoned) h0=$(log_count "openai has not answered in [0-9]* ms: hedged to groq")
		w0=$(log_count "groq answered first, openai cancelled")
		r=$(ask $stream)
		want='^200 G groq openai -$'
		[ $stream = true ] && want='^200 G groq openai - 1$'
		check "primary $name (stream=$stream): Groq answers, x-detour-hedged names OpenAI, no failure noted" \
			"$r" eval '[[ "$r" =~ $want ]]'
		check "... the hedge and its winner are logged" "$(grep -E 'hedged|cancelled' "$DETOURD_LOG" | tail -2)" \
			eval '[ $(log_count "openai has not answered in [0-9]* ms: hedged to groq") -eq $((h0 + 1)) ] &&
			      [ $(log_count "groq answered first, openai cancelled") -eq $((w0 + 1)) ]'
		check "... and OpenAI's request was cancelled: its client left" "abandoned $a0 -> $(abandoned)" \
			wait_for 5 eval '[ $(abandoned) -eq $((a0 + 1)) ]'
	done
done

check "proxy_stats: 4 hedges sent, 4 answered first" "$(counters)" wait_for 2 eval '[ "$(counters)" = "4 4 0" ]'

# 3. the hedge fails (Groq 503) while the primary is slow: the primary goes
# on and answers; the failure is noted
fake_fault G '{"mode":"status","status":503}'
primary '{"mode":"slow","ttft_ms":1500}'
a0=$(abandoned)
r=$(ask)
check "hedge fails: the slow primary still answers, hedged, Groq's 503 noted" "$r" \
	eval '[[ "$r" =~ ^200\ [AB]\ openai\ openai\ groq=503$ ]]'
check "... and OpenAI's request was never cancelled" "abandoned $a0 -> $(abandoned)" [ "$(abandoned)" -eq "$a0" ]
check "... counted as a hedge that did not win" "$(counters)" wait_for 2 eval '[ "$(counters)" = "5 4 0" ]'

# the hedge never answers (Groq hangs): the slow primary wins the race and
# the hedge is the one cancelled
fake_fault G '{"mode":"hang"}'
g0=$(stat_of G abandoned)
r=$(ask)
check "hedge slower than the primary: the primary answers, hedged, nothing failed" "$r" \
	eval '[[ "$r" =~ ^200\ [AB]\ openai\ openai\ -$ ]]'
check "... and Groq's request was cancelled" "abandoned $g0 -> $(stat_of G abandoned)" \
	wait_for 5 eval '[ $(stat_of G abandoned) -eq $((g0 + 1)) ]'
check "... counted as a hedge that did not win" "$(counters)" wait_for 2 eval '[ "$(counters)" = "6 4 0" ]'
fake_fault G '{"mode":"ok"}'

# 4. both fail (the primary hangs until its first-byte timeout, the hedge
# answers 503): failover goes on to the next member, DeepSeek
reload 1500 "retry_budget_min = 1000"
fake_fault G '{"mode":"status","status":503}'
primary '{"mode":"hang"}'
r=$(ask)
check "hedge and primary both fail: DeepSeek answers, both failures noted" "$r" \
	eval '[[ "$r" =~ ^200\ D\ deepseek\ openai\ groq=503,\ openai=first-byte-timeout$ ]]'
fake_fault G '{"mode":"ok"}'
primary '{"mode":"slow","ttft_ms":1500}'

# 5. the retry budget is spent: no hedge, the request waits for the primary
reload 20000 "retry_budget_min = 0
retry_budget_percent = 0"
g0=$(stat_of G requests)
r=$(ask)
check "budget spent: the slow primary answers, not hedged" "$r" eval '[[ "$r" =~ ^200\ [AB]\ openai\ -\ -$ ]]'
check "... the hedge not taken is logged, Groq got no request" "$(grep 'not hedged' "$DETOURD_LOG" | tail -1)" \
	eval '[ $(log_count "openai has not answered in [0-9]* ms: not hedged, retry budget exhausted") -eq 1 ] &&
	      [ $(stat_of G requests) -eq $g0 ]'
check "... and counted as a hedge not funded" "$(counters)" wait_for 2 eval '[ "$(counters)" = "7 4 1" ]'
j=$("$DETOURCTL" --pin-dir "$PIN" status --json)
check "detourctl status --json shows the proxy's hedge counters" "$(jget "$j" proxy)" \
	eval '[ "$(jget "$j" proxy.hedges) $(jget "$j" proxy.hedges_won) $(jget "$j" proxy.hedges_unfunded)" = "7 4 1" ]'
st=$("$DETOURCTL" --pin-dir "$PIN" status)
check "... and its table" "$(grep -A4 '^proxy counters' <<<"$st" | tr -s ' ' | tr '\n' ';')" \
	eval 'grep -A4 "^proxy counters" <<<"$st" | tr -s " " | tr "\n" ";" |
	      grep -q "hedges 7; hedges_won 4; hedges_unfunded 1;"'

# 6. a client that leaves gives back the half-open trial slot its attempt
# held: the next request is the trial, not sent elsewhere as "half-open-busy"
# until the lost trial's timeout (30 s). (The proxy sees a client leave when
# it writes to it: here in the middle of a slow stream.)
CONF_HEALTH="min_calls = 1000000000
trial_requests = 1"
EJECT=2 reload 20000 "retry_budget_min = 1000
provider_eject_ms = 500
hedge = no"
primary '{"mode":"status","status":503}'
ask >/dev/null
ask >/dev/null
check "two 503s eject OpenAI's model; its ejection ends" "$(grep 'health: openai' "$DETOURD_LOG" | tail -2)" \
	wait_for 3 grep -q "health: openai model gpt-4o-mini: down -> probing" "$DETOURD_LOG"
primary '{"mode":"slow","ttft_ms":10,"token_ms":300}'
a0=$(abandoned)
r=$(ask true --max-time 1)
check "half-open: the trial goes to OpenAI, whose stream is slow; the client leaves in the middle" \
	"$r; abandoned $a0 -> $(abandoned)" wait_for 5 eval '[ $(abandoned) -eq $((a0 + 1)) ]'
primary '{"mode":"ok"}'
r=$(ask)
check "... its slot was given back: the next request is OpenAI's trial" "$r" \
	eval '[[ "$r" =~ ^200\ [AB]\ openai\ -\ -$ ]]'

# 7. what the health engine hears of a cancelled primary: a slow call (it
# had waited longer than the slow ceiling), never a failure; slow calls
# degrade it, so it goes behind Groq and is no longer hedged against
CONF_HEALTH="min_calls = 3
slow_ceiling_ms = 300"
reload 20000 "retry_budget_min = 1000"
since() { tail -n +$((l0 + 1)) "$DETOURD_LOG"; }
l0=$(wc -l <"$DETOURD_LOG")
primary '{"mode":"slow","ttft_ms":4000}'
bad=0 out=""
for i in 1 2 3 4 5; do
	r=$(ask true)
	[[ "$r" =~ ^200\ G\ groq\ (openai|-)\ -\ 1$ ]] || { bad=$((bad + 1)); out="$out [$r]"; }
	since | grep -q "health: openai model gpt-4o-mini: healthy -> degraded (slow calls" && break
done
check "hedged streams: Groq answers each, zero errors" "$bad bad:$out" [ $bad -eq 0 ]
check "... the cancelled OpenAI calls degrade its model as slow calls" "$(since | grep 'health: openai' | tail -2)" \
	eval 'since | grep -qE "health: openai model gpt-4o-mini: healthy -> degraded \(slow calls [0-9]+% over [0-9]+ calls\)"'
check "... and never count as failures" "$(since | grep 'health: openai' | grep -E 'down|failure' | tail -2)" \
	eval '! since | grep "health: openai" | grep -qE "down|failure"'
r=$(ask true)
check "degraded: Groq goes first, no hedge needed" "$r" eval '[[ "$r" =~ ^200\ G\ groq\ -\ -\ 1$ ]]'

check "the agent is still alive" "detourd exited" alive "$DETOURD_PID"
e2e_finish
