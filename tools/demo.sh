#!/bin/bash
# detour live failover demonstration: tools/demo.sh BUILD_DIR (make demo, as root)
#
# Builds the same throw-away world as the end-to-end tests (tests/e2e/lib.sh:
# private mount namespace with a hosts file, two network namespaces joined by a
# veth, a test CA, test cgroups, a private bpffs), starts two fake OpenAI
# endpoints A and B for api.openai.com and detourd, and runs an unmodified curl
# loop in the enrolled cgroup, pinned to endpoint A like a client with cached
# DNS. Then A is broken three ways (reset, refuse, blackhole), detourd is killed
# with -9 and started again, and the client carries on. Act 2 turns on the
# re-signing proxy: OpenAI fails (503, then hangs) and the requests are answered
# by Groq, model renamed, signed with detour's key. About 60 seconds.
# Everything is removed on exit. Traffic stays inside the demo's namespaces.
E2E_NAME=demo
. "$(dirname "$0")/../tests/e2e/lib.sh"
e2e_init "$@"
e2e_require detourd fakellm

if [ -t 1 ]; then B=$'\e[1m' G=$'\e[32m' R=$'\e[31m' Y=$'\e[33m' D=$'\e[2m' N=$'\e[0m'; else B= G= R= Y= D= N=; fi
T0=$(now_ms)
el() { local t=$(( $(now_ms) - T0 )); printf '%3d.%ds' $((t / 1000)) $(( (t % 1000) / 100 )); }
say() { printf '\n%s %s==> %s%s\n' "$(el)" "$B" "$*" "$N"; }
info() { printf '%s       %s%s\n' "$D" "$*" "$N"; }
E2E_QUIET_LOGS=1

