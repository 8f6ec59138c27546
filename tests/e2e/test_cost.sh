#!/bin/bash
# Cost accounting (docs/cost.md): a run of requests through the proxy, from
# an enrolled cgroup that is [app chatbot] — OpenAI (fakellm A/B) relayed
# whole and streamed, with and without the usage chunk asked for; Anthropic
# (X) and Gemini (Y) relayed; OpenAI down, the OpenAI client's requests
# answered by Anthropic (translated), and once by Gemini after Anthropic's
# answer failed the quality check (that answer counted too, as it is
# billed) — and `detourctl spend --json` counts
# exactly the tokens fakellm's /stats says it served (input, of it read from
# the prompt cache, output), per provider, each row
# at its model's price (the shipped price list, one model overridden in the
# configuration), a model without a price counted as such. An OpenAI stream
# whose client did not ask for the usage chunk is byte for byte the stream
# fakellm sends such a client (ids and times aside), with curl and with the
# official openai SDK.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_require detourd detourctl fakellm

sdk_require openai || exit 1

# half of each prompt reported read from the providers' prompt caches
fake_start A "$A4:443" "[$A6]:443" --cached-percent=50 || exit 1
fake_start B "$B4:443" "[$B6]:443" --cached-percent=50 || exit 1
fake_start X "$X4:443" "[$X6]:443" --cached-percent=50 || exit 1
fake_start Y "$Y4:443" "[$Y6]:443" --cached-percent=50 || exit 1

ROOT=$(cd "$E2E_LIB_DIR/../.." && pwd)
mixed_family_conf
printf '%s\n' sk-app-chatbot-0007 >"$W/keys/app-openai"
chmod 600 "$W/keys/app-openai"
CONF_EXTRA="prices_file = $ROOT/data/prices.conf"
CONF_PROVIDERS="$CONF_PROVIDERS

[app chatbot]
cgroup = $CG_ENROLLED
key.openai = file:$W/keys/app-openai

# the configuration's price wins over the list's
[prices anthropic]
model = $HAIKU input=2 cached_input=0.2 output=4"
CONF_HEALTH="min_calls = 1000000000"
detourd_start || exit 1
ROOT_PEM=$W/state/ca/root.pem

DOWN='{"mode":"status","status":503}'
all_ok() { local f; for f in A B X Y; do fake_fault $f '{"mode":"ok"}'; done; }

# post CGROUP HOST PATH BODY OUT [curl args]: a POST as an application makes it
post() {
	local cg=$1 host=$2 path=$3 body=$4 out=$5; shift 5
	CURL_CA=${CURL_CA:-$ROOT_PEM} CURL_OUT=$out CURL_W='%{http_code}' ccurl "$cg" \
		-H 'content-type: application/json' "$@" -d "$body" "https://$host$path"
}
oai() { post enrolled $HOST_OAI /v1/chat/completions "$1" "$2" -H 'authorization: Bearer sk-app-0001'; }
ant() {
	post enrolled $HOST_ANT /v1/messages "$1" "$2" -H 'x-api-key: sk-ant-app-0002' \
		-H 'anthropic-version: 2023-06-01'
}
gem() { post enrolled $HOST_GEM "/v1beta/models/$FLASH:$1" "$2" "$3" -H 'x-goog-api-key: AIza-app-0003'; }
chat_body() { # PROMPT MODEL [EXTRA-JSON-MEMBERS]
	printf '{"model":"%s","messages":[{"role":"user","content":"%s"}]%s}' "$2" "$1" "${3:+,$3}"
}
codes="" runs=0
# every answer the clients got: 200
run() { local c; c=$("$@"); codes="$codes $c"; runs=$((runs + 1)); }
# the body the last request to A or B that was about PROMPT carried
sent() { local f; for f in A B; do jget "$(fake_admin $f GET /stats)" last_request.body; done | grep -F "$1"; }

