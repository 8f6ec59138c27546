#!/usr/bin/env python3
"""An application that asks for a long streamed answer, then stops reading
it: for the backpressure test. Connects with a small receive buffer, sends
one streaming chat completion over TLS, reads the answer's head, then reads
nothing until the file --until exists (bounded by --max seconds), then reads
the rest and says what came.

  slowreader.py --addr ADDR --cacert F --until FILE [--sni NAME] [--max S]

Output: {"status": N} once the head is in, then one line
{"bytes": N, "events": N, "words": N, "done": N, "errors": N, "error": "..."}
(events: data lines; words: words of the streamed content; done: [DONE]
markers; errors: events carrying an error object). Exit 0 when it ran."""
import argparse, json, os, socket, ssl, sys, time


def chunks_of(s):
    """The de-chunked body of a chunked HTTP/1.1 answer, read to its end."""
    buf = b""
    while True:
        while b"\r\n" not in buf:
            d = s.recv(65536)
            if not d:
                raise EOFError("connection closed inside a chunk size")
            buf += d
        line, buf = buf.split(b"\r\n", 1)
        size = int(line.split(b";")[0], 16)
        while len(buf) < size + 2:
            d = s.recv(65536)
            if not d:
                raise EOFError("connection closed inside a chunk")
            buf += d
        if size == 0:
            return
        yield buf[:size]
        buf = buf[size + 2:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", required=True)
    ap.add_argument("--port", type=int, default=443)
    ap.add_argument("--cacert", required=True)
    ap.add_argument("--sni", default="api.openai.com")
    ap.add_argument("--until", required=True)
    ap.add_argument("--max", type=float, default=20.0)
    a = ap.parse_args()

    out = {"bytes": 0, "events": 0, "words": 0, "done": 0, "errors": 0, "error": None}
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # set before connect, so the window the peer sees stays small
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    try:
        s.connect((a.addr, a.port))
        s = ssl.create_default_context(cafile=a.cacert).wrap_socket(s, server_hostname=a.sni)
        body = json.dumps({"model": "gpt-4o-mini", "stream": True,
                           "messages": [{"role": "user", "content": "tell me a long story"}]}).encode()
        s.sendall(("POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\n"
                   "Content-Type: application/json\r\nAuthorization: Bearer sk-app-slow\r\n"
                   "Content-Length: %d\r\nConnection: close\r\n\r\n" % (a.sni, len(body))).encode()
                  + body)
        head = b""
        while b"\r\n\r\n" not in head:
            d = s.recv(1)  # byte by byte: nothing of the body is taken early
            if not d:
                raise EOFError("connection closed before the head ended")
            head += d
        lines = head.decode("latin-1").split("\r\n")
        print(json.dumps({"status": int(lines[0].split()[1])}), flush=True)
        if not any(l.lower().startswith("transfer-encoding:") and "chunked" in l.lower()
                   for l in lines):
            raise ValueError("the streamed answer is not chunked")
        deadline = time.monotonic() + a.max
        while not os.path.exists(a.until) and time.monotonic() < deadline:
            time.sleep(0.05)
        text = b""
        for chunk in chunks_of(s):
            out["bytes"] += len(chunk)
            text += chunk
        for line in text.split(b"\n"):
            if not line.startswith(b"data: "):
                continue
            data = line[6:].strip()
            out["events"] += 1
            if data == b"[DONE]":
                out["done"] += 1
                continue
            ev = json.loads(data)
            if "error" in ev:
                out["errors"] += 1
                continue
            for choice in ev.get("choices", []):
                out["words"] += len((choice.get("delta", {}).get("content") or "").split())
    except Exception as e:  # report, don't trace
        out["error"] = "%s: %s" % (type(e).__name__, e)
    finally:
        s.close()
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
