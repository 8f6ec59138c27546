#!/bin/bash
# The uplink XDP program ([health] uplink, docs/uplink.md) on the client
# namespace's c0: resets from a provider endpoint (a refused connect) and
# ICMP/ICMPv6 unreachables about packets to one (the provider namespace
# routing its addresses to nowhere) are counted in the pinned uplink_signals
# map (bpftool) and logged; a reset to a local socket is left to its owner
# (the agent's, by its mark) or to tcpsig (an application's; fed when
# tcp_signals = no), while ICMP errors and resets no local socket owns (what
# a gateway sees of the machines behind it) reach the health engine, whose
# verdict goes DOWN, in the provider_health map; `detourctl status` sums the
# counters per provider; a reload changes the XDP mode, removes
# the program, and fails open on an interface that is not there; the
# program goes with the agent, even killed.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_require detourd detourctl

# Nothing listens on api.plain.test (A4, B4) port 80: connects there are
# refused. "far" lives behind the provider namespace, which has no route to
# it: a router's ICMP errors.
F4=198.18.1.5 F6=fd00:de71::5
in_prov sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
in_prov ip route add unreachable 198.18.1.0/24
in_prov ip -6 route add unreachable fd00:de71::/64
in_cli ip route add 198.18.1.0/24 via $A4
in_cli ip -6 route add fd00:de71::/64 via $A6

CONF_PROXY="intercept_tls = no
provider_failures_to_eject = 3"
CONF_PROVIDERS="[provider plain]
hosts = $HOST_PLAIN
port = 80

[provider anthropic]
hosts = $HOST_ANT
family = anthropic

[provider far]
hosts = $F4, $F6"
CONF_HEALTH="uplink = c0"
conf_write "$W/detour.conf"
detourd_start || exit 1

# xdp_on: "MODE ID" of the XDP program on c0 (xdp = native, xdpgeneric), nothing when none
xdp_on() {
	in_cli ip -d link show dev c0 | awk '/prog\/xdp id/ { for (i = 1; i < NF; i++) if ($i == "id") id = $(i + 1) }
		{ for (i = 1; i <= NF; i++) if ($i == "xdp" || $i == "xdpgeneric") m = $i }
		END { if (id) print m, id }'
}
# uplink ADDR PORT FIELD: one counter of that endpoint in the pinned map
uplink() {
	bpftool -j map dump pinned "$PIN/uplink_signals" 2>/dev/null |
		"$PY" "$E2E_LIB_DIR/bpfjson.py" verdict "$1" "$2" | sed -n "s/^$3=//p"
}
# health_state ID: the state of provider ID in the pinned provider_health map (lib.sh's health)
health_state() { local h; h=$(health "$1"); echo "${h%% *}"; }
direct() { ccurl other --connect-timeout 2 "$@" >/dev/null 2>&1; }
logged() { grep -q -- "$1" "$DETOURD_LOG"; }

x=$(xdp_on)
check "attached to c0 in native mode (auto, veth has driver XDP)" "ip link: '$x'" [ "${x%% *}" = xdp ]
check "... and says so" "$(grep uplink: "$DETOURD_LOG")" logged "uplink: watching c0 (native XDP)"

# --- resets: refused connects, the flow owned by a local socket in SYN_SENT
direct "http://$A4:80/"
direct "http://$A4:80/"
wait_for 3 eval '[ "$(uplink $A4 80 resets)" = 2 ]'
check "two refused connects to plain: resets=2 in the pinned uplink_signals map" \
	"resets=$(uplink $A4 80 resets)" [ "$(uplink $A4 80 resets)" = 2 ]
check "... both of flows a local socket owned (local=2)" "local=$(uplink $A4 80 local)" \
	[ "$(uplink $A4 80 local)" = 2 ]
check "... logged with the provider and the socket's state, not fed: an application's direct socket, tcpsig reports it" \
	"$(grep 'uplink: plain' "$DETOURD_LOG")" logged "uplink: plain $A4:80 reset (icmp 0/0, syn_sent, tcpsig reports it)"
