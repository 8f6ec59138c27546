#!/bin/bash
# Translation between API families, with the official SDKs unmodified
# (tests/e2e/sdk/xlate_client.mjs) in an enrolled cgroup: one class mixes
# OpenAI (fakellm A/B as api.openai.com), Anthropic (X as api.anthropic.com)
# and Gemini (Y as generativelanguage.googleapis.com). With the client's own
# provider down, the `openai` SDK is answered by the Anthropic member and by
# the Gemini member, the `@anthropic-ai/sdk` by the OpenAI member (and a
# Gemini REST client, curl, by the OpenAI member): plain,
# streamed, and a tool-call round trip each way, with the model the client
# asked for and zero client-visible errors. Also: quality checks moving a bad
# failover answer on, provider errors reshaped for the client, and a request
# that cannot be translated refused with a 400 in the client's shape.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_require detourd fakellm

sdk_require openai @anthropic-ai/sdk || exit 1

fake_std X Y || exit 1

KEY_APP_OAI=sk-app-own-openai-0001 KEY_APP_ANT=sk-ant-app-own-0002
mixed_family_conf
# failures are the point here: no ejection by failure rate either, so the
# order of the members stays the configured one
CONF_HEALTH="min_calls = 1000000000"
detourd_start || exit 1
ROOT_PEM=$W/state/ca/root.pem
check "detour's CA root exists for Node to trust" "no $ROOT_PEM" [ -s "$ROOT_PEM" ]

# sdk OUT SDK-ARGS...: xlate_client.mjs with only the app's keys
sdk() {
	local out=$1; shift
	sdk_run "$out" xlate_client.mjs OPENAI_API_KEY="$KEY_APP_OAI" ANTHROPIC_API_KEY="$KEY_APP_ANT" -- "$@"
}

# judge OUT CLIENT-MODEL PROVIDERS VIA VIA-MODEL FAMILY [json]: every case
# succeeded, shows the model the client asked for, was answered by one of
# PROVIDERS (x-fakellm-name) through VIA/VIA-MODEL, with this very request's
# answer, the client family's finish reasons and usage; tool cases called
# `lookup` with fakellm's arguments and got the tool's result back.
judge() {
	"$PY" - "$@" <<-'EOF'
	import json, sys
	out, model, provs, via, via_model, fam = sys.argv[1:7]
	want_json = len(sys.argv) > 7 and sys.argv[7] == "json"
	STOP = {"openai": "stop", "anthropic": "end_turn"}[fam]
	TOOL = {"openai": "tool_calls", "anthropic": "tool_use"}[fam]
	bad = []
	try:
	    lines = [json.loads(l) for l in open(out) if l.strip()]
	except Exception as e:
	    print(f"unreadable output ({e}); stderr: {open(out + '.err').read()[-300:]!r}"); sys.exit(1)
	cases = [l for l in lines if "case" in l]
	if not cases or not any(l.get("summary") for l in lines):
	    bad.append(f"no summary (client died?); stderr: {open(out + '.err').read()[-300:]!r}")
	for r in cases:
	    c = r["case"]
	    if not r.get("ok"):
	        bad.append(f"{c}: client-visible error {r.get('error')}"); continue
	    if r.get("model") != model: bad.append(f"{c}: model {r.get('model')!r}, not {model!r}")
	    if (r.get("provider") or "?") not in provs: bad.append(f"{c}: answered by {r.get('provider')!r}")
	    if r.get("via") != via or r.get("via_model") != via_model:
	        bad.append(f"{c}: x-detour-provider/model {r.get('via')}/{r.get('via_model')}")
	    t = r.get("text") or ""
	    if c.startswith("tools"):
	        call = r.get("call") or {}
	        try: a = json.loads(call.get("args") or "")
	        except Exception: a = None
	        if call.get("name") != "lookup" or not isinstance(a, dict) or not str(a.get("text", "")).startswith("xlate"):
	            bad.append(f"{c}: tool call {call}")
	        if not call.get("id"): bad.append(f"{c}: tool call without id")
	        if (r.get("first") or {}).get("finish") != TOOL: bad.append(f"{c}: first turn finish {r.get('first')}")
	        # a Gemini functionResponse carries an object: the result's text is wrapped in it
	        if not t.startswith("Tool said: ") or "sunny and warm today in Lisbon" not in t:
	            bad.append(f"{c}: second turn text {t[:60]!r}")
	    elif want_json:
	        try: ok = isinstance(json.loads(t), dict)
	        except Exception: ok = False
	        if not ok: bad.append(f"{c}: not a JSON object: {t[:60]!r}")
	    elif not t.startswith("You said:") or f"{c} please answer" not in t:
	        bad.append(f"{c}: text {t[:70]!r} is not this request's answer")
	    if r.get("finish") != STOP: bad.append(f"{c}: finish {r.get('finish')!r}, not {STOP!r}")
	    u = r.get("usage") or {}
	    if not u.get("in") or not u.get("out"): bad.append(f"{c}: usage {u}")
	print("; ".join(bad[:4]) + (f" (+{len(bad) - 4} more)" if len(bad) > 4 else ""))
	sys.exit(1 if bad else 0)
	EOF
}

