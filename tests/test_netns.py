"""The namespace hosts of tests/netns.py, checked with plain UDP sockets:
unicast and multicast cross the switch, nftables losses happen at the rate
asked and are counted exactly, the relay forwards both ways and reorders,
delays and drops as asked, and nothing is left behind. Needs root and
iproute2 and nftables; skips without them unless RINGCAST_REQUIRE_NETNS."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from netns import REQUIRE_ENV, Host, Hosts

pytestmark = pytest.mark.timeout(60)

UDP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_netns_udp.py")

two_hosts = Hosts.fixture(2)
three_hosts = Hosts.fixture(3)


def start(host: Host, mode: str, *args: object) -> subprocess.Popen[str]:
    """Run a _netns_udp.py mode in ``host``, once it says it is ready."""
    proc = host.popen(
        [sys.executable, UDP, mode, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert json.loads(line or "{}").get("ready"), proc.communicate()[1]
    return proc


def result(proc: subprocess.Popen[str]) -> dict:
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def inversions(seqs: list[int]) -> int:
    """How many datagrams arrived after one sent later than them."""
    highest, late = -1, 0
    for s in seqs:
        if s < highest:
            late += 1
        highest = max(highest, s)
    return late


def namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def test_unicast_crosses_the_switch(two_hosts):
    a, b = two_hosts
    assert a.addr != b.addr and a.addr.rsplit(".", 1)[0] == b.addr.rsplit(".", 1)[0]
    rx = start(b, "recv", "--bind", f"{b.addr}:40001", "--count", 500)
    sent = result(start(a, "send", "--to", f"{b.addr}:40001", "--count", 500))
    assert sent["sent"] == 500
    assert result(rx)["seqs"] == list(range(500))


def test_multicast_reaches_every_host_at_once(three_hosts):
    a, b, c = three_hosts
    group = "239.77.0.1"
    rxs = [
        start(h, "recv", "--bind", f"{group}:40002", "--group", group, "--interface", h.addr,
              "--count", 300)
        for h in (b, c)
    ]  # fmt: skip
    result(start(a, "send", "--to", f"{group}:40002", "--interface", a.addr, "--count", 300))
    for rx in rxs:
        assert result(rx)["seqs"] == list(range(300))


def test_drop_incoming_loses_about_that_share_and_counts_it(two_hosts):
    a, b = two_hosts
    assert b.counters() == 0
    b.drop_incoming(30, udp_port=40003)
    try:
        rx = start(b, "recv", "--bind", f"{b.addr}:40003", "--count", 2000, "--quiet", 0.5)
        # Another port is not touched.
        other = start(b, "recv", "--bind", f"{b.addr}:40004", "--count", 200)
        result(start(a, "send", "--to", f"{b.addr}:40003", "--count", 2000))
        result(start(a, "send", "--to", f"{b.addr}:40004", "--count", 200))
        seqs = result(rx)["seqs"]
        missing = 2000 - len(seqs)
        assert seqs == sorted(set(seqs))
        assert 0.15 * 2000 <= missing <= 0.45 * 2000, missing
        assert b.counters() == missing
        assert result(other)["seqs"] == list(range(200))
    finally:
        b.clear_drops()
    assert b.counters() == 0
    rx = start(b, "recv", "--bind", f"{b.addr}:40003", "--count", 200)
    result(start(a, "send", "--to", f"{b.addr}:40003", "--count", 200))
    assert result(rx)["seqs"] == list(range(200))


def test_relay_forwards_both_ways_and_reorders_without_losing(three_hosts):
    """host0 sends to a relay in host1 that forwards to an echo server in
    host2; the echoes come back through the relay to host0."""
    a, b, c = three_hosts
    echo = start(c, "echo", "--bind", f"{c.addr}:40005", "--count", 2000)
    with b.relay(40006, c.addr, 40005, reorder=20, seed=1) as relay:
        assert relay.listen == (b.addr, 40006) and relay.upstream[0] == b.addr
        client = start(a, "client", "--to", f"{b.addr}:40006", "--count", 2000)
        echoes = result(client)["echoes"]
        seen = result(echo)["seqs"]
        counts = relay.stop()
    assert sorted(seen) == list(range(2000)) and inversions(seen) > 0
    assert sorted(echoes) == list(range(2000)) and inversions(echoes) > inversions(seen)
    for way in ("to_target", "to_source"):
        got = counts[way]
        assert got["received"] == got["forwarded"] == 2000, counts
        assert got["dropped"] == got["errors"] == 0, counts
        assert 0.1 * 2000 < got["reordered"] < 0.3 * 2000, counts
    # Reordered: sent after a datagram that came later; no losses, so
    # exactly the datagrams the echo server saw late.
    assert counts["to_target"]["reordered"] == inversions(seen)


def test_relay_delays_and_drops(three_hosts):
    a, b, c = three_hosts
    echo = start(c, "echo", "--bind", f"{c.addr}:40007", "--count", 1000, "--quiet", 1)
    with b.relay(0, c.addr, 40007, delay_ms=25, drop=10, seed=2) as relay:
        client = start(a, "client", "--to", f"{b.addr}:{relay.listen[1]}", "--count", 1000,
                       "--rate", 5000)  # fmt: skip
        back = result(client)
        seen = result(echo)["seqs"]
        counts = relay.stop()
    assert min(back["rtts"]) >= 0.050  # 25 ms each way
    assert counts["to_target"]["dropped"] == 1000 - len(seen)
    assert counts["to_source"]["dropped"] == len(seen) - len(back["echoes"])
    assert 0.05 * 1000 < 1000 - len(seen) < 0.15 * 1000
    assert inversions(seen) == 0 and inversions(back["echoes"]) == 0


def test_relay_keeps_up_with_a_fast_sender(three_hosts):
    """50k datagrams at 50k/s each way through the relay (reordering a
    few), none lost: fast enough for the bridge's tests."""
    a, b, c = three_hosts
    n = 50000
    echo = start(c, "echo", "--bind", f"{c.addr}:40008", "--count", n)
    with b.relay(40009, c.addr, 40008, reorder=1, seed=3) as relay:
        client = start(a, "client", "--to", f"{b.addr}:40009", "--count", n, "--rate", n)
        echoes = result(client)["echoes"]
        assert len(result(echo)["seqs"]) == n
        counts = relay.stop()
    assert len(echoes) == n, counts
    assert counts["to_target"]["forwarded"] == counts["to_source"]["forwarded"] == n


