#!/bin/bash
# Configuration: a bad file is refused with file:line (by --check and at
# start, before anything is attached); a running agent given a bad file on
# SIGHUP keeps the configuration it has; a good file on SIGHUP is applied
# (enrollment and providers change without a restart).
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_require detourd fakellm

fake_std X || exit 1
good=$W/good.conf
conf_write "$good"
out=$("$DETOURD" --check -c "$good" 2>&1); rc=$?
check "--check accepts the test configuration" "rc=$rc: $out" [ $rc -eq 0 ]

# bad CASE LINE-TO-REPLACE-OR-APPEND TEXT: copy of good.conf with TEXT as line
# LINE (replacing it) and expect "<file>:<LINE>:" in the error
bad() {
	local name=$1 line=$2 text=$3 f=$W/bad-$1.conf out rc
	awk -v l="$line" -v t="$text" 'NR == l { print t; next } { print } END { if (NR < l) print t }' "$good" >"$f"
	out=$("$DETOURD" --check -c "$f" 2>&1); rc=$?
	check "--check refuses $name with <file>:$line" "rc=$rc: $out" \
		eval '[ $rc -ne 0 ] && [[ $out == *"$f:$line:"* ]]'
}
# line numbers of good.conf: 1 [detour], 2 mode, 3 listen, 4 listen6, 5 pin_dir,
# 6 state_dir, 7 log_level, 8 heartbeat_interval_ms, 9 heartbeat_ttl_ms ...
bad "a number that is not one" 9 "heartbeat_ttl_ms = banana"
bad "an unknown key" 7 "frobnicate = yes"
bad "a bad listen address" 3 "listen = 127.0.0.1:notaport"
bad "an unknown mode" 2 "mode = teleport"
bad "a line that is not INI" 8 "this is not ini"
bad "a relative pin_dir" 5 "pin_dir = relative/dir"
bad "an enrolled cgroup that does not exist" 15 "cgroup = $CGROOT/no-such-cgroup"
bad "a provider port out of range" 19 "port = 70000"
note "example: $("$DETOURD" --check -c "$W/bad-an unknown key.conf" 2>&1 | head -n 1)"

# starting with a bad file: refused before anything is attached or pinned
spawn_in agent "$NSC" "$W/log/detourd.bad.log" "$DETOURD" -c "$W/bad-an unknown key.conf"
p=$SPAWN_PID
wait_for 5 eval '! alive $p'
{ wait $p; } 2>/dev/null; rc=$?
check "detourd refuses to start on a bad file" "rc=$rc, $(head -n 2 "$W/log/detourd.bad.log" | tr '\n' ' ')" \
	eval '[ $rc -ne 0 ] && grep -q "bad-an unknown key.conf:7:" "$W/log/detourd.bad.log"'
check "... having attached nothing" "$(bpftool cgroup show "$CG_ENROLLED" | tr '\n' ' ')" detached "$CG_ENROLLED"

# a running agent and SIGHUP
cp "$good" "$W/detour.conf"
detourd_start "$W/detour.conf" || exit 1
redirected_once() { snap; [[ $("$@") =~ ^200\  ]] && [ "$(delta redirected)" -eq 1 ]; }
direct_once() { snap; [[ $("$@") =~ ^200\  ]] && [ "$(delta redirected)" -eq 0 ]; }
ant() { ccurl "$1" -H 'content-type: application/json' -d '{"model":"c","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}' "https://$HOST_ANT/v1/messages"; }

cp "$W/bad-a number that is not one.conf" "$W/detour.conf"
kill -HUP "$DETOURD_PID"
sleep 0.7
check "SIGHUP with a bad file: the agent keeps running" "it exited" alive "$DETOURD_PID"
check "SIGHUP with a bad file: the error is logged with file:line" "$(tail -n 3 "$DETOURD_LOG" | tr '\n' ' ')" \
	grep -q "detour.conf:9:" "$DETOURD_LOG"
check "SIGHUP with a bad file: still redirecting (old configuration kept)" "not redirected" redirected_once chat enrolled -4
check "SIGHUP with a bad file: anthropic still intercepted" "not redirected" redirected_once ant enrolled
check "SIGHUP with a bad file: non-enrolled cgroup still untouched" "redirected" direct_once chat other -4

# a good new file: enroll 'other' too, drop the anthropic provider
CONF_ENROLL="$CG_ENROLLED $CG_OTHER" CONF_PROVIDERS="$(printf '[provider openai]\nhosts = %s\nport = 443\nfamily = openai\n' $HOST_OAI)" \
	conf_write "$W/detour.conf"
kill -HUP "$DETOURD_PID"
check "SIGHUP with a good file: newly enrolled cgroup gets the hooks" "nothing attached to $CG_OTHER" \
	wait_for 3 attached "$CG_OTHER"
check "SIGHUP with a good file: newly enrolled cgroup is redirected" "not redirected" \
	wait_for 3 redirected_once chat other -4
check "SIGHUP with a good file: the removed provider is no longer intercepted" "still redirected" \
	wait_for 3 direct_once ant enrolled
check "SIGHUP with a good file: openai still redirected" "not redirected" redirected_once chat enrolled -6

# and back: 'other' unenrolled on reload
conf_write "$W/detour.conf"
kill -HUP "$DETOURD_PID"
check "SIGHUP: a cgroup no longer enrolled is detached" "$(bpftool cgroup show "$CG_OTHER" | tr '\n' ' ')" \
	wait_for 3 detached "$CG_OTHER"
check "SIGHUP: ... and its traffic goes direct" "redirected" direct_once chat other -4
check "the agent is still alive" "detourd exited" alive "$DETOURD_PID"
e2e_finish
