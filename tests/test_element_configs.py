"""Element library declarations: registration, manuals, argument binding, port counts, errors.

Elements are built directly from a configuration string placed at t.click line 1,
column 10 (so the character at index i of the string is at column 10 + i), the
way the graph layer builds them, and checked against independently known values.
"""
from __future__ import annotations

import ipaddress
import re

import pytest

from nfv.element import PortRange, parse_port_count, registry
from nfv.errors import ConfigError, Pos
from nfv.lang.config import make_arg, split_args

FILE = "t.click"
COL = 10

EXPECTED = """
    FromDevice ToDevice FromDump ToDump
    Discard Idle Counter Tee Paint PaintSwitch CheckPaint Print Null Queue SimpleQueue
    Strip Unstrip RoundRobinSwitch HashSwitch
    InfiniteSource RatedSource
    Classifier IPClassifier IPFilter
    MarkIPHeader CheckIPHeader DecIPTTL SetIPChecksum StaticIPLookup RadixIPLookup
    EtherEncap EtherRewrite
""".split()

# The families this test covers; other families (nat, lb, ...) are tested beside them.
FAMILIES = ("standard", "devices", "sources", "classify", "ip", "ethernet")


def build(name: str, config: str = ""):
    """Bind and configure `name(config)`; return the element."""
    cls = registry()[name]
    e = cls("x", split_args(make_arg(config, Pos(FILE, 1, COL))), Pos(FILE, 1, 1))
    e.bind()
    e.configure()
    return e


def fails(name: str, config: str = "") -> ConfigError:
    with pytest.raises(ConfigError) as info:
        build(name, config)
    return info.value


def col_of(config: str, needle: str, nth: int = 0) -> int:
    """Column of the nth occurrence of `needle` in a config placed at column COL."""
    i = -1
    for _ in range(nth + 1):
        i = config.index(needle, i + 1)
    return COL + i


def outputs(e) -> PortRange:
    return e.port_ranges()[1]


def ours():
    return {n: c for n, c in registry().items()
            if c.__module__.rsplit(".", 1)[-1] in FAMILIES}


# -- registration and manuals ---------------------------------------------------------


def test_every_listed_class_is_registered():
    reg = registry()
    missing = [n for n in EXPECTED if n not in reg]
    assert not missing
    assert set(ours()) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(registry()))   # every family's elements
def test_docstring_is_a_click_style_manual(name):
    cls = registry()[name]
    doc = cls.__doc__
    assert doc and cls.__dict__.get("__doc__"), f"{name} has no docstring of its own"
    lines = [line.strip() for line in doc.strip().splitlines()]
    assert lines[0] == cls.synopsis(), "first line is the synopsis, as declared by args"
    assert lines[1] == "" and lines[2], "then a blank line and a one-line summary"
    for section in ("Ports", "Arguments", "Handlers", "Example", "See also"):
        assert section in lines, f"{name} lacks a {section} section"
    example = " ".join(lines[lines.index("Example") + 1:lines.index("See also")])
    assert re.search(rf"\b{name}\b", example), "the example uses the element"
    args_text = doc[doc.index("Arguments"):doc.index("Handlers")]
    for arg in cls.args:
        # (a line may document several: `TCP_TIMEOUT, UDP_TIMEOUT  time: ...`)
        assert re.search(rf"^\s+(?:\w+, )*{arg.name}\b", args_text, re.M), \
            f"{arg.name} undocumented"
    if cls.rest is not None:
        assert re.search(rf"^\s+{cls.rest.name}\b", args_text, re.M)
    handlers_text = doc[doc.index("Handlers"):doc.index("Example")]
    for h in cls.handlers:
        assert re.search(rf"^\s+(?:\w+, )*{h.name}\b[\w, ]*\(", handlers_text, re.M), \
            f"{h.name} undocumented"
    parse_port_count(cls.port_count)  # valid Click notation


def test_host_only_elements():
    reg = registry()
    assert reg["FromDump"].host_only and reg["ToDump"].host_only
    assert not reg["FromDevice"].host_only and not reg["ToDevice"].host_only


# -- standard -------------------------------------------------------------------------


