#!/usr/bin/env python3
"""An application holding one TCP connection open, for the failover-mode
tests: connects (optionally from an AF_INET6 socket to an IPv4-mapped address,
optionally with an SO_MARK), says so, then watches the connection until the
file --until exists (bounded by --max seconds) and says whether it is still
open or how it ended.

  holdconn.py --addr ADDR --port P --until FILE [--mapped] [--mark N] [--max S]

Output: {"connected": [local ip, port], "peer": [ip, port]} once connected,
then {"alive": true} or {"alive": false, "error": "..."}. Exit 0 when it ran."""
import argparse, json, os, select, socket, time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", required=True)
    ap.add_argument("--port", type=int, default=443)
    ap.add_argument("--until", required=True)
    ap.add_argument("--mapped", action="store_true", help="AF_INET6 socket, ::ffff:ADDR")
    ap.add_argument("--mark", type=lambda v: int(v, 0), default=0)
    ap.add_argument("--max", type=float, default=30.0)
    a = ap.parse_args()

    if a.mapped:
        fam, addr = socket.AF_INET6, "::ffff:" + a.addr
    else:
        fam, addr = (socket.AF_INET6 if ":" in a.addr else socket.AF_INET), a.addr
    s = socket.socket(fam, socket.SOCK_STREAM)
    if a.mark:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, a.mark)
    s.settimeout(5)
    try:
        s.connect((addr, a.port))
    except OSError as e:
        print(json.dumps({"connected": None, "error": str(e)}), flush=True)
        return
    print(json.dumps({"connected": list(s.getsockname()[:2]), "peer": list(s.getpeername()[:2])}),
          flush=True)
    out = {"alive": True}
    deadline = time.monotonic() + a.max
    while not os.path.exists(a.until) and time.monotonic() < deadline:
        r, _, _ = select.select([s], [], [], 0.05)
        if r:  # the peer never sends first: anything here is the end
            try:
                data = s.recv(1)
                out = {"alive": False, "error": "eof" if not data else "data"}
            except OSError as e:
                out = {"alive": False, "error": os.strerror(e.errno) if e.errno else str(e)}
            break
    print(json.dumps(out), flush=True)


main()
