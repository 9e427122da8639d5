"""A route table big enough to get the warm-up pass (over 10,000 routes), against an oracle.

The warm-up pass walks the table for the whole batch before the real pass; it must
change nothing but the caches: every packet still leaves by the port its longest
matching route names, with the route's gateway as annotation only.
"""
from __future__ import annotations

import ipaddress
import random

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from nfv import drops

N_ROUTES = 12_000


def make_routes(seed: int = 5):
    rng = random.Random(seed)
    routes, seen = [], set()
    while len(routes) < N_ROUTES:
        length = rng.choice([8, 16, 20, 24, 24, 24, 28, 32])
        net = ipaddress.ip_network((rng.getrandbits(32) & ~((1 << (32 - length)) - 1), length))
        if net in seen:
            continue
        seen.add(net)
        routes.append((net, rng.randrange(3)))
    return routes


def oracle(routes, dst: str):
    """Longest prefix by brute force (ipaddress), None when nothing matches."""
    addr = ipaddress.ip_address(dst)
    best = None
    for net, port in routes:
        if addr in net and (best is None or net.prefixlen > best[0].prefixlen):
            best = (net, port)
    return None if best is None else best[1]


def test_big_table_with_warm_up_matches_the_oracle(nf_factory):
    routes = make_routes()
    table = ",\n".join(f"{net} {port}" for net, port in routes)
    config = (f"rt :: RadixIPLookup({table});\n"
              "FromDevice(0) -> Strip(14) -> CheckIPHeader -> rt;\n"
              "rt [0] -> ToDevice(0); rt [1] -> ToDevice(1); rt [2] -> ToDevice(2);\n")
    nf = nf_factory(config)
    assert "warm" in nf.host.pipeline.source  # the pass under test is really there
    rng = random.Random(9)
    # Half the destinations inside a route (biased to long ones), half anywhere.
    dsts = []
    for k in range(600):
        if k % 2:
            net, _ = rng.choice(routes)
            dsts.append(str(net.network_address + rng.randrange(net.num_addresses)))
        else:
            dsts.append(str(ipaddress.ip_address(rng.getrandbits(32))))
    frames = [Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
              / IP(src="198.51.100.1", dst=d) / UDP(sport=1, dport=2) for d in dsts]
    out = nf.send(frames, port=0)
    expected: dict[int, list[str]] = {}
    for d in dsts:
        port = oracle(routes, d)
        if port is not None:
            expected.setdefault(port, []).append(d)
    # After Strip(14) the frames start at the IP header: read them as IP.
    got = {port: [IP(bytes(p)).dst for p in pkts] for port, pkts in out.items()}
    assert got == expected
    unrouted = sum(1 for d in dsts if oracle(routes, d) is None)
    assert nf.last_result.drops.get(drops.NO_ROUTE, 0) == unrouted
    # The frames leave as they came, less the stripped Ethernet header.
    first = IP(bytes(next(iter(out.values()))[0]))
    assert bytes(first) == bytes(IP(src="198.51.100.1", dst=first.dst) / UDP(sport=1, dport=2))
