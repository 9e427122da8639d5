"""IPFilter and IPClassifier count the packets each rule decided (`rule_counts`).

Traffic is made with scapy; the expected count of every rule comes from a small
oracle in this file that evaluates the rules' meaning on scapy's view of each
packet (first match wins), not from nfv's evaluator, table or generated code.
Each rule set runs on the host target through `nfv.testing.NF`, on the three
paths a packet can take to its rule:

* a small rule set (at most 64 rules) as generated code,
* the same rule set's decision table, when the `override` word sends packets
  to the table walk (as after a rule replacement at run time),
* rule sets of 90, 300 and 1,100 rules (table walk only), one for each way the
  table ends a lookup: one folded group whose class holds the answer, short
  bit-vector rows, long rows with summary words; rule indices go past 1,000.
"""
from __future__ import annotations

import ipaddress
import random
import re
from dataclasses import dataclass

import numpy as np
import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from nfv import drops
from nfv.testing import NF

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")

# -- the oracle ------------------------------------------------------------------------------


@dataclass(frozen=True)
class View:
    """What the rules below look at, read by scapy; a port or ICMP type is None when
    the packet has none (another protocol, or a fragment after the first)."""

    src: int
    dst: int
    proto: int
    ttl: int
    fragment: bool          # MF set or a fragment offset
    sport: int | None
    dport: int | None
    icmp_type: int | None


def view(frame: bytes) -> View:
    ip = Ether(frame)[IP]
    first = ip.frag == 0
    l4 = ip.payload
    ports = first and ip.proto in (6, 17) and isinstance(l4, (TCP, UDP))
    return View(int(ipaddress.ip_address(ip.src)), int(ipaddress.ip_address(ip.dst)),
                ip.proto, ip.ttl, bool(ip.flags.MF) or ip.frag != 0,
                l4.sport if ports else None, l4.dport if ports else None,
                l4.type if first and ip.proto == 1 and isinstance(l4, ICMP) else None)


def in_net(addr: int, net: str) -> bool:
    return ipaddress.ip_address(addr) in ipaddress.ip_network(net)


def first_rule(predicates, frame: bytes) -> int:
    v = view(frame)
    return next((k for k, matches in enumerate(predicates) if matches(v)), -1)


def expected_counts(predicates, frames) -> tuple[list[int], int]:
    """(packets per rule, packets no rule matched)."""
    per_rule = [0] * len(predicates)
    none = 0
    for f in frames:
        k = first_rule(predicates, f)
        if k < 0:
            none += 1
        else:
            per_rule[k] += 1
    return per_rule, none


# -- reading the handler ---------------------------------------------------------------------

LINE = re.compile(r"^( *)(\d+|-)  +(\d+)  (\S.*)$")


def parse_rule_counts(text: str) -> tuple[list[int], int, list[str]]:
    """(packets per rule, packets no rule matched, rule texts); checks the layout too."""
    lines = text.splitlines()
    rows = [LINE.match(line) for line in lines]
    assert all(rows), f"unexpected line in:\n{text}"
    # Index and count columns are right-aligned: the count ends at the same column.
    assert len({m.end(3) for m in rows}) == 1, f"columns not aligned:\n{text}"
    assert len({m.end(2) for m in rows}) == 1, f"index column not aligned:\n{text}"
    assert [m.group(2) for m in rows] == [str(k) for k in range(len(rows) - 1)] + ["-"]
    assert rows[-1].group(4) == "(no rule matched)"
    return ([int(m.group(3)) for m in rows[:-1]], int(rows[-1].group(3)),
            [m.group(4) for m in rows[:-1]])


def out_counts(result: dict) -> dict:
    return {port: len(packets) for port, packets in result.items() if packets}


# -- a small rule set: generated code, and the table behind `override` -----------------------

SMALL = [
    # (rule as written, what it means, output port or -1 for deny)
    ("deny src net 10.0.0.0/8", lambda v: in_net(v.src, "10.0.0.0/8"), -1),
    ("allow tcp && (dst port 22 || dst port 80)",
     lambda v: v.proto == 6 and v.dport in (22, 80), 0),
    ("2 udp dst port 53", lambda v: v.proto == 17 and v.dport == 53, 2),
    ("1 icmp type echo", lambda v: v.icmp_type == 8, 1),
    ("deny ip ttl < 5", lambda v: v.ttl < 5, -1),
    ("allow dst host 192.0.2.1", lambda v: v.dst == int(ipaddress.ip_address("192.0.2.1")), 0),
    # no `deny all`: what is left matches no rule (and is dropped)
]
PATTERNS = [
    ("tcp dst port 80", lambda v: v.proto == 6 and v.dport == 80),
    ("udp", lambda v: v.proto == 17),
    ("icmp", lambda v: v.proto == 1),
    ("ip ttl > 100", lambda v: v.ttl > 100),
]