def test_counter_keywords_and_handlers():
    e = build("Counter")
    assert e.conf == {"COUNT_CALL": None, "BYTE_COUNT_CALL": None}
    assert e.port_ranges() == (PortRange(1, 1), PortRange(1, 1))
    names = {h.name: h for h in e.handlers}
    assert {"count", "byte_count", "rate", "reset"} <= set(names)
    assert names["reset"].write and not names["reset"].read
    assert names["count"].read and not names["count"].write
    e = build("Counter", "COUNT_CALL 1000 src.active false")
    call = e.conf["COUNT_CALL"]
    assert (call.n, call.handler, call.value) == (1000, "src.active", "false")


def test_counter_unknown_keyword_suggests_the_right_one():
    config = "COUNT_CAL 5 x.reset"
    err = fails("Counter", config)
    assert "unknown keyword COUNT_CAL" in err.message
    assert err.hint == "did you mean COUNT_CALL?"
    assert (err.pos.line, err.pos.col) == (1, COL)


def test_counter_bad_call_points_at_the_word():
    config = "COUNT_CALL lots x.reset"
    err = fails("Counter", config)
    assert "COUNT_CALL" in err.message
    assert err.pos.col == col_of(config, "lots")


def test_tee_outputs():
    assert outputs(build("Tee", "3")) == PortRange(3, 3)
    assert outputs(build("Tee", "N 2")) == PortRange(2, 2)
    assert outputs(build("Tee")) == PortRange(1, None)  # Click: as many as connected
    err = fails("Tee", "0")
    assert "at least 1" in err.message and err.pos.col == COL
    err = fails("Tee", "three")
    assert err.pos.col == COL and "N" in err.message


def test_queue_and_simplequeue():
    q = build("Queue")
    assert q.conf["CAPACITY"] == 1000
    assert build("Queue", "512").conf["CAPACITY"] == 512
    assert build("Queue", "CAPACITY 64").conf["CAPACITY"] == 64
    names = {h.name: h for h in q.handlers}
    assert {"length", "highwater_length", "drops", "capacity", "reset"} <= set(names)
    assert names["capacity"].read and names["capacity"].write
    s = build("SimpleQueue", "10")
    assert s.class_name == "SimpleQueue" and s.conf["CAPACITY"] == 10
    assert s.port_ranges() == q.port_ranges()


def test_too_many_arguments_points_at_the_extra_one():
    config = "14, 2"
    err = fails("Strip", config)
    assert "too many arguments" in err.message
    assert err.pos.col == col_of(config, "2")
    assert "Strip(LENGTH)" in err.hint


def test_missing_mandatory_argument():
    err = fails("Strip")
    assert "missing mandatory argument LENGTH" in err.message
    assert err.pos == Pos(FILE, 1, 1)
    err = fails("EtherEncap", "0x0800, 00:00:00:00:00:01")
    assert "missing mandatory argument DST" in err.message


def test_strip_unstrip_lengths():
    assert build("Strip", "14").conf["LENGTH"] == 14
    assert build("Unstrip", "LENGTH 14").conf["LENGTH"] == 14
    err = fails("Strip", "-4")
    assert err.pos.col == COL


def test_paint_family():
    p = build("Paint", "7")
    assert p.conf == {"COLOR": 7, "ANNO": 0}
    assert build("Paint", "7, 1").conf["ANNO"] == 1
    assert build("Paint", "COLOR 3, ANNO PAINT2").conf == {"COLOR": 3, "ANNO": 1}
    err = fails("Paint", "256")
    assert err.pos.col == COL and "COLOR" in err.message
    c = build("CheckPaint", "2")
    assert c.conf["COLOR"] == 2 and outputs(c) == PortRange(1, 2)
    assert outputs(build("PaintSwitch")) == PortRange(0, None)


def test_print_arguments():
    e = build("Print", "ok, 64, CONTENTS ascii, TIMESTAMP true")
    assert e.conf["LABEL"] == "ok" and e.conf["MAXLENGTH"] == 64
    assert e.conf["CONTENTS"] == "ASCII" and e.conf["TIMESTAMP"] is True
    d = build("Print")
    assert (d.conf["LABEL"], d.conf["MAXLENGTH"], d.conf["CONTENTS"]) == ("", 24, "HEX")
    config = "in, CONTENTS binary"
    err = fails("Print", config)
    assert "CONTENTS" in err.message and err.pos.col == col_of(config, "binary")
    assert "HEX" in err.hint


