#!/bin/bash
# Load balancing through the re-signing proxy (docs/routing.md, balanced
# strategies): a `cheapest` class sends a request addressed to OpenAI to its
# cheapest member (DeepSeek, with detour's key), then to the next cheapest
# when that one fails; a `least_latency` class learns from the answers'
# times that OpenAI is slow and stops sending it requests first. Capability
# tiers: a request with tools skips DeepSeek, declared without them, for
# the next cheapest. Stickiness: in a `weighted` class, which would rotate
# every request, each conversation stays on the provider of its first
# answer (fakellm's counts per provider), and moves with a failover.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_require detourd fakellm

fake_std G D || exit 1

KEY_APP=sk-app-own-key-0001
proxy_conf "first_byte_timeout_ms = 3000
retry_budget_min = 1000
provider_failures_to_eject = 1000"
# prices in $ per million tokens, input and output: DeepSeek 1.37 <
# Groq 1.38 < OpenAI 12.50
CONF_PROVIDERS="${CONF_PROVIDERS/member = openai:gpt-4o-mini/strategy = cheapest
member = openai:gpt-4o-mini price_in=2.50 price_out=10 caps=tools,images,json}"
CONF_PROVIDERS="${CONF_PROVIDERS/member = groq:llama-3.3-70b-versatile/member = groq:llama-3.3-70b-versatile price_in=0.59 price_out=0.79 caps=tools,json}"
CONF_PROVIDERS="${CONF_PROVIDERS/member = deepseek:deepseek-chat/member = deepseek:deepseek-chat price_in=0.27 price_out=1.10 caps=json}
[class chat-large]
strategy = least_latency
member = openai:gpt-4o
member = groq:llama-3.1-8b-instant
member = deepseek:deepseek-reasoner

[class chat-sticky]
strategy = weighted
sticky = yes
member = openai:gpt-4.1
member = groq:llama-4-scout
member = deepseek:deepseek-v3"
CONF_HEALTH="min_calls = 1000000000"
detourd_start || exit 1
CURL_CA=$W/state/ca/root.pem

# ask MODEL: one chat completion to api.openai.com from the enrolled cgroup
# with the app's own key; prints "status fakellm x-detour-model"
ask() { ask_body "{\"model\":\"$1\",\"messages\":[{\"role\":\"user\",\"content\":\"hello there\"}]}"; }
# ask_body BODY: the same with that request body; its head stays in $W/answer.h
ask_body() {
	local body=$1
	CURL_OUT=$W/answer CURL_W='%{http_code}' ccurl enrolled -H 'content-type: application/json' \
		-H "authorization: Bearer $KEY_APP" -D "$W/answer.h" -d "$body" \
		"https://$HOST_OAI/v1/chat/completions" >"$W/answer.code" 2>"$W/answer.err"
	echo "$(cat "$W/answer.code") $(sed -n 's/^x-fakellm-name: *\([A-Z]*\).*/\1/Ip' "$W/answer.h" | tr -d '\r' | head -1) $(sed -n 's/^x-detour-model: *//Ip' "$W/answer.h" | tr -d '\r' | head -1)"
}
# ask_n N MODEL: N answers, one per line
ask_n() { local i; for ((i = 0; i < $1; i++)); do ask "$2"; done; }
last_auth() { jget "$(fake_admin "$1" GET /stats)" last_request.authorization; }
# header NAME: of the last answer
header() { sed -n "s/^$1: *//Ip" "$W/answer.h" | tr -d '\r' | head -1; }
# requests: fakellm's request counts "A+B G D" (OpenAI is served by A and B)
requests() {
	local f n=()
	for f in A B G D; do n+=("$(jget "$(fake_admin "$f" GET /stats)" requests)"); done
	echo "$((n[0] + n[1])) ${n[2]} ${n[3]}"
}

# ---- cheapest ---------------------------------------------------------------------
r=$(ask_n 6 gpt-4o-mini)
check "cheapest: every request addressed to OpenAI answered by DeepSeek" "$r" \
	[ "$(grep -c '^200 D deepseek-chat$' <<<"$r")" = 6 ]
check "cheapest: DeepSeek got detour's key" "$(last_auth D)" [ "$(last_auth D)" = "Bearer $KEY_DEEPSEEK" ]
fake_fault D '{"mode":"status","status":503}'
r=$(ask_n 4 gpt-4o-mini)
check "cheapest: DeepSeek failing, the next cheapest (Groq) answers" "$r" \
	[ "$(grep -c '^200 G llama-3.3-70b-versatile$' <<<"$r")" = 4 ]
fake_fault D '{"mode":"ok"}'

# ---- least latency ----------------------------------------------------------------
fake_fault A '{"mode":"slow","ttft_ms":400}'; fake_fault B '{"mode":"slow","ttft_ms":400}'
# the first few draw members never measured: OpenAI's slowness is learnt
# from its first answer
r=$(ask_n 4 gpt-4o)
check "least latency: while learning, every request answered" "$r" [ "$(grep -c '^200 ' <<<"$r")" = 4 ]
r=$(ask_n 16 gpt-4o)
check "least latency: once measured, slow OpenAI never goes first" "$r" \
	[ "$(grep -c '^200 [GD] ' <<<"$r")" = 16 ]