SMALL_CONFIG = (
    "FromDevice(0) -> MarkIPHeader(14) -> small :: IPFilter(\n    "
    + ",\n    ".join(text for text, _, _ in SMALL) + ");\n"
    "small[0] -> ToDevice(0);  small[1] -> ToDevice(1);  small[2] -> ToDevice(2);\n"
    "FromDevice(1) -> MarkIPHeader(14) -> ipc :: IPClassifier(\n    "
    + ",\n    ".join(text for text, _ in PATTERNS) + ");\n"
    + "".join(f"ipc[{k}] -> ToDevice({3 + k});\n" for k in range(len(PATTERNS))))


def small_traffic(rng: random.Random, n: int) -> list[bytes]:
    frames = []
    for _ in range(n):
        src = rng.choice(["10.1.2.3", "203.0.113.9", "198.51.100.7", "192.0.2.200"])
        dst = rng.choice(["192.0.2.1", "192.0.2.10"])
        ttl = rng.choice([1, 4, 5, 64, 64, 200])
        frag = rng.random() < 0.1
        ip = IP(src=src, dst=dst, ttl=ttl, frag=rng.choice([0, 100]) if frag else 0,
                flags="MF" if frag else 0)
        kind = rng.choice(["tcp", "udp", "icmp", "gre"])
        if kind == "tcp":
            l4 = TCP(dport=rng.choice([22, 80, 443, 53]))
        elif kind == "udp":
            l4 = UDP(dport=rng.choice([53, 80, 9999]))
        elif kind == "icmp":
            l4 = ICMP(type=rng.choice([8, 0, 3]))
        else:
            ip.proto = 47
            l4 = Raw(b"\0" * 8)
        frames.append(bytes(ETH / ip / l4))
    return frames


@pytest.fixture(scope="module")
def small_nf():
    # Bounds-checked: a counter written outside its array would raise, not corrupt the arena.
    with NF(SMALL_CONFIG, boundscheck=True) as nf:
        yield nf


def expected_outputs(frames, rules) -> tuple[dict, int]:
    """{port: packets} and the packets dropped, from the oracle."""
    out: dict[int, int] = {}
    dropped = 0
    for f in frames:
        k = first_rule([p for _, p, _ in rules], f)
        port = rules[k][2] if k >= 0 else -1
        if port < 0:
            dropped += 1
        else:
            out[port] = out.get(port, 0) + 1
    return out, dropped


def check_small_ipfilter(nf: NF, frames) -> None:
    want_rules, want_none = expected_counts([p for _, p, _ in SMALL], frames)
    assert all(want_rules) and want_none, "the traffic should reach every rule and none"
    want_out, dropped = expected_outputs(frames, SMALL)
    assert out_counts(nf.send(frames, port=0)) == want_out
    assert nf.last_result.drops == {drops.FILTERED: dropped}
    got_rules, got_none, texts = parse_rule_counts(nf.read("small.rule_counts"))
    assert texts == [text for text, _, _ in SMALL]
    assert (got_rules, got_none) == (want_rules, want_none)


def test_small_ipfilter_counts_per_rule_in_generated_code(small_nf):
    element = small_nf.host.graph.elements["small"].instance
    assert element.specialised()
    small_nf.reset()
    check_small_ipfilter(small_nf, small_traffic(random.Random(1), 600))


def test_counts_add_up_over_batches_and_reset_clears_them(small_nf):
    small_nf.reset()
    frames = small_traffic(random.Random(2), 300)
    small_nf.send(frames[:100], port=0)
    small_nf.send(frames[100:], port=0)
    want_rules, want_none = expected_counts([p for _, p, _ in SMALL], frames)
    got_rules, got_none, _ = parse_rule_counts(small_nf.read("small.rule_counts"))
    assert (got_rules, got_none) == (want_rules, want_none)
    small_nf.reset()
    got_rules, got_none, _ = parse_rule_counts(small_nf.read("small.rule_counts"))
    assert got_rules == [0] * len(SMALL) and got_none == 0


