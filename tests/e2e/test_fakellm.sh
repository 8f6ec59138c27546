#!/bin/bash
# fakellm itself, as the translation tests rely on it: the Gemini API (answer,
# SSE stream, model list, key, errors, path prefix), tool calls and tool
# results in the three families, streamed and not, JSON mode, the answer
# faults (empty, length, filter, not_json), strict request checks (400 in
# each family's shape), last_request and the token counters in /stats, and
# the refuse fault (listeners closed, then bound again), the --rpm limit. No detourd, no BPF: curl
# against fakellm on 127.0.0.1 in the provider namespace.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_require fakellm

fake_start F --plain 127.0.0.1:8080 || exit 1
fake_start P --plain 127.0.0.1:8081 --path-prefix=/gemini || exit 1
fake_start R --plain 127.0.0.1:8082 --rpm=2 || exit 1

# ---- requests and answers, family-neutral -------------------------------------
#
# fl.py body FAM once|stream SPEC: prints the path, then the body of a request
#   built from SPEC (JSON): say (the user's message), tools (declare
#   get_weather then get_time), none (tool choice none), result (the history
#   holds a call of get_weather and this result), json (JSON mode), max.
# fl.py assert FAM once|stream|raw CODE PYTHON FILE: runs PYTHON on the answer
#   in FILE: r (its JSON), ev (its SSE events), n (normalized: text, kind of
#   finish, call {id, name, args}, pieces, events, usage) or, for an error,
#   n["error"] once its shape was checked (raw: n is None). answer(lead,
#   source, words) is the expected text.
FL=$W/fl.py
cat >"$FL" <<'EOF'
import json, sys

SAY = "what is the weather in Paris today"
PHRASE = "This is a deterministic answer from fakellm.".split()
TOOLS = [("get_weather", "The weather somewhere"), ("get_time", "The time somewhere")]
CALL_ID = {"openai": "call_prev1", "anthropic": "toolu_prev1"}
FINISH = {
    "openai": {"stop": "stop", "length": "length", "tool_calls": "tool", "content_filter": "filter"},
    "anthropic": {"end_turn": "stop", "max_tokens": "length", "tool_use": "tool", "refusal": "filter"},
    "gemini": {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "filter"},
}

def answer(lead, source, words=16):
    out = ([lead, "said:"] + source.split()[:6]) if lead else []
    i = 0
    while len(out) < words:
        out.append(PHRASE[i % len(PHRASE)]); i += 1
    return " ".join(out[:words])

def schema():
    return {"type": "object", "properties": {"text": {"type": "string"}}}

