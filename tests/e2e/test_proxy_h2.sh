#!/bin/bash
# The proxy's upstream speaks HTTP/2 where the provider offers it: Groq's
# endpoint is an HAProxy TLS front (ALPN h2, http/1.1) before a plain fakellm;
# with OpenAI down, a streamed and a plain request through detour reach it over
# HTTP/2 (HAProxy's log names the version of every request it got). With
# [proxy] upstream_http2 = no they reach it over HTTP/1.1.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_require detourd fakellm haproxy

fake_std || exit 1
fake_start G --plain "127.0.0.1:8081" --path-prefix=/openai || exit 1
cat "$W/srv.pem" "$W/srv.key" >"$W/srv-haproxy.pem"
cat >"$W/haproxy.cfg" <<EOF
global
	log stdout format raw local0
defaults
	mode http
	log global
	option httplog
	timeout connect 2s
	timeout client 10s
	timeout server 10s
frontend groq
	bind $G4:443 ssl crt $W/srv-haproxy.pem alpn h2,http/1.1
	bind [$G6]:443 ssl crt $W/srv-haproxy.pem alpn h2,http/1.1
	default_backend fake
backend fake
	server g 127.0.0.1:8081
EOF
spawn_in prov "$NSP" "$W/log/haproxy.log" haproxy -db -f "$W/haproxy.cfg"
E2E_PIDS+=($SPAWN_PID)
wait_for 5 in_prov ss -Hltn "sport = :443" || { notok "haproxy did not start: $(tail -3 "$W/log/haproxy.log")"; exit 1; }

proxy_conf
detourd_start || exit 1
CURL_CA=$W/state/ca/root.pem

fake_fault A '{"mode":"status","status":503}'; fake_fault B '{"mode":"status","status":503}'
for stream in false true; do
	r=$(CURL_OUT="$W/answer" CURL_W='%{http_code} %header{x-detour-model}' ccurl enrolled -H 'content-type: application/json' \
		-d "{\"model\":\"gpt-4o-mini\",\"stream\":$stream,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}" \
		"https://$HOST_OAI/v1/chat/completions" 2>&1)
	check "OpenAI down, stream=$stream: Groq answers through HAProxy" "$r $(head -c 200 "$W/answer")" \
		eval '[ "$r" = "200 llama-3.3-70b-versatile" ] && grep -q gpt-4o-mini "$W/answer"'
done
check "the answers came through HAProxy: its log has both requests" "$(tail -3 "$W/log/haproxy.log")" \
	eval '[ "$(grep -c "POST .*/openai/v1/chat/completions" "$W/log/haproxy.log")" -eq 2 ]'
check "... and each arrived over HTTP/2" "$(grep chat/completions "$W/log/haproxy.log" | tail -2)" \
	eval '! grep "POST .*/openai/v1/chat/completions" "$W/log/haproxy.log" | grep -qv "HTTP/2.0\"$"'
check "the agent is still alive" "detourd exited" alive "$DETOURD_PID"

# upstream_http2 = no: libcurl offers HTTP/1.1 only, and the own client takes
# the endpoint over; the requests reach HAProxy over HTTP/1.1
detourd_stop
proxy_conf "upstream_http2 = no"
conf_write "$W/detour.conf"
detourd_start || exit 1
for i in 1 2 3; do
	r=$(CURL_OUT="$W/answer" CURL_W='%{http_code} %header{x-detour-model}' ccurl enrolled -H 'content-type: application/json' \
		-d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}' \
		"https://$HOST_OAI/v1/chat/completions" 2>&1)
	check "upstream_http2 = no, request $i: Groq answers through HAProxy" "$r" \
		eval '[ "$r" = "200 llama-3.3-70b-versatile" ]'
done
check "... each over HTTP/1.1" "$(grep chat/completions "$W/log/haproxy.log" | tail -3)" \
	eval '[ "$(grep -c "POST .*/openai/v1/chat/completions HTTP/1.1\"$" "$W/log/haproxy.log")" -eq 3 ]'
check "the agent is still alive" "detourd exited" alive "$DETOURD_PID"
e2e_finish