def test_hosts_leave_nothing_behind_even_after_an_error():
    before = namespaces()
    hosts = Hosts(2)
    with pytest.raises(RuntimeError, match="on purpose"), hosts:
        made = set(hosts.namespaces)
        assert made <= namespaces() and not made & before
        # Started outside Host.popen, so only `ip netns pids` can find it.
        stray = subprocess.Popen(["ip", "netns", "exec", hosts[1].name, "sleep", "60"])
        hosts[0].popen(["sleep", "60"])
        hosts[1].drop_incoming(50)
        raise RuntimeError("on purpose")
    assert stray.poll() is not None
    assert not made & namespaces()


@pytest.mark.parametrize("required", [False, True])
def test_without_namespaces_tests_skip_or_fail_when_required(tmp_path, monkeypatch, required):
    """An `ip` that refuses everything stands for a machine without root or
    iproute2: Hosts skips the test, or fails it under RINGCAST_REQUIRE_NETNS."""
    fake = tmp_path / "ip"
    fake.write_text("#!/bin/sh\necho 'mount --make-shared: Operation not permitted' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    if required:
        monkeypatch.setenv(REQUIRE_ENV, "1")
    else:
        monkeypatch.delenv(REQUIRE_ENV, raising=False)
    outcome = pytest.fail.Exception if required else pytest.skip.Exception
    with pytest.raises(outcome, match="Operation not permitted"), Hosts(2):
        pytest.fail("the hosts were made with an ip that refuses everything")
