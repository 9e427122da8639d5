"""A live test with the Linux stack on the host target: real `ping`s routed through
configs/router.click run by `nfv run --nic`, the hosts finding the router by ARP, and
a TTL of 1 answered with ICMP time exceeded. The same checks as
test_unikernel_live.py, so both targets meet the same real traffic.

    host A (netns)                 nfv run (router netns)              host B (netns)
    192.0.2.10 on rta     <--->  dev 0 [router.click] dev 1  <--->  198.51.100.10 on rtb

tap: `nfv run` creates both taps in the router's namespace; each is then moved
into its host's namespace (a tap keeps working across the move: nfv holds its
file descriptor), as QEMU's taps are in the unikernel test.
af_packet: a veth pair per host, one end in the router's namespace (bound by
`nfv run` through a raw socket), the other in the host's.

The hosts resolve the router's address by ARP (its ARPResponder); the router's
the router finds the hosts by ARP too; each host interface gets a fixed MAC.
"""
from __future__ import annotations

import pytest

from conftest import ROOT
from netns import check_router, host_side, missing_tools, namespaces, sh, veth

pytestmark = pytest.mark.skipif(missing_tools("ping", "ethtool") is not None,
                                reason=str(missing_tools("ping", "ethtool")))

ROUTER = str(ROOT / "configs" / "router.click")
# compiled in the background while earlier tests run (tests/conftest.py)
PREBUILD = [(ROUTER, "host")]
MAC_A, MAC_B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"          # the router's devices
NEXTHOP_A, NEXTHOP_B = "02:00:00:00:aa:01", "02:00:00:00:bb:01"  # the hosts' interfaces


@pytest.mark.parametrize("kind", ["tap", "af_packet"])
def test_ping_through_the_router_on_the_host(kind):
    from nfv.live import LiveHost

    with namespaces("rt", "ha", "hb") as ns:
        rt, ha, hb = ns["rt"], ns["ha"], ns["hb"]
        if kind == "af_packet":
            veth(rt, "rta", ha, "rta")
            veth(rt, "rtb", hb, "rtb")
            # A veth hands TCP segments on with their checksums left to a NIC that
            # does not exist; a packet socket forwards them as they are. The hosts
            # must checksum in software, as they would for a real wire.
            for host, ifname in ((ha, "rta"), (hb, "rtb")):
                sh("ip", "netns", "exec", host, "ethtool", "-K", ifname,
                   "tx", "off", "tso", "off", "gso", "off")
        router = LiveHost(ROUTER, {0: f"{kind}:rta", 1: f"{kind}:rtb"}, netns=rt,
                          ready_timeout=600)   # a cold compile on a busy machine is slow
        with router:
            # tap: move the taps out of the router's namespace; af_packet: the hosts'
            # ends of the veths are there already.
            host_side(rt if kind == "tap" else ha, "rta", ha, NEXTHOP_A, "192.0.2.10", "192.0.2.1")
            host_side(rt if kind == "tap" else hb, "rtb", hb, NEXTHOP_B, "198.51.100.10",
                      "198.51.100.1")
            check_router(ha, hb, MAC_A, MAC_B)
            assert router.running, "\n".join(router.stderr)
        report = router.report
        assert report is not None, "\n".join(router.stderr)
        # SIGTERM stopped it cleanly, with its counters: both NICs carried traffic both ways.
        for dev in ("0", "1"):
            nic = report["nics"][dev]
            assert nic["interface"] == f"{kind}:rt{'ab'[int(dev)]}"
            assert nic["rx"] > 0 and nic["tx"] > 0 and nic["tx_errors"] == 0, report["nics"]
        rows = {r["element"]: r["count"] for r in report["elements"]}
        assert rows["a/ping"] >= 2 and rows["b/ping"] >= 0
        assert rows["a/expired"] == 1
        assert report["packets"] == report["nics"]["0"]["rx"] + report["nics"]["1"]["rx"]