# a refused connect from a socket with detour's SO_MARK (the default mark): the agent's own
in_cli "$PY" -c 'import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, 0x44540001); s.settimeout(2)
try: s.connect((sys.argv[1], 80))
except OSError: pass' $B4
wait_for 3 eval '[ "$(uplink $B4 80 resets)" = 1 ]'
check "a refused connect of a socket with detour's mark: counted, flagged as the agent's own, not fed" \
	"$(grep "uplink: plain $B4" "$DETOURD_LOG")" \
	logged "uplink: plain $B4:80 reset (icmp 0/0, syn_sent, the agent's own socket: its owner reports it)"
check "a non-provider's reset (N, port 80) is not counted" "" \
	eval 'direct "http://$N4:80/"; [ -z "$(uplink $N4 80 resets)" ]'

# --- ICMP: the provider namespace has no route to far
direct "http://$F4:443/"
direct "http://[$F6]:443/"
# (one error per SYN sent: an IPv6 "no route" is a soft error to TCP, which
# sends the SYN again until the connect times out)
wait_for 3 eval '[ "$(uplink $F4 443 unreachable)" -ge 1 ] && [ "$(uplink $F6 443 unreachable)" -ge 1 ]'
check "ICMP host unreachable about a segment to far (IPv4): counted, type 3" \
	"$(bpftool -j map dump pinned "$PIN/uplink_signals" | "$PY" "$E2E_LIB_DIR/bpfjson.py" verdict $F4 443 | tr '\n' ' ')" \
	eval '[ "$(uplink $F4 443 unreachable)" -ge 1 ] && [ "$(uplink $F4 443 last_icmp_type)" = 3 ]'
check "ICMPv6 unreachable about a segment to far (IPv6): counted, type 1" \
	"$(bpftool -j map dump pinned "$PIN/uplink_signals" | "$PY" "$E2E_LIB_DIR/bpfjson.py" verdict $F6 443 | tr '\n' ' ')" \
	eval '[ "$(uplink $F6 443 unreachable)" -ge 1 ] && [ "$(uplink $F6 443 last_icmp_type)" = 1 ]'
check "... logged, and fed to the health engine: TCP takes a host unreachable as a soft error, tcpsig has nothing yet" \
	"$(grep 'uplink: far' "$DETOURD_LOG")" logged "uplink: far $F4:443 unreachable (icmp 3/1, syn_sent)"
wait_for 3 eval '[ "$(health_state 2)" = 3 ]'
check "... far is DOWN (3) in provider_health: nothing of it connects" "state=$(health_state 2)" \
	[ "$(health_state 2)" = 3 ]

# --- the health engine: resets of flows no socket here owns, from anthropic (X)
h=$(health_state 1)
check "anthropic starts HEALTHY in provider_health" "state=$h" [ "$h" = 0 ]
in_prov "$PY" "$E2E_LIB_DIR/rstsend.py" $X4 443 $C4 42000 3
wait_for 3 eval '[ "$(health_state 1)" = 3 ]'
check "three resets from anthropic's endpoint: resets=3, none local" \
	"resets=$(uplink $X4 443 resets) local=$(uplink $X4 443 local)" \
	eval '[ "$(uplink $X4 443 resets)" = 3 ] && [ "$(uplink $X4 443 local)" = 0 ]'
check "... logged as owned by no local socket" "" logged "uplink: anthropic $X4:443 reset (icmp 0/0, no local socket)"
check "... the health engine ejected anthropic: DOWN (3) in provider_health" "state=$(health_state 1)" \
	[ "$(health_state 1)" = 3 ]
check "... with the kernel's reason" "$(grep 'health: anthropic' "$DETOURD_LOG")" \
	logged "health: anthropic: healthy -> down (3 connects failed or reset, none succeeded)"
