#!/bin/bash
# Observability of the re-signing proxy: /metrics scraped during traffic and
# checked by promtool (the Prometheus text-format parser), its counters equal
# to the requests sent (per provider; a failover counted when the primary
# fails, the primary's errors by blame, a hedge and its win); the JSON-lines
# access log has one line per request with its attempts, never a key, and
# the prompt only when asked for; it is reopened on SIGHUP (logrotate);
# detourctl top shows the application and the providers.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_require detourd fakellm detourctl
PROMTOOL=$(command -v promtool) || { notok "promtool is not installed (make deps: package prometheus)"; e2e_finish; }

fake_std G D || exit 1
KEY_APP=sk-app-own-key-0001
MPORT=19464
PROMPT=prompt-marker-7f3a
proxy_conf "retry_budget_min = 1000
provider_failures_to_eject = 1000
hedge = no"
echo "sk-app-configured-0004" >"$W/keys/app-openai"; chmod 600 "$W/keys/app-openai"
# conf PROMPTS: the configuration with the access log logging prompts or not
conf() {
	CONF_PROVIDERS="$BASE_PROVIDERS

[app chatbot]
cgroup = $CG_ENROLLED
key.openai = file:$W/keys/app-openai

[prices openai]
model = gpt-4o-mini input=0.15 output=0.60

[prices groq]
model = llama-3.3-70b-versatile input=0.59 output=0.79

[metrics]
listen = 127.0.0.1:$MPORT

[access_log]
path = $W/access.log
prompts = $1"
	conf_write "$W/detour.conf"
}
# OpenAI with a limit of its own: its headroom is served
BASE_PROVIDERS=$(sed '0,/^family = openai$/s//family = openai\nrpm = 1000/' <<<"$CONF_PROVIDERS")
CONF_HEALTH="min_calls = 1000000000"
conf no
detourd_start || exit 1
CURL_CA=$W/state/ca/root.pem

# ask: one chat completion from the enrolled cgroup (application chatbot); prints its status
ask() {
	CURL_OUT=/dev/null CURL_W='%{http_code}' ccurl enrolled -H 'content-type: application/json' \
		-H "authorization: Bearer $KEY_APP" \
		-d "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hello $PROMPT\"}]}" \
		"https://$HOST_OAI/v1/chat/completions" 2>/dev/null
}
scrape() { in_cli curl -sS --max-time 3 "http://127.0.0.1:$MPORT/metrics"; }
# metric SCRAPE NAME LABELS: the value of the sample NAME{LABELS} (labels in order)
metric() { grep -F "$2{$3} " <<<"$1" | awk '{ print $2 }'; }
SERIES='application="chatbot",provider="%s",model="%s",class="chat-small"'
labels() { printf "$SERIES" "$1" "$2"; }
reload() {
	local n0; n0=$(grep -c "configuration reloaded" "$DETOURD_LOG")
	kill -HUP "$DETOURD_PID"
	wait_for 5 eval '[ $(grep -c "configuration reloaded" "$DETOURD_LOG") -gt $n0 ]'
}

# 1. five requests the primary answers
ok_n=0
for i in 1 2 3 4 5; do [ "$(ask)" = 200 ] && ok_n=$((ok_n + 1)); done
check "healthy: 5 requests answered" "$ok_n of 5" [ $ok_n -eq 5 ]
m=$(scrape)
check "/metrics: the 5 requests counted for chatbot on openai gpt-4o-mini, class chat-small" \
	"$(grep '^detour_requests_total' <<<"$m" | tr '\n' ' ')" \
	[ "$(metric "$m" detour_requests_total "$(labels openai gpt-4o-mini),code=\"2xx\"")" = 5 ]
check "/metrics: the request durations in the histogram" "$(grep duration_seconds_count <<<"$m")" \
	[ "$(metric "$m" detour_request_duration_seconds_count "$(labels openai gpt-4o-mini)")" = 5 ]
check "/metrics: the provider verdict series" "$(grep '^detour_provider_state' <<<"$m" | tr '\n' ' ')" \
	[ "$(metric "$m" detour_provider_state 'provider="openai",state="healthy"')" = 1 ]

# 2. the primary fails (503): each request fails over to Groq
fake_fault A '{"mode":"status","status":503}'; fake_fault B '{"mode":"status","status":503}'
ok_n=0
for i in 1 2 3; do [ "$(ask)" = 200 ] && ok_n=$((ok_n + 1)); done
check "primary 503: 3 requests answered" "$ok_n of 3" [ $ok_n -eq 3 ]
m=$(scrape)
check "/metrics: the 3 failovers counted on groq" "$(grep '^detour_failovers_total' <<<"$m" | tr '\n' ' ')" \
	[ "$(metric "$m" detour_failovers_total "$(labels groq llama-3.3-70b-versatile)")" = 3 ]
