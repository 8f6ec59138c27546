#!/bin/bash
# The test bed itself, without detourd: names resolve through the hosts file
# only (every address of a name), fakellm endpoints answer by name over TLS in
# both families from an enrolled cgroup, and the three ways of breaking an
# endpoint (refuse, reset, blackhole) really break a direct client.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_require fakellm

fake_std plain || exit 1

# getaddrinfo through the hosts file returns every line of a name, both families
addrs=$(getent ahostsv4 $HOST_OAI | awk '$2 == "STREAM" {print $1}' | sort -u | tr '\n' ' ')
check "hosts file gives both IPv4 addresses of $HOST_OAI" "got '$addrs'" [ "$addrs" = "$A4 $B4 " ]
addrs=$(getent ahostsv6 $HOST_OAI | awk '$2 == "STREAM" {print $1}' | grep -v '^::ffff' | sort -u | tr '\n' ' ')
check "hosts file gives both IPv6 addresses of $HOST_OAI" "got '$addrs'" [ "$addrs" = "$A6 $B6 " ]
check "no DNS: an unknown name does not resolve" "it resolved" \
	bash -c '! timeout 5 getent hosts no-such-name.example.com'

r=$(chat enrolled -4)
check "TLS by name from the enrolled cgroup (IPv4)" "curl said '$r'" \
	bash -c "[[ '$r' =~ ^200\ [AB]\ 198\.18\.0\.[23]\ 443 ]]"
r=$(chat enrolled -6)
check "TLS by name from the enrolled cgroup (IPv6)" "curl said '$r'" \
	bash -c "[[ '$r' =~ ^200\ [AB]\ fd00:de70::[23]\ 443 ]]"
r=$(ccurl other "http://$HOST_PLAIN/v1/models")
check "plain HTTP by name from the other cgroup" "curl said '$r'" \
	bash -c "[[ '$r' =~ ^200\ P[AB]\  ]]"
r=$(chat enrolled --resolve "$HOST_OAI:443:$B4")
check "--resolve pins a client to one endpoint" "curl said '$r'" bash -c "[[ '$r' =~ ^200\ B\  ]]"
j=$(pyclient enrolled --addr $A4 --tls --path /v1/models)
check "python client: TLS and getpeername" "got $j" \
	[ "$(jget "$j" status) $(jget "$j" name) $(jget "$j" peer.0)" = "200 A $A4" ]
j=$(pyclient enrolled --family 6 --addr "::ffff:$A4" --tls --path /v1/models)
check "python client: IPv4-mapped address on an AF_INET6 socket" "got $j" \
	[ "$(jget "$j" status) $(jget "$j" name) $(jget "$j" peer.0)" = "200 A ::ffff:$A4" ]

# the failure modes the failover tests rely on, seen by a direct client
fake_fault A '{"mode":"reset"}'
r=$(chat other --resolve "$HOST_OAI:443:$A4" 2>&1); rc=$?
check "fault reset: a direct client fails" "rc=$rc '$r'" [ $rc -ne 0 ]
fake_fault A '{"mode":"ok"}'
r=$(chat other --resolve "$HOST_OAI:443:$A4")
check "fault cleared: A answers again" "curl said '$r'" bash -c "[[ '$r' =~ ^200\ A ]]"

in_cli ip neigh replace $A4 lladdr 02:00:00:00:00:01 dev c0 nud permanent
t0=$(now_ms)
r=$(chat other --resolve "$HOST_OAI:443:$A4" --connect-timeout 1 2>&1); rc=$?
t=$(( $(now_ms) - t0 ))
check "blackhole: a direct connect hangs until its timeout" "rc=$rc after ${t}ms '$r'" \
	[ $rc -eq 28 ] && [ $t -ge 900 ]
in_cli ip neigh del $A4 dev c0
in_cli ip neigh replace $A6 lladdr 02:00:00:00:00:01 dev c0 nud permanent
r=$(chat other -6 --resolve "$HOST_OAI:443:[$A6]" --connect-timeout 1 2>&1); rc=$?
check "blackhole (IPv6): a direct connect hangs" "rc=$rc '$r'" [ $rc -eq 28 ]
in_cli ip neigh del $A6 dev c0

fake_stop A
r=$(chat other --resolve "$HOST_OAI:443:$A4" 2>&1); rc=$?
check "refuse: nothing listening, connect refused at once" "rc=$rc '$r'" [ $rc -eq 7 ]

e2e_finish
