#!/bin/bash
# The re-signing proxy with unmodified curl: TLS to api.openai.com is
# terminated with a leaf of detour's CA; a request for a model of a class goes
# to OpenAI while it answers, and to Groq (then DeepSeek) when it does not,
# with the model renamed and the request signed with detour's key for that
# provider. Every fault of the primary leaves the client with zero errors.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_require detourd fakellm detourctl

fake_std G D plain || exit 1

KEY_APP=sk-app-own-key-0001
proxy_conf "first_byte_timeout_ms = 1500
stream_idle_timeout_ms = 1500
retry_budget_min = 1000
provider_failures_to_eject = 1000
max_body_bytes = 2097152"
CONF_PROVIDERS="$CONF_PROVIDERS

[provider plain]
hosts = $HOST_PLAIN
port = 80"
# failures are the point here: no ejection by failure rate either, so the
# order of the members stays the configured one
CONF_HEALTH="min_calls = 1000000000"
detourd_start || exit 1
CURL_CA=$W/state/ca/root.pem
check "detour's CA root exists for clients to trust" "no $CURL_CA" [ -s "$CURL_CA" ]

# ask MODEL [STREAM]: one chat completion to api.openai.com from the enrolled
# cgroup with the app's own key; prints "status provider model-in-body
# x-detour-model" (the client sees the model it asked for; the header says
# which one answered), and for a stream the count of [DONE]
ask() {
	local model=$1 stream=${2:-false} body
	body="{\"model\":\"$model\",\"stream\":$stream,\"messages\":[{\"role\":\"user\",\"content\":\"hello there\"}]}"
	CURL_OUT=$W/answer CURL_W='%{http_code}' ccurl enrolled -H 'content-type: application/json' \
		-H "authorization: Bearer $KEY_APP" -D "$W/answer.h" -d "$body" \
		"https://$HOST_OAI/v1/chat/completions" >"$W/answer.code" 2>"$W/answer.err"
	local code prov via
	code=$(cat "$W/answer.code")
	prov=$(sed -n 's/^x-fakellm-name: *\([A-Z]*\).*/\1/Ip' "$W/answer.h" | tr -d '\r' | head -1)
	via=$(sed -n 's/^x-detour-model: *//Ip' "$W/answer.h" | tr -d '\r' | head -1)
	if [ "$stream" = true ]; then
		echo "$code ${prov:-?} $(grep -o '"model":"[^"]*"' "$W/answer" | sort -u | cut -d'"' -f4 | tr '\n' ,) ${via:-?} $(grep -c '^data: \[DONE\]' "$W/answer")"
	else
		echo "$code ${prov:-?} $(jget "$(cat "$W/answer")" model) ${via:-?}"
	fi
}
last_auth() { jget "$(fake_admin "$1" GET /stats)" last_request.authorization; }

r=$(ask gpt-4o-mini)
check "healthy: answered by OpenAI (A or B) with the asked model" "$r" eval '[[ "$r" =~ ^200\ [AB]\ gpt-4o-mini\ gpt-4o-mini$ ]]'
check "healthy: the client's TLS was terminated by detour (its CA)" "$(cat "$W/answer.err")" \
	grep -qi '^x-detour-provider: openai' "$W/answer.h"
p=$(echo "$r" | cut -d' ' -f2)
check "healthy: OpenAI got the application's own key" "$(last_auth "$p")" \
	[ "$(last_auth "$p")" = "Bearer $KEY_APP" ]

primary() { fake_fault A "$1"; fake_fault B "$1"; }
for fault in '503:{"mode":"status","status":503}' '500:{"mode":"status","status":500}' \
	     '429:{"mode":"status","status":429,"retry_after":1}' 'reset:{"mode":"reset"}' \
	     'tls_fail:{"mode":"tls_fail"}' 'hang:{"mode":"hang"}' \
	     'slow-first-token:{"mode":"slow","ttft_ms":4000}'; do
	name=${fault%%:*}
	primary "${fault#*:}"
	bad=0 out=""
	for i in 1 2 3; do
		r=$(ask gpt-4o-mini)
		[[ "$r" =~ ^200\ G\ gpt-4o-mini\ llama-3.3-70b-versatile$ ]] || { bad=$((bad + 1)); out="$out [$r]"; }
	done
	check "primary $name: 3 of 3 answered by Groq's mapped model, shown as the asked one, zero errors" "$bad failed:$out" [ $bad -eq 0 ]
	check "primary $name: Groq got detour's key, never the app's" "$(last_auth G)" \
		[ "$(last_auth G)" = "Bearer $KEY_GROQ" ]
	primary '{"mode":"ok"}'
	sleep 1.1 # a 429's retry-after puts OpenAI aside this long
done

primary '{"mode":"status","status":503}'
r=$(ask gpt-4o-mini true)
check "streaming with the primary down: Groq's stream of the mapped model, every chunk showing the asked one, [DONE]" "$r" \
	eval '[[ "$r" =~ ^200\ G\ gpt-4o-mini,\ llama-3.3-70b-versatile\ 1$ ]]'
fake_fault G '{"mode":"status","status":503}'
r=$(ask gpt-4o-mini)
check "OpenAI and Groq down: DeepSeek answers" "$r" eval '[[ "$r" =~ ^200\ D\ gpt-4o-mini\ deepseek-chat$ ]]'
check "... signed with detour's DeepSeek key" "$(last_auth D)" [ "$(last_auth D)" = "Bearer $KEY_DEEPSEEK" ]
fake_fault D '{"mode":"status","status":503}'
r=$(ask gpt-4o-mini)
tried=$(sed -n 's/^x-detour-tried: *//Ip' "$W/answer.h" | tr -d '\r')
check "every member down: the last member's own 503, in OpenAI's error shape" "$r $(cat "$W/answer")" \
	eval '[[ "$r" =~ ^503\ D ]] && [ -n "$(jget "$(cat "$W/answer")" error.message)" ]'
check "... naming what detour tried before" "x-detour-tried: $tried" [ "$tried" = "openai=503, groq=503" ]
fake_fault G '{"mode":"ok"}'; fake_fault D '{"mode":"ok"}'

r=$(ask gpt-4o)
check "a model in no class is not moved: the primary's own 503 reaches the client" "$r" eval '[[ "$r" =~ ^503\ [AB] ]]'
primary '{"mode":"status","status":400}'
r=$(ask gpt-4o-mini)
check "a 400 blames the request: returned as is, never retried elsewhere" "$r" eval '[[ "$r" =~ ^400\ [AB] ]]'
primary '{"mode":"ok"}'

# what is not TLS for a provider host is relayed untouched: plain HTTP, and
# TLS naming another host on a provider's address (the provider's own cert)
snap
r=$(CURL_W='%{http_code} %header{x-fakellm-name} %header{x-detour-provider}' ccurl enrolled \
	-H 'content-type: application/json' -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}' \
	"http://$HOST_PLAIN/v1/chat/completions" 2>&1)
check "plain HTTP to a provider endpoint: redirected and relayed untouched" "$r; redirected +$(delta redirected)" \
	eval '[[ "$r" =~ ^200\ P[AB]\ *$ ]] && [ "$(delta redirected)" -eq 1 ]'
snap
r=$(CURL_CA=$W/ca.pem CURL_W='%{http_code} %header{x-fakellm-name} %header{x-detour-provider}' ccurl enrolled \
	--connect-to "$HOST_ANT:443:$A4:443" "https://$HOST_ANT/v1/models" 2>&1)
check "TLS for a host no provider here has, on a provider address: the provider's own certificate" \
	"$r; redirected +$(delta redirected)" eval '[[ "$r" =~ ^200\ A\ *$ ]] && [ "$(delta redirected)" -eq 1 ]'

# bodies: curl sends `Expect: 100-continue` above 1 MiB; within the limit the
# proxy lets it go on, over it the answer is a 413 in OpenAI's shape at once
big_body() { # BYTES: a chat request padded to about that size
	"$PY" -c 'import json,sys; n=int(sys.argv[1]); print(json.dumps({"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"*n}]}))' "$1" >"$W/big.json"
}
big_body 1500000
r=$(CURL_W='%{http_code}' CURL_OUT="$W/answer" ccurl enrolled -H 'content-type: application/json' \
	--data-binary @"$W/big.json" "https://$HOST_OAI/v1/chat/completions" 2>&1)
check "a 1.5 MB body (Expect: 100-continue) within the limit: answered" "$r" [ "$r" = 200 ]
big_body 3000000
r=$(CURL_W='%{http_code}' CURL_OUT="$W/answer" ccurl enrolled -H 'content-type: application/json' \
	--data-binary @"$W/big.json" "https://$HOST_OAI/v1/chat/completions" 2>&1)
check "a 3 MB body over max_body_bytes: 413 in OpenAI's error shape" "$r $(head -c 200 "$W/answer")" \
	eval '[ "$r" = 413 ] && [ -n "$(jget "$(cat "$W/answer")" error.message)" ]'

# a 401 blames the key: the next member answers, signed with detour's key
primary '{"mode":"status","status":401}'
r=$(ask gpt-4o-mini)
check "primary 401 (key refused): Groq answers instead" "$r" eval '[[ "$r" =~ ^200\ G\ gpt-4o-mini\ llama-3.3-70b-versatile$ ]]'
primary '{"mode":"ok"}'

# after the commit point a stalled stream is ended with an error event in
# OpenAI's shape, never passed off as complete
primary '{"mode":"slow","ttft_ms":0,"token_ms":3000}'
r=$(ask gpt-4o-mini true)
check "a stream that stalls after its first byte ends with an error event, no [DONE]" \
	"$r / $(tail -c 300 "$W/answer")" \
	eval 'grep -q "^data: {\"error\"" "$W/answer" && ! grep -q "^data: \[DONE\]" "$W/answer"'
primary '{"mode":"ok"}'

# a stream that breaks (reset) or ends cleanly but without its end marker,
# after the first byte, is never passed off as complete
for cut in 'reset:false' 'no-end-marker:true'; do
	primary "{\"mode\":\"cut\",\"after_tokens\":3,\"token_ms\":50,\"clean\":${cut#*:}}"
	r=$(ask gpt-4o-mini true)
	check "a stream cut after its first byte (${cut%%:*}) ends with an error event, no [DONE]" \
		"$r / $(tail -c 300 "$W/answer")" \
		eval 'grep -q "^data: {\"error\"" "$W/answer" && ! grep -q "^data: \[DONE\]" "$W/answer"'
done
primary '{"mode":"ok"}'

# a client leaving in the middle of a stream costs the agent nothing
primary '{"mode":"slow","ttft_ms":0,"token_ms":100}'
CURL_OUT=/dev/null ccurl enrolled --max-time 0.5 -H 'content-type: application/json' \
	-d '{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}' \
	"https://$HOST_OAI/v1/chat/completions" >/dev/null 2>&1
sleep 1
check "a client leaving mid-stream: the agent lives on" "detourd exited" alive "$DETOURD_PID"
primary '{"mode":"ok"}'

# only connections the hook redirected are served: a local process dialling
# the listener itself gets nothing (the keys detour holds are not for it)
r=$(CURL_W='%{http_code}' CURL_OUT=/dev/null ccurl other --connect-to "$HOST_OAI:443:127.0.0.1:$LISTEN_PORT" \
	-H 'content-type: application/json' -d '{"model":"gpt-4o-mini","messages":[]}' \
	"https://$HOST_OAI/v1/chat/completions" 2>/dev/null)
check "a direct connection to the listener is refused" "curl got HTTP '$r'" [ "$r" = 000 ]

# an application with keys of its own: on its original provider detour signs
# with them instead of the credential the application sent
echo "sk-app-configured-0004" >"$W/keys/app-openai"; chmod 600 "$W/keys/app-openai"
CONF_PROVIDERS="$CONF_PROVIDERS

[app chatbot]
cgroup = $CG_ENROLLED
key.openai = file:$W/keys/app-openai"
conf_write "$W/detour.conf"
kill -HUP "$DETOURD_PID"
wait_for 5 grep -q "configuration reloaded" "$DETOURD_LOG"
r=$(ask gpt-4o-mini)
p=$(echo "$r" | cut -d' ' -f2)
check "[app] key: OpenAI got the application's configured key, not the one it sent" \
	"$r; auth $(last_auth "$p")" [ "$(last_auth "$p")" = "Bearer sk-app-configured-0004" ]

log=$(cat "$W"/log/detourd.*.log; "$DETOURCTL" --pin-dir "$PIN" status; "$DETOURCTL" --pin-dir "$PIN" status --json)
check "keys appear in no log and no detourctl output" "a key was printed" \
	eval '! grep -qe "$KEY_APP" -e "$KEY_GROQ" -e "$KEY_DEEPSEEK" -e sk-app-configured <<<"$log"'
check "the agent is still alive" "detourd exited" alive "$DETOURD_PID"
e2e_finish
