"""End to end through configs/nat.click with real Linux stacks, on both targets.

    client (netns "in")              NAT (netns "nat")                server (netns "out")
    10.0.0.2, gateway 10.0.0.1  <->  NIC 0 [nat.click] NIC 1  <->  192.0.2.2 (192.0.2.0/24)

The NAT runs as the unikernel (QEMU on taps) or on the host (`nfv run --nic`, taps);
the taps are made in the NAT's namespace and moved to the client's and server's.
Both hosts find the NAT by ARP and the NAT finds them by ARP (ARPQuerier).
Checked: an HTTP download from the server arrives intact and the server saw the
NAT's address; a UDP exchange likewise; pings across and to the NAT; a packet
from outside that belongs to no flow does not get in.
"""
from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT
from netns import host_side, http_download, missing_tools, namespaces, ping, sh

NAT = str(ROOT / "configs" / "nat.click")
# compiled in the background while earlier tests run (tests/conftest.py)
PREBUILD = [(NAT, "both")]
CLIENT, SERVER = "10.0.0.2", "192.0.2.2"
NAT_IN, NAT_OUT = "10.0.0.1", "192.0.2.1"
CLIENT_MAC, SERVER_MAC = "02:00:00:00:0c:01", "02:00:00:00:5e:01"

why = missing_tools("ping", "qemu-system-x86_64")
pytestmark = pytest.mark.skipif(why is not None, reason=why or "")


def in_ns(ns: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", ns, *args], capture_output=True, text=True,
                          timeout=timeout)


UDP_SERVER = textwrap.dedent("""
    import socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((sys.argv[1], 5353))
    print("ready", flush=True)
    for _ in range(3):
        data, peer = s.recvfrom(2048)
        s.sendto(data[::-1] + b" from " + peer[0].encode(), peer)
""")

UDP_CLIENT = textwrap.dedent("""
    import socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    for attempt in range(3):
        s.sendto(b"hello through the nat", (sys.argv[1], 5353))
        try:
            print(s.recvfrom(2048)[0].decode())
            break
        except socket.timeout:
            continue
""")

@pytest.fixture(params=["host", "unikernel"])
def nat(request):
    """(namespaces, running NAT) on the target the test is parametrized with."""
    with namespaces("nat", "in", "out") as ns:
        if request.param == "unikernel":
            from nfv.unikernel.build import build_image
            from nfv.unikernel.vm import VM

            # 65,536 mappings take 16 MiB of table: the NAT's VM gets 24 MiB.
            image = build_image(NAT, memory=24 << 20)
            runner = VM(image.path, nics=["tap:ntin", "tap:ntout"], memory="24M",
                        netns=ns["nat"])
        else:
            from nfv.live import LiveHost

            # (a cold compile of nat.click takes a minute or more on a busy 2-core machine)
            runner = LiveHost(NAT, {0: "tap:ntin", 1: "tap:ntout"}, netns=ns["nat"],
                              ready_timeout=600)
        with runner:
            host_side(ns["nat"], "ntin", ns["in"], CLIENT_MAC, CLIENT, NAT_IN)
            host_side(ns["nat"], "ntout", ns["out"], SERVER_MAC, SERVER, "192.0.2.254")
            yield ns, runner


def test_tcp_udp_and_ping_through_the_nat(nat):
    ns, _ = nat
    # Ping across first: the first packets also make both sides' ARP happen.
    across = ping(ns["in"], "-c", "3", "-i", "0.2", "-W", "3", SERVER)
    assert across.returncode == 0 and " 0% packet loss" in across.stdout, across.stdout
    assert all(int(t) == 63 for t in re.findall(r"ttl=(\d+)", across.stdout))
    for mine in (NAT_IN, NAT_OUT):
        answer = ping(ns["in"], "-c", "1", "-W", "3", mine)
        assert answer.returncode == 0 and f"from {mine}" in answer.stdout, answer.stdout

    seen = http_download(ns["in"], ns["out"], SERVER)
    # The server saw the NAT's outside address, never the client's.
    assert re.search(rf"^{re.escape(NAT_OUT)} .*GET /blob", seen, re.M), seen
    assert CLIENT not in seen

    udp = subprocess.Popen(["ip", "netns", "exec", ns["out"], sys.executable, "-c", UDP_SERVER,
                            SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert udp.stdout.readline().strip() == "ready"
        got = in_ns(ns["in"], sys.executable, "-c", UDP_CLIENT, SERVER)
        assert got.stdout.strip() == "tan eht hguorht olleh from " + NAT_OUT, got
    finally:
        udp.kill()
        udp.wait()


def test_outside_cannot_open_flows_in(nat):
    """A UDP datagram from outside to the NAT's address on a port no flow uses, and one
    addressed to the inside host itself, never reach the client."""
    ns, _ = nat
    listener = subprocess.Popen(
        ["ip", "netns", "exec", ns["in"], sys.executable, "-c", textwrap.dedent("""
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("0.0.0.0", 7777))
            s.settimeout(2.5)
            print("ready", flush=True)
            try:
                print("got", s.recvfrom(100)[1])
            except socket.timeout:
                print("nothing")
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert listener.stdout.readline().strip() == "ready"
        sh("ip", "-n", ns["out"], "route", "add", "10.0.0.0/24", "via", NAT_OUT)
        send = textwrap.dedent(f"""
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            for dst in ("{NAT_OUT}", "{CLIENT}"):
                s.sendto(b"let me in", (dst, 7777))
        """)
        assert in_ns(ns["out"], sys.executable, "-c", send).returncode == 0
        assert listener.stdout.readline().strip() == "nothing"
    finally:
        listener.kill()
        listener.wait()
