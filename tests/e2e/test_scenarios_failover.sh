#!/bin/bash
# Transition scenarios (issue 5 §6) in failover mode (mode = failover): the
# clients (the official openai SDK with its default retries, in the enrolled
# cgroup) talk to OpenAI (fakellm A and B) directly while it is healthy; a
# full outage (503), refused connections and a blackhole turn its verdict
# DOWN from probes and the kernel's TCP signals, the hook redirects new
# connections to the proxy, the agent aborts the direct ones (SOCK_DESTROY:
# the hung keep-alive requests of the blackhole are retried on new,
# redirected connections), and Groq (G) answers; recovery brings OpenAI back.
# Same checks as test_scenarios.sh (lib.sh scen_failover, scen_run).
# test_failmode.sh has which connections are aborted and which are not.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_require detourd fakellm
sdk_require openai || exit 1

fake_std G D || exit 1
scen_failover outages 2 50
e2e_finish
