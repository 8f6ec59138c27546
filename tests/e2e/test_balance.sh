#!/bin/bash
# Load balancing through the re-signing proxy (docs/routing.md, balanced
# strategies): a `cheapest` class sends a request addressed to OpenAI to its
# cheapest member (DeepSeek, with detour's key), then to the next cheapest
# when that one fails; a `least_latency` class learns from the answers'
# times that OpenAI is slow and stops sending it requests first.
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
member = openai:gpt-4o-mini price_in=2.50 price_out=10}"
CONF_PROVIDERS="${CONF_PROVIDERS/member = groq:llama-3.3-70b-versatile/member = groq:llama-3.3-70b-versatile price_in=0.59 price_out=0.79}"
CONF_PROVIDERS="${CONF_PROVIDERS/member = deepseek:deepseek-chat/member = deepseek:deepseek-chat price_in=0.27 price_out=1.10}
[class chat-large]
strategy = least_latency
member = openai:gpt-4o
member = groq:llama-3.1-8b-instant
member = deepseek:deepseek-reasoner"
CONF_HEALTH="min_calls = 1000000000"
detourd_start || exit 1
CURL_CA=$W/state/ca/root.pem

# ask MODEL: one chat completion to api.openai.com from the enrolled cgroup
# with the app's own key; prints "status fakellm x-detour-model"
ask() {
	local body="{\"model\":\"$1\",\"messages\":[{\"role\":\"user\",\"content\":\"hello there\"}]}"
	CURL_OUT=$W/answer CURL_W='%{http_code}' ccurl enrolled -H 'content-type: application/json' \
		-H "authorization: Bearer $KEY_APP" -D "$W/answer.h" -d "$body" \
		"https://$HOST_OAI/v1/chat/completions" >"$W/answer.code" 2>"$W/answer.err"
	echo "$(cat "$W/answer.code") $(sed -n 's/^x-fakellm-name: *\([A-Z]*\).*/\1/Ip' "$W/answer.h" | tr -d '\r' | head -1) $(sed -n 's/^x-detour-model: *//Ip' "$W/answer.h" | tr -d '\r' | head -1)"
}
# ask_n N MODEL: N answers, one per line
ask_n() { local i; for ((i = 0; i < $1; i++)); do ask "$2"; done; }
last_auth() { jget "$(fake_admin "$1" GET /stats)" last_request.authorization; }

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

check "the agent is still alive" "detourd exited" alive "$DETOURD_PID"
e2e_finish