def test_override_table_walk_counts_like_the_generated_code(small_nf):
    """With `override` set the same rules are looked up in the table: same counts."""
    small_nf.reset()
    host = small_nf.host
    host.plan.state_views(host.arena, "small")["override"][0] = 1
    check_small_ipfilter(small_nf, small_traffic(random.Random(3), 600))


def load_rules(nf: NF, element: str, texts: list[str]) -> None:
    """Replace an IPFilter's rules in place, as a rule update between batches would."""
    from nfv.classify.decide import compile_ipfilter
    from nfv.classify.ipfilter import parse_rule

    views = nf.host.plan.state_views(nf.host.arena, element)
    new = compile_ipfilter([parse_rule(t) for t in texts])
    for name, src in zip(("table_meta", "table_lookup", "table_bits"), new.arrays):
        assert src.size <= views[name].size, "the new rules must fit the compiled table"
        views[name][:] = 0
        views[name][:src.size] = src
    views["override"][0] = 1


def test_replaced_rules_bring_their_own_ports_and_counts(small_nf):
    small_nf.reset()
    load_rules(small_nf, "small", ["1 tcp", "deny udp", "allow all"])
    frames = small_traffic(random.Random(4), 300)
    meaning = [lambda v: v.proto == 6, lambda v: v.proto == 17, lambda v: True]
    want_rules, want_none = expected_counts(meaning, frames)
    out = out_counts(small_nf.send(frames, port=0))
    assert out == {1: want_rules[0], 0: want_rules[2]}
    assert small_nf.last_result.drops == {drops.FILTERED: want_rules[1]}
    hits = small_nf.host.plan.state_views(small_nf.host.arena, "small")["rule_hits"]
    assert list(hits) == [want_none] + want_rules + [0] * (len(SMALL) - 3)


def test_rules_beyond_the_counters_are_not_counted(small_nf):
    """A bigger rule set loaded at run time: rules past the array are left uncounted
    (never written outside it: the pipeline is bounds-checked) and still decide."""
    small_nf.reset()
    texts = [f"deny ip ttl == {250 - k}" for k in range(len(SMALL) + 3)] + ["2 all"]
    load_rules(small_nf, "small", texts)
    frames = small_traffic(random.Random(5), 100)          # no ttl above 200
    assert out_counts(small_nf.send(frames, port=0)) == {2: len(frames)}
    hits = small_nf.host.plan.state_views(small_nf.host.arena, "small")["rule_hits"]
    assert not hits.any()


def test_small_ipclassifier_counts_per_pattern(small_nf):
    small_nf.reset()
    frames = small_traffic(random.Random(6), 600)
    predicates = [p for _, p in PATTERNS]
    want_rules, want_none = expected_counts(predicates, frames)
    assert all(want_rules) and want_none
    out = out_counts(small_nf.send(frames, port=1))
    assert out == {3 + k: n for k, n in enumerate(want_rules)}
    assert small_nf.last_result.drops == {drops.FILTERED: want_none}
    got_rules, got_none, texts = parse_rule_counts(small_nf.read("ipc.rule_counts"))
    assert texts == [text for text, _ in PATTERNS]
    assert (got_rules, got_none) == (want_rules, want_none)


def test_rule_counts_text_is_aligned_and_keeps_the_rule_as_written(small_nf):
    small_nf.reset()
    small_nf.send([bytes(ETH / IP(src="10.0.0.1", dst="192.0.2.1") / UDP())] * 1234, port=0)
    text = small_nf.read("small.rule_counts")
    lines = text.splitlines()
    assert lines[0] == "0  1234  deny src net 10.0.0.0/8"
    assert lines[1] == "1     0  allow tcp && (dst port 22 || dst port 80)"
    assert lines[-1] == "-     0  (no rule matched)"
    assert len(lines) == len(SMALL) + 1


# -- big rule sets: the table walk -----------------------------------------------------------


CLUSTERS = ["10.0.0.0", "10.1.0.0", "10.2.0.0", "172.20.0.0"]     # /16s