last() { jget "$(fake_admin "$1" GET /stats)" "last_request.$2"; }
openai_down() { fake_fault A "$1" && fake_fault B "$1"; }
all_ok() { local f; for f in A B X Y; do fake_fault $f '{"mode":"ok"}'; done; }
DOWN='{"mode":"status","status":503}'

# ---- the openai SDK answered by Anthropic -------------------------------------------

openai_down "$DOWN"
sdk "$W/log/oai-ant.jsonl" --sdk openai --model $MINI --tag xlate
why=$(judge "$W/log/oai-ant.jsonl" $MINI X anthropic $HAIKU openai)
check "openai SDK, OpenAI down: plain, streamed and tool round trips answered by Anthropic, as $MINI, zero errors" "$why" [ -z "$why" ]
check "... Anthropic got detour's key in its scheme, never the app's" "x-api-key $(last X x_api_key), auth $(last X authorization)" \
	eval '[ "$(last X x_api_key)" = "$KEY_ANT" ] && [ -z "$(last X authorization)" ] && [ -n "$(last X anthropic_version)" ]'
body=$(last X body)
check "... Anthropic got its own request shape (max_tokens, tool_result in a user turn, its model)" "$body" \
	"$PY" -c 'import json,sys; b=json.loads(sys.argv[1]); m=b["messages"]
assert b["model"] == sys.argv[2] and isinstance(b["max_tokens"], int) and "tools" in b
assert m[-1]["role"] == "user" and m[-1]["content"][0]["type"] == "tool_result"
assert m[-2]["role"] == "assistant" and m[-2]["content"][-1]["type"] == "tool_use"
assert m[-1]["content"][0]["tool_use_id"] == m[-2]["content"][-1]["id"]' "$body" $HAIKU

# ---- ... and by Gemini ----------------------------------------------------------------

fake_fault X "$DOWN"
sdk "$W/log/oai-gem.jsonl" --sdk openai --model $MINI --tag xlate
why=$(judge "$W/log/oai-gem.jsonl" $MINI Y gemini $FLASH openai)
check "openai SDK, OpenAI and Anthropic down: every case answered by Gemini, as $MINI, zero errors" "$why" [ -z "$why" ]
check "... Gemini got detour's key as x-goog-api-key, on its own path" "key $(last Y x_goog_api_key), path $(last Y path)" \
	eval '[ "$(last Y x_goog_api_key)" = "$KEY_GEM" ] && [[ "$(last Y path)" == /v1beta/models/$FLASH:* ]]'
body=$(last Y body)
check "... Gemini got contents with a functionCall and its functionResponse by name" "$body" \
	"$PY" -c 'import json,sys; b=json.loads(sys.argv[1]); c=b["contents"]
assert c[-2]["role"] == "model" and c[-2]["parts"][-1]["functionCall"]["name"] == "lookup"
assert c[-1]["parts"][0]["functionResponse"]["name"] == "lookup" and "tools" in b' "$body"
all_ok

# ---- the Anthropic SDK answered by OpenAI ---------------------------------------------

