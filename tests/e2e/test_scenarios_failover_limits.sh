#!/bin/bash
# Transition scenarios (issue 5 §6) in failover mode, continued from
# test_scenarios_failover.sh: the clients (the official openai SDK with its
# default retries) talk to OpenAI (fakellm A and B) directly while it is
# healthy; it answers 429 with retry-after (a rate limit storm: the probes'
# 429s set it aside, RATE_LIMITED), then flaps (resetting connections for
# 1 s, answering for 1 s). The hook redirects new connections while it is
# not healthy, the agent aborts the direct ones, Groq (G) answers. Same
# checks (lib.sh scen_failover limits): zero client errors, no requests to
# OpenAI after its verdict flipped but what its readmissions allow, the
# verdict in the pinned map, the recovery; the flapping provider's
# ejections grow. Slow first tokens are not seen in failover mode (only
# proxy mode's requests time them): test_scenarios_limits.sh has them.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_require detourd fakellm
sdk_require openai || exit 1

fake_std G D || exit 1
scen_failover limits 2 50
e2e_finish