# an OpenAI stream straight from fakellm to a client that does not ask for
# usage, from a cgroup detour leaves alone: what detour's client must see
CURL_CA=$W/ca.pem post other $HOST_OAI /v1/chat/completions \
	"$(chat_body "cost stream not asked" $MINI '"stream":true')" "$W/direct.sse" \
	-H 'authorization: Bearer sk-app-0001' >/dev/null
# from here on fakellm counts only what detour's clients asked
for f in A B X Y; do fake_admin $f POST /reset-stats >/dev/null; done

# ---- the run -----------------------------------------------------------------------

run oai "$(chat_body "cost one please" $MINI)" "$W/o1.json"
run oai "$(chat_body "cost two please, a longer one this time" $MINI)" "$W/o2.json"
run oai "$(chat_body "cost stream asked" $MINI '"stream":true,"stream_options":{"include_usage":true}')" "$W/o3.sse"
run oai "$(chat_body "cost stream not asked" $MINI '"stream":true')" "$W/o4.sse"
sent_o4=$(sent "cost stream not asked")
run oai "$(chat_body "cost stream options empty" $MINI '"stream":true,"stream_options":{}')" "$W/o5.sse"
sent_o5=$(sent "cost stream options empty")
# a model without a price: counted, not priced
run oai "$(chat_body "cost unknown model" gpt-unpriced-test)" "$W/o6.json"
ANT_BODY='{"model":"'$HAIKU'","max_tokens":64,"messages":[{"role":"user","content":"anthropic cost please"}]'
run ant "$ANT_BODY}" "$W/a1.json"
run ant "$ANT_BODY,\"stream\":true}" "$W/a2.sse"
GEM_BODY='{"contents":[{"role":"user","parts":[{"text":"gemini cost please"}]}]}'
run gem generateContent "$GEM_BODY" "$W/g1.json"
run gem "streamGenerateContent?alt=sse" "$GEM_BODY" "$W/g2.sse"
# OpenAI down: Anthropic answers the OpenAI client, translated; the 503s cost nothing
fake_fault A "$DOWN"; fake_fault B "$DOWN"
run oai "$(chat_body "cost failover please" $MINI)" "$W/f1.json"
run oai "$(chat_body "cost failover stream" $MINI '"stream":true')" "$W/f2.sse"
# Anthropic's answer empty: the quality check refuses it and Gemini answers;
# Anthropic answered all the same, and bills it: counted too
fake_fault X '{"mode":"empty","count":1}'
run oai "$(chat_body "cost failover refused" $MINI)" "$W/f3.json"
all_ok
check "every request of the run answered 200" "codes:$codes" [ "$(echo $codes | tr ' ' '\n' | sort -u)" = 200 ]
check "... the failovers by Anthropic, the refused one by Gemini" "$(head -c 300 "$W/f1.json") | $(head -c 300 "$W/f3.json")" \
	eval '[ "$(jget "$(fake_admin X GET /stats)" "by_path./v1/messages")" = 5 ] && grep -q "You said: cost failover please" "$W/f1.json" &&
	      [ "$(jget "$(fake_admin Y GET /stats)" "by_path./v1beta/models/*:generateContent")" = 2 ] &&
	      grep -q "You said: cost failover refused" "$W/f3.json"' 

# ---- what the clients saw ------------------------------------------------------------

usage_chunks() { grep -c '"usage":{' "$1"; }
check "a stream asking for the usage chunk gets it" "$(tail -c 300 "$W/o3.sse")" [ "$(usage_chunks "$W/o3.sse")" = 1 ]
check "a stream not asking for it gets none, and no usage member at all" "$(tail -c 300 "$W/o4.sse")" \
	eval '! grep -q usage "$W/o4.sse" && ! grep -q usage "$W/o5.sse" && grep -q "data: \[DONE\]" "$W/o4.sse"'
check "... nor does a translated stream" "$(tail -c 300 "$W/f2.sse")" eval '! grep -q usage "$W/f2.sse"'
norm() { sed -E 's/"id":"[^"]*"/"id":"-"/g; s/"created":[0-9]+/"created":0/g' "$1"; }
check "... byte for byte the stream fakellm sends a client that did not ask (curl)" \
	"$(diff <(norm "$W/direct.sse") <(norm "$W/o4.sse") | head -5)" \
	eval '[ -s "$W/direct.sse" ] && diff -q <(norm "$W/direct.sse") <(norm "$W/o4.sse") >/dev/null'
check "... while detour asked fakellm for the usage chunk, the rest of the request as it was" "$sent_o4 | $sent_o5" \
	eval '[ "$sent_o4" = "$(chat_body "cost stream not asked" $MINI '"'"'"stream":true,"stream_options":{"include_usage":true}'"'"')" ] &&
	      [ "$sent_o5" = "$(chat_body "cost stream options empty" $MINI '"'"'"stream":true,"stream_options":{"include_usage":true}'"'"')" ]'

sdk_run "$W/sdk.jsonl" openai_client.mjs OPENAI_API_KEY=sk-app-0001 -- --n 2 --stream yes --usage no --tag cost
sdk_run "$W/sdk-asked.jsonl" openai_client.mjs OPENAI_API_KEY=sk-app-0001 -- --n 1 --stream yes --tag cost
why=$("$PY" - "$W/sdk.jsonl" "$W/sdk-asked.jsonl" <<-'EOF'
	import json, sys
	bad = []
	for path, asked in ((sys.argv[1], False), (sys.argv[2], True)):
	    rs = [json.loads(l) for l in open(path) if l.strip() and '"summary"' not in l]
	    if not rs: bad.append(f"{path}: no requests")
	    for r in rs:
	        if not r.get("ok") or not r.get("text", "").startswith("You said:"): bad.append(f"error {r}")
	        elif asked and (r["usage_members"] != r["chunks"] or r["empty_choices"] != 1 or not r["usage"]):
	            bad.append(f"asked: {r['usage_members']}/{r['chunks']} usage members, {r['empty_choices']} without choices")
	        elif not asked and (r["usage_members"] or r["empty_choices"] or r["usage"]):
	            bad.append(f"not asked: {r['usage_members']} usage members, {r['empty_choices']} without choices")
	print("; ".join(bad[:3]))
	EOF
)
check "openai SDK: streams not asking for usage see no usage member and no empty chunk; asking, they do" "$why" [ -z "$why" ]

# ---- what detour counted -------------------------------------------------------------

# the spend file is written on the heartbeat after an answer: wait for all of them
# the SDK's 3 and the answer the quality check refused
answers=$((runs + 3 + 1))
spend_json() { "$DETOURCTL" -c "$W/detour.conf" spend --json 2>/dev/null; }
counted() { spend_json | "$PY" -c 'import json,sys; print(sum(r["requests"] for r in json.load(sys.stdin)["rows"]))' 2>/dev/null; }
wait_for 5 eval '[ "$(counted)" = "$answers" ]'
check "detourctl spend counts every answer ($answers)" "$(spend_json)" [ "$(counted)" = "$answers" ]
why=$(spend_json | "$PY" - "$(for f in A B X Y; do fake_admin $f GET /stats; echo; done)" <<-'EOF'
	import json, sys
	spend = json.load(sys.stdin)
	stats = [json.loads(l) for l in sys.argv[1].splitlines() if l.strip()]
	KINDS = ("prompt", "cached", "completion")
	t = [s["tokens"] for s in stats]
	want = {"openai": tuple(t[0][k] + t[1][k] for k in KINDS),
	        "anthropic": tuple(t[2][k] for k in KINDS), "gemini": tuple(t[3][k] for k in KINDS)}
	# list prices of the shipped file, the configuration's for Haiku (µ$ per million = p$ per token)
	price = {("openai", "gpt-4o-mini"): (150000, 75000, 600000),
	         ("anthropic", "claude-haiku-4-5"): (2000000, 200000, 4000000),
	         ("gemini", "gemini-2.0-flash"): (100000, 25000, 400000)}
	bad, got = [], {}
	for r in spend["rows"]:
	    if r["app"] != "chatbot": bad.append(f"app {r['app']!r}")
	    i, c, o = got.get(r["provider"], (0, 0, 0))
	    got[r["provider"]] = (i + r["input_tokens"], c + r["cached_input_tokens"], o + r["output_tokens"])
	    if r["unmetered"]: bad.append(f"{r['provider']}/{r['model']}: {r['unmetered']} answers without usage")
	    p = price.get((r["provider"], r["model"]))
	    if p is None:
	        if r["model"] != "gpt-unpriced-test" or r["unpriced"] != r["requests"] or r["cost_usd_pico"]:
	            bad.append(f"unexpected row {r}")
	        continue
	    if r["class"] != "mixed": bad.append(f"{r['model']}: class {r['class']!r}")
	    fresh = r["input_tokens"] - r["cached_input_tokens"]
	    cost = fresh * p[0] + r["cached_input_tokens"] * p[1] + r["output_tokens"] * p[2]
	    if r["unpriced"] or r["cost_usd_pico"] != cost or r["cost_usd_micro"] != (cost + 500000) // 1000000:
	        bad.append(f"{r['provider']}/{r['model']}: cost {r['cost_usd_pico']} p$, expected {cost}")
	for prov, w in want.items():
	    if got.get(prov) != w: bad.append(f"{prov}: counted (input, cached, output) {got.get(prov)}, fakellm served {w}")
	    if not w[1]: bad.append(f"{prov}: fakellm reported no cached input")
	if spend["prices_date"] is None: bad.append("no price list date")
	print("; ".join(bad[:4]))
	EOF
)
check "... input, cached input and output tokens per provider equal fakellm's served usage exactly; costs at list and configured prices" "$why" [ -z "$why" ]
table=$("$DETOURCTL" -c "$W/detour.conf" spend)
check "detourctl spend prints the rows, the total and the unpriced answers" "$table" \
	eval 'grep -q "^APP .*PROVIDER .*COST" <<<"$table" && grep -q "^chatbot .*anthropic .*$HAIKU .*mixed" <<<"$table" &&
	      grep -q "^total \$[0-9]*\.[0-9]\{6\} (the configuration.s prices, else the price list of 20" <<<"$table" &&
	      grep -q "^1 answers of models without a known price" <<<"$table"'

# ---- a provider told not to ask for the usage chunk ----------------------------------

CONF_PROVIDERS=${CONF_PROVIDERS/hosts = $HOST_OAI/hosts = $HOST_OAI
ask_stream_usage = no}
conf_write "$W/detour.conf"
kill -HUP "$DETOURD_PID"
wait_for 5 grep -q "configuration reloaded" "$DETOURD_LOG"
unmetered() { spend_json | "$PY" -c 'import json,sys
print(sum(r["unmetered"] for r in json.load(sys.stdin)["rows"] if r["model"] == "gpt-4o-mini"))' 2>/dev/null; }
before=$(unmetered)
run oai "$(chat_body "cost stream not asked again" $MINI '"stream":true')" "$W/o7.sse"
sent_o7=$(sent "cost stream not asked again")
check "ask_stream_usage = no: the stream request goes as the client sent it" "$sent_o7" \
	[ "$sent_o7" = "$(chat_body "cost stream not asked again" $MINI '"stream":true')" ]
wait_for 5 eval '[ "$(unmetered)" = $((before + 1)) ]'
check "... and its answer is counted unmetered (no usage came)" "unmetered $before -> $(unmetered)" \
	[ "$(unmetered)" = $((before + 1)) ]

e2e_finish
