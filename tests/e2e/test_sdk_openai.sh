#!/bin/bash
# The re-signing proxy with the official `openai` npm package, unmodified
# (tests/e2e/sdk/openai_client.mjs: default base URL, maxRetries 0, detour's
# CA root through NODE_EXTRA_CA_CERTS), in an enrolled cgroup. Same world and
# configuration as test_proxy.sh: fakellm A/B are api.openai.com, G is Groq
# (API under /openai), D is DeepSeek, one class gpt-4o-mini ≈
# llama-3.3-70b-versatile ≈ deepseek-chat. For every fault of the primary,
# 3 non-streaming and 3 streaming requests all succeed, answered by Groq's
# mapped model (shown as the one asked for): the SDK sees zero errors. With
# every member down, the SDK raises its normal APIError (status 503, OpenAI's
# error body).
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_require detourd fakellm

sdk_require openai || exit 1

# ---- the world and configuration of test_proxy.sh ------------------------------

fake_std G D || exit 1

KEY_APP=sk-app-own-key-0001
proxy_conf "first_byte_timeout_ms = 1500
stream_idle_timeout_ms = 1500
retry_budget_min = 1000
provider_failures_to_eject = 1000"
# failures are the point here: no ejection by failure rate either, so the
# order of the members stays the configured one
CONF_HEALTH="min_calls = 1000000000"
detourd_start || exit 1
ROOT_PEM=$W/state/ca/root.pem
check "detour's CA root exists for Node to trust" "no $ROOT_PEM" [ -s "$ROOT_PEM" ]

# ---- helpers --------------------------------------------------------------------

# sdk OUT CLIENT-ARGS...: the openai client with only the app's key
sdk() {
	local out=$1; shift
	sdk_run "$out" openai_client.mjs OPENAI_API_KEY="$KEY_APP" -- "$@"
}

# judge OUT N-PER-MODE MODEL PROVIDERS [errors]: the client's lines say that
# N non-streaming then N streaming requests all succeeded, MODEL answering
# (x-detour-model) while the client sees gpt-4o-mini, the model it asked
# for, answered by one of PROVIDERS (x-fakellm-name, e.g. "AB"), each answer the one fakellm
# gives this very request (it echoes the prompt), streams assembled into
# non-empty text with a finish reason and the usage chunk. "errors": instead,
# every request failed with the SDK's APIError, status 503, OpenAI's error body.
# Prints what is wrong; status 0 when nothing is.
judge() {
	"$PY" - "$@" <<-'EOF'
	import json, sys
	out, n, model, provs = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
	want_errors = len(sys.argv) > 5 and sys.argv[5] == "errors"
	VIA = {"A": "openai", "B": "openai", "G": "groq", "D": "deepseek"}
	bad = []
	try:
	    lines = [json.loads(l) for l in open(out) if l.strip()]
	except Exception as e:
	    err = open(out + ".err").read().strip().splitlines()[-3:]
	    print(f"unreadable client output ({e}); stderr: {' | '.join(err)}"); sys.exit(1)
	reqs = [l for l in lines if not l.get("summary")]
	summ = [l for l in lines if l.get("summary")]
	if not summ:
	    err = open(out + ".err").read().strip().splitlines()[-3:]
	    bad.append(f"no summary line (client died?); stderr: {' | '.join(err)}")
	if len(reqs) != 2 * n:
	    bad.append(f"{len(reqs)} requests reported, expected {2 * n}")
	for r in reqs:
	    who = f"#{r['i']} {r['mode']}"
	    if want_errors:
	        e = r.get("error") or {}
	        if r.get("ok") or e.get("status") != 503 or not e.get("message") or not e.get("body_message") \
	           or e.get("class") not in ("InternalServerError", "APIError"):
	            bad.append(f"{who}: wanted APIError 503 with OpenAI's error body, got ok={r.get('ok')} error={e}")
	        continue
	    if not r.get("ok"):
	        bad.append(f"{who}: client-visible error {r.get('error')}"); continue
	    if r.get("model") != "gpt-4o-mini":
	        bad.append(f"{who}: the client saw model {r.get('model')!r}, not the one it asked for")
	    if r.get("via_model") != model:
	        bad.append(f"{who}: x-detour-model {r.get('via_model')!r}, expected {model!r}")
	    if (r.get("provider") or "?") not in provs:
	        bad.append(f"{who}: answered by {r.get('provider')!r} (via {r.get('via')!r}), expected one of {provs}")
	    elif r.get("via") != VIA.get(r["provider"]):
	        bad.append(f"{who}: x-detour-provider {r.get('via')!r}, expected {VIA.get(r['provider'])!r}")
	    t = r.get("text") or ""
	    if not t or r.get("text_len") != len(t) or f" request {r['i']} {r['mode']} please answer" not in t \
	       or not t.startswith("You said:"):
	        bad.append(f"{who}: text {t[:80]!r} is not this request's answer")
	    u = r.get("usage") or {}
	    if not u.get("total_tokens") or u.get("completion_tokens") != len(t.split()):
	        bad.append(f"{who}: usage {u} does not match the {len(t.split())}-word answer")
	    if r.get("finish") != "stop":
	        bad.append(f"{who}: finish_reason {r.get('finish')!r}")
	    if r["mode"] == "stream" and r.get("chunks", 0) < len(t.split()) + 2:
	        bad.append(f"{who}: only {r.get('chunks')} chunks for {len(t.split())} words (+ role, finish, usage)")
	for s in summ:
	    if s.get("requests") != 2 * n or s.get("errors") != (2 * n if want_errors else 0):
	        bad.append(f"summary {s}")
	print("; ".join(bad[:4]) + (f" (+{len(bad) - 4} more)" if len(bad) > 4 else ""))
	sys.exit(1 if bad else 0)
	EOF
}

