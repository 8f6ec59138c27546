#!/bin/bash
# bench/transition.sh BUILD_DIR [--smoke]: how the health engine's transitions
# look from the outside (issue 5 §7). bench/run.sh runs it.
#
# The scenarios of tests/e2e/test_scenarios*.sh (lib.sh scen_outages,
# scen_limits, scen_failover: 503 outage, connection refused, blackhole,
# first token 4 s, 429 storm, hedged blackhole, flapping, each ended by its
# recovery; all but the slow first tokens and the hedge again in failover
# mode) in the same namespaced
# test bed, under more load: 4 clients of the official openai SDK in the
# enrolled cgroup, each streaming one chat completion 20 ms after the other.
# Per scenario: when the verdict was decided (the map's since_ns) and logged
# after the fault's onset, how long a tight reader of the pinned map
# (bench/verdict_watch) waited after the decision, the requests the failed
# provider got after the flip against what the half-open trials allow, the
# clients' errors and worst latency, the recovery, and the extra upstream
# requests, probes and tokens (fakellm's counters less what the clients got).
# Then one "transition: ..." line per target. --smoke: connection refused
# only, with 2 clients.
E2E_NAME=transition
. "$(dirname "$0")/../tests/e2e/lib.sh"
e2e_init "$@"
SMOKE=0
[ "${2:-}" = --smoke ] && SMOKE=1
e2e_require detourd fakellm
sdk_require openai || exit 1
[ -x "$BUILD/bench/verdict_watch" ] || { notok "missing $BUILD/bench/verdict_watch (not built yet?)"; exit 1; }
SCEN_WATCH=$BUILD/bench/verdict_watch SCEN_REPORT=$W/report.tsv
: >"$SCEN_REPORT"

fake_std G D || exit 1
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) (the CPUs may be shared with other jobs)"
if [ "$SMOKE" = 1 ]; then
	SCEN_ONLY=refused scen_outages 2 50
else
	scen_outages 4 20
	scen_limits 4 20
	scen_failover outages 4 20
	scen_failover limits 4 20
fi

[ -s "$SCEN_REPORT" ] || { notok "no scenario reported"; exit 1; }
echo
"$PY" - "$SCEN_REPORT" "$SCEN_FIRST_BYTE_MS" "$SCEN_HEDGE_MS" <<'EOF'
import sys

rows = []
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    rows.append((f[0], dict(kv.split("=", 1) for kv in f[1:])))
first_byte, hedge = int(sys.argv[2]), int(sys.argv[3])
cols = [("decided_ms", "decided"), ("visible_us", "map µs"), ("logged_ms", "logged"),
        ("after", "after"), ("allowed", "allowed"), ("requests", "reqs"), ("errors", "errs"),
        ("worst_ms", "worst"), ("worst_after_ms", "worst>"), ("healthy_ms", "healthy"),
        ("answering_ms", "back"), ("extra", "extra"), ("probes", "probes"), ("extra_tokens", "xtokens")]
print("%-56s" % "scenario" + "".join("%9s" % h for _, h in cols))
for name, d in rows:
    print("%-56s" % name + "".join("%9s" % d.get(k, "-") for k, _ in cols))
print("""
(decided: ms from the fault's onset to the verdict, the map's since_ns; map µs: from
 that decision to a reader polling the pinned map every 100 µs;
 logged: ms to detourd's log line; after / allowed: chat requests the failed provider
 got after the flip / what its readmissions allow (half-open trials); worst: the
 clients' slowest request in the transition, ms; worst>: of those started after the
 flip; healthy / back: ms after the fault ended until the verdict was healthy / a
 request it answered was sent; extra: upstream chat requests beyond the clients' own
 (failed attempts, trials, hedges); probes: model list requests; xtokens: completion
 tokens generated beyond what the clients got; extra and xtokens are differences of
 counts read at the window's edges while requests are in flight, so each may be off by
 up to the clients' concurrency, below zero included)""")

def num(d, k):
    try:
        return float(d[k])
    except (KeyError, ValueError):
        return None

vis = [(num(d, "visible_us"), n) for n, d in rows if num(d, "visible_us") is not None]
if vis:
    w, n = max(vis)
    print("transition: verdict in the pinned map %.0f µs after the engine's decision at worst (%s), "
          "target within 100 ms of the deciding signal: %s" % (w, n, "met" if w < 100000 else "missed"))
print("transition: onset to verdict: " + ", ".join(
    "%s %s ms" % (n, d.get("decided_ms") if d.get("decided_ms", "-") != "-" else d.get("logged_ms", "-"))
    for n, d in rows if "logged_ms" in d))
over = [(n, d) for n, d in rows if num(d, "after") is not None and num(d, "after") > num(d, "allowed")]
after = ", ".join("%s %s/%s" % (n, d["after"], d["allowed"]) for n, d in rows if "after" in d)
print("transition: requests to the failed provider after its verdict flipped: %s; target none but the "
      "half-open trials (and what it takes to flip again after a return to healthy): %s" %
      (after, "missed" if over else "met"))
print("transition: client errors: %d in %d requests" % (sum(int(d["errors"]) for _, d in rows),
                                                        sum(int(d["requests"]) for _, d in rows)))
rows_d = dict(rows)
second = num(rows_d.get("outage (503)", {}), "worst_after_ms")
for name, deadline, what in (("blackhole (hang), hedged", hedge, "the hedge deadline (hedge_min_ms: the "
                              "provider's usual first token x 3 is below it)"),
                             ("blackhole (hang)", first_byte, "no hedge: the first-byte timeout")):
    if name in rows_d and second is not None:
        worst = num(rows_d[name], "worst_ms")
        print("transition: worst client latency in the %s %d ms; deadline %d ms (%s) + the secondary's own "
              "worst %d ms (503 outage, after the flip) = %d ms: %s" %
              (name, worst, deadline, what, second, deadline + second,
               "met" if worst <= deadline + second else "missed"))
print("transition: extra upstream requests / probes / tokens: " + ", ".join(
    "%s %s/%s/%s" % (n, d.get("extra"), d.get("probes"), d.get("extra_tokens")) for n, d in rows))
EOF
e2e_finish
