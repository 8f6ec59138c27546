#!/bin/bash
# Only enrolled traffic to configured provider endpoints is touched: a
# non-enrolled cgroup, a port no provider uses and an address no provider has
# all go direct, with the agent running.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_require detourd fakellm

fake_std N plain || exit 1
detourd_start || exit 1

snap
r=$(chat other -4)
check "non-enrolled cgroup: request to $HOST_OAI succeeds" "curl said '$r'" bash -c "[[ '$r' =~ ^200\  ]]"
check "non-enrolled cgroup: not redirected" "redirected grew by $(delta redirected)" [ "$(delta redirected)" -eq 0 ]
r=$(chat other -6)
check "non-enrolled cgroup (IPv6): not redirected" "'$r', redirected +$(delta redirected)" \
	bash -c "[[ '$r' =~ ^200\  ]] && [ $(delta redirected) -eq 0 ]"

snap
r=$(ccurl enrolled "http://$A4:8080/v1/models")
check "enrolled, provider address but port 8080 (no provider): direct" "'$r', redirected +$(delta redirected)" \
	bash -c "[[ '$r' =~ ^200\ PA ]] && [ $(delta redirected) -eq 0 ]"
r=$(ccurl enrolled "http://[$A6]:8080/v1/models")
check "enrolled, IPv6 provider address, port 8080: direct" "'$r', redirected +$(delta redirected)" \
	bash -c "[[ '$r' =~ ^200\ PA ]] && [ $(delta redirected) -eq 0 ]"

snap
r=$(chat enrolled --resolve "$HOST_OAI:443:$N4")
check "enrolled, port 443 of an address no provider has: direct" "'$r', redirected +$(delta redirected)" \
	bash -c "[[ '$r' =~ ^200\ N ]] && [ $(delta redirected) -eq 0 ]"
r=$(chat enrolled -6 --resolve "$HOST_OAI:443:[$N6]")
check "enrolled, IPv6 address no provider has: direct" "'$r', redirected +$(delta redirected)" \
	bash -c "[[ '$r' =~ ^200\ N ]] && [ $(delta redirected) -eq 0 ]"

# the hook must leave non-TCP alone: a UDP connect() to a provider endpoint
snap
j=$(timeout 5 bash -c 'echo $$ >"$1/cgroup.procs"; exec nsenter --net="$2" "$3" -c "
import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.connect((\"$4\", 443)); print(s.getpeername()[0])"' \
	_ "$CG_ENROLLED" "$NSC" "$PY" "$A4" 2>&1)
check "enrolled UDP connect() to a provider endpoint: untouched" "'$j', redirected +$(delta redirected)" \
	bash -c "[ '$j' = '$A4' ] && [ $(delta redirected) -eq 0 ]"

# a connection straight to the proxy's listener is not "redirected" either
snap
in_cli timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$LISTEN_PORT" 2>/dev/null
check "a direct connect to the proxy listener is not rewritten" "redirected grew by $(delta redirected)" \
	[ "$(delta redirected)" -eq 0 ]
check "the agent is still alive" "detourd exited" alive "$DETOURD_PID"

e2e_finish
