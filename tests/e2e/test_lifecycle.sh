#!/bin/bash
# Agent lifecycle: a clean shutdown (SIGTERM) detaches everything it attached
# (bpftool cgroup show is empty) and exits 0, keeping the pinned maps; a
# restart reuses the pinned maps (same map ids); after kill -9 the pinned
# links survive and a restart updates them in place (same link ids).
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_require detourd fakellm

fake_std || exit 1
detourd_start || exit 1

MAPS="settings intercept verdicts stats redirects"
map_ids() { local m; for m in $MAPS; do echo -n "$m=$(map_id $m) "; done; }
redirects() { snap; [[ $(chat enrolled -4) =~ ^200\  ]] && [ "$(delta redirected)" -eq 1 ]; }

ids1=$(map_ids)
links1=$(link_ids | tr '\n' ' ')
note "maps: $ids1"
note "links: $links1"
check "all maps pinned" "$ids1" bash -c "! [[ '$ids1' =~ =\  ]]"
check "links pinned under $PIN/links" "none" [ -n "$links1" ]
check "programs attached to the enrolled cgroup" "bpftool cgroup show is empty" attached "$CG_ENROLLED"
check "not attached to the non-enrolled cgroup" "$(bpftool cgroup show "$CG_OTHER" | tr '\n' ' ')" detached "$CG_OTHER"
check "redirects" "no" redirects

detourd_stop TERM; rc=$?
check "SIGTERM: clean exit (status 0)" "exit status $rc" [ $rc -eq 0 ]
check "SIGTERM: nothing attached to the enrolled cgroup any more" \
	"$(bpftool cgroup show "$CG_ENROLLED" | tr '\n' ' ')" detached "$CG_ENROLLED"
check "SIGTERM: no link pins left" "$(link_ids | tr '\n' ' ')" [ -z "$(link_ids)" ]
check "SIGTERM: pinned maps kept" "$(map_ids)" [ "$(map_ids)" = "$ids1" ]
r=$(chat enrolled -4)
check "SIGTERM: enrolled traffic goes direct" "curl said '$r'" bash -c "[[ '$r' =~ ^200\  ]]"

detourd_start || exit 1
check "restart: same map ids (pinned maps reused)" "before: $ids1 after: $(map_ids)" [ "$(map_ids)" = "$ids1" ]
check "restart: redirects again" "no" redirects
links2=$(link_ids | tr '\n' ' ')

detourd_stop KILL
check "kill -9: links still pinned and attached" "$(link_ids | tr '\n' ' ')" \
	eval '[ "$(link_ids | tr "\n" " ")" = "$links2" ] && [ -n "$links2" ] && attached "$CG_ENROLLED"'
detourd_start || exit 1
links3=$(link_ids | tr '\n' ' ')
check "kill -9 + restart: same link ids (updated in place)" "before: $links2 after: $links3" [ "$links3" = "$links2" ]
check "kill -9 + restart: same map ids" "before: $ids1 after: $(map_ids)" [ "$(map_ids)" = "$ids1" ]
n=$(bpftool cgroup show "$CG_ENROLLED" | sed 1d | wc -l)
check "kill -9 + restart: no duplicate attachments ($n programs)" "$(bpftool cgroup show "$CG_ENROLLED" | tr '\n' ';')" \
	no_dup_attach "$CG_ENROLLED"
check "kill -9 + restart: redirects" "no" redirects

detourd_stop TERM; rc=$?
check "final SIGTERM: clean exit, nothing attached" "rc=$rc; $(bpftool cgroup show "$CG_ENROLLED" | tr '\n' ' ')" \
	eval '[ $rc -eq 0 ] && detached "$CG_ENROLLED"'
e2e_finish