check "/metrics: groq's 3 answers counted" "$(grep '^detour_requests_total' <<<"$m" | tr '\n' ' ')" \
	[ "$(metric "$m" detour_requests_total "$(labels groq llama-3.3-70b-versatile),code=\"2xx\"")" = 3 ]
check "/metrics: openai's 3 errors blamed on the provider" "$(grep '^detour_attempt_errors_total.*openai' <<<"$m" | tr '\n' ' ')" \
	[ "$(metric "$m" detour_attempt_errors_total "$(labels openai gpt-4o-mini),blame=\"provider\"")" = 3 ]
check "/metrics: openai's attempts: 8" "$(grep '^detour_attempts_total' <<<"$m" | tr '\n' ' ')" \
	[ "$(metric "$m" detour_attempts_total "$(labels openai gpt-4o-mini)")" = 8 ]
fake_fault A '{"mode":"ok"}'; fake_fault B '{"mode":"ok"}'

# 3. scraped while requests are in flight: promtool finds every scrape valid
( for i in $(seq 1 12); do ask >/dev/null; done ) &
load=$!
bad=0 n=0
while alive $load && [ $n -lt 20 ]; do
	scrape >"$W/scrape.$n"
	"$PROMTOOL" check metrics <"$W/scrape.$n" >"$W/promtool.$n" 2>&1 || { bad=$((bad + 1)); note "promtool: $(head -3 "$W/promtool.$n")"; }
	n=$((n + 1))
done
wait $load
scrape >"$W/scrape.last"
"$PROMTOOL" check metrics <"$W/scrape.last" >"$W/promtool.last" 2>&1 || bad=$((bad + 1))
check "promtool check metrics: $((n + 1)) scrapes during traffic, every one valid" "$bad invalid; $(cat "$W/promtool.last" | head -3)" [ $bad -eq 0 ]
m=$(cat "$W/scrape.last")
check "/metrics: 5 + 12 requests answered by openai" "$(grep '^detour_requests_total' <<<"$m" | tr '\n' ' ')" \
	[ "$(metric "$m" detour_requests_total "$(labels openai gpt-4o-mini),code=\"2xx\"")" = 17 ]

