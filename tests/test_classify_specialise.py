"""IPFilter/IPClassifier rules as generated code mean what the reference evaluator means.

The generated kernel runs as plain Python here (decorator = identity, the packet
helpers' pure-Python bodies) against `decide.reference_ipclassifier`, on the same
random expressions and packets as the decision-table tests.  The compiled path is
covered by the element and firewall tests; the table fallback by test_override.
"""
from __future__ import annotations

from types import SimpleNamespace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from nfv import drops
from nfv.classify import specialise
from nfv.classify.decide import reference_ipclassifier
from nfv.elements._kernels import packet as pk

from test_classify_decide import L3, expressions, ip_packets


def run_generated(exprs, ports, packet: bytes, override: int = 0) -> int:
    source = specialise.kernel_source("k", exprs, ports)
    body = source[source.index("@kernel"):]  # the imports are replaced by the scope below
    scope = {"kernel": lambda f: f, "ip_header": pk.ip_header.py_func,
             "packet_end": pk.packet_end.py_func, "load16": pk.load16.py_func,
             "load32": pk.load32.py_func, "table_walk": lambda *a: "table"}
    exec(body, scope)
    meta = [SimpleNamespace(offset=0, length=len(packet), net_offset=L3)]
    return scope["k"](packet, meta, 0, None, None, None, [override])


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_generated_rules_match_the_reference(data):
    packets = data.draw(st.lists(ip_packets(), min_size=1, max_size=12))
    exprs = data.draw(st.lists(expressions(packets), min_size=1, max_size=8))
    ports = list(range(len(exprs)))
    for packet in packets:
        want = reference_ipclassifier(exprs, packet, L3)
        got = run_generated(exprs, ports, packet)
        assert got == (want if want >= 0 else -drops.FILTERED)


def test_override_defers_to_the_table():
    exprs = [specialise.TrueExpr()]
    assert run_generated(exprs, [0], bytes(40), override=1) == "table"


def test_replaced_rules_take_effect_without_recompiling(nf_factory):
    """A new rule set loaded into the table (in place), with `override` set, is obeyed."""
    from nfv.classify.decide import compile_ipfilter
    from nfv.classify.ipfilter import parse_rule

    nf = nf_factory("FromDevice(0) -> MarkIPHeader(14) -> f :: IPFilter(allow udp, deny all) "
                    "-> ToDevice(1);")
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    udp = eth / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(dport=53)
    tcp = eth / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(dport=80)
    assert [bytes(p) for p in nf.send([udp, tcp]).get(1, [])] == [bytes(udp)]

    host = nf.host
    element = host.graph.elements["f"].instance
    views = host.plan.state_views(host.arena, "f")
    new = compile_ipfilter([parse_rule("allow tcp"), parse_rule("deny all")])
    for name, src in zip(("table_meta", "table_lookup", "table_bits"), new.arrays):
        assert src.size <= views[name].size, "the new rules must fit the compiled table"
        views[name][:] = 0
        views[name][:src.size] = src
    views["override"][0] = 1
    assert element.specialised()
    assert [bytes(p) for p in nf.send([udp, tcp]).get(1, [])] == [bytes(tcp)]