def test_switches():
    assert outputs(build("RoundRobinSwitch")) == PortRange(1, None)
    h = build("HashSwitch", "30, 4")
    assert (h.conf["OFFSET"], h.conf["LENGTH"]) == (30, 4)
    assert outputs(h) == PortRange(1, None)
    config = "30, 0"
    err = fails("HashSwitch", config)
    assert "LENGTH" in err.message and err.pos.col == col_of(config, " 0") + 1
    assert "missing mandatory argument LENGTH" in fails("HashSwitch", "30").message


def test_discard_idle_null():
    d = build("Discard")
    assert d.port_ranges() == (PortRange(1, 1), PortRange(0, 0))
    assert d.conf == {"ACTIVE": True, "BURST": 1}
    assert build("Idle").port_ranges() == (PortRange(0, None), PortRange(0, None))
    assert build("Null").port_ranges() == (PortRange(1, 1), PortRange(1, 1))
    err = fails("Null", "1")
    assert "too many arguments" in err.message


# -- devices --------------------------------------------------------------------------


def test_devices():
    f = build("FromDevice", "0")
    assert f.conf["DEVNAME"] == 0 and f.port_ranges() == (PortRange(0, 0), PortRange(1, 1))
    assert build("FromDevice", "eth1, PROMISC true").conf["PROMISC"] is True
    assert build("FromDevice", "eth1").conf["DEVNAME"] == "eth1"
    t = build("ToDevice", "7, BURST 64")
    assert t.conf["DEVNAME"] == 7 and t.conf["BURST"] == 64
    assert t.port_ranges() == (PortRange(1, 1), PortRange(0, 0))
    assert {"count", "drops"} <= {h.name for h in t.handlers}
    err = fails("ToDevice", "8")
    assert "out of range" in err.message and "0..7" in err.hint
    config = "0, BPF_FILTER 'tcp port 80'"
    err = fails("FromDevice", config)
    assert "BPF_FILTER" in err.message and err.pos.col == col_of(config, "'tcp")
    assert "missing mandatory argument DEVNAME" in fails("FromDevice").message


def test_dumps():
    f = build("FromDump", "in.pcap, STOP true")
    assert f.conf["FILENAME"] == "in.pcap" and f.conf["STOP"] is True
    assert f.conf["TIMING"] is False and outputs(f) == PortRange(1, 1)
    assert build("FromDump", "in.pcap, true").conf["TIMING"] is True
    config = "in.pcap, STOP true, END_CALL x.active false"
    err = fails("FromDump", config)
    assert "STOP and END_CALL" in err.message and err.pos.col == col_of(config, "x.active")
    t = build("ToDump", "out.pcap")
    assert (t.conf["SNAPLEN"], t.conf["ENCAP"]) == (2000, "ETHER")
    assert outputs(t) == PortRange(0, 1)
    assert build("ToDump", "out.pcap, 96, IP").conf["ENCAP"] == "IP"


# -- sources --------------------------------------------------------------------------


def test_infinite_source():
    e = build("InfiniteSource")
    assert e.conf["LIMIT"] == -1 and e.conf["BURST"] == 1 and e.conf["ACTIVE"] is True
    assert len(e.conf["DATA"]) >= 64
    assert e.port_ranges() == (PortRange(0, 0), PortRange(1, 1))
    e = build("InfiniteSource", r"\<0800>, 5, 2, false, LENGTH 60, STOP true")
    assert e.conf["DATA"] == b"\x08\x00"
    assert (e.conf["LIMIT"], e.conf["BURST"], e.conf["ACTIVE"]) == (5, 2, False)
    assert e.conf["LENGTH"] == 60 and e.conf["STOP"] is True
    e = build("InfiniteSource", "LIMIT 10")
    assert e.conf["LIMIT"] == 10 and e.conf["BURST"] == 1
    err = fails("InfiniteSource", "LIMIT 10, BURST 0")
    assert "BURST" in err.message


