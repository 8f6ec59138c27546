#!/usr/bin/env python3
"""Read `bpftool -j map dump` output of detour's pinned maps (stdin).

  bpfjson.py stats                 struct dt_stats summed over CPUs: name=value lines
  bpfjson.py verdict ADDR PORT     struct dt_verdict of one endpoint: name=value lines
                                   (any map keyed by endpoint with BTF: tcp_signals, uplink_signals)
  bpfjson.py verdicts              every verdict: "addr port state=.. failures=.." lines
  bpfjson.py health                the struct dt_provider_health of a `map lookup`:
                                   "state since_ns ejections until_ns reason text"
  bpfjson.py health_fields         the same, every field: "name=value ..." (text's spaces as _,
                                   a nested struct's members as "probes.sent=...")

Works with BTF ("formatted" members with field names) and without (raw hex
bytes, decoded with the layouts of include/detour.h)."""
import ipaddress, json, struct, sys

STATS = ["redirected", "pass_stale", "pass_no_listener", "pass_own", "pass_healthy",
         "pass_no_storage", "origins_published", "peer_rewritten"]
VERDICT = [("provider_id", "I"), ("state", "I"), ("reason", "I"), ("consecutive_failures", "I"),
           ("since_ns", "Q"), ("until_ns", "Q"), ("relayed", "Q"), ("failures", "Q"), ("failovers", "Q")]


def raw(v):
    return bytes(int(x, 16) for x in v)


def stats(doc):
    tot = {}

    def add(d):
        for k, v in d.items():
            if isinstance(v, int):
                tot[k] = tot.get(k, 0) + v

    found = False

    def walk(o):
        nonlocal found
        if isinstance(o, dict):
            if "redirected" in o and isinstance(o["redirected"], int):
                add(o)
                found = True
                return
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    walk(doc)
    if not found:  # raw per-CPU values
        for e in doc:
            for c in e.get("values", []):
                b = raw(c["value"])
                n = min(len(STATS), len(b) // 8)
                add(dict(zip(STATS[:n], struct.unpack("<%dQ" % n, b[:8 * n]))))
    for k in STATS:
        tot.setdefault(k, 0)
    for k in sorted(tot):
        print("%s=%d" % (k, tot[k]))


def ep_of(key):
    """(ip string, port) of a struct dt_endpoint, formatted or raw"""
    if isinstance(key, dict):
        b = b"".join(struct.pack("<I", a) for a in key["addr"])
        port = struct.unpack(">H", struct.pack("<H", key["port"]))[0]
    else:
        r = raw(key)
        b, port = r[:16], struct.unpack(">H", r[16:18])[0]
    ip = ipaddress.IPv6Address(b)
    if ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return str(ip), port


def verdicts(doc):
    out = []
    for e in doc:
        f = e.get("formatted")
        if f is not None:
            key, val = f["key"], f["value"]
        elif isinstance(e.get("key"), dict):
            key, val = e["key"], e["value"]
        else:
            key = e["key"]
            b = raw(e["value"])
            fmt = "<" + "".join(t for _, t in VERDICT)
            val = dict(zip([n for n, _ in VERDICT], struct.unpack(fmt, b[:struct.calcsize(fmt)])))
        out.append((ep_of(key), val))
    return out


def health_value(doc):
    """one verdict of provider_health or model_health (BTF-formatted lookup), its text decoded"""
    v = dict(doc.get("formatted", doc)["value"])
    t = v["reason_text"]
    if not isinstance(t, str):
        t = bytes(int(x, 16) if isinstance(x, str) else x for x in t).split(b"\0")[0].decode()
    v["reason_text"] = t
    return v


def health(doc):
    v = health_value(doc)
    print(v["state"], v["since_ns"], v["ejections"], v["until_ns"], v["reason_text"])


def flat(d, prefix=""):
    """(name, value) of every member; a nested struct's as outer.inner"""
    for k, v in d.items():
        if isinstance(v, dict):
            yield from flat(v, prefix + k + ".")
        else:
            yield prefix + k, v


def health_fields(doc):
    print(" ".join("%s=%s" % (k, str(v).replace(" ", "_")) for k, v in flat(health_value(doc))))


def main():
    text = sys.stdin.read().strip()
    doc = json.loads(text) if text else []
    what = sys.argv[1]
    if what == "stats":
        stats(doc)
    elif what == "verdict":
        want = (str(ipaddress.ip_address(sys.argv[2])), int(sys.argv[3]))
        for ep, val in verdicts(doc):
            if ep == want:
                for k, v in val.items():
                    print("%s=%s" % (k, v))
    elif what == "health":
        health(doc)
    elif what == "health_fields":
        health_fields(doc)
    elif what == "verdicts":
        for (ip, port), val in verdicts(doc):
            print(ip, port, " ".join("%s=%s" % kv for kv in val.items()))


if __name__ == "__main__":
    main()
