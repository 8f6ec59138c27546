#!/bin/bash
# An enrolled application's connect() to a provider endpoint is rewritten to
# the local proxy, which relays it to where the application wanted to go; the
# application's getpeername() still names that original address.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_require detourd fakellm

fake_std || exit 1
detourd_start || exit 1

snap
r=$(chat enrolled -4)
set -- $r
check "enrolled curl to https://$HOST_OAI succeeds" "curl said '$r'" [ "$1" = 200 ]
check "it was redirected to the proxy (stats.redirected +1)" "redirected grew by $(delta redirected)" \
	[ "$(delta redirected)" -eq 1 ]
check "curl's remote address is the original endpoint" "remote $3 $4" \
	bash -c "[[ '$3 $4' =~ ^198\.18\.0\.[23]\ 443$ ]]"

for ep in A B; do
	a=${ep}4; a=${!a}
	snap
	j=$(pyclient enrolled --addr "$a" --tls --post "$CHAT_BODY" --path /v1/chat/completions)
	check "getpeername() returns the original $a:443" "client said $j" \
		[ "$(jget "$j" peer.0):$(jget "$j" peer.1)" = "$a:443" ]
	check "the relay reached the endpoint the app asked for ($ep), not another" "client said $j" \
		[ "$(jget "$j" status) $(jget "$j" name)" = "200 $ep" ]
	note "getsockname() of the redirected socket: $(jget "$j" sock.0) (the proxy's side is loopback; not rewritten)"
	check "... and that connection was redirected" "redirected grew by $(delta redirected)" \
		[ "$(delta redirected)" -eq 1 ]
done
check "getpeername rewrites were counted (stats.peer_rewritten)" "$(stats | tr '\n' ' ')" \
	[ "$(stat_get peer_rewritten)" -gt 0 ]

# a burst of parallel connections: every one redirected, none lost
snap
pids=()
for i in $(seq 1 20); do chat enrolled -4 >"$W/par.$i" 2>&1 & pids+=($!); done
wait "${pids[@]}"
n=$(cat "$W"/par.* | grep -c '^200 ')
check "20 parallel enrolled requests: all succeed" "$n/20 ok: $(grep -hv '^200 ' "$W"/par.* | head -3 | tr '\n' ' ')" [ "$n" -eq 20 ]
check "20 parallel enrolled requests: all redirected" "redirected grew by $(delta redirected)" [ "$(delta redirected)" -eq 20 ]

e2e_finish