def test_rated_source():
    e = build("RatedSource", r"\<0800>, 1000, 5000")
    assert (e.conf["RATE"], e.conf["LIMIT"]) == (1000, 5000)
    assert build("RatedSource").conf["RATE"] == 10
    config = "RATE 100, BANDWIDTH 10Mbps"
    err = fails("RatedSource", config)
    assert "RATE and BANDWIDTH" in err.message and err.pos.col == col_of(config, "10Mbps")


# -- classify -------------------------------------------------------------------------


def test_classifier_outputs_one_per_pattern():
    e = build("Classifier", "12/0806 20/0001, 12/0800, -")
    assert len(e.conf["PATTERN"]) == 3
    assert e.port_ranges() == (PortRange(1, 1), PortRange(3, 3))
    assert "PATTERN" in fails("Classifier").message


def test_ipclassifier_outputs_one_per_pattern():
    e = build("IPClassifier", "tcp dst port 80, udp, -")
    assert outputs(e) == PortRange(3, 3)


def test_ipfilter_outputs():
    assert outputs(build("IPFilter", "allow tcp, 2 udp, deny all")) == PortRange(3, 3)
    assert outputs(build("IPFilter", "allow tcp dst port 22, drop all")) == PortRange(1, 1)
    assert outputs(build("IPFilter", "deny all")) == PortRange(1, 1)
    assert outputs(build("IPFilter", "1 icmp, deny all")) == PortRange(2, 2)


# -- ip ---------------------------------------------------------------------------------


def test_route_values():
    e = build("StaticIPLookup", "10.0.0.0/8 0, 192.168.1.0/255.255.255.0 1, "
                                "0.0.0.0/0 192.168.1.1 1, 172.16.5.4/12 - 2")
    routes = e.conf["ROUTE"]
    assert [r.prefix for r in routes] == [ipaddress.IPv4Network(n) for n in
                                          ("10.0.0.0/8", "192.168.1.0/24", "0.0.0.0/0",
                                           "172.16.0.0/12")]
    assert [r.gateway for r in routes] == [None, None, ipaddress.IPv4Address("192.168.1.1"), None]
    assert [r.port for r in routes] == [0, 1, 1, 2]
    assert outputs(e) == PortRange(3, 3)
    assert str(routes[2]) == "0.0.0.0/0 192.168.1.1 1"


def test_radix_allows_outputs_for_routes_added_later():
    e = build("RadixIPLookup", "10.0.0.0/8 0, 0.0.0.0/0 10.0.0.1 1")
    assert outputs(e) == PortRange(2, None)
    assert {"add", "remove", "set", "ctrl", "table"} <= {h.name for h in e.handlers}
    assert outputs(build("RadixIPLookup")) == PortRange(0, None)


def test_route_bad_gateway_points_at_that_word():
    config = "10.0.0.0/8 0, 0.0.0.0/0 10.0.0.300 1"
    err = fails("StaticIPLookup", config)
    assert "ROUTE" in err.message and "10.0.0.300" in err.message
    # at the bad number inside the gateway word, not at the start of the route
    assert (err.pos.line, err.pos.col) == (1, col_of(config, "300"))


def test_route_bad_prefix_and_port_positions():
    config = "10.0.0.0/33 0"
    err = fails("RadixIPLookup", config)
    assert err.pos.col == col_of(config, "33")
    config = "10.0.0.0/8 x1"
    err = fails("RadixIPLookup", config)
    assert err.pos.col == col_of(config, "x1")
    config = "10.0.0.0/8 10.0.0.1"
    err = fails("RadixIPLookup", config)
    assert "no output port" in err.message and err.pos.col == col_of(config, "10.0.0.1")
    config = "10.0.0.0/8 10.0.0.1 1 2"
    err = fails("RadixIPLookup", config)
    assert "too many words" in err.message and err.pos.col == col_of(config, "2")
    assert "no output port" in fails("RadixIPLookup", "10.0.0.0/8").message


def test_route_error_on_a_later_line():
    text = "10.0.0.0/8 0,\n            10.1.0.0/16 10.0.0.x 1"
    err = fails("RadixIPLookup", text)
    assert (err.pos.line, err.pos.col) == (2, 1 + text.split("\n")[1].index("x 1"))