# tokens: the answers' usage, the same in the metrics and in the access log
tok() { grep "^detour_tokens_total{application=\"chatbot\".*kind=\"$1\"}" <<<"$m" | awk '{ s += $2 } END { print s + 0 }'; }
logtok() { "$PY" -c 'import json,sys
print(sum(json.loads(l).get("tokens", {}).get(sys.argv[2], 0) for l in open(sys.argv[1])))' "$W/access.log" "$1"; }
check "/metrics: chatbot's input tokens, as many as the access log's lines say" "metrics $(tok input), log $(logtok input)" \
	eval '[ "$(tok input)" -gt 0 ] && [ "$(tok input)" = "$(logtok input)" ]'
check "/metrics: chatbot's output tokens, as many as the access log's lines say" "metrics $(tok output), log $(logtok output)" \
	eval '[ "$(tok output)" -gt 0 ] && [ "$(tok output)" = "$(logtok output)" ]'
# cost: each row's tokens at its price (µ$ per million tokens = pico-dollars
# per token), the same in the access log's lines
check "/metrics: the cost of chatbot's answers, each row's tokens at its price" "$(grep '^detour_cost_dollars_total' <<<"$m" | tr '\n' ' ')" \
	"$PY" -c 'import re,sys
m = sys.argv[1]
def v(name, labels):
    r = re.search(re.escape(name + "{" + labels + "}") + r" (\S+)", m)
    return float(r.group(1))
price = {"openai,gpt-4o-mini": (150000, 600000), "groq,llama-3.3-70b-versatile": (590000, 790000)}
for k, (pi, po) in price.items():
    p, mod = k.split(",")
    l = "application=\"chatbot\",provider=\"%s\",model=\"%s\",class=\"chat-small\"" % (p, mod)
    i, o = v("detour_tokens_total", l + ",kind=\"input\""), v("detour_tokens_total", l + ",kind=\"output\"")
    want = (int(i) * pi + int(o) * po) / 1e12
    got = v("detour_cost_dollars_total", l)
    assert got > 0 and abs(got - want) < 1e-15, (k, got, want)' "$m"
logcost=$("$PY" -c 'import json,sys
print(sum(json.loads(l).get("cost_usd", 0) for l in open(sys.argv[1])))' "$W/access.log")
check "access log: the lines' cost_usd add up to the metrics' cost" "log $logcost; $(grep '^detour_cost_dollars_total' <<<"$m" | tr '\n' ' ')" \
	"$PY" -c 'import sys
log = float(sys.argv[1]); m = sum(float(l.split()[1]) for l in sys.argv[2].splitlines() if l.startswith("detour_cost_dollars_total{application=\"chatbot\""))
assert log > 0 and abs(log - m) < 1e-12, (log, m)' "$logcost" "$m"
check "/metrics: OpenAI's rate-limit headroom (rpm = 1000) below its limit" "$(grep '^detour_ratelimit_' <<<"$m" | tr '\n' ' ')" \
	eval 'h=$(grep "^detour_ratelimit_headroom{provider=\"openai\".*kind=\"requests\"}" <<<"$m" | awk "{ print \$2 }" | sort -n | head -1); [ -n "$h" ] && [ "$h" -lt 1000 ]'

# 4. the access log: a line per request, the failovers' attempts, no key, no prompt
log=$W/access.log
check "access log: 20 lines" "$(wc -l <"$log") lines" [ "$(wc -l <"$log")" -eq 20 ]
check "access log: every line is JSON naming chatbot" "$(head -2 "$log")" \
	"$PY" -c 'import json,sys
for l in open(sys.argv[1]):
    o = json.loads(l)
    assert o["app"] == "chatbot" and o["api"] == "openai" and o["model"] == "gpt-4o-mini", o' "$log"
line=$(sed -n 6p "$log")
check "access log: a failover's line has both attempts and the served provider" "$line" \
	"$PY" -c 'import json,sys
o = json.loads(sys.argv[1])
a = o["attempts"]
assert o["failover"] is True and o["status"] == 200 and o["served_provider"] == "groq", o
assert [x["provider"] for x in a] == ["openai", "groq"], a
assert a[0]["outcome"] == "server_error" and a[0]["status"] == 503 and a[0]["blame"] == "provider", a
assert a[1]["outcome"] == "ok" and o["served_model"] == "llama-3.3-70b-versatile", o' "$line"
check "access log: no key in it" "a key was logged" \
	eval '! grep -qe "$KEY_APP" -e "$KEY_GROQ" -e "$KEY_DEEPSEEK" -e sk-app-configured "$log"'
check "access log: no prompt in it (prompts = no)" "the prompt was logged" eval '! grep -q "$PROMPT" "$log"'

# 5. logrotate: moved away, SIGHUP, a new file; prompts = yes logs the body
mv "$log" "$log.1"
conf yes
reload
ask >/dev/null
check "SIGHUP: the access log is reopened (a new file with the new line)" "$(ls "$W")" \
	[ "$(wc -l <"$log" 2>/dev/null)" = 1 ]
check "prompts = yes: the request body is logged, still no key" "$(cat "$log")" \
	eval 'grep -q "$PROMPT" "$log" && ! grep -qe "$KEY_APP" -e sk-app-configured "$log"'
check "the rotated file kept its 20 lines" "$(wc -l <"$log.1")" [ "$(wc -l <"$log.1")" -eq 20 ]

# 6. detourctl top: the application and the providers, as JSON and as text
top=$(in_cli "$DETOURCTL" -c "$W/detour.conf" top --once --json 2>&1)
check "detourctl top --once --json: chatbot's 21 requests and its key's headroom, openai's 18 and groq's 3, their states" "$top" \
	"$PY" -c 'import json,sys
o = json.loads(sys.argv[1])
apps = {a["name"]: a for a in o["applications"]}
prov = {p["name"]: p for p in o["providers"]}
assert apps["chatbot"]["requests"] == 21 and apps["chatbot"]["failovers"] == 3, apps
assert 0 < apps["chatbot"]["headroom_requests"] < 1000 and "*" not in apps, apps
assert prov["openai"]["requests"] == 18 and prov["groq"]["requests"] == 3, prov
assert prov["openai"]["errors"] == 3 and prov["openai"]["state"] == "healthy", prov' "$top"
top=$(in_cli "$DETOURCTL" top --once --metrics "127.0.0.1:$MPORT" 2>&1)
check "detourctl top --once: a table naming chatbot, openai and groq" "$top" \
	eval 'grep -q "^  chatbot  *21 " <<<"$top" && grep -q "^  openai  *healthy  *18 " <<<"$top" && grep -q "^  groq " <<<"$top"'
# live: a view every interval, the request rate from the one before
nsenter --net="$NSC" "$DETOURCTL" top --json --interval 100 --metrics "127.0.0.1:$MPORT" >"$W/top.live" 2>&1 &
live=$!
E2E_PIDS+=($live)
for i in 1 2 3; do ask >/dev/null; sleep 0.2; done
wait_for 10 grep -q '"name":"chatbot","requests":24' "$W/top.live"
stop_pid $live 3
check "detourctl top --json --interval 100: a view every interval, the later ones with chatbot's request rate" "$(cat "$W/top.live")" \
	"$PY" -c 'import json,sys
views = [json.loads(l) for l in open(sys.argv[1])]
assert len(views) >= 2, len(views)
first = {a["name"]: a for a in views[0]["applications"]}["chatbot"]
last = {a["name"]: a for a in views[-1]["applications"]}["chatbot"]
assert first["requests_per_second"] is None and last["requests_per_second"] is not None, (first, last)
assert last["requests"] == 24 and any({a["name"]: a for a in v["applications"]}["chatbot"]["requests_per_second"] for v in views[1:]), views' "$W/top.live"
out=$(in_cli "$DETOURCTL" top --once --metrics "127.0.0.1:1" 2>&1); rc=$?
check "detourctl top: detourd's /metrics unreachable: exit 1, said so" "rc $rc: $out" \
	eval '[ $rc = 1 ] && grep -q "cannot reach" <<<"$out"'

# 7. a hedge: the primary slow to answer, Groq asked as well after the hedge
#    deadline, and first
proxy_conf "retry_budget_min = 1000
provider_failures_to_eject = 1000
hedge_min_ms = 200
hedge_max_ms = 400"
conf yes
reload
fake_fault A '{"mode":"slow","ttft_ms":3000}'; fake_fault B '{"mode":"slow","ttft_ms":3000}'
r=$(ask)
fake_fault A '{"mode":"ok"}'; fake_fault B '{"mode":"ok"}'
m=$(scrape)
check "hedge: answered" "$r" [ "$r" = 200 ]
check "/metrics: the hedge sent to groq, and won" "$(grep '^detour_hedges' <<<"$m" | tr '\n' ' ')" \
	eval '[ "$(metric "$m" detour_hedges_total "$(labels groq llama-3.3-70b-versatile)")" = 1 ] &&
	      [ "$(metric "$m" detour_hedges_won_total "$(labels groq llama-3.3-70b-versatile)")" = 1 ]'
line=$(tail -n 1 "$log")
check "access log: the hedged request's line" "$line" "$PY" -c 'import json,sys
o = json.loads(sys.argv[1])
a = o["attempts"]
assert o["hedged"] is True and o["served_provider"] == "groq" and o["failover"] is False, o
assert a[0]["provider"] == "openai" and a[0]["outcome"] == "cancelled" and a[0]["hedge"] is False, a
assert a[1]["provider"] == "groq" and a[1]["hedge"] is True and a[1]["outcome"] == "ok", a' "$line"

# 8. a stream: its time to first token in the histogram and the line
CURL_OUT=/dev/null CURL_W='%{http_code}' ccurl enrolled -H 'content-type: application/json' \
	-H "authorization: Bearer $KEY_APP" \
	-d '{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}' \
	"https://$HOST_OAI/v1/chat/completions" >/dev/null 2>&1
m=$(scrape)
check "/metrics: the stream's time to first token observed" "$(grep '^detour_time_to_first_token_seconds_count' <<<"$m" | tr '\n' ' ')" \
	[ "$(metric "$m" detour_time_to_first_token_seconds_count "$(labels openai gpt-4o-mini)")" = 1 ]
line=$(tail -n 1 "$log")
check "access log: the stream's line has its ttft_ms, after its ttfb_ms" "$line" "$PY" -c 'import json,sys
o = json.loads(sys.argv[1])
assert o["stream"] is True and 0 < o["ttfb_ms"] <= o["ttft_ms"] <= o["total_ms"], o' "$line"

# 9. a metrics address beyond loopback is refused unless allowed
sed -i "s/^listen = 127.0.0.1:$MPORT/listen = 10.9.8.7:$MPORT/" "$W/detour.conf"
out=$("$DETOURCTL" -c "$W/detour.conf" status 2>&1)
check "[metrics] listen on a non-loopback address is refused" "$out" grep -q "not a loopback address" <<<"$out"

# kept with the logs (E2E_KEEP_LOGS) for a look at what was served
cp "$W/scrape.last" "$W/access.log.1" "$W/access.log" "$W/promtool.last" "$W/log/" 2>/dev/null
in_cli "$DETOURCTL" top --once --metrics "127.0.0.1:$MPORT" >"$W/log/top.txt" 2>&1
check "the agent is still alive" "detourd exited" alive "$DETOURD_PID"
e2e_finish
