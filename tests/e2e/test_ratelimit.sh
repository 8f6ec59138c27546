#!/bin/bash
# Rate limits through the proxy (issue 6): Groq (fakellm G) allows 20
# requests a minute (fakellm --rpm 20; detour told by rpm = 20, then by
# Groq's headers alone); two applications in two enrolled cgroups call it
# with their own credentials: "chat" holds a 40% share, "batch" floods it
# (40 requests, 8 at a time) while chat asks one request at a time. Detour moves requests Groq has no room for to
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
BASE_PROVIDERS=$CONF_PROVIDERS
CONF_ENROLL="$CG_ENROLLED $CG_OTHER"
APPS="[app chat]
cgroup = $CG_ENROLLED
share.groq = 40%

[app batch]
cgroup = $CG_OTHER
share.groq = 10%"

BODY='{"model":"llama-3.3-70b-versatile","messages":[{"role":"user","content":"hello"}]}'
# groq CGROUP OUT: one chat completion to api.groq.com; "CODE NAME" in OUT
groq() {
	CURL_W='%{http_code} %header{x-fakellm-name}\n' ccurl "$1" -H 'content-type: application/json' \
		-H 'authorization: Bearer sk-test' -d "$BODY" \
		"https://$HOST_GROQ/openai/v1/chat/completions" >"$2" 2>&1
}
count() { cat "$W/$1"/* | awk -v c="$2" -v n="$3" '$1 == c && (n == "" || $2 == n)' | wc -l; }

# flood WHAT GROQ-LINES: a fresh Groq (its minute empty) and a fresh detourd
# whose [provider groq] has GROQ-LINES; the batch job floods (40 requests, 8
# in flight) while chat asks 8, one at a time; then the checks
flood() {
	local what=$1 i flood_pid s g200 g429
	fake_stop G
	fake_start G "$G4:443" "[$G6]:443" --path-prefix=/openai --rpm=20 || return 1
	CONF_PROVIDERS="${BASE_PROVIDERS/"base_url = https://$HOST_GROQ/openai/v1"/"base_url = https://$HOST_GROQ/openai/v1$2"}

$APPS"
	conf_write "$W/detour.conf"
	[ -n "${DETOURD_PID:-}" ] && detourd_stop
	detourd_start || return 1
	CURL_CA=$W/state/ca/root.pem
	rm -rf "$W/batch" "$W/chat"
	mkdir -p "$W/batch" "$W/chat"
	(
		for i in $(seq 1 40); do
			while [ "$(jobs -rp | wc -l)" -ge 8 ]; do wait -n; done
			groq other "$W/batch/$i" &
		done
		wait
	) &
	flood_pid=$!
	for i in $(seq 1 8); do
		groq enrolled "$W/chat/$i"
		sleep 0.2
	done
	wait "$flood_pid"

	s=$(fake_admin G GET /stats)
	g200=$(jget "$s" by_status.200) g429=$(jget "$s" by_status.429)
	note "$what: Groq answered ${g200:-0} (429: ${g429:-0}); chat: $(count chat 200 G) of 8 by Groq; batch: $(count batch 200 G) by Groq, $(count batch 200 D) by DeepSeek"
	check "$what: Groq never answered 429: detour kept every key under the limit" "by_status $(jget "$s" by_status)" \
		[ -z "$g429" ]
	check "$what: Groq answered at most its 20 requests of the minute" "200s: $g200" [ "${g200:-0}" -le 20 ]
	check "$what: chat kept its share: its 8 requests all answered by Groq" \
		"$(cat "$W"/chat/* | tr '\n' ' ')" [ "$(count chat 200 G)" = 8 ]
	check "$what: the flood was overflowed: all 40 answered, those beyond Groq's room by DeepSeek" \
		"$(cat "$W"/batch/* | sort | uniq -c | tr '\n' ' ')" \
		eval '[ "$(count batch 200)" = 40 ] && [ "$(count batch 200 D)" -ge 28 ]'
	check "$what: no client saw a 429" "$(cat "$W"/chat/* "$W"/batch/* | sort | uniq -c | tr '\n' ' ')" \
		[ "$(cat "$W"/chat/* "$W"/batch/* | awk '$1 == 429' | wc -l)" = 0 ]
	check "$what: the overflow was decided before any 429 (no 429 in the log)" \
		"$(grep -c 'failed (429)' "$DETOURD_LOG")" eval '! grep -q "failed (429)" "$DETOURD_LOG"'
	check "$what: the agent is still alive" "detourd exited" alive "$DETOURD_PID"
}

# the limit configured (rpm = 20), as for a provider that sends no headers
flood "rpm configured" "
rpm = 20"
# the limit learned from Groq's headers alone (x-ratelimit-limit-requests,
# -remaining-requests, -reset-requests)
flood "headers only" ""
e2e_finish
