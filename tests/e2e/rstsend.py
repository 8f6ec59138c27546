#!/usr/bin/python3
"""Send TCP resets that no connection asked for:
  rstsend.py SRC SPORT DST FIRST-DPORT COUNT
COUNT IPv4 resets from SRC:SPORT to DST, to ports FIRST-DPORT, FIRST-DPORT+1...
What a host forwarding other machines' traffic (a gateway, a hypervisor)
sees of a provider resetting their connections: no socket here owns them."""
import socket, struct, sys


def checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def main():
    src, sport, dst, first, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    s.bind((src, 0))
    for i in range(count):
        # sport dport seq ack data-offset flags(RST) window checksum urgent
        seg = struct.pack("!HHIIBBHHH", sport, first + i, 1, 0, 5 << 4, 0x04, 0, 0, 0)
        pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(seg))
        seg = seg[:16] + struct.pack("!H", checksum(pseudo + seg)) + seg[18:]
        s.sendto(seg, (dst, 0))


if __name__ == "__main__":
    main()
