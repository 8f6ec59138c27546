#!/bin/bash
# Transition scenarios (issue 5 §6), proxy mode, continued (test_scenarios.sh
# has the outages): the primary, OpenAI (fakellm A and B), slows down (first
# token after 4 s instead of 300 ms), answers 429 with retry-after (a rate
# limit storm), and flaps (resetting connections for 1 s, answering for 1 s);
# Groq (G) and DeepSeek (D) stand in. Same checks (lib.sh scen_run,
# scen_flap): zero client errors, no requests to OpenAI after its verdict
# flipped but what its readmissions allow, the verdict in the pinned maps, and
# the recovery.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_require detourd fakellm
sdk_require openai || exit 1

fake_std G D || exit 1
proxy_conf "first_byte_timeout_ms = 6000
retry_budget_min = 100000
provider_failures_to_eject = 3
provider_eject_ms = 500
upstream_connect_timeout_ms = 400"
CONF_HEALTH="trial_requests = 1
eject_max_ms = 4000
eject_decay_ms = 4000
window_ms = 3000
min_calls = 3
slow_ceiling_ms = 2000"
detourd_start || exit 1
log_stamp_start
SCEN_ALL="A B G D"
WORKERS=4
load_start $WORKERS 50 100 || exit 1

# slow calls are judged per model; DEGRADED ranks it after its healthy peers
# until the evidence ages out of the window (then all workers may go back)
SCEN_WINDOW_S=6 SCEN_PER_READMIT=$WORKERS scen_run "degradation (first token 4 s)" "openai model gpt-4o-mini" degraded \
	'{"mode":"slow","ttft_ms":4000}' '{"mode":"slow","ttft_ms":300}'
# a 429 sets the model aside until its retry-after; each reset lets the
# workers' next requests in until the next 429
SCEN_PER_READMIT=$WORKERS scen_run "rate-limit storm (429, retry-after 1 s)" "openai model gpt-4o-mini" rate-limited \
	'{"mode":"status","status":429,"retry_after":1}'
scen_flap "flapping (1 s reset, 1 s up)" openai '{"mode":"reset"}' 3 1 1

load_stop
check "the agent is still alive" "detourd exited" alive "$DETOURD_PID"
e2e_finish