def body(fam, stream, spec):
    say = spec.get("say", SAY)
    if fam == "openai":
        msgs = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": say}]
        if "result" in spec:
            msgs += [{"role": "assistant", "content": None, "tool_calls": [{"id": CALL_ID[fam], "type": "function",
                      "function": {"name": "get_weather", "arguments": "{\"text\":\"Paris\"}"}}]},
                     {"role": "tool", "tool_call_id": CALL_ID[fam], "content": spec["result"]}]
        b = {"model": "gpt-4o-mini", "messages": msgs}
        if spec.get("tools"):
            b["tools"] = [{"type": "function", "function": {"name": n, "description": d, "parameters": schema()}}
                          for n, d in TOOLS]
        if spec.get("none"):
            b["tool_choice"] = "none"
        if spec.get("json"):
            b["response_format"] = {"type": "json_object"}
        if "max" in spec:
            b["max_tokens"] = spec["max"]
        if stream:
            b["stream"] = True
            b["stream_options"] = {"include_usage": True}
        return "/v1/chat/completions", b
    if fam == "anthropic":
        msgs = [{"role": "user", "content": say}]
        if "result" in spec:
            msgs += [{"role": "assistant", "content": [{"type": "tool_use", "id": CALL_ID[fam],
                      "name": "get_weather", "input": {"text": "Paris"}}]},
                     {"role": "user", "content": [{"type": "tool_result", "tool_use_id": CALL_ID[fam],
                      "content": spec["result"]}]}]
        b = {"model": "claude-sonnet-4-20250514", "max_tokens": spec.get("max", 1024), "messages": msgs}
        if spec.get("tools"):
            b["tools"] = [{"name": n, "description": d, "input_schema": schema()} for n, d in TOOLS]
        if spec.get("none"):
            b["tool_choice"] = {"type": "none"}
        if spec.get("json"):
            b["system"] = [{"type": "text", "text": "Answer in JSON only."}]
        if stream:
            b["stream"] = True
        return "/v1/messages", b
    contents = [{"role": "user", "parts": [{"text": say}]}]
    if "result" in spec:
        contents += [{"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"text": "Paris"}}}]},
                     {"role": "user", "parts": [{"functionResponse": {"name": "get_weather",
                      "response": {"result": spec["result"]}}}]}]
    b = {"contents": contents, "systemInstruction": {"parts": [{"text": "You are terse."}]}}
    if spec.get("tools"):
        b["tools"] = [{"functionDeclarations": [{"name": n, "description": d, "parameters": schema()}
                                                for n, d in TOOLS]}]
    if spec.get("none"):
        b["toolConfig"] = {"functionCallingConfig": {"mode": "NONE"}}
    config = {}
    if spec.get("json"):
        config["responseMimeType"] = "application/json"
    if "max" in spec:
        config["maxOutputTokens"] = spec["max"]
    if config:
        b["generationConfig"] = config
    path = "/v1beta/models/gemini-2.5-flash:" + ("streamGenerateContent?alt=sse" if stream else "generateContent")
    return path, b

def sse(text):
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        name = data = None
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
        events.append((name, None if data in (None, "[DONE]") else json.loads(data), data))
    return events

def finish(fam, reason, call):
    kind = FINISH[fam][reason]
    return "tool" if fam == "gemini" and call and kind == "stop" else kind

def normalize(fam, stream, r, ev):
    n = {"text": "", "call": None, "pieces": 0, "events": len(ev)}
    if fam == "openai" and not stream:
        m = r["choices"][0]["message"]
        n["text"] = m["content"] or ""
        if m.get("tool_calls"):
            c = m["tool_calls"][0]
            n["call"] = {"id": c["id"], "name": c["function"]["name"], "args": json.loads(c["function"]["arguments"])}
        n["kind"] = finish(fam, r["choices"][0]["finish_reason"], n["call"])
        n["usage"] = (r["usage"]["prompt_tokens"], r["usage"]["completion_tokens"], r["usage"]["total_tokens"])
    elif fam == "openai":
        assert ev[-1][2] == "[DONE]", "no [DONE]"
        chunks = [d for _, d, _ in ev if d]
        pieces = []
        for d in chunks:
            if not d["choices"]:
                n["usage"] = (d["usage"]["prompt_tokens"], d["usage"]["completion_tokens"], d["usage"]["total_tokens"])
                continue
            delta = d["choices"][0]["delta"]
            n["text"] += delta.get("content") or ""
            for c in delta.get("tool_calls", []):
                if "id" in c:
                    assert c["index"] == 0 and c["type"] == "function" and c["function"]["arguments"] == "", c
                    n["call"] = {"id": c["id"], "name": c["function"]["name"]}
                else:
                    pieces.append(c["function"]["arguments"])
            if d["choices"][0]["finish_reason"]:
                n["kind"] = finish(fam, d["choices"][0]["finish_reason"], n["call"])
        if n["call"]:
            n["call"]["args"] = json.loads("".join(pieces))
        n["pieces"] = len(pieces)
    elif fam == "anthropic" and not stream:
        for b in r["content"]:
            if b["type"] == "text":
                n["text"] += b["text"]
            elif b["type"] == "tool_use":
                n["call"] = {"id": b["id"], "name": b["name"], "args": b["input"]}
        n["kind"] = finish(fam, r["stop_reason"], n["call"])
        n["usage"] = (r["usage"]["input_tokens"], r["usage"]["output_tokens"])
    elif fam == "anthropic":
        names = [e for e, _, _ in ev]
        assert names[0] == "message_start" and names[-1] == "message_stop", names
        pieces = []
        for name, d, _ in ev:
            assert d["type"] == name, (name, d)
            if name == "content_block_start" and d["content_block"]["type"] == "tool_use":
                b = d["content_block"]
                assert b["input"] == {}, b
                n["call"] = {"id": b["id"], "name": b["name"]}
            elif name == "content_block_delta" and d["delta"]["type"] == "text_delta":
                n["text"] += d["delta"]["text"]
            elif name == "content_block_delta":
                pieces.append(d["delta"]["partial_json"])
            elif name == "message_delta":
                n["kind"] = finish(fam, d["delta"]["stop_reason"], n["call"])
                n["usage"] = (ev[0][1]["message"]["usage"]["input_tokens"], d["usage"]["output_tokens"])
        assert names.count("content_block_start") == names.count("content_block_stop"), names
        if n["call"]:
            n["call"]["args"] = json.loads("".join(pieces))
        n["pieces"] = len(pieces)
    else:
        chunks = [r] if not stream else [d for _, d, _ in ev]
        assert all(raw != "[DONE]" for _, _, raw in ev), "Gemini streams have no end marker"
        for i, d in enumerate(chunks):
            c = d["candidates"][0]
            assert c["index"] == 0 and d["modelVersion"] == "gemini-2.5-flash" and d["responseId"], d
            last = i == len(chunks) - 1
            u = d["usageMetadata"]
            assert last == ("finishReason" in c) == ("candidatesTokenCount" in u), "finish and output tokens in the last chunk only"
            assert u["totalTokenCount"] == u["promptTokenCount"] + u.get("candidatesTokenCount", 0), u
            for p in c.get("content", {}).get("parts", []):
                assert c["content"]["role"] == "model", c
                if "functionCall" in p:
                    assert last, "the call comes whole, in the last chunk"
                    n["call"] = {"id": None, "name": p["functionCall"]["name"], "args": p["functionCall"]["args"]}
                    n["pieces"] = 1
                else:
                    n["text"] += p["text"]
        u = chunks[-1]["usageMetadata"]
        n["usage"] = (u["promptTokenCount"], u["candidatesTokenCount"], u["totalTokenCount"])
        n["kind"] = finish(fam, chunks[-1]["candidates"][0]["finishReason"], n["call"])
    return n

def error(fam, code, r):
    if fam == "openai":
        e = r["error"]
        assert e["type"] == "invalid_request_error" and {"param", "code"} <= set(e), r
        return e["message"]
    if fam == "anthropic":
        assert r["type"] == "error" and r["error"]["type"] == "invalid_request_error" and r["request_id"], r
        return r["error"]["message"]
    e = r["error"]
    assert e["code"] == code and e["status"] == "INVALID_ARGUMENT", r
    return e["message"]

cmd = sys.argv[1]
if cmd == "body":
    path, b = body(sys.argv[2], sys.argv[3] == "stream", json.loads(sys.argv[4]))
    print(path)
    print(json.dumps(b))
    sys.exit(0)
fam, mode, code, test = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
text = open(sys.argv[6]).read()
try:
    r = json.loads(text) if text.startswith("{") else None
    ev = sse(text) if r is None else []
    if mode == "raw":
        n = None
    elif code == 200:
        n = normalize(fam, mode == "stream", r, ev)
    else:
        n = {"error": error(fam, code, r)}
    exec(test)
except Exception as e:
    print("%s %s: %s; answer %d: %s" % (type(e).__name__, e, locals().get("n"), code, text[:600].replace("\n", "\\n")))
    sys.exit(1)
EOF

BASE=http://127.0.0.1:8080
# post [--base URL] PATH BODY [curl args]: one request; CODE, and the body in $W/out
post() {
	local base=$BASE
	[ "$1" = --base ] && { base=$2; shift 2; }
	local path=$1 body=$2; shift 2
	printf '%s' "$body" >"$W/body"
	CODE=$(in_prov curl -sS --max-time 8 -o "$W/out" -w '%{http_code}' -H 'content-type: application/json' \
		-H 'anthropic-version: 2023-06-01' --data-binary @"$W/body" "$@" "$base$path")
}
# ask FAM once|stream [SPEC]: a completion built by fl.py body
ask() {
	FAM=$1 MODE=$2
	"$PY" "$FL" body "$FAM" "$MODE" "${3:-{\}}" >"$W/req" || return 1
	post "$(head -n 1 "$W/req")" "$(tail -n +2 "$W/req")"
}
# is NAME PYTHON: PYTHON holds on the last answer (see fl.py assert)
is() {
	local why
	why=$("$PY" "$FL" assert "$FAM" "$MODE" "$CODE" "$2" "$W/out" 2>&1)
	check "$1" "$why" [ -z "$why" ]
}
stats() { fake_admin "${1:-F}" GET /stats; }

# ---- Gemini ------------------------------------------------------------------------

ask gemini once
is "gemini: generateContent answers a GenerateContentResponse" '
assert n["text"] == answer("You", SAY) and n["kind"] == "stop", n
assert n["usage"] == (10, 16, 26), n["usage"]'
ask gemini stream
is "gemini: streamGenerateContent?alt=sse: one chunk per word, the last with finishReason and the whole usage, no end marker" '
assert n["events"] == 17 and n["text"] == answer("You", SAY) and n["kind"] == "stop", n
assert all(name is None for name, _, _ in ev) and n["usage"] == (10, 16, 26), n'
ask gemini once '{"max":4}'
is "gemini: maxOutputTokens cuts the answer: MAX_TOKENS" 'assert n["text"] == answer("You", SAY, 4) and n["kind"] == "length", n'
FAM=gemini MODE=once
post "/v1beta/models/gemini-2.5-flash:streamGenerateContent" '{"contents":[{"parts":[{"text":"hi"}]}]}'
is "gemini: a stream without alt=sse is refused (400 INVALID_ARGUMENT naming alt=sse)" '
assert code == 400 and "alt=sse" in n["error"], n'
MODE=raw
CODE=$(in_prov curl -sS --max-time 5 -o "$W/out" -w '%{http_code}' "$BASE/v1beta/models")
is "gemini: GET /v1beta/models lists models in Gemini's shape" '
assert code == 200 and r["models"][0]["name"] == "models/gemini-2.5-flash", r
assert all("generateContent" in m["supportedGenerationMethods"] and m["inputTokenLimit"] > 0 for m in r["models"])'

post "/v1beta/models/gemini-2.0-flash:generateContent?key=gk-query-1" '{"contents":[{"parts":[{"text":"hi"}]}]}'
k1=$(jget "$(stats)" last_request.x_goog_api_key)
post "/v1beta/models/gemini-2.0-flash:generateContent" '{"contents":[{"parts":[{"text":"hi"}]}]}' -H 'x-goog-api-key: gk-header-2'
s=$(stats)
check "gemini: the key (?key= or x-goog-api-key) is in last_request.x_goog_api_key" "got '$k1' then '$(jget "$s" last_request.x_goog_api_key)'" \
	[ "$k1 $(jget "$s" last_request.x_goog_api_key) $(jget "$s" last_request.model)" = "gk-query-1 gk-header-2 gemini-2.0-flash" ]

fake_fault F '{"mode":"status","status":429,"count":1}'
post "/v1beta/models/gemini-2.5-flash:generateContent" '{"contents":[{"parts":[{"text":"hi"}]}]}'
is "gemini: fault status 429 is RESOURCE_EXHAUSTED with a RetryInfo" '
e = r["error"]
assert code == 429 and e["code"] == 429 and e["status"] == "RESOURCE_EXHAUSTED" and e["details"][0]["retryDelay"] == "1s", r'
fake_fault F '{"mode":"status","status":503,"count":1}'
post "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse" '{"contents":[{"parts":[{"text":"hi"}]}]}'
is "gemini: fault status 503 is UNAVAILABLE" 'assert code == 503 and r["error"]["status"] == "UNAVAILABLE", r'
post "/v1beta/nothing/here" '{}'
is "gemini: an unknown /v1beta path is a 404 NOT_FOUND" 'assert code == 404 and r["error"]["status"] == "NOT_FOUND", r'

post --base http://127.0.0.1:8081 "/gemini/v1beta/models/gemini-2.5-pro:generateContent" '{"contents":[{"parts":[{"text":"hi"}]}]}'
c1=$CODE
post --base http://127.0.0.1:8081 "/v1beta/models/gemini-2.5-pro:generateContent" '{"contents":[{"parts":[{"text":"hi"}]}]}'
s=$(stats P)
check "gemini: routes respect --path-prefix and have their own counters" "codes $c1 $CODE, stats $s" \
	[ "$c1 $CODE $(jget "$s" 'by_path./v1beta/models/*:generateContent') $(jget "$s" by_path.other)" = "200 404 1 1" ]

# ---- tool calls and tool results, every family, streamed and not -----------------------

declare -A ID_PREFIX=([openai]=call_ [anthropic]=toolu_ [gemini]=)
for fam in openai anthropic gemini; do
	for mode in once stream; do
		ask $fam $mode '{"tools":true}'
		is "$fam $mode: tools declared, a user message: one call of the first tool, its first six words as argument" "
c = n['call']
assert n['kind'] == 'tool' and n['text'] == '' and c['name'] == 'get_weather', n
assert c['args'] == {'text': 'what is the weather in Paris'}, c
assert '${ID_PREFIX[$fam]}' == '' and c['id'] is None or c['id'].startswith('${ID_PREFIX[$fam]}') and len(c['id']) > 12, c
assert '$mode' == 'once' or n['pieces'] >= (1 if '$fam' == 'gemini' else 2), n"
		ask $fam $mode '{"tools":true,"result":"sunny and 22 degrees with light wind"}'
		is "$fam $mode: a tool result is answered 'Tool said: ' and its first six words" "
src = 'sunny and 22 degrees with light wind'
if '$fam' == 'gemini':
    src = json.dumps({'result': src}, separators=(',', ':'))
assert n['text'] == answer('Tool', src) and n['kind'] == 'stop' and n['call'] is None, n"
	done
	ask $fam once '{"tools":true,"none":true}'
	is "$fam: tools forbidden by the tool choice: a text answer" 'assert n["text"] == answer("You", SAY) and n["kind"] == "stop", n'
done

# ---- JSON mode ----------------------------------------------------------------------------

for fam in openai anthropic gemini; do
	ask $fam once '{"json":true}'
	is "$fam: JSON mode answers {\"answer\": words}" 'assert json.loads(n["text"]) == {"answer": answer("You", SAY)} and n["kind"] == "stop", n'
	ask $fam stream '{"json":true,"max":5}'
	is "$fam stream: JSON mode, cut by max_tokens: the pieces make {\"answer\": 5 words}" '
assert json.loads(n["text"]) == {"answer": answer("You", SAY, 5)} and n["kind"] == "length", n'
done

# ---- answer faults ------------------------------------------------------------------------

for fam in openai anthropic gemini; do
	for mode in once stream; do
		fake_fault F '{"mode":"empty","count":1}'
		ask $fam $mode
		is "$fam $mode: fault empty: 200, no text, a normal stop" 'assert code == 200 and n["text"] == "" and n["kind"] == "stop", n'
		fake_fault F '{"mode":"length","count":1}'
		ask $fam $mode '{"max":100}'
		is "$fam $mode: fault length: 3 words and the length finish" 'assert n["text"] == answer("You", SAY, 3) and n["kind"] == "length", n'
		fake_fault F '{"mode":"filter","count":1}'
		ask $fam $mode
		is "$fam $mode: fault filter: no text, stopped by the content filter" 'assert n["text"] == "" and n["kind"] == "filter", n'
		fake_fault F '{"mode":"not_json","count":1}'
		ask $fam $mode '{"json":true}'
		is "$fam $mode: fault not_json: JSON asked, plain words answered" 'assert n["text"] == answer("You", SAY) and n["kind"] == "stop", n'
	done
done
f=$(fake_admin F GET /fault)
check "answer faults with a count return to ok" "fault $f" [ "$(jget "$f" mode)" = ok ]

# ---- strict request checks: 400 in the family's shape, naming the field ------------------

# refused FAM PATH BODY FIELD: a 400 whose message names FIELD
refused() {
	FAM=$1 MODE=once
	post "$2" "$3"
	is "$1: refused with 400 naming '$4': $(printf '%.70s' "$3")" "assert code == 400 and '''$4''' in n['error'], n"
}
M=/v1/messages C=/v1/chat/completions G=/v1beta/models/gemini-2.5-flash:generateContent
refused anthropic $M '{"model":"c","messages":[{"role":"user","content":"hi"}]}' max_tokens
refused anthropic $M '{"model":"c","max_tokens":0,"messages":[{"role":"user","content":"hi"}]}' max_tokens
refused anthropic $M '{"model":"c","max_tokens":9,"messages":[]}' messages
refused anthropic $M '{"model":"c","max_tokens":9,"messages":[{"role":"system","content":"hi"}]}' messages.0.role
refused anthropic $M '{"model":"c","max_tokens":9,"system":[{"type":"image"}],"messages":[{"role":"user","content":"hi"}]}' system.0
refused anthropic $M '{"model":"c","max_tokens":9,"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"f","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_2","content":"x"}]}]}' tool_use_id
refused anthropic $M '{"model":"c","max_tokens":9,"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"f","input":"{}"}]}]}' input
refused anthropic $M '{"model":"c","max_tokens":9,"tools":[{"name":"f","parameters":{}}],"messages":[{"role":"user","content":"hi"}]}' input_schema
refused openai $C '{"model":"m","messages":[]}' messages
refused openai $C '{"model":"m","messages":[{"role":"bot","content":"hi"}]}' "messages[0].role"
refused openai $C '{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"tool","tool_call_id":"call_9","content":"x"}]}' tool_call_id
refused openai $C '{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":{}}}]}]}' arguments
refused openai $C '{"model":"m","tools":[{"name":"f"}],"messages":[{"role":"user","content":"hi"}]}' "tools[0].function.name"
refused gemini $G '{"contents":[]}' contents
refused gemini $G '{"contents":[{"role":"assistant","parts":[{"text":"hi"}]}]}' "contents[0].role"
refused gemini $G '{"contents":[{"role":"user","parts":[]}]}' "contents[0].parts"
refused gemini $G '{"contents":[{"role":"user","parts":[{"functionResponse":{"name":"f","response":{}}}]}]}' function_response.name
refused gemini $G '{"contents":[{"role":"user","parts":[{"type":"text","text":"hi"}]}]}' '"type"'
refused gemini $G '{"contents":[{"parts":[{"text":"hi"}]}],"generationConfig":{"max_tokens":5}}' '"max_tokens"'
refused gemini $G '{"contents":[{"parts":[{"text":"hi"}]}],"tools":[{"functionDeclarations":[{"description":"x"}]}]}' "function_declarations[0].name"

# ---- /stats: last_request.body -------------------------------------------------------------

ask anthropic once '{"tools":true}'
sent=$(cat "$W/body")
b=$(jget "$(stats)" last_request.body)
check "last_request.body is the last request's body" "got '${b:0:200}'" [ "$b" = "$sent" ]
big=$("$PY" -c 'import json; print(json.dumps({"model": "m", "messages": [{"role": "user", "content": "é" * 40000}]}, ensure_ascii=False))')
post /v1/chat/completions "$big"
b=$(jget "$(stats)" last_request.body)
bytes=$(printf '%s' "$b" | wc -c)
prefix=no; [ "${big:0:${#b}}" = "$b" ] && prefix=yes
check "last_request.body: a large body is cut to 64 KiB on a character boundary" \
	"answer $CODE, kept $bytes bytes, a prefix: $prefix" \
	[ "$CODE $prefix $((bytes >= 65535 && bytes <= 65536))" = "200 yes 1" ]

# ---- /stats: tokens; fault refuse ------------------------------------------------------------

fake_admin F POST /reset-stats >/dev/null
post /v1/chat/completions '{"model":"m","messages":[{"role":"user","content":"one two three"}]}'
post /v1/chat/completions '{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"four five"}]}'
s=$(stats)
check "tokens: the prompt and completion tokens of every answer" "stats tokens: $(jget "$s" tokens)" \
	[ "$(jget "$s" tokens.prompt) $(jget "$s" tokens.completion)" = "5 21" ]

# a request left hanging first: refuse must end its connection too
fake_fault F '{"mode":"hang","count":1}'
in_prov curl -sS --max-time 8 -o /dev/null "$BASE/v1/models" >"$W/hung" 2>&1 &
hung=$!
wait_for 5 eval 'in_prov ss -Htn state established "( sport = :8080 )" | grep -q .'
fake_fault F '{"mode":"refuse"}'
wait_for 3 eval '! alive $hung'
check "refuse: a connection in progress is closed" "curl: $(cat "$W/hung")" eval '! alive $hung'
wait $hung 2>/dev/null
r=$(in_prov curl -sS --max-time 3 -o /dev/null -w '%{http_code}' "$BASE/v1/models" 2>&1)
check "refuse: connects are refused" "curl said '$r'" eval '[[ $r == *"Connection refused"* || $r == *"onnect to server"* ]]'
in_prov ss -Htn state established "( sport = :8080 )" >"$W/est"
check "refuse: no provider connection is left open" "$(cat "$W/est")" [ ! -s "$W/est" ]
f=$(fake_admin F POST /fault '{"mode":"refuse","count":2}' 2>&1)
check "refuse takes no count" "admin said '$f'" eval '[[ $f == *400* || $f == *"error"* ]]'
check "refuse: the admin listener still answers" "fault $(fake_admin F GET /fault)" \
	[ "$(jget "$(fake_admin F GET /fault)" mode)" = refuse ]
fake_fault F '{"mode":"ok"}'
r=$(in_prov curl -sS --max-time 3 -o /dev/null -w '%{http_code}' "$BASE/v1/models" 2>&1)
check "refuse ended by the next fault: the same port answers again" "curl said '$r'" [ "$r" = 200 ]

# ---- --rpm: a real limit ------------------------------------------------------------

R=http://127.0.0.1:8082
rpm_ask() {
	in_prov curl -sS --max-time 5 -D "$W/rh" -o /dev/null -w '%{http_code}' -H 'content-type: application/json' \
		--data-binary '{"model":"m","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}' "$R$1"
}
hdr() { tr -d '\r' <"$W/rh" | awk -F': ' -v h="$1" 'tolower($1) == h { print $2 }'; }
c1=$(rpm_ask /v1/chat/completions); left1=$(hdr x-ratelimit-remaining-requests)
c2=$(rpm_ask /v1/messages); left2=$(hdr anthropic-ratelimit-requests-remaining)
c3=$(rpm_ask /v1/chat/completions)
check "--rpm 2: two answers, the limit and what is left in the headers, then 429 with retry-after" \
	"codes $c1 $c2 $c3, left $left1 $left2, limit $(hdr x-ratelimit-limit-requests), retry-after $(hdr retry-after)" \
	[ "$c1 $c2 $c3 $left1 $left2 $(hdr x-ratelimit-limit-requests)" = "200 200 429 1 0 2" ] && [ "$(hdr retry-after)" -ge 59 ]
c4=$(in_prov curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "$R/v1/models")
s=$(stats R)
check "--rpm: model lists are not limited; the 429 shows in by_status" "models $c4, by_status $(jget "$s" by_status)" \
	[ "$c4 $(jget "$s" by_status.429) $(jget "$s" by_status.200)" = "200 1 3" ]

e2e_finish