# ustat NAME FIELD: a provider's uplink counter in `detourctl status --json`
ustat() {
	"$DETOURCTL" --pin-dir "$PIN" status --json | "$PY" -c 'import json,sys
p = [p for p in json.load(sys.stdin)["providers"] if p["name"] == sys.argv[1]][0]
print(p["uplink"][sys.argv[2]])' "$1" "$2"
}
far=$(( $(uplink $F4 443 unreachable) + $(uplink $F6 443 unreachable) ))
check "detourctl status --json: the uplink counters summed per provider (anthropic, far's two addresses)" \
	"anthropic resets=$(ustat anthropic resets) local=$(ustat anthropic local); far unreachable=$(ustat far unreachable), map: $far" \
	eval '[ "$(ustat anthropic resets)" = 3 ] && [ "$(ustat anthropic local)" = 0 ] && [ "$(ustat far unreachable)" = "$far" ]'
check "... and its table" "$("$DETOURCTL" --pin-dir "$PIN" status | grep -A5 '^uplink signals')" \
	eval '"$DETOURCTL" --pin-dir "$PIN" status | grep -A5 "^uplink signals" | grep -Eq "^  anthropic +3 +0 +0 +0$"'

# --- reloads
reload() {
	CONF_HEALTH=$1 conf_write "$W/detour.conf"
	local n; n=$(grep -c "configuration reloaded" "$DETOURD_LOG")
	kill -HUP "$DETOURD_PID"
	wait_for 5 eval '[ "$(grep -c "configuration reloaded" "$DETOURD_LOG")" -gt $n ]'
}
id0=$(xdp_on); id0=${id0#* }
reload "uplink = c0
tcp_signals = no"
direct "http://$B4:80/"
wait_for 3 eval '[ "$(uplink $B4 80 resets)" = 2 ]'
check "tcp_signals = no: an application's refused connect is fed by the uplink (nobody else reports it)" \
	"$(grep "uplink: plain $B4" "$DETOURD_LOG")" logged "uplink: plain $B4:80 reset (icmp 0/0, syn_sent)"
reload "uplink = c0"
x=$(xdp_on)
check "a reload with the same uplink leaves the program as it is" "'$id0' -> '$x'" [ "${x#* }" = "$id0" ]
reload "uplink = c0
uplink_xdp_mode = generic"
x=$(xdp_on)
check "uplink_xdp_mode = generic: attached again, generic" "ip link: '$x'" [ "${x%% *}" = xdpgeneric ]
direct "http://$A4:80/"
wait_for 3 eval '[ "$(uplink $A4 80 resets)" = 3 ]'
check "... still counting into the same pinned map (resets=3)" "resets=$(uplink $A4 80 resets)" \
	[ "$(uplink $A4 80 resets)" = 3 ]
reload ""
check "no uplink: the program is gone from c0" "ip link: '$(xdp_on)'" [ -z "$(xdp_on)" ]
direct "http://$A4:80/"
check "... and nothing is counted (resets=3)" "resets=$(uplink $A4 80 resets)" [ "$(uplink $A4 80 resets)" = 3 ]
reload "uplink = nosuch0"
check "an uplink that is not there: a warning, and the agent goes on" "$(grep 'uplink' "$DETOURD_LOG" | tail -2)" \
	eval 'logged "uplink: nosuch0: No such device; going on without uplink signals" && alive $DETOURD_PID'
check "... still redirecting" "$(detourd_why)" detourd_ready

# --- the program goes with the agent, even killed
reload "uplink = c0"
check "attached again" "ip link: '$(xdp_on)'" [ -n "$(xdp_on)" ]
detourd_stop KILL
check "detourd killed: no XDP program left on c0 (the link was the agent's)" "ip link: '$(xdp_on)'" \
	[ -z "$(xdp_on)" ]
check "... the counters stay pinned" "resets=$(uplink $A4 80 resets)" [ "$(uplink $A4 80 resets)" = 3 ]

e2e_finish