g_chats() { jget "$(fake_admin G GET /stats)" by_path./v1/chat/completions; }
last_auth() { jget "$(fake_admin "$1" GET /stats)" last_request.authorization; }
primary() { fake_fault A "$1" && fake_fault B "$1"; }

# ---- healthy ----------------------------------------------------------------------

t0=$(now_ms)
snap
sdk "$W/log/sdk-healthy.jsonl" --n 3 --tag healthy
why=$(judge "$W/log/sdk-healthy.jsonl" 3 gpt-4o-mini AB)
check "healthy: 3 + 3 streamed SDK requests answered by OpenAI (A/B) with gpt-4o-mini, zero errors" "$why" [ -z "$why" ]
p=$(sed -n 's/.*"provider":"\([AB]\)".*/\1/p' "$W/log/sdk-healthy.jsonl" | tail -1)
check "healthy: OpenAI got the application's own key" "$(last_auth "${p:-A}")" [ "$(last_auth "${p:-A}")" = "Bearer $KEY_APP" ]
note "healthy: $(( $(now_ms) - t0 )) ms for 6 SDK requests (node start-up included), $(delta redirected) connection(s) redirected"

# ---- every fault of the primary -----------------------------------------------------

for fault in '503:{"mode":"status","status":503}' '500:{"mode":"status","status":500}' \
	     '429:{"mode":"status","status":429,"retry_after":1}' 'reset:{"mode":"reset"}' \
	     'tls_fail:{"mode":"tls_fail"}' 'hang:{"mode":"hang"}' \
	     'slow-first-token:{"mode":"slow","ttft_ms":4000}'; do
	name=${fault%%:*}
	t0=$(now_ms)
	g0=$(g_chats)
	primary "${fault#*:}" || notok "primary $name: could not set the fault"
	sdk "$W/log/sdk-$name.jsonl" --n 3 --tag "$name"
	g1=$(g_chats)
	primary '{"mode":"ok"}' || notok "primary $name: could not clear the fault"
	why=$(judge "$W/log/sdk-$name.jsonl" 3 llama-3.3-70b-versatile G)
	check "primary $name: 3 + 3 streamed SDK requests answered by Groq as llama-3.3-70b-versatile, zero errors" "$why" [ -z "$why" ]
	check "primary $name: Groq's fakellm counted exactly those 6 chat completions" "before $g0, after $g1" \
		[ "$(( ${g1:-0} - ${g0:-0} ))" -eq 6 ]
	check "primary $name: Groq got detour's key, never the app's" "$(last_auth G)" [ "$(last_auth G)" = "Bearer $KEY_GROQ" ]
	note "primary $name: $(( $(now_ms) - t0 )) ms for 6 SDK requests"
	[ "$name" = 429 ] && sleep 1.1 # the 429's retry-after puts OpenAI aside this long
done

# ---- deeper failover, and the error an SDK sees when nothing is left ---------------

primary '{"mode":"status","status":503}'
fake_fault G '{"mode":"status","status":503}'
sdk "$W/log/sdk-deepseek.jsonl" --n 2 --tag deepseek
why=$(judge "$W/log/sdk-deepseek.jsonl" 2 deepseek-chat D)
check "OpenAI and Groq down: 2 + 2 streamed SDK requests answered by DeepSeek as deepseek-chat" "$why" [ -z "$why" ]
check "... signed with detour's DeepSeek key" "$(last_auth D)" [ "$(last_auth D)" = "Bearer $KEY_DEEPSEEK" ]

fake_fault D '{"mode":"status","status":503}'
sdk "$W/log/sdk-alldown.jsonl" --n 1 --tag alldown
why=$(judge "$W/log/sdk-alldown.jsonl" 1 - - errors)
check "every member down: the SDK raises its APIError, status 503, OpenAI's error message (non-streaming and streaming)" \
	"$why" [ -z "$why" ]
tried=$(sed -n 's/.*"tried":"\([^"]*\)".*/\1/p' "$W/log/sdk-alldown.jsonl" | head -1)
check "... the error names what detour tried (x-detour-tried)" "x-detour-tried: $tried" [ "$tried" = "openai=503, groq=503" ]
note "all down, as the SDK shows it: $(sed -n 's/.*"message":"\([^"]*\)".*/\1/p' "$W/log/sdk-alldown.jsonl" | head -1)"
primary '{"mode":"ok"}'; fake_fault G '{"mode":"ok"}'; fake_fault D '{"mode":"ok"}'

log=$(cat "$W"/log/detourd.*.log)
check "keys appear in no log" "a key was logged" \
	eval '! grep -qe "$KEY_APP" -e "$KEY_GROQ" -e "$KEY_DEEPSEEK" <<<"$log"'
check "the agent is still alive" "detourd exited" alive "$DETOURD_PID"
e2e_finish
