"""A live test with the Linux stack: real `ping`s routed through configs/router.click
running as a unikernel, the hosts finding the router by ARP, and a TTL of 1 answered
with ICMP time exceeded (what traceroute relies on).

    host A (netns)                 router VM (netns)               host B (netns)
    192.0.2.10 on tap rta  <--->  NIC 0 [router.click] NIC 1  <--->  198.51.100.10 on tap rtb

QEMU creates both taps in the router's namespace; each is then moved into its
host's namespace (a tap keeps working across the move: QEMU holds its file
descriptor). The hosts resolve the router's address by ARP (its ARPResponder);
the router finds the hosts by ARP too (its ARPQuerier); each tap gets a fixed MAC
so the test can read the ARP tables. Everything happens inside namespaces this test makes and deletes.
"""
from __future__ import annotations

import pytest

from conftest import ROOT
from netns import check_router, host_side, missing_tools, namespaces

why = missing_tools("ping", "qemu-system-x86_64")
pytestmark = pytest.mark.skipif(why is not None, reason=why or "")

ROUTER = str(ROOT / "configs" / "router.click")
# compiled in the background while earlier tests run (tests/conftest.py)
PREBUILD = [(ROUTER, "unikernel")]
MAC_A, MAC_B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"          # the router's NICs
NEXTHOP_A, NEXTHOP_B = "02:00:00:00:aa:01", "02:00:00:00:bb:01"  # the hosts' taps' MACs


@pytest.fixture(name="namespaces")
def namespaces_fixture():
    with namespaces("rt", "ha", "hb") as names:
        yield names


def test_ping_through_the_router_unikernel(namespaces):
    from nfv.unikernel.build import build_image
    from nfv.unikernel.vm import VM

    image = build_image(ROUTER)
    rt, ha, hb = namespaces["rt"], namespaces["ha"], namespaces["hb"]
    with VM(image.path, nics=["tap:rta", "tap:rtb"], netns=rt):
        host_side(rt, "rta", ha, NEXTHOP_A, "192.0.2.10", "192.0.2.1")
        host_side(rt, "rtb", hb, NEXTHOP_B, "198.51.100.10", "198.51.100.1")
        check_router(ha, hb, MAC_A, MAC_B)