fake_fault X "$DOWN"
sdk "$W/log/ant-oai.jsonl" --sdk anthropic --model $HAIKU --tag xlate
why=$(judge "$W/log/ant-oai.jsonl" $HAIKU AB openai $MINI anthropic)
check "anthropic SDK, Anthropic down: plain, streamed and tool round trips answered by OpenAI, as $HAIKU, zero errors" "$why" [ -z "$why" ]
p=$(sed -n 's/.*"provider":"\([AB]\)".*/\1/p' "$W/log/ant-oai.jsonl" | tail -1)
check "... OpenAI got detour's key as a Bearer token, no x-api-key" "$(last "${p:-A}" authorization)" \
	eval '[ "$(last "${p:-A}" authorization)" = "Bearer $KEY_OAI" ] && [ -z "$(last "${p:-A}" x_api_key)" ]'
body=$(last "${p:-A}" body)
check "... OpenAI got a tool message answering the assistant's tool call" "$body" \
	"$PY" -c 'import json,sys; b=json.loads(sys.argv[1]); m=b["messages"]
assert b["model"] == sys.argv[2] and m[-1]["role"] == "tool"
assert m[-1]["tool_call_id"] == m[-2]["tool_calls"][0]["id"]' "$body" $MINI
all_ok

# ---- a Gemini client (curl, Gemini's REST shape) answered by OpenAI --------------------

KEY_APP_GEM=AIza-app-own-gemini-0007
gemini() { # METHOD-AND-QUERY OUT: a generateContent call of a Gemini app, its key in the query
	CURL_CA=$ROOT_PEM CURL_OUT=$2 CURL_W='%{http_code} %header{x-detour-provider} %header{x-detour-model}' \
		ccurl enrolled -H 'content-type: application/json' \
		-d '{"contents":[{"role":"user","parts":[{"text":"gemini app asks please"}]}],"generationConfig":{"maxOutputTokens":64}}' \
		"https://$HOST_GEM/v1beta/models/$FLASH:$1"
}
fake_fault Y "$DOWN"
r=$(gemini "generateContent?key=$KEY_APP_GEM" "$W/gem.json")
check "Gemini app, Gemini down: OpenAI answers in Gemini's shape, as $FLASH" "$r $(head -c 300 "$W/gem.json")" \
	"$PY" -c 'import json,sys; r=sys.argv[1].split(); b=json.load(open(sys.argv[2])); c=b["candidates"][0]
assert r == ["200", "openai", sys.argv[3]], r
assert c["content"]["role"] == "model" and c["content"]["parts"][0]["text"].startswith("You said: gemini app asks please")
assert c["finishReason"] == "STOP" and b["modelVersion"] == sys.argv[4] and b["usageMetadata"]["candidatesTokenCount"] > 0' \
	"$r" "$W/gem.json" $MINI $FLASH
p=$(jget "$(fake_admin A GET /stats)" last_request.path | grep -q chat && echo A || echo B)
check "... OpenAI got detour's key; the app's key= stayed out of the URL" "$(last $p authorization) $(last $p path)" \
	eval '[ "$(last $p authorization)" = "Bearer $KEY_OAI" ] && [[ "$(last $p path)" != *key=* ]]'
r=$(gemini "streamGenerateContent?alt=sse&key=$KEY_APP_GEM" "$W/gem.sse")
check "... streamed: Gemini SSE chunks, the last with finishReason and usage" "$r $(tail -c 300 "$W/gem.sse")" \
	"$PY" -c 'import json,sys
ev=[json.loads(l[5:]) for l in open(sys.argv[1]) if l.startswith("data:")]
text="".join(p.get("text","") for e in ev for c in e.get("candidates",[]) for p in c["content"]["parts"])
assert len(ev) > 3 and text.startswith("You said: gemini app asks please"), (len(ev), text[:60])
assert ev[-1]["candidates"][0]["finishReason"] == "STOP" and ev[-1]["usageMetadata"]["totalTokenCount"] > 0' "$W/gem.sse"
all_ok

# ---- quality checks move a bad failover answer on -------------------------------------