cat <<EOF
${B}detour: live failover demonstration${N}
  world   network namespace "cli" (detourd + clients) <-veth-> "prov" (fake providers)
          api.openai.com = A $A4 and B $B4 (hosts file of a private mount namespace)
  client  unmodified curl in cgroup ${CG_ENROLLED#"$CG2"/}, pinned to A (curl --resolve),
          one request every 250 ms: status, who answered, latency, via detour or direct
EOF

fake_std || exit 1
CONF_DOWN_HOLD_MS=3000 conf_write "$W/detour.conf"
detourd_start "$W/detour.conf" || exit 1
info "detourd pid $DETOURD_PID, pin dir $PIN, proxy 127.0.0.1:$LISTEN_PORT and [::1]:$LISTEN_PORT"

# the client loop: one line per request, a record per request in $W/demo.rec
client_loop() {
	local n=0 r code who ms before after via col
	while [ ! -e "$W/demo.stop" ] && [ $n -lt 400 ]; do
		n=$((n + 1))
		before=$(stat_get redirected)
		r=$(chat enrolled -4 --resolve "$HOST_OAI:443:$A4" --max-time 5 2>/dev/null | tail -n 1)
		after=$(stat_get redirected)
		set -- $r
		code=${1:-000} who=${2:-"-"}
		[[ $who =~ ^[0-9.]+$ ]] && who="-"
		ms=$(awk -v t="${!#}" 'BEGIN { printf "%d", t * 1000 }')
		if [ "${after:-0}" -gt "${before:-0}" ]; then via="via detour"; else via="direct"; fi
		if [ "$code" = 200 ]; then col=$G; else col=$R; fi
		printf '%s   #%-3d %s%s%s  answered by %-2s %-10s %5d ms\n' "$(el)" $n "$col" "$code" "$N" "$who" "$via" "$ms"
		echo "$code $who $via" >>"$W/demo.rec"
		sleep 0.25
	done
}
# for contrast: the same request from a cgroup that is not enrolled
contrast() {
	local r
	r=$(chat other -4 --resolve "$HOST_OAI:443:$A4" --connect-timeout 2 --max-time 3 2>&1 | grep -m1 '^curl:')
	info "for comparison, a client that is not enrolled, pinned to A: ${r:-ok}"
}
status() {
	if [ -x "$DETOURCTL" ]; then
		"$DETOURCTL" --pin-dir "$PIN" status 2>&1 | sed 's/^/       /'
	else
		bpftool -j map dump pinned "$PIN/verdicts" 2>/dev/null | "$PY" "$E2E_LIB_DIR/bpfjson.py" verdicts |
			awk '{ s = $3; sub("provider_id=", "", s); printf "       %-16s port %-4s %s %s %s %s\n", $1, $2, $4, $8, $9, $10 }' |
			sed 's/state=0/HEALTHY/; s/state=1/DEGRADED/; s/state=2/RATE_LIMITED/; s/state=3/DOWN/; s/state=4/PROBING/'
	fi
}

say "All healthy: the client's connections to A are redirected to detour's proxy and relayed to A"
client_loop & E2E_PIDS+=($!)
sleep 4

say "A resets every connection (TCP RST as soon as the TLS ClientHello arrives)"
fake_stop A
rst_start RA --on data "$A4:443" "[$A6]:443" >/dev/null || exit 1
contrast
sleep 5

say "A refuses connections (nothing listens on $A4:443)"
fake_stop RA
contrast
sleep 5

say "A is blackholed (its packets go nowhere: connect() would hang)"
in_cli ip neigh replace $A4 lladdr 02:00:00:00:00:01 dev c0 nud permanent
contrast
sleep 5

say "What detour thinks of the endpoints (verdicts map)"
status

say "A is back: once its hold-down ($((3000 / 1000)) s) is over, the client's requests reach A again"
in_cli ip neigh del $A4 dev c0
fake_start A "$A4:443" "[$A6]:443" >/dev/null || exit 1
sleep 5

say "kill -9 detourd: fail open, new connections go direct to A at once"
{ kill -KILL "$DETOURD_PID"; wait "$DETOURD_PID"; } 2>/dev/null
DETOURD_PID=
info "bpftool cgroup show: $(bpftool cgroup show "$CG_ENROLLED" | sed 1d | awk '{print $2}' | tr '\n' ' ')(pinned links stay; heartbeat and listener checks make them harmless)"
sleep 4

say "detourd started again: it reuses its pinned maps and links, connections are redirected again"
detourd_start "$W/detour.conf" >/dev/null || exit 1
sleep 4

touch "$W/demo.stop"
wait_for 6 eval '[ -z "$(jobs -rp)" ] || ! jobs -r | grep -q client_loop'
sleep 0.5

# ---- act 2: the re-signing proxy, across providers -------------------------------

cat <<EOF

${B}Act 2: the re-signing proxy${N}
  detour now terminates the client's TLS with a leaf of its local CA (the client trusts it),
  and a class makes gpt-4o-mini on OpenAI equivalent to llama-3.3-70b on Groq ($HOST_GROQ = $G4)
  and to deepseek-chat on DeepSeek ($HOST_DEEPSEEK = $D4).
  client  unmodified curl, https://$HOST_OAI/v1/chat/completions, model gpt-4o-mini, its own key
EOF
fake_start G "$G4:443" "[$G6]:443" --path-prefix=/openai >/dev/null || exit 1
fake_start D "$D4:443" "[$D6]:443" >/dev/null || exit 1
proxy_conf "first_byte_timeout_ms = 1000
provider_eject_ms = 1000"
CONF_DOWN_HOLD_MS=3000 conf_write "$W/detour.conf"
kill -HUP "$DETOURD_PID"
wait_for 5 grep -q "configuration reloaded" "$DETOURD_LOG"
cat "$W/ca.pem" "$W/state/ca/root.pem" >"$W/clients-ca.pem"

# one request per line: status, who answered (provider, model: the client
# itself always sees the model it asked for), latency
proxy_loop() {
	local n=0 out code prov model ms col
	while [ ! -e "$W/demo2.stop" ] && [ $n -lt 400 ]; do
		n=$((n + 1))
		out=$(CURL_CA=$W/clients-ca.pem CURL_OUT=$W/demo2.body CURL_W='%{http_code} %{time_total}' \
			chat enrolled -D "$W/demo2.h" --max-time 5 2>/dev/null)
		code=${out%% *} ms=$(awk -v t="${out##* }" 'BEGIN { printf "%d", t * 1000 }')
		prov=$(sed -n 's/^x-detour-provider: *//Ip' "$W/demo2.h" 2>/dev/null | tr -d '\r')
		model=$(sed -n 's/^x-detour-model: *//Ip' "$W/demo2.h" 2>/dev/null | tr -d '\r')
		if [ "$code" = 200 ]; then col=$G; else col=$R; fi
		printf '%s   #%-3d %s%s%s  answered by %-7s model %-26s %5d ms\n' "$(el)" $n "$col" "$code" "$N" \
			"${prov:--}" "${model:--}" "$ms"
		echo "$code ${prov:--}" >>"$W/demo2.rec"
		sleep 0.25
	done
}

say "All healthy: OpenAI answers, with the application's own key"
proxy_loop & E2E_PIDS+=($!)
sleep 3
say "OpenAI fails completely: every request gets a 503 (both addresses)"
fake_fault A '{"mode":"status","status":503}'; fake_fault B '{"mode":"status","status":503}'
sleep 4
say "OpenAI hangs: no first byte within 1 s, the request moves on to Groq; after 3 failures OpenAI is skipped for a while"
fake_fault A '{"mode":"hang"}'; fake_fault B '{"mode":"hang"}'
sleep 5
say "OpenAI is back: once its ejection is over, a request tries it again and it takes over"
fake_fault A '{"mode":"ok"}'; fake_fault B '{"mode":"ok"}'
sleep 7
touch "$W/demo2.stop"
wait_for 8 eval '! jobs -r | grep -q proxy_loop'
sleep 0.5

total=$(wc -l <"$W/demo.rec")
errors=$(grep -vc '^200 ' "$W/demo.rec")
byA=$(grep -c '^200 A ' "$W/demo.rec"); byB=$(grep -c '^200 B ' "$W/demo.rec")
via=$(grep -c 'via detour' "$W/demo.rec"); direct=$(grep -c ' direct$' "$W/demo.rec")
total2=$(wc -l <"$W/demo2.rec")
errors2=$(grep -vc '^200 ' "$W/demo2.rec")
byO=$(grep -c '^200 openai' "$W/demo2.rec"); byG=$(grep -c '^200 groq' "$W/demo2.rec")
say "Summary"
printf '       act 1 (endpoints): requests %d, errors %s%d%s; answered by A %d, by B %d; via detour %d, direct %d\n' \
	"$total" "$([ "$errors" -eq 0 ] && echo "$G" || echo "$R")" "$errors" "$N" "$byA" "$byB" "$via" "$direct"
printf '       act 2 (providers): requests %d, errors %s%d%s; answered by OpenAI %d, by Groq %d\n' \
	"$total2" "$([ "$errors2" -eq 0 ] && echo "$G" || echo "$R")" "$errors2" "$N" "$byO" "$byG"
printf '       hook counters: %s\n' "$(stats | grep -v '=0$' | tr '\n' ' ')"
echo
[ "$errors" -eq 0 ] && [ "$errors2" -eq 0 ]
