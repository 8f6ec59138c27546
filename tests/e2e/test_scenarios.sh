#!/bin/bash
# Transition scenarios (issue 5 §6), proxy mode: steady load from the official
# openai SDK in the enrolled cgroup; the primary, OpenAI (fakellm A and B), is
# switched to a full outage (503), to refusing connections, and to a
# blackhole (requests never answered), then back; Groq (G) and DeepSeek (D)
# are the class's other members. Each scenario checks zero client errors, no
# requests to OpenAI after its verdict flipped but the half-open trials, the
# verdict in the pinned maps with its reason, and the recovery (lib.sh
# scen_outages, scen_run). Short ejections and small thresholds keep each one
# a few seconds. test_scenarios_limits.sh has the rest.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_require detourd fakellm
sdk_require openai || exit 1

fake_std G D || exit 1
scen_outages 2 50
e2e_finish
