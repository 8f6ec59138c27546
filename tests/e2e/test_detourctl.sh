#!/bin/bash
# detourctl reads the pinned maps itself: it reports a running agent, a frozen
# or killed one (hook failing open) and a cleanly stopped one; enroll/unenroll
# attach and detach the pinned programs on a cgroup the configuration does not
# name, and refuse to touch one it does.
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_require detourd detourctl fakellm

ctl() { "$DETOURCTL" --pin-dir "$PIN" "$@"; }
json_field() { jget "$(ctl status --json 2>/dev/null)" "$1"; }

ctl status >/dev/null 2>"$W/ctl.err"; rc=$?
check "before detourd ever ran: exit 3" "exit $rc: $(cat "$W/ctl.err")" \
	eval '[ $rc -eq 3 ] && grep -q "has never run with pin dir" "$W/ctl.err"'

fake_std || exit 1
detourd_start || exit 1
chat enrolled -4 >/dev/null

out=$(ctl status); rc=$?
check "running: exit 0 and the agent line" "exit $rc: $(echo "$out" | head -3 | tr '\n' ';')" \
	eval '[ $rc -eq 0 ] && echo "$out" | grep -Eq "^agent +running \(pid $DETOURD_PID, heartbeat"'
j=$(ctl status --json)
check "running --json: state, pid" "$(jget "$j" agent)" \
	eval '[ "$(jget "$j" agent.state)" = running ] && [ "$(jget "$j" agent.pid)" = "$DETOURD_PID" ]'
check "running --json: provider openai with its endpoints" "$(jget "$j" providers)" \
	"$PY" -c 'import json,sys
d=json.loads(sys.argv[1]); p=[p for p in d["providers"] if p["name"]=="openai"][0]
addrs={e["address"] for e in p["endpoints"]}
assert {"198.18.0.2:443","198.18.0.3:443"} <= addrs, addrs
a=[e for e in p["endpoints"] if e["address"]=="198.18.0.2:443"][0]
assert a["redirected"] >= 1 and a["verdict"]["state"] == "healthy" and a["verdict"]["relayed"] >= 1, a' "$j"
check "running --json: counters and the configured cgroup" "$(jget "$j" cgroups)" \
	"$PY" -c 'import json,sys
d=json.loads(sys.argv[1])
assert d["counters"]["redirected"] >= 1
c=[c for c in d["cgroups"] if c["tag"]=="cfg"]
assert len(c)==1 and c[0]["attached"]==c[0]["links"] and c[0]["links"]>0 and c[0]["path"]==sys.argv[2], c' "$j" "$CG_ENROLLED"

out=$(ctl enroll "$CG_OTHER"); rc=$?
check "enroll the other cgroup" "exit $rc: $out" eval '[ $rc -eq 0 ] && attached "$CG_OTHER"'
snap
r=$(chat other -4)
check "... its traffic is now redirected" "curl '$r', redirected +$(delta redirected)" \
	eval '[[ "$r" =~ ^200\  ]] && [ "$(delta redirected)" -eq 1 ]'
ctl unenroll "$CG_ENROLLED" >/dev/null 2>"$W/ctl.err"; rc=$?
check "unenroll of a configured cgroup is refused" "exit $rc: $(cat "$W/ctl.err")" \
	eval '[ $rc -eq 1 ] && grep -q "enrolled by the configuration" "$W/ctl.err" && attached "$CG_ENROLLED"'
out=$(ctl unenroll "$CG_OTHER"); rc=$?
check "unenroll the other cgroup" "exit $rc: $out" eval '[ $rc -eq 0 ] && detached "$CG_OTHER"'
snap
r=$(chat other -4)
check "... its traffic goes direct again" "curl '$r', redirected +$(delta redirected)" \
	eval '[[ "$r" =~ ^200\  ]] && [ "$(delta redirected)" -eq 0 ]'

kill -STOP "$DETOURD_PID"
sleep 1.2
ctl status >/dev/null; rc=$?
st=$(json_field agent.state) summary=$(json_field agent.summary)
kill -CONT "$DETOURD_PID"
check "frozen agent: reported down (exit 1), process still there" "exit $rc, $st: $summary" \
	eval '[ $rc -eq 1 ] && [ "$st" = down ] && [[ "$summary" == *hung* ]]'

detourd_stop KILL
sleep 0.7
ctl status >/dev/null; rc=$?
st=$(json_field agent.state) summary=$(json_field agent.summary)
check "killed agent: reported down, hook failing open" "exit $rc, $st: $summary" \
	eval '[ $rc -eq 1 ] && [ "$st" = down ] && [[ "$summary" == *"failing open"* ]]'

detourd_start || exit 1
detourd_stop TERM
ctl status >/dev/null; rc=$?
j=$(ctl status --json)
check "stopped cleanly: reported stopped, no cgroups" "exit $rc, $(jget "$j" agent)" \
	eval '[ $rc -eq 1 ] && [ "$(jget "$j" agent.state)" = stopped ] && [ "$(jget "$j" cgroups)" = "[]" ]'
ctl enroll "$CG_OTHER" >/dev/null 2>"$W/ctl.err"; rc=$?
check "enroll while detourd is stopped: refused with the reason" "exit $rc: $(cat "$W/ctl.err")" \
	eval '[ $rc -eq 1 ] && grep -q "detourd is not running" "$W/ctl.err" && detached "$CG_OTHER"'
e2e_finish
