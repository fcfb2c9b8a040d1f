"""Plain UDP senders and receivers that tests/test_netns.py runs inside its
namespace hosts (``ip netns exec NS python tests/_netns_udp.py MODE ...``).

Each datagram carries its sequence number (4 bytes, big-endian) then padding.
Every mode prints one JSON line when it is ready (bound and joined) and one
with its result when it ends:

* ``recv``: receive until ``--count`` datagrams or ``--quiet`` seconds
  without one; the result is the sequence numbers in arrival order.
* ``send``: send ``--count`` datagrams at ``--rate`` per second.
* ``echo``: send every datagram back to its source until ``--quiet`` seconds
  pass without one; the result is what it received, in order.
* ``client``: send ``--count`` datagrams at ``--rate`` and receive the
  echoes; the result is the echoes in order and the round-trip times.
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import sys
import time

SEQ = struct.Struct(">I")


def addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def udp(bind: tuple[str, int] | None = None) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    for force in (33, 32):  # SO_RCVBUFFORCE, SO_SNDBUFFORCE: root in the namespace
        s.setsockopt(socket.SOL_SOCKET, force, 32 << 20)
    if bind is not None:
        s.bind(bind)
    return s


def say(**kw: object) -> None:
    print(json.dumps(kw), flush=True)


def receive(s: socket.socket, count: int, quiet: float, on_datagram=None) -> list[int]:
    seqs: list[int] = []
    s.settimeout(quiet)
    while len(seqs) < count:
        try:
            data, src = s.recvfrom(65536)
        except TimeoutError:
            break
        seqs.append(SEQ.unpack_from(data)[0])
        if on_datagram is not None:
            on_datagram(data, src)
    return seqs


def paced(count: int, rate: float):
    start = time.monotonic()
    for i in range(count):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0.0005:
            time.sleep(delay)
        yield i


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["recv", "send", "echo", "client"])
    p.add_argument("--bind", type=addr)
    p.add_argument("--to", type=addr)
    p.add_argument("--group")
    p.add_argument("--interface", default="0.0.0.0")
    p.add_argument("--count", type=int, default=1 << 30)
    p.add_argument("--rate", type=float, default=20000)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--quiet", type=float, default=1.0)
    a = p.parse_args()
    pad = bytes(max(0, a.size - SEQ.size))

    if a.mode == "recv":
        s = udp(a.bind)
        if a.group:
            mreq = socket.inet_aton(a.group) + socket.inet_aton(a.interface)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        say(ready=True)
        say(seqs=receive(s, a.count, a.quiet))
    elif a.mode == "send":
        s = udp()
        if a.group or socket.inet_aton(a.to[0])[0] >= 224:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(a.interface))
        say(ready=True)
        for i in paced(a.count, a.rate):
            s.sendto(SEQ.pack(i) + pad, a.to)
        say(sent=a.count)
    elif a.mode == "echo":
        s = udp(a.bind)
        say(ready=True)
        say(seqs=receive(s, a.count, a.quiet, lambda data, src: s.sendto(data, src)))
    else:
        s = udp(a.bind or ("0.0.0.0", 0))
        s.setblocking(False)
        say(ready=True)
        sent: dict[int, float] = {}
        echoes: list[int] = []
        rtts: list[float] = []

        def drain() -> None:
            while True:
                try:
                    data = s.recv(65536)
                except BlockingIOError:
                    return
                seq = SEQ.unpack_from(data)[0]
                echoes.append(seq)
                rtts.append(time.monotonic() - sent[seq])

        for i in paced(a.count, a.rate):
            sent[i] = time.monotonic()
            s.sendto(SEQ.pack(i) + pad, a.to)
            drain()
        last = time.monotonic()
        while len(echoes) < a.count and time.monotonic() - last < a.quiet:
            n = len(echoes)
            time.sleep(0.001)
            drain()
            if len(echoes) > n:
                last = time.monotonic()
        say(echoes=echoes, rtts=rtts)


if __name__ == "__main__":
    sys.exit(main())
