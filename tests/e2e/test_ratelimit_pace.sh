#!/bin/bash
# The pacing queue through the proxy (issue 6): Groq (fakellm G, slow) allows
# 2300 tokens a minute (tpm), and each request reserves its estimate (its
# max_tokens of 1000 and its prompt) until its answer says it used a few
# dozen. Of three requests at once, two fit and the third does not:
#  - pace = yes: it waits in Groq's queue and goes to Groq as soon as the
#    first answer's usage frees the budget (not to DeepSeek);
#  - a wait longer than pace_max_wait_ms: it overflows to DeepSeek;
#  - its application killed while it waits (the connection reset): it
#    leaves the queue, and nothing of it reaches Groq.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_require detourd fakellm

fake_start A "$A4:443" "[$A6]:443" || exit 1
fake_start G "$G4:443" "[$G6]:443" --path-prefix=/openai || exit 1
fake_start D "$D4:443" "[$D6]:443" || exit 1

proxy_conf "first_byte_timeout_ms = 8000"
BASE_PROVIDERS=$CONF_PROVIDERS
# groq_limits WAIT_MS: Groq's tpm and pacing in the configuration
groq_limits() {
	CONF_PROVIDERS=${BASE_PROVIDERS/"base_url = https://$HOST_GROQ/openai/v1"/"base_url = https://$HOST_GROQ/openai/v1
tpm = 2300
pace = yes
pace_max_wait_ms = $1"}
	conf_write "$W/detour.conf"
}
groq_limits 4000
detourd_start || exit 1
CURL_CA=$W/state/ca/root.pem

BODY='{"model":"llama-3.3-70b-versatile","max_tokens":1000,"messages":[{"role":"user","content":"hello"}]}'
# groq OUT [curl args]: one chat completion to api.groq.com; "CODE NAME" in OUT
groq() {
	local out=$1; shift
	CURL_W='%{http_code} %header{x-fakellm-name}\n' ccurl enrolled -H 'content-type: application/json' \
		-H 'authorization: Bearer sk-test' -d "$BODY" "$@" \
		"https://$HOST_GROQ/openai/v1/chat/completions" >"$out" 2>&1
}
# three OUT-PREFIX: three requests at once, the third a moment after the
# others so that it is the one left without budget
three() {
	groq "$W/$1.1" & local p1=$!
	groq "$W/$1.2" & local p2=$!
	sleep 0.3
	groq "$W/$1.3"
	wait $p1 $p2
}
answered() { cut -d' ' -f1-2 "$W/$1" | tr -d '\n'; }
reload() {
	local n
	n=$(grep -c "configuration reloaded" "$DETOURD_LOG")
	kill -HUP "$DETOURD_PID"
	wait_for 5 eval '[ "$(grep -c "configuration reloaded" "$DETOURD_LOG")" -gt '"$n"' ]'
}

# ---- the third waits, then goes to Groq -----------------------------------------
fake_fault G '{"mode":"slow","ttft_ms":800}'
three paced
check "pace: the first two go to Groq" "$(answered paced.1), $(answered paced.2)" \
	[ "$(answered paced.1)$(answered paced.2)" = "200 G200 G" ]
check "pace: the third, over the budget, waited in Groq's queue" "no such log line" \
	grep -q "waits in the pacing queue of groq" "$DETOURD_LOG"
check "pace: released by the first answers' usage, it went to Groq, not DeepSeek" "$(answered paced.3)" \
	[ "$(answered paced.3)" = "200 G" ]

# ---- a wait too long: overflow ---------------------------------------------------
groq_limits 300
reload
sleep 1 # the second of the first phase's estimates leaves the sums cached
fake_fault G '{"mode":"slow","ttft_ms":2500}'
three over
check "pace: a wait past pace_max_wait_ms overflows to DeepSeek" \
	"$(answered over.1), $(answered over.2), $(answered over.3)" \
	[ "$(answered over.3)" = "200 D" ]
check "pace: the log says why" "no such log line" \
	grep -q "groq still over its rate limit after the pacing queue's wait: overflow" "$DETOURD_LOG"

# ---- a client leaving while it waits ----------------------------------------------
groq_limits 4000
reload
sleep 3 # the slow answers of the last phase are settled
fake_admin G POST /reset-stats >/dev/null
fake_admin D POST /reset-stats >/dev/null
waits=$(grep -c "waits in the pacing queue of groq" "$DETOURD_LOG")
fake_fault G '{"mode":"slow","ttft_ms":1500}'
groq "$W/left.1" & p1=$!
groq "$W/left.2" & p2=$!
sleep 0.3
# the third's application is killed while the request waits: its connection reset
pyclient enrolled --addr "$G4" --tls --cacert "$CURL_CA" --sni "$HOST_GROQ" \
	--path /openai/v1/chat/completions --post "$BODY" --abort-after 0.5 >"$W/left.3" 2>&1
wait $p1 $p2
fake_fault G '{"mode":"ok"}'
groq "$W/left.4"
s=$(fake_admin G GET /stats)
check "pace: the third waited in the queue when its application was killed" \
	"$(grep -c "waits in the pacing queue of groq" "$DETOURD_LOG") waits, $waits before; $(cat "$W/left.3")" \
	[ "$(grep -c "waits in the pacing queue of groq" "$DETOURD_LOG")" = $((waits + 1)) ]
check "pace: a request whose client left while it waited never reaches Groq (nor DeepSeek)" \
	"Groq saw $(jget "$s" requests) requests, DeepSeek $(jget "$(fake_admin D GET /stats)" requests); answers $(answered left.1), $(answered left.2), $(answered left.4)" \
	[ "$(jget "$s" requests) $(jget "$(fake_admin D GET /stats)" requests) $(answered left.1) $(answered left.2) $(answered left.4)" = "3 0 200 G 200 G 200 G" ]
check "the agent is still alive" "detourd exited" alive "$DETOURD_PID"
e2e_finish
