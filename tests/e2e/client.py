#!/usr/bin/env python3
"""Minimal unmodified-application stand-in for the e2e tests: one connect()
with a chosen socket family, prints what getpeername() said, then one HTTP
request (plain or TLS) and the answer's status and x-fakellm-name.

  client.py --addr ADDR --port P [--family 4|6] [--tls --cacert F --sni NAME]
            [--path /v1/models] [--post JSON] [--timeout S] [--abort-after S]

--abort-after: S seconds after sending the request, leave as an application
killed mid-request does: the connection reset (SO_LINGER 0), no answer read.

Output: one JSON line {"peer": [ip, port], "status": N, "name": "...",
"error": "..."}; exit 0 when an HTTP status was read."""
import argparse, json, socket, ssl, struct, sys, time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", required=True)
    ap.add_argument("--port", type=int, default=443)
    ap.add_argument("--family", choices=["4", "6"], default=None)
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--cacert")
    ap.add_argument("--sni", default="api.openai.com")
    ap.add_argument("--host-header", default=None)
    ap.add_argument("--path", default="/v1/models")
    ap.add_argument("--post", default=None)
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--abort-after", type=float, default=None)
    a = ap.parse_args()

    fam = {"4": socket.AF_INET, "6": socket.AF_INET6, None: None}[a.family]
    if fam is None:
        fam = socket.AF_INET6 if ":" in a.addr else socket.AF_INET
    out = {"peer": None, "status": None, "name": None, "error": None}
    t0 = time.monotonic()
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(a.timeout)
    try:
        s.connect((a.addr, a.port))
        out["peer"] = list(s.getpeername()[:2])
        out["sock"] = list(s.getsockname()[:2])
        if a.tls:
            ctx = ssl.create_default_context(cafile=a.cacert)
            s = ctx.wrap_socket(s, server_hostname=a.sni)
            out["peer_after_tls"] = list(s.getpeername()[:2])
        host = a.host_header or a.sni
        # an application that is killed had its connection kept alive
        conn = "" if a.abort_after is not None else "Connection: close\r\n"
        if a.post is not None:
            body = a.post.encode()
            req = ("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                   "Content-Length: %d\r\n%s\r\n" % (a.path, host, len(body), conn)).encode() + body
        else:
            req = ("GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (a.path, host, conn)).encode()
        s.sendall(req)
        buf = b""
        if a.abort_after is not None:
            time.sleep(a.abort_after)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            out["error"] = "aborted"
            buf = b"\r\n\r\n"
        while b"\r\n\r\n" not in buf:
            d = s.recv(65536)
            if not d:
                break
            buf += d
        head = buf.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        if head and head[0].startswith("HTTP/"):
            out["status"] = int(head[0].split()[1])
        for line in head[1:]:
            k, _, v = line.partition(":")
            if k.strip().lower() == "x-fakellm-name":
                out["name"] = v.strip()
    except Exception as e:  # report, don't trace
        out["error"] = "%s: %s" % (type(e).__name__, e)
    finally:
        try:
            s.close()
        except Exception:
            pass
    out["time"] = round(time.monotonic() - t0, 3)
    print(json.dumps(out))
    return 0 if out["status"] is not None else 1


if __name__ == "__main__":
    sys.exit(main())
