"""A publisher or subscriber process for tests/test_stat.py, driven by one
JSON command per line on stdin, answering one JSON line per command.

    python _stat_worker.py pub NAME DIR '{"create": {...}}' | '{"attach": true}'
    python _stat_worker.py sub NAME DIR '{"wait": "park", "stage": null, "mode": "active"}'

Publisher commands: publish (n messages), pace (rate messages/s for
seconds), report, close. Subscriber modes: "active" reads as messages
come; "lazy" reads only when asked to report (so it is lapped, or evicted);
"block" waits in recv() forever and takes no commands. Subscriber
commands: report (reads what is there first), wait (changes the strategy).
"""

from __future__ import annotations

import json
import os
import select
import sys
import time

import ringcast

WAITS = {
    "busy_spin": ringcast.WaitStrategy.busy_spin,
    "yielding": ringcast.WaitStrategy.yielding,
    "park": ringcast.WaitStrategy.park,
    "adaptive": ringcast.WaitStrategy.adaptive,
}


def say(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def commands():
    for line in sys.stdin:
        if line.strip():
            yield json.loads(line)


def publisher(name: str, dir: str, opts: dict) -> None:
    if opts.get("attach"):
        pub = ringcast.Publisher.attach(name, dir=dir)
    else:
        pub = ringcast.Publisher.create(name, dir=dir, slot_size=8, **opts["create"])
    say(ready=True, pid=os.getpid())
    n = 0

    def one() -> None:
        nonlocal n
        pub.publish(n.to_bytes(8, "little"))
        n += 1

    for cmd in commands():
        if cmd["cmd"] == "publish":
            for _ in range(cmd["n"]):
                one()
        elif cmd["cmd"] == "pace":
            start = time.monotonic()
            done = 0
            while (now := time.monotonic()) < start + cmd["seconds"]:
                due = int((now - start) * cmd["rate"])
                while done < due:
                    one()
                    done += 1
                time.sleep(0.001)
        elif cmd["cmd"] == "close":
            pub.close()
            say()
            continue
        say(sequence=pub.sequence, published=pub.published)


def subscriber(name: str, dir: str, opts: dict) -> None:
    sub = ringcast.Subscriber.attach(
        name, dir=dir, start="oldest", wait=WAITS[opts["wait"]](), stage=opts.get("stage")
    )
    say(ready=True, pid=os.getpid())
    if opts["mode"] == "block":
        while True:
            sub.recv()
    evicted = False

    def drain() -> None:
        nonlocal evicted
        try:
            while sub.try_recv() is not None:
                pass
        except ringcast.Evicted:
            evicted = True

    def answer(cmd: dict) -> None:
        if cmd["cmd"] == "wait":
            sub.wait = WAITS[cmd["kind"]]()
            say()
            return
        drain()
        say(received=sub.received, lost=sub.lost, position=sub.position, evicted=evicted)

    if opts["mode"] == "lazy":
        for cmd in commands():
            answer(cmd)
        return
    while True:
        try:
            sub.recv_batch(1000, timeout=0.05)
        except ringcast.Timeout:
            pass
        except (ringcast.RingClosed, ringcast.PublisherDied, ringcast.Evicted):
            for cmd in commands():  # the stream ended: only commands now
                answer(cmd)
            return
        if select.select([sys.stdin], [], [], 0)[0]:
            line = sys.stdin.readline()
            if not line:
                return
            answer(json.loads(line))


if __name__ == "__main__":
    role, name, dir, opts = sys.argv[1:5]
    (publisher if role == "pub" else subscriber)(name, dir, json.loads(opts))