openai_down "$DOWN"
fake_fault X '{"mode":"empty"}'
sdk "$W/log/q-empty.jsonl" --sdk openai --model $MINI --tag xlate --cases nonstream,stream
why=$(judge "$W/log/q-empty.jsonl" $MINI Y gemini $FLASH openai)
check "Anthropic answers empty: the next member (Gemini) answers instead, plain and streamed" "$why" [ -z "$why" ]
tried=$(sed -n 's/.*"tried":"\([^"]*\)".*/\1/p' "$W/log/q-empty.jsonl" | head -1)
check "... x-detour-tried says why" "$tried" [ "$tried" = "openai=503, anthropic=empty" ]
fake_fault X '{"mode":"not_json"}'
sdk "$W/log/q-json.jsonl" --sdk openai --model $MINI --tag xlate --cases nonstream --json yes
why=$(judge "$W/log/q-json.jsonl" $MINI Y gemini $FLASH openai json)
check "JSON asked, Anthropic's answer is not JSON: Gemini's JSON answer is given instead" "$why" [ -z "$why" ]
fake_fault X '{"mode":"length"}'
sdk "$W/log/q-len.jsonl" --sdk openai --model $MINI --tag xlate --cases nonstream
why=$(judge "$W/log/q-len.jsonl" $MINI Y gemini $FLASH openai)
check "Anthropic's answer cut by length the request did not ask for: Gemini answers instead" "$why" [ -z "$why" ]
fake_fault X '{"mode":"filter"}'
sdk "$W/log/q-filter.jsonl" --sdk openai --model $MINI --tag xlate --cases nonstream,stream
why=$(judge "$W/log/q-filter.jsonl" $MINI Y gemini $FLASH openai)
check "Anthropic refuses (content filter): Gemini answers instead, plain and streamed" "$why" [ -z "$why" ]
all_ok

# ---- errors in the client's shape ----------------------------------------------------

for f in A B X Y; do fake_fault $f "$DOWN"; done
sdk "$W/log/alldown.jsonl" --sdk openai --model $MINI --tag xlate --cases nonstream,stream
check "every member down: the openai SDK raises its InternalServerError 503 (Gemini's last error, reshaped)" \
	"$(head -c 600 "$W/log/alldown.jsonl")" "$PY" -c 'import json,sys
rs=[json.loads(l) for l in open(sys.argv[1]) if "case" in l]
assert len(rs) == 2
for r in rs:
    e = r["error"]; assert not r["ok"] and e["status"] == 503 and e["class"] == "InternalServerError", e
    assert "openai=503, anthropic=503" in (e["tried"] or ""), e' "$W/log/alldown.jsonl"
sdk "$W/log/alldown-ant.jsonl" --sdk anthropic --model $HAIKU --tag xlate --cases nonstream
check "... and the anthropic SDK its own error type for it" "$(head -c 600 "$W/log/alldown-ant.jsonl")" \
	"$PY" -c 'import json,sys
r=[json.loads(l) for l in open(sys.argv[1]) if "case" in l][0]
e=r["error"]; assert e["status"] == 503 and e["type"] == "overloaded_error", e' "$W/log/alldown-ant.jsonl"
all_ok

openai_down "$DOWN"
CURL_CA=$ROOT_PEM CURL_OUT=$W/bad.json CURL_W='%{http_code}' ccurl enrolled -o "$W/bad.json" \
	-H 'content-type: application/json' -H "authorization: Bearer $KEY_APP_OAI" \
	-d '{"model":"gpt-4o-mini","messages":[{"role":"wizard","content":"hi"}]}' \
	"https://$HOST_OAI/v1/chat/completions" >"$W/bad.code"
check "a request that cannot be translated: 400 in OpenAI's shape naming the field" "$(cat "$W/bad.code") $(cat "$W/bad.json")" \
	eval '[ "$(cat "$W/bad.code")" = 400 ] && [ "$(jget "$(cat "$W/bad.json")" error.type)" = invalid_request_error ] &&
	      grep -q "wizard" "$W/bad.json"'
all_ok

log=$(cat "$W"/log/detourd.*.log)
check "keys appear in no log" "a key was logged" \
	eval '! grep -qe "$KEY_APP_OAI" -e "$KEY_APP_ANT" -e "$KEY_APP_GEM" -e "$KEY_OAI" -e "$KEY_ANT" -e "$KEY_GEM" <<<"$log"'
check "the agent is still alive" "detourd exited" alive "$DETOURD_PID"
e2e_finish
