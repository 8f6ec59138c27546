#!/bin/bash
# Rate limits through the proxy (issue 6): Groq (fakellm G) allows 20
# requests a minute (fakellm --rpm 20, detour's rpm = 20); two applications
# in two enrolled cgroups call it with their own credentials: "chat" holds a
# 40% share, "batch" floods it (40 requests, 8 at a time) while chat asks
# one request at a time. Detour moves requests Groq has no room for to
# DeepSeek (D) before Groq answers 429: Groq never answers 429, chat keeps
# its share (every one of its 8 requests answered by Groq), the flood
# overflows, and no client sees a 429.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_require detourd fakellm

fake_start A "$A4:443" "[$A6]:443" || exit 1
fake_start G "$G4:443" "[$G6]:443" --path-prefix=/openai --rpm=20 || exit 1
fake_start D "$D4:443" "[$D6]:443" || exit 1

proxy_conf "first_byte_timeout_ms = 5000"
CONF_PROVIDERS=${CONF_PROVIDERS/"base_url = https://$HOST_GROQ/openai/v1"/"base_url = https://$HOST_GROQ/openai/v1
rpm = 20"}
CONF_PROVIDERS="$CONF_PROVIDERS

[app chat]
cgroup = $CG_ENROLLED
share.groq = 40%

[app batch]
cgroup = $CG_OTHER
share.groq = 10%"
CONF_ENROLL="$CG_ENROLLED $CG_OTHER"
detourd_start || exit 1
CURL_CA=$W/state/ca/root.pem
check "the configuration has Groq's rpm and the shares" "$(grep -E 'rpm|share' "$W/detour.conf" | tr '\n' ' ')" \
	eval 'grep -q "^rpm = 20" "$W/detour.conf" && grep -q "^share.groq = 40%" "$W/detour.conf"'

BODY='{"model":"llama-3.3-70b-versatile","messages":[{"role":"user","content":"hello"}]}'
# groq CGROUP OUT: one chat completion to api.groq.com; "CODE NAME" in OUT
groq() {
	CURL_W='%{http_code} %header{x-fakellm-name}\n' ccurl "$1" -H 'content-type: application/json' \
		-H 'authorization: Bearer sk-test' -d "$BODY" \
		"https://$HOST_GROQ/openai/v1/chat/completions" >"$2" 2>&1
}

fake_admin G POST /reset-stats >/dev/null
mkdir -p "$W/batch" "$W/chat"
# the flood: 40 requests, 8 in flight at a time
(
	for i in $(seq 1 40); do
		while [ "$(jobs -rp | wc -l)" -ge 8 ]; do wait -n; done
		groq other "$W/batch/$i" &
	done
	wait
) &
flood=$!
# the interactive one: a request at a time, while the flood goes on
for i in $(seq 1 8); do
	groq enrolled "$W/chat/$i"
	sleep 0.2
done
wait "$flood"

count() { cat "$W/$1"/* | awk -v c="$2" -v n="$3" '$1 == c && (n == "" || $2 == n)' | wc -l; }
s=$(fake_admin G GET /stats)
g200=$(jget "$s" by_status.200) g429=$(jget "$s" by_status.429)
note "Groq answered ${g200:-0} (429: ${g429:-0}); chat: $(count chat 200 G) of 8 by Groq; batch: $(count batch 200 G) by Groq, $(count batch 200 D) by DeepSeek"
check "Groq never answered 429: detour kept every key under the limit" "by_status $(jget "$s" by_status)" \
	[ -z "$g429" ]
check "Groq answered at most its 20 requests of the minute" "200s: $g200" [ "${g200:-0}" -le 20 ]
check "chat kept its share: its 8 requests all answered by Groq" \
	"$(cat "$W"/chat/* | tr '\n' ' ')" [ "$(count chat 200 G)" = 8 ]
check "the flood was overflowed: all 40 answered, those beyond Groq's room by DeepSeek" \
	"$(cat "$W"/batch/* | sort | uniq -c | tr '\n' ' ')" \
	eval '[ "$(count batch 200)" = 40 ] && [ "$(count batch 200 D)" -ge 28 ]'
check "no client saw a 429" "$(cat "$W"/chat/* "$W"/batch/* | sort | uniq -c | tr '\n' ' ')" \
	[ "$(cat "$W"/chat/* "$W"/batch/* | awk '$1 == 429' | wc -l)" = 0 ]
check "the overflow was decided before any 429 (no 429 in the log)" "$(grep -c 'failed (429)' "$DETOURD_LOG")" \
	eval '! grep -q "failed (429)" "$DETOURD_LOG"'
check "the agent is still alive" "detourd exited" alive "$DETOURD_PID"
e2e_finish