def test_duplicate_route_names_both_places():
    config = "10.0.0.0/8 0, 10.1.2.3/8 1"   # the second masks to the same prefix
    err = fails("StaticIPLookup", config)
    assert "duplicate route for 10.0.0.0/8" in err.message
    assert err.pos.col == col_of(config, "10.1.2.3")
    assert f"{FILE}:1:{COL}" in err.hint


def test_check_ip_header():
    e = build("CheckIPHeader")
    assert e.conf["OFFSET"] == 0 and e.conf["CHECKSUM"] is True
    assert outputs(e) == PortRange(1, 2)
    assert build("CheckIPHeader", "14").conf["OFFSET"] == 14
    assert build("CheckIPHeader", "OFFSET 14, CHECKSUM false").conf["CHECKSUM"] is False
    e = build("CheckIPHeader", "BADSRC 1.2.3.4 5.6.7.8")
    assert e.conf["BADSRC"] == (ipaddress.IPv4Address("1.2.3.4"), ipaddress.IPv4Address("5.6.7.8"))
    e = build("CheckIPHeader", "INTERFACES 18.26.4.9/24 18.32.9.44/28")
    assert set(e.conf["BADSRC"]) == {ipaddress.IPv4Address(a) for a in (
        "18.26.4.255", "18.32.9.47", "0.0.0.0", "255.255.255.255")}
    assert e.conf["GOODDST"] == (ipaddress.IPv4Address("18.26.4.9"),
                                 ipaddress.IPv4Address("18.32.9.44"))
    config = "BADSRC 1.2.3.4 5.6.7"
    err = fails("CheckIPHeader", config)
    assert err.pos.col == col_of(config, "5.6.7")


def test_ip_simple_elements():
    d = build("DecIPTTL")
    assert outputs(d) == PortRange(1, 2) and d.conf["ACTIVE"] is True
    assert build("MarkIPHeader", "14").conf["OFFSET"] == 14
    assert build("SetIPChecksum").port_ranges() == (PortRange(1, 1), PortRange(1, 1))


# -- ethernet -------------------------------------------------------------------------


def test_ether_encap_and_rewrite():
    e = build("EtherEncap", "0x0800, 00:11:22:33:44:55, 2:2:2:2:2:2")
    assert e.conf["ETHERTYPE"] == 0x0800
    assert e.conf["SRC"] == bytes.fromhex("001122334455")
    assert e.conf["DST"] == bytes([2] * 6)
    r = build("EtherRewrite", "SRC 00:00:00:00:00:01, DST ff:ff:ff:ff:ff:ff")
    assert r.conf["DST"] == b"\xff" * 6
    config = "0x0800, 00:11:22:33:44:55, 00:11:22:33:44"
    err = fails("EtherEncap", config)
    assert "DST" in err.message and err.pos.col == col_of(config, "00:11:22:33:44", 1)
    config = "00:00:00:00:00:01, DST 00:00:00:00:00:02, SRC 00:00:00:00:00:03"
    err = fails("EtherRewrite", config)   # SRC taken by position, then given again
    assert "SRC given twice" in err.message and err.pos.col == col_of(config, "SRC")


def test_route_accepts_clicks_abbreviated_prefixes():
    e = build("StaticIPLookup", "18.26.4/24 1, 0/0 18.26.4.1 1")
    assert [r.prefix for r in e.conf["ROUTE"]] == [ipaddress.IPv4Network("18.26.4.0/24"),
                                                   ipaddress.IPv4Network("0.0.0.0/0")]
    config = "18.26/40 1"
    err = fails("StaticIPLookup", config)
    assert err.pos.col == col_of(config, "40") and "18.26.0.0" not in err.message


def test_pattern_errors_point_inside_the_argument():
    config = "12/0800, 12/08x0"
    err = fails("Classifier", config)
    assert "PATTERN" in err.message and err.pos.col == col_of(config, "x")
    config = "allow tcp, allow udp dst port 99999"
    err = fails("IPFilter", config)
    assert "RULE" in err.message and err.pos.col == col_of(config, "99999")
