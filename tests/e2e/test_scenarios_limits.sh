#!/bin/bash
# Transition scenarios (issue 5 §6), proxy mode, continued from
# test_scenarios.sh: the primary, OpenAI (fakellm A and B), slows down (first
# token after 4 s instead of 300 ms), answers 429 with retry-after (a rate
# limit storm), and flaps (resetting connections for 1 s, answering for 1 s);
# Groq (G) and DeepSeek (D) stand in. Same checks (lib.sh scen_limits): zero
# client errors, no requests to OpenAI after its verdict flipped but what its
# readmissions allow, the verdict in the pinned maps, and the recovery; the
# flapping provider's ejections grow.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_require detourd fakellm
sdk_require openai || exit 1

fake_std G D || exit 1
scen_limits 4 50
e2e_finish
