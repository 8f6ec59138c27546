#!/usr/bin/python3
"""An endpoint that resets every connection before sending a single byte:
  rstserver.py [--on accept|data] ADDR:PORT...
accept: RST right after accept(); data: RST once the client's first bytes
(a TLS ClientHello, an HTTP request head) have arrived. What a dead backend
behind a load balancer or a firewall's reject looks like."""
import selectors, socket, struct, sys

LINGER0 = struct.pack("ii", 1, 0)


def rst(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
    s.close()


def main():
    args = sys.argv[1:]
    on = "data"
    if args[:1] == ["--on"]:
        on, args = args[1], args[2:]
    sel = selectors.DefaultSelector()
    for a in args:
        host, _, port = a.rpartition(":")
        fam = socket.AF_INET6 if host.startswith("[") else socket.AF_INET
        l = socket.socket(fam, socket.SOCK_STREAM)
        l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        l.bind((host.strip("[]"), int(port)))
        l.listen(128)
        sel.register(l, selectors.EVENT_READ, "listen")
    while True:
        for key, _ in sel.select():
            s = key.fileobj
            if key.data == "listen":
                c, _ = s.accept()
                if on == "accept":
                    rst(c)
                else:
                    sel.register(c, selectors.EVENT_READ, "conn")
            else:
                sel.unregister(s)
                rst(s)


if __name__ == "__main__":
    main()
