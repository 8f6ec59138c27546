#!/usr/bin/env python3
"""Sum up the lines of tests/e2e/sdk/load_client.mjs (FILE) for the requests
that started in [FROM, TO] (wall-clock seconds):

  loadstat.py FILE FROM TO [AFTER]

prints name=value lines: n, errors, worst_ms (longest request, start to end),
worst_first_ms (longest wait for the first piece of content), worst_after_ms
and n_after (the same for the requests started at or after AFTER, e.g. the
verdict's flip), tokens (completion tokens the clients got), via_NAME (how
many x-detour-provider NAME answered), first_via_ms (when the first request
answered by one of $LOADSTAT_VIA (comma-separated) started, ms after FROM;
-1: none) and first_error."""
import json, os, sys


def main():
    path, lo, hi = sys.argv[1], float(sys.argv[2]) * 1000, float(sys.argv[3]) * 1000
    after = float(sys.argv[4]) * 1000 if len(sys.argv) > 4 else None
    out = {"n": 0, "errors": 0, "worst_ms": 0, "worst_first_ms": 0, "worst_after_ms": 0,
           "n_after": 0, "tokens": 0}
    first_error = ""
    via, first_via = os.environ.get("LOADSTAT_VIA", "").split(","), None
    with open(path) as f:
        for line in f:
            try:
                r = json.loads(line)
            except ValueError:
                continue  # a line cut by the end of the run
            if not lo <= r["start"] <= hi:
                continue
            out["n"] += 1
            took = r["end"] - r["start"]
            out["worst_ms"] = max(out["worst_ms"], took)
            if r["first"] is not None:
                out["worst_first_ms"] = max(out["worst_first_ms"], r["first"] - r["start"])
            if after is not None and r["start"] >= after:
                out["n_after"] += 1
                out["worst_after_ms"] = max(out["worst_after_ms"], took)
            if r["ok"]:
                out["tokens"] += r["tokens"]
                if r["via"] in via and (first_via is None or r["start"] < first_via):
                    first_via = r["start"]
                k = "via_%s" % (r["via"] or "none")
                out[k] = out.get(k, 0) + 1
            else:
                out["errors"] += 1
                first_error = first_error or r["error"]
    out["first_via_ms"] = first_via - lo if first_via is not None else -1
    for k, v in out.items():
        print("%s=%d" % (k, round(v)))
    print("first_error=%s" % first_error.replace("\n", " ")[:200])


if __name__ == "__main__":
    main()
