#!/bin/bash
# IPv6 and dual stack: connect6 redirects IPv6 provider endpoints to the
# proxy's [::1] listener, and IPv4-mapped addresses (::ffff:a.b.c.d) that a
# dual-stack application connects to through an AF_INET6 socket are handled
# as the IPv4 endpoints they are. getpeername() gives back what the
# application asked for, in its own family.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_require detourd fakellm

fake_std plain || exit 1
CONF_DOWN_HOLD_MS=1000 conf_write "$W/detour.conf"
detourd_start "$W/detour.conf" || exit 1

snap
r=$(chat enrolled -6)
check "IPv6: enrolled curl -6 to https://$HOST_OAI succeeds" "curl said '$r'" eval '[[ $r =~ ^200\ [AB]\ fd00:de70::[23]\ 443 ]]'
check "IPv6: redirected" "redirected grew by $(delta redirected)" [ "$(delta redirected)" -eq 1 ]

snap
j=$(pyclient enrolled --addr "$A6" --tls --post "$CHAT_BODY" --path /v1/chat/completions)
check "IPv6: getpeername() returns [$A6]:443" "client said $j" \
	[ "$(jget "$j" peer.0) $(jget "$j" peer.1)" = "$A6 443" ]
check "IPv6: relayed to A" "client said $j" [ "$(jget "$j" status) $(jget "$j" name)" = "200 A" ]
check "IPv6: redirected" "redirected grew by $(delta redirected)" [ "$(delta redirected)" -eq 1 ]

# dual stack: AF_INET6 socket, IPv4-mapped destination
for ep in A B; do
	a=${ep}4; a=${!a}
	snap
	j=$(pyclient enrolled --family 6 --addr "::ffff:$a" --tls --post "$CHAT_BODY" --path /v1/chat/completions)
	check "IPv4-mapped ::ffff:$a: getpeername() returns ::ffff:$a:443" "client said $j" \
		[ "$(jget "$j" peer.0) $(jget "$j" peer.1)" = "::ffff:$a 443" ]
	check "IPv4-mapped ::ffff:$a: relayed to $ep" "client said $j" [ "$(jget "$j" status) $(jget "$j" name)" = "200 $ep" ]
	check "IPv4-mapped ::ffff:$a: redirected (connect6)" "redirected grew by $(delta redirected)" [ "$(delta redirected)" -eq 1 ]
done
snap
j=$(pyclient enrolled --family 6 --addr "::ffff:$A4" --port 80 --host-header $HOST_PLAIN --path /v1/models)
check "IPv4-mapped, plain HTTP provider on port 80: relayed and redirected" "client said $j, redirected +$(delta redirected)" \
	eval '[ "$(jget "$j" status) $(jget "$j" name) $(jget "$j" peer.0)" = "200 PA ::ffff:$A4" ] && [ $(delta redirected) -eq 1 ]'
snap
j=$(pyclient enrolled --family 6 --addr "::ffff:$A4" --port 8080 --path /v1/models)
check "IPv4-mapped, port no provider uses: direct" "client said $j, redirected +$(delta redirected)" \
	eval '[ "$(jget "$j" status) $(jget "$j" name)" = "200 PA" ] && [ $(delta redirected) -eq 0 ]'
snap
j=$(pyclient other --family 6 --addr "::ffff:$A4" --tls --path /v1/models)
check "IPv4-mapped from the non-enrolled cgroup: direct" "client said $j, redirected +$(delta redirected)" \
	eval '[ "$(jget "$j" status)" = 200 ] && [ $(delta redirected) -eq 0 ]'

# failover over IPv6: A6 refuses, B alive
fake_stop A
fails=0 notb=0
snap
for i in $(seq 1 8); do
	r=$(chat enrolled -6 --resolve "$HOST_OAI:443:[$A6]" 2>&1 | tail -n 1)
	[[ $r =~ ^200\  ]] || { fails=$((fails + 1)); note "IPv6 request $i: '$r'"; continue; }
	[[ $r =~ ^200\ B\ $A6\ 443 ]] || notb=$((notb + 1))
done
check "IPv6 failover (A6 refuses): 8 requests, zero failed" "$fails failed" [ $fails -eq 0 ]
check "IPv6 failover: answered by B, the app still sees [$A6]:443" "$notb otherwise" [ $notb -eq 0 ]
fails=0
for i in $(seq 1 4); do
	j=$(pyclient enrolled --family 6 --addr "::ffff:$A4" --tls --path /v1/models)
	[ "$(jget "$j" status) $(jget "$j" name)" = "200 B" ] || { fails=$((fails + 1)); note "mapped request $i: $j"; }
done
check "IPv4-mapped failover (A refuses): 4 requests answered by B" "$fails failed" [ $fails -eq 0 ]
check "redirected every time" "redirected grew by $(delta redirected), want 12" [ "$(delta redirected)" -eq 12 ]

check "the agent is still alive" "detourd exited" alive "$DETOURD_PID"
e2e_finish