check "least latency: both fast members share the load" "$r" \
	eval '[ "$(grep -c "^200 G " <<<"$r")" -ge 2 ] && [ "$(grep -c "^200 D " <<<"$r")" -ge 2 ]'
fake_fault A '{"mode":"ok"}'; fake_fault B '{"mode":"ok"}'

# ---- capability tiers ----------------------------------------------------------
TOOLS='"tools":[{"type":"function","function":{"name":"weather","parameters":{"type":"object","properties":{}}}}]'
r=$(ask_body "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"weather?\"}],$TOOLS}")
check "tiers: a request with tools skips DeepSeek (no tools) for Groq" "$r" [ "$r" = "200 G llama-3.3-70b-versatile" ]
check "tiers: x-detour-skipped names DeepSeek and what it lacks" "$(header x-detour-skipped)" \
	[ "$(header x-detour-skipped)" = "deepseek=tools" ]
before=$(requests)
r=$(for i in 1 2 3; do ask_body "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"q$i\"}],$TOOLS}"; done)
check "tiers: DeepSeek got none of them (fakellm counts: $before -> $(requests))" "$r" \
	[ "$(cut -d' ' -f3 <<<"$(requests)")" = "$(cut -d' ' -f3 <<<"$before")" ]
r=$(ask gpt-4o-mini)
skipped=$(header x-detour-skipped)
check "tiers: without tools, DeepSeek (the cheapest) again, nothing skipped" "$r, skipped: $skipped" \
	eval '[ "$r" = "200 D deepseek-chat" ] && [ -z "$skipped" ]'

# ---- stickiness ---------------------------------------------------------------------
# turn CONV N: the Nth request of conversation CONV (its first question, then
# the answers and questions so far); prints "status fakellm x-detour-sticky"
turn() {
	local msgs="{\"role\":\"system\",\"content\":\"You plan trips.\"},{\"role\":\"user\",\"content\":\"Trip $1?\"}" i
	for ((i = 2; i <= $2; i++)); do
		msgs+=",{\"role\":\"assistant\",\"content\":\"Answer $((i - 1)).\"},{\"role\":\"user\",\"content\":\"Question $i?\"}"
	done
	r=$(ask_body "{\"model\":\"gpt-4.1\",\"messages\":[$msgs]}")
	echo "${r% *} $(header x-detour-sticky)"
}
# the round-robin places each new conversation on the next member
before=$(requests)
r1=$(turn rome 1); r2=$(turn oslo 1)
check "sticky: a new conversation is placed by the strategy" "$r1 / $r2" \
	eval '[ "${r1%% *}" = 200 ] && [ "${r1##* }" = new ] && [ "${r2##* }" = new ] && [ "$(cut -d" " -f2 <<<"$r1")" != "$(cut -d" " -f2 <<<"$r2")" ]'
p1=$(cut -d' ' -f2 <<<"$r1"); p2=$(cut -d' ' -f2 <<<"$r2")
r=$(for n in 2 3 4 5 6; do turn rome $n; turn oslo $n; done)
check "sticky: each conversation's next turns go to its provider" "$r" \
	eval '[ "$(grep -c "^200 $p1 hit$" <<<"$r")" = 5 ] && [ "$(grep -c "^200 $p2 hit$" <<<"$r")" = 5 ]'
# fakellm's counts: 6 turns each on two providers, none on the third
after=$(requests)
read -r b1 b2 b3 <<<"$before"; read -r a1 a2 a3 <<<"$after"
counts="$((a1 - b1)) $((a2 - b2)) $((a3 - b3))"
check "sticky: fakellm saw 6 and 6 requests on two providers, 0 on the third ($counts)" "$counts" \
	[ "$(tr ' ' '\n' <<<"$counts" | sort -n | tr '\n' ' ')" = "0 6 6 " ]
# its provider failing: the turn is answered elsewhere, and the conversation
# stays there when its provider is back
prov_of() { case $1 in A|B) echo A ;; *) echo "$1" ;; esac; }
faulted=$(prov_of "$p1")
fake_fault "$faulted" '{"mode":"status","status":503}'
[ "$faulted" = A ] && fake_fault B '{"mode":"status","status":503}'
r=$(turn rome 7)
fake_fault "$faulted" '{"mode":"ok"}'
[ "$faulted" = A ] && fake_fault B '{"mode":"ok"}'
moved=$(cut -d' ' -f2 <<<"$r")
check "sticky: its provider failing, another member answers" "$r" \
	eval '[ "${r%% *}" = 200 ] && [ "$(prov_of "$moved")" != "$faulted" ]'
r=$(turn rome 8)
check "sticky: and the conversation stays with it, its first provider back" "$r (moved to $moved)" \
	[ "$r" = "200 $moved hit" ]

check "the agent is still alive" "detourd exited" alive "$DETOURD_PID"
e2e_finish
