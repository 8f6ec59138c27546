#!/bin/bash
# Transition scenarios (issue 5 §6), proxy mode: steady load from the official
# openai SDK in the enrolled cgroup; the primary, OpenAI (fakellm A and B), is
# switched to a full outage (503), to refusing connections, and to a
# blackhole (requests never answered), then back; Groq (G) and DeepSeek (D)
# are the class's other members. Each scenario checks zero client errors, no
# requests to OpenAI after its verdict flipped but the half-open trials, the
# verdict in the pinned maps with its reason, and the recovery (lib.sh
# scen_run). Short ejections and small thresholds keep each one a few seconds.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_require detourd fakellm
sdk_require openai || exit 1

fake_std G D || exit 1
proxy_conf "first_byte_timeout_ms = 1000
retry_budget_min = 100000
provider_failures_to_eject = 3
provider_eject_ms = 1000
upstream_connect_timeout_ms = 400"
CONF_HEALTH="trial_requests = 1
eject_max_ms = 2000
eject_decay_ms = 1000"
detourd_start || exit 1
log_stamp_start
SCEN_ALL="A B G D" SCEN_PER_READMIT=1
load_start 2 50 100 || exit 1

scen_run "outage (503)" "openai model gpt-4o-mini" down '{"mode":"status","status":503}'
scen_run "connection refused" openai down '{"mode":"refuse"}'
scen_run "blackhole (hang)" "openai model gpt-4o-mini" down '{"mode":"hang"}'

load_stop
check "the agent is still alive" "detourd exited" alive "$DETOURD_PID"
e2e_finish
