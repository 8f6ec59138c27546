#!/usr/bin/python3
"""Stand-in for build/fakellm, used only to develop the e2e test bed while
the real fakellm is not built (FAKELLM=tests/e2e/fakellm_standin.py).
Same command line and admin API subset: --listen (repeatable), --tls-cert,
--tls-key, --admin, --name, --pidfile, --quiet; POST /fault modes ok, status,
hang, reset; GET /stats. Every response carries x-fakellm-name."""
import argparse, json, os, socket, ssl, struct, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

state = {"mode": "ok", "status": 503, "count": 0, "requests": 0, "ttft_ms": 0}
lock = threading.Lock()


def split_addr(s):
    host, _, port = s.rpartition(":")
    if host.startswith("["):
        return host[1:-1], int(port), socket.AF_INET6
    return host, int(port), socket.AF_INET


class Srv(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, family, ctx=None, admin=False):
        self.address_family = family
        self.ctx, self.admin = ctx, admin
        super().__init__(addr, handler)

    def verify_request(self, request, client_address):
        if self.admin:
            return True
        with lock:
            mode = state["mode"]
            if mode != "ok" and state["count"] > 0:
                state["count"] -= 1
                if state["count"] == 0:
                    state["mode"] = "ok"
        if mode == "reset":
            request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            request.close()
            return False
        if mode == "hang":
            threading.Thread(target=time.sleep, args=(3600,), kwargs={}, daemon=True).start()
            self._hung = getattr(self, "_hung", []) + [request]  # keep it open, never answer
            return False
        return True

    def shutdown_request(self, request):
        if request in getattr(self, "_hung", []):
            return
        super().shutdown_request(request)

    def finish_request(self, request, client_address):
        if self.ctx is not None:
            request.settimeout(10)
            request = self.ctx.wrap_socket(request, server_side=True)
        self.RequestHandlerClass(request, client_address, self)


def make_handler(name, quiet):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            if not quiet:
                super().log_message(*a)

        def reply(self, code, obj, ctype="application/json"):
            body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("x-fakellm-name", name)
            self.send_header("content-type", ctype)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def body(self):
            n = int(self.headers.get("content-length") or 0)
            return self.rfile.read(n) if n else b""

        def do_GET(self):
            if self.server.admin and self.path == "/stats":
                return self.reply(200, {"name": name, "requests": state["requests"], "mode": state["mode"]})
            with lock:
                state["requests"] += 1
            if self.path == "/v1/models":
                return self.reply(200, {"object": "list", "data": [{"id": "fake-model"}]})
            self.reply(404, {"error": "not found"})

        def do_POST(self):
            data = self.body()
            if self.server.admin:
                if self.path == "/fault":
                    f = json.loads(data or b"{}")
                    with lock:
                        state["mode"] = f.get("mode", "ok")
                        state["status"] = f.get("status", 503)
                        state["count"] = f.get("count", 0)
                state["ttft_ms"] = f.get("ttft_ms", 0)
                    return self.reply(200, {"ok": True})
                return self.reply(404, {"error": "not found"})
            with lock:
                state["requests"] += 1
                mode = state["mode"]
            if mode == "slow":
                time.sleep(state["ttft_ms"] / 1000.0)
            if mode == "status":
                return self.reply(state["status"], {"error": {"message": "fault"}})
            try:
                req = json.loads(data or b"{}")
            except ValueError:
                req = {}
            if self.path == "/v1/messages":
                return self.reply(200, {"type": "message", "role": "assistant",
                                        "content": [{"type": "text", "text": "hello from " + name}]})
            if req.get("stream"):
                self.send_response(200)
                self.send_header("x-fakellm-name", name)
                self.send_header("content-type", "text/event-stream")
                self.send_header("connection", "close")
                self.end_headers()
                for w in ["hello", " from", " " + name]:
                    chunk = {"choices": [{"delta": {"content": w}}]}
                    self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")
                self.close_connection = True
                return
            return self.reply(200, {"object": "chat.completion", "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "hello from " + name}}]})
    return H


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", action="append", default=[])
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--admin")
    ap.add_argument("--name", default="fakellm")
    ap.add_argument("--pidfile")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args()
    ctx = None
    if a.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
    h = make_handler(a.name, a.quiet)
    servers = []
    for l in a.listen:
        host, port, fam = split_addr(l)
        servers.append(Srv((host, port), h, fam, ctx))
    if a.admin:
        host, port, fam = split_addr(a.admin)
        servers.append(Srv((host, port), h, fam, None, admin=True))
    if a.pidfile:
        with open(a.pidfile, "w") as f:
            f.write("%d\n" % os.getpid())
    for s in servers[1:]:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    servers[0].serve_forever()


if __name__ == "__main__":
    main()