def random_rules(rng: random.Random, n: int) -> list[tuple[str, object, int]]:
    """n rules over a few address clusters and a small port space, so that rules overlap
    and first-match order matters; the last 50 each own one host that nothing else
    covers (so rules past index 1,000 are reached too).  No `deny all`."""
    rules = []
    for k in range(n):
        action, port = rng.choice([("allow", 0), ("deny", -1), ("1", 1)])
        if k >= n - 50:
            host = f"192.168.{k >> 8}.{k & 255}"
            text = f"{action} src host {host}"
            meaning = (lambda h: lambda v: v.src == h)(int(ipaddress.ip_address(host)))
        else:
            # A /16 to /28 inside one of the /16 clusters (the host bits cleared).
            address = int(ipaddress.ip_address(rng.choice(CLUSTERS))) + rng.randrange(1 << 16)
            length = rng.choice([16, 20, 24, 24, 28])
            net = ipaddress.ip_network((address, length), strict=False)
            proto = rng.choice(["tcp", "udp", None])
            lo = rng.randrange(0, 120)
            hi = lo + rng.choice([0, 0, 3, 40])
            ports = f"{lo}" if lo == hi else f"{lo}-{hi}"
            if proto is None:
                text = f"{action} src net {net}"
                meaning = (lambda net: lambda v: in_net(v.src, net))(str(net))
            else:
                text = f"{action} src net {net} && {proto} dst port {ports}"
                meaning = (lambda net, p, lo, hi: lambda v: in_net(v.src, net) and v.proto == p
                           and v.dport is not None and lo <= v.dport <= hi)(
                               str(net), 6 if proto == "tcp" else 17, lo, hi)
        rules.append((text, meaning, port))
    return rules


def big_traffic(rng: random.Random, n: int, rules) -> list[bytes]:
    frames = []
    for _ in range(n):
        r = rng.random()
        if r < 0.2:                      # a host that one of the last rules owns
            k = rng.randrange(len(rules) - 50, len(rules))
            src = f"192.168.{k >> 8}.{k & 255}"
        elif r < 0.3:                    # outside every rule
            src = f"203.0.113.{rng.randrange(256)}"
        else:                            # somewhere in the clusters the rules cover
            src = str(ipaddress.ip_address(rng.choice(CLUSTERS)) + rng.randrange(1 << 16))
        l4 = rng.choice([TCP(dport=rng.randrange(0, 170)), UDP(dport=rng.randrange(0, 170)),
                         ICMP()])
        frames.append(bytes(ETH / IP(src=src, dst="192.0.2.10") / l4))
    return frames


# rules, and how the table ends a lookup (nfv/classify/README.md)
SIZES = {"t90": (90, "one group"), "t300": (300, "short rows"), "t1100": (1100, "long rows")}
BIG_RULES = {name: random_rules(random.Random(n), n) for name, (n, _) in SIZES.items()}
BIG_CONFIG = "".join(
    f"FromDevice({2 * d}) -> MarkIPHeader(14) -> {name} :: IPFilter(\n    "
    + ",\n    ".join(text for text, _, _ in BIG_RULES[name]) + ");\n"
    f"{name}[0] -> ToDevice({2 * d});  {name}[1] -> ToDevice({2 * d + 1});\n"
    for d, name in enumerate(SIZES))


@pytest.fixture(scope="module")
def big_nf():
    with NF(BIG_CONFIG) as nf:
        yield nf


@pytest.mark.parametrize("name", list(SIZES))
def test_big_rule_sets_count_per_rule_in_the_table_walk(big_nf, name):
    rules = BIG_RULES[name]
    element = big_nf.host.graph.elements[name].instance
    assert not element.specialised()
    stats = element._table.stats
    path = ("one group" if len(stats["final"]) == 1 else
            "short rows" if stats["words"] <= 16 else "long rows")
    assert path == SIZES[name][1]
    big_nf.reset()
    frames = big_traffic(random.Random(7), 3000, rules)
    predicates = [p for _, p, _ in rules]
    want_rules, want_none = expected_counts(predicates, frames)
    assert want_none and sum(1 for n in want_rules if n) > 40
    assert any(want_rules[k] for k in range(len(rules) - 50, len(rules)))
    want_out, dropped = expected_outputs(frames, rules)
    device = 2 * list(SIZES).index(name)
    got_out = out_counts(big_nf.send(frames, port=device))
    assert got_out == {device + port: n for port, n in want_out.items()}
    assert big_nf.last_result.drops == {drops.FILTERED: dropped}
    got_rules, got_none, texts = parse_rule_counts(big_nf.read(f"{name}.rule_counts"))
    assert texts == [text for text, _, _ in rules]
    assert got_rules == want_rules and got_none == want_none
    hits = big_nf.host.plan.state_views(big_nf.host.arena, name)["rule_hits"]
    assert hits.dtype == np.uint64 and hits.size == len(rules) + 1
