"""Syntax layer of Click's classifiers: Classifier patterns and the IPClassifier/IPFilter language.

Expected ASTs are written by hand from the semantics in the module docstrings
(addresses via `ipaddress`, not via the parser), so a parser bug cannot hide
behind its own output.
"""
from __future__ import annotations

import ipaddress

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nfv.classify import (
    FALSE, FIELDS, TRUE, And, ClassifierPattern, Clause, FieldTest, FilterRule, Not, Or,
    describe, describe_pattern, parse_expr, parse_pattern, parse_rule,
)
from nfv.classify import ipfilter as ipf
from nfv.errors import ArgError

# -- helpers for hand-built ASTs -----------------------------------------------------------


def ip(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def net(text: str) -> tuple[int, int]:
    n = ipaddress.IPv4Network(text)
    return int(n.network_address), int(n.netmask)


def T(field: str, value: int, op: str = "==", mask: int | None = None) -> FieldTest:
    return FieldTest(field, op, value, FIELDS[field].max if mask is None else mask)


def proto(n: int) -> FieldTest:
    return T(ipf.IP_PROTO, n)


def either(src: FieldTest, dst: FieldTest) -> Or:
    return Or((src, dst))


TCP, UDP = proto(6), proto(17)
SRC, DST, SPORT, DPORT = ipf.IP_SRC, ipf.IP_DST, ipf.L4_SPORT, ipf.L4_DPORT


def port(n: int, op: str = "==") -> Or:
    return either(T(SPORT, n, op), T(DPORT, n, op))


def flag(bits: int) -> FieldTest:
    return T(ipf.TCP_FLAGS, bits, mask=bits)


def error_of(parse, text: str) -> ArgError:
    with pytest.raises(ArgError) as info:
        parse(text)
    return info.value


# -- Classifier patterns -------------------------------------------------------------------

FULL2 = b"\xff\xff"


@pytest.mark.parametrize("text, clauses", [
    ("12/0800", [Clause(12, b"\x08\x00", FULL2)]),
    ("12/0806 20/0001", [Clause(12, b"\x08\x06", FULL2), Clause(20, b"\x00\x01", FULL2)]),
    ("12/0800 23/06", [Clause(12, b"\x08\x00", FULL2), Clause(23, b"\x06", b"\xff")]),
    ("0/ffffffffffff", [Clause(0, b"\xff" * 6, b"\xff" * 6)]),
    ("12/86dd%ffff", [Clause(12, b"\x86\xdd", FULL2)]),
    ("12/86DD%FF00", [Clause(12, b"\x86\x00", b"\xff\x00")]),        # value comes out masked
    ("!12/0800", [Clause(12, b"\x08\x00", FULL2, negated=True)]),
    ("! 12/0800  14/45", [Clause(12, b"\x08\x00", FULL2, True), Clause(14, b"\x45", b"\xff")]),
    ("12/08??", [Clause(12, b"\x08\x00", b"\xff\x00")]),
    ("12/0?8?%f0ff", [Clause(12, b"\x00\x80", b"\xf0\xf0")]),       # '?' clears mask nibbles
    ("  33/02%12  ", [Clause(33, b"\x02", b"\x12")]),
])
def test_classifier_patterns(text, clauses):
    assert parse_pattern(text) == ClassifierPattern(tuple(clauses))


def test_classifier_match_all():
    assert parse_pattern("-") == ClassifierPattern((), match_all=True)
    assert parse_pattern("  - ") == ClassifierPattern((), match_all=True)


@pytest.mark.parametrize("text, offset, fragment", [
    ("", 0, "empty pattern"),
    ("12", 0, "expected OFFSET/VALUE"),
    ("/0800", 0, "missing offset"),
    ("1x/0800", 1, "not a decimal number"),
    ("12/", 3, "missing value"),
    ("12/080", 3, "odd number of hex digits"),
    ("12/0800 14/08g0", 13, "'g' is not a hex digit"),
    ("12/0800%ff", 8, "mask has 2 hex digits but value has 4"),
    ("12/0800%", 8, "missing mask"),
    ("12/0800%ff?f", 10, "'?' is not a hex digit in mask"),
    ("12/0800 !", 8, "needs a clause"),
    ("!!12/08", 1, "given twice"),
    ("- 12/08", 0, "whole pattern"),
    ("12/08 -", 6, "whole pattern"),
    ("70000/00", 0, "offset 70000 out of range 0-65535"),
])
def test_classifier_errors(text, offset, fragment):
    error = error_of(parse_pattern, text)
    assert error.offset == offset
    assert fragment in error.message


@pytest.mark.parametrize("text", ["12/0800", "!12/08?? 23/06", "12/0800%0ff0", "-", "0/12%fe"])
def test_classifier_describe_round_trips(text):
    pattern = parse_pattern(text)
    assert parse_pattern(describe_pattern(pattern)) == pattern
    assert describe_pattern(parse_pattern("12/86dd%ffff 14/4?")) == "12/86dd 14/4?"


# -- IPClassifier expressions: valid ---------------------------------------------------------

TEN_8 = net("10.0.0.0/8")

VALID = [
    ("-", TRUE), ("any", TRUE), ("all", TRUE), ("true", TRUE), ("false", FALSE), ("ip", TRUE),
    ("tcp", TCP), ("udp", UDP), ("icmp", proto(1)), ("igmp", proto(2)),
    ("ip proto tcp", TCP), ("proto udp", UDP), ("ip proto 47", proto(47)),
    ("ip proto != 6", T(ipf.IP_PROTO, 6, "!=")),
    ("host 10.0.0.1", either(T(SRC, ip("10.0.0.1")), T(DST, ip("10.0.0.1")))),
    ("10.0.0.1", either(T(SRC, ip("10.0.0.1")), T(DST, ip("10.0.0.1")))),
    ("src host 1.2.3.4", T(SRC, ip("1.2.3.4"))),
    ("dst host != 1.2.3.4", T(DST, ip("1.2.3.4"), "!=")),
    ("src and dst host 1.2.3.4", And((T(SRC, ip("1.2.3.4")), T(DST, ip("1.2.3.4"))))),
    ("src or dst host 1.2.3.4", either(T(SRC, ip("1.2.3.4")), T(DST, ip("1.2.3.4")))),
    ("dst or src host 1.2.3.4", either(T(SRC, ip("1.2.3.4")), T(DST, ip("1.2.3.4")))),
    ("src net 10.0.0.0/8", T(SRC, TEN_8[0], mask=TEN_8[1])),
    ("src 10.0.0.0/8", T(SRC, TEN_8[0], mask=TEN_8[1])),
    ("src net 10.1.2.3/8", T(SRC, TEN_8[0], mask=TEN_8[1])),          # host bits masked
    ("dst net 192.168.0.0 mask 255.255.0.0", T(DST, ip("192.168.0.0"), mask=ip("255.255.0.0"))),
    ("net 0.0.0.0/0", either(T(SRC, 0, mask=0), T(DST, 0, mask=0))),
    ("port 80", port(80)), ("www", port(80)), ("port http", port(80)),
    ("port domain", port(53)), ("ssh", port(22)), ("port ftp-data", port(20)),
    ("tcp port 80", And((TCP, port(80)))),
    ("udp dst port 53", And((UDP, T(DPORT, 53)))),
    ("dst udp port 53", And((UDP, T(DPORT, 53)))),
    ("src tcp port != 5", And((TCP, T(SPORT, 5, "!=")))),
    ("dst port > 1023", T(DPORT, 1023, ">")),
    ("dst port >= 1024", T(DPORT, 1024, ">=")),
    ("src tcp port & 10 == 8", And((TCP, T(SPORT, 8, mask=10)))),
    ("src port 1024-65535", And((T(SPORT, 1024, ">="), T(SPORT, 65535, "<=")))),
    ("dst portrange 20-ftp", And((T(DPORT, 20, ">="), T(DPORT, 21, "<=")))),
    ("dst port 7-7", T(DPORT, 7)),
    ("port 1-5", Or((And((T(SPORT, 1, ">="), T(SPORT, 5, "<="))),
                     And((T(DPORT, 1, ">="), T(DPORT, 5, "<=")))))),
    ("tcp opt syn", flag(0x02)), ("tcp opt ack", flag(0x10)), ("tcp opt fin", flag(0x01)),
    ("tcp opt rst", flag(0x04)), ("tcp opt psh", flag(0x08)), ("tcp opt urg", flag(0x20)),
    ("syn", flag(0x02)), ("tcp syn", flag(0x02)),
    ("fin ack", And((flag(0x01), flag(0x10)))),
    ("tcp win 512", T(ipf.TCP_WIN, 512)),
    ("icmp type echo", T(ipf.ICMP_TYPE, 8)), ("icmp type 3", T(ipf.ICMP_TYPE, 3)),
    ("echo-reply", T(ipf.ICMP_TYPE, 0)), ("icmp type unreachable", T(ipf.ICMP_TYPE, 3)),
    ("icmp type timeexceeded", T(ipf.ICMP_TYPE, 11)), ("icmp echo", T(ipf.ICMP_TYPE, 8)),
    ("icmp type != 4", T(ipf.ICMP_TYPE, 4, "!=")),
    ("udp echo", And((UDP, port(7)))),
    ("ip ttl < 5", T(ipf.IP_TTL, 5, "<")), ("ip ttl 64", T(ipf.IP_TTL, 64)),
    ("ip ttl = 64", T(ipf.IP_TTL, 64)), ("ttl <= 1", T(ipf.IP_TTL, 1, "<=")),
    ("ip len >= 100", T(ipf.IP_LEN, 100, ">=")), ("ip id 0x1234", T(ipf.IP_ID, 0x1234)),
    ("ip tos 16", T(ipf.IP_TOS, 16)), ("ip dscp 46", T(ipf.IP_DSCP, 46)),
    ("ip vers 4", T(ipf.IP_VERS, 4)), ("ip hl > 5", T(ipf.IP_HL, 5, ">")),
    ("ip tos & 0x1c == 4", T(ipf.IP_TOS, 4, mask=0x1C)),
    ("ip tos & 3", T(ipf.IP_TOS, 0, "!=", mask=3)),
    ("ip frag", T(ipf.IP_FRAG, 0, "!=", mask=0x3FFF)),
    ("ip unfrag", T(ipf.IP_FRAG, 0, mask=0x3FFF)), ("unfrag", T(ipf.IP_FRAG, 0, mask=0x3FFF)),
    ("ip ect", T(ipf.IP_ECN, 0, "!=", mask=3)), ("ip ce", T(ipf.IP_ECN, 3, mask=3)),
    # connectives, precedence, juxtaposition
    ("tcp or udp", Or((TCP, UDP))), ("tcp || udp", Or((TCP, UDP))),
    ("tcp and syn", And((TCP, flag(2)))), ("tcp && syn", And((TCP, flag(2)))),
    ("not tcp", Not(TCP)), ("!tcp", Not(TCP)), ("! ! tcp", Not(Not(TCP))),
    ("tcp or udp and syn", Or((TCP, And((UDP, flag(2)))))),
    ("(tcp or udp) and syn", And((Or((TCP, UDP)), flag(2)))),
    ("not tcp and udp", And((Not(TCP), UDP))),
    ("not (tcp and udp)", Not(And((TCP, UDP)))),
    ("tcp not syn", And((TCP, Not(flag(2))))),
    ("src host 1.2.3.4 tcp", And((T(SRC, ip("1.2.3.4")), TCP))),
    ("10.0.0.0/24 and fin ack",
     And((either(T(SRC, ip("10.0.0.0"), mask=ip("255.255.255.0")),
                 T(DST, ip("10.0.0.0"), mask=ip("255.255.255.0"))), flag(1), flag(0x10)))),
    ("(dst port www or dst port ssh) and tcp opt syn",
     And((Or((T(DPORT, 80), T(DPORT, 22))), flag(2)))),
    ("tcp ? dst port 80 : udp",
     Or((And((TCP, T(DPORT, 80))), And((Not(TCP), UDP))))),
    # a bare value after and/or repeats the previous primitive
    ("src port 80 or 81", Or((T(SPORT, 80), T(SPORT, 81)))),
    ("dst tcp port 8000 or 8080", Or((And((TCP, T(DPORT, 8000))), And((TCP, T(DPORT, 8080)))))),
    ("ip ttl < 5 or > 250", Or((T(ipf.IP_TTL, 5, "<"), T(ipf.IP_TTL, 250, ">")))),
    ("src host 1.2.3.4 or 10.0.0.0/8",
     Or((T(SRC, ip("1.2.3.4")), T(SRC, TEN_8[0], mask=TEN_8[1])))),
    ("ip proto 6 or 17", Or((TCP, UDP))),
    ("icmp type echo or echo-reply", Or((T(ipf.ICMP_TYPE, 8), T(ipf.ICMP_TYPE, 0)))),
    ("TCP Port HTTP", And((TCP, port(80)))),
]


@pytest.mark.parametrize("text, expected", VALID, ids=[v[0] for v in VALID])
def test_valid_expressions(text, expected):
    assert parse_expr(text) == expected


@pytest.mark.parametrize("text", [v[0] for v in VALID])
def test_describe_round_trips(text):
    expr = parse_expr(text)
    assert parse_expr(describe(expr)) == expr


@pytest.mark.parametrize("text, canonical", [
    ("tcp port 80", "tcp port 80"),
    ("src net 10.0.0.0/8 && tcp dst port 22", "src net 10.0.0.0/8 and tcp dst port 22"),
    ("src or dst host 1.2.3.4", "host 1.2.3.4"),
    ("www", "port 80"),
    ("dst portrange 1000-2000", "dst port 1000-2000"),
    ("ip proto 6", "tcp"),
    ("proto 99", "ip proto 99"),
    ("syn", "tcp opt syn"),
    ("icmp type 8", "icmp type echo"),
    ("unfrag", "ip unfrag"),
    ("udp && (dst port 53 || dst port 123)", "udp and (dst port 53 or dst port 123)"),
    ("net 10.0.0.0 mask 255.0.255.0", "net 10.0.0.0 mask 255.0.255.0"),
    ("!(tcp or udp)", "not (tcp or udp)"),
    ("ip tos & 0x1c == 4", "ip tos & 0x1c == 4"),
])
def test_describe_canonical_text(text, canonical):
    assert describe(parse_expr(text)) == canonical


def test_protocol_word_after_repeatable_primitive_starts_a_new_primitive():
    # Found by the round-trip property: 'tcp' after 'ip proto != 6 and' once repeated
    # 'ip proto', leaving 'opt syn' dangling.
    assert parse_expr("ip proto != 6 and tcp opt syn") == And((T(ipf.IP_PROTO, 6, "!="), flag(2)))
    assert parse_expr("ip proto 6 or udp") == Or((TCP, UDP))
    text = "ip proto != 6 ? any : tcp opt syn"
    assert parse_expr(describe(parse_expr(text))) == parse_expr(text)


def test_describe_tests_no_parser_makes():
    assert describe(T(ipf.TCP_FLAGS, 0x12, mask=0x12)) == "tcp.flags & 0x12 == 18"
    assert describe(FieldTest("no.such", "==", 1, 1)) == "no.such & 0x1 == 1"


# -- IPClassifier expressions: errors --------------------------------------------------------

INVALID = [
    ("", 0, "empty pattern"),
    ("tpc", 0, "unknown protocol 'tpc'"),
    ("ip proto tpc", 9, "unknown protocol 'tpc'"),
    ("port 70000", 5, "port 70000 out of range 0-65535"),
    ("tcp dst port 99999", 13, "out of range 0-65535"),
    ("host 10.0.0.256", 12, "byte 256 out of range 0-255"),
    ("host 10.0.0", 5, "bad ip address"),
    ("net 10.0.0.0/33", 13, "prefix length 33 out of range 0-32"),
    ("net 10.0.0.0/x", 13, "bad prefix length"),
    ("net 10.0.0.0", 12, "needs a prefix length or a mask"),
    ("host 10.0.0.0/8", 5, "host takes an address, not a network"),
    ("tcp port 80 )", 12, "unbalanced ')'"),
    ("(tcp or udp", 0, "unclosed '('"),
    ("(tcp udp]", 8, "unexpected character ']'"),
    ("tcp and", 7, "missing a primitive after 'and'"),
    ("or tcp", 0, "missing a primitive before 'or'"),
    ("tcp or or udp", 7, "missing a primitive before 'or'"),
    ("src", 3, "missing host, net or port after 'src'"),
    ("src tcp", 7, "missing host, net or port"),
    ("src ttl 5", 0, "'src' does not apply to 'ttl'"),
    ("icmp port 80", 5, "'port' does not apply to icmp"),
    ("udp opt syn", 4, "'opt' does not apply to udp"),
    ("tcp opt syx", 8, "unknown tcp flag 'syx'"),
    ("tcp opt == syn", 8, "takes no operator"),
    ("ip ttl 300", 7, "ttl 300 out of range 0-255"),
    ("ip ttl <", 8, "missing ttl after '<'"),
    ("ip ttl < x", 9, "must be a number"),
    ("port htp", 5, "unknown port name 'htp'"),
    ("port 5-1", 5, "backwards"),
    ("port 1-2-3", 5, "bad port range"),
    ("port != 1-5", 8, "takes no operator"),
    ("portrange 80", 10, "expected a port range"),
    ("80", 0, "'80' is not a primitive"),
    ("tcp 80", 4, "'80' is not a primitive"),
    ("echo", 0, "both a port name and an icmp type"),
    ("icmp type bogus", 10, "unknown icmp type 'bogus'"),
    ("ip tos & 0x0f == 0x10", 17, "bits outside mask"),
    ("host < 10.0.0.1", 5, "'<' does not apply to addresses"),
    ("< 5", 0, "'<' needs a field"),
    ("tcp == 80", 4, "unexpected '=='"),
    ("tcp | udp", 4, "unexpected character '|'"),
    ("ip[9] == 6", 2, "unexpected character '['"),
    ("- tcp", 0, "'-' must be the whole pattern"),
    ("tcp : udp", 4, "':' without '?'"),
    ("tcp ? udp", 9, "missing ':'"),
    ("mask 1.2.3.4", 0, "unexpected 'mask'"),
    ("host 10.0.0.1 mask 255.0.0.0", 14, "host takes no mask"),
    ("tcp & udp", 4, "unexpected '&'"),
    ("src port 80 or (81)", 16, "'81' is not a primitive"),     # no repetition inside ( )
    ("tcp or 17", 7, "'17' is not a primitive"),              # nor after a bare protocol
    ("(" * 70 + "tcp" + ")" * 70, 64, "nested too deeply"),
    ("!" * 70 + "tcp", 64, "nested too deeply"),
]


@pytest.mark.parametrize("text, offset, fragment", INVALID, ids=[v[0][:30] for v in INVALID])
def test_invalid_expressions(text, offset, fragment):
    error = error_of(parse_expr, text)
    assert fragment in error.message
    assert error.offset == offset


@pytest.mark.parametrize("text, hint", [
    ("tpc", "did you mean tcp?"),
    ("port htp", "did you mean http?"),
    ("tcp opt syx", "did you mean syn?"),
    ("host 10.0.0.0/8", "write 'net 10.0.0.0/8'"),
    ("port 5-1", "did you mean 1-5?"),
])
def test_error_hints(text, hint):
    assert error_of(parse_expr, text).hint == hint


def test_conditional_blowup_is_refused():
    text = "tcp"
    for _ in range(20):
        text = f"({text} ? udp : icmp)"
    assert "too complex" in error_of(parse_expr, text).message


# -- IPFilter rules ---------------------------------------------------------------------------

SSH_FROM_INSIDE = And((T(SRC, TEN_8[0], mask=TEN_8[1]), And((TCP, T(DPORT, 22)))))

RULES = [
    ("allow src net 10.0.0.0/8 && tcp dst port 22", FilterRule("allow", 0, SSH_FROM_INSIDE)),
    ("deny all", FilterRule("deny", -1, TRUE)),
    ("drop -", FilterRule("drop", -1, TRUE)),
    ("allow icmp type echo", FilterRule("allow", 0, T(ipf.ICMP_TYPE, 8))),
    ("allow udp && (dst port 53 || dst port 123)",
     FilterRule("allow", 0, And((UDP, Or((T(DPORT, 53), T(DPORT, 123))))))),
    ("2 tcp opt syn", FilterRule("2", 2, flag(2))),
    ("ALLOW tcp", FilterRule("allow", 0, TCP)),
    ("deny src or dst host 1.2.3.4", FilterRule("deny", -1, either(
        T(SRC, ip("1.2.3.4")), T(DST, ip("1.2.3.4"))))),
    # Click's firewall example (Zwicky et al.), with the AddressInfo names spelled out
    ("allow src 192.0.2.10 && dst 10.1.0.0/16 && tcp && src port www && dst port > 1023 && ack",
     FilterRule("allow", 0, And((T(SRC, ip("192.0.2.10")),
                                 T(DST, ip("10.1.0.0"), mask=ip("255.255.0.0")), TCP,
                                 T(SPORT, 80), T(DPORT, 1023, ">"), flag(0x10))))),
]


@pytest.mark.parametrize("text, rule", RULES, ids=[r[0][:40] for r in RULES])
def test_rules(text, rule):
    assert parse_rule(text) == rule


@pytest.mark.parametrize("text, offset, fragment", [
    ("", 0, "empty filter rule"),
    ("alow tcp", 0, "unknown action 'alow'"),
    ("allow", 5, "missing pattern after 'allow'"),
    ("deny   ", 7, "missing pattern"),
    ("70000 tcp", 0, "output port 70000 out of range"),
    ("(tcp)", 0, "expected an action"),
    ("allow tcp dst port 70000", 19, "port 70000 out of range 0-65535"),
    ("deny src net 10.0.0.0/40", 22, "prefix length 40"),
])
def test_rule_errors(text, offset, fragment):
    error = error_of(parse_rule, text)
    assert fragment in error.message
    assert error.offset == offset


def test_rule_error_hint():
    assert error_of(parse_rule, "alow tcp").hint == "did you mean allow?"


# -- properties ---------------------------------------------------------------------------------

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# The language's own characters, plus a NUL, a non-ASCII letter and a non-ASCII digit.
LANGUAGE_CHARS = st.sampled_from(list("abcdefhiklmnoprstuwxy0123456789./-&|!=<>()?:% \t")
                                 + ["\x00", "é", "٣"])
SEED_RULES = [r[0] for r in RULES] + [v[0] for v in VALID] + [v[0] for v in INVALID]


def _only_arg_errors(parse, text: str) -> None:
    try:
        parse(text)
    except ArgError as e:
        assert e.message and isinstance(e.message, str)
        assert e.offset is None or 0 <= e.offset <= len(text)


@FAST
@given(st.text(max_size=60))
def test_arbitrary_text_raises_only_arg_error(text):
    for parse in (parse_expr, parse_rule, parse_pattern):
        _only_arg_errors(parse, text)


@FAST
@given(st.text(LANGUAGE_CHARS, max_size=60))
def test_language_like_text_raises_only_arg_error(text):
    for parse in (parse_expr, parse_rule, parse_pattern):
        _only_arg_errors(parse, text)


@st.composite
def mutated(draw, seeds):
    """A valid text with a few characters inserted, deleted or replaced, or words swapped."""
    text = draw(st.sampled_from(seeds))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "replace", "word"]))
        if action == "insert":
            text = text[:i] + draw(LANGUAGE_CHARS) + text[i:]
        elif action == "delete":
            text = text[:i] + text[i + 1:]
        elif action == "replace":
            text = text[:i] + draw(LANGUAGE_CHARS) + text[i + 1:]
        else:
            words = text.split(" ")
            words.insert(draw(st.integers(0, len(words))), draw(st.sampled_from(ipf._VOCABULARY)))
            text = " ".join(words)
    return text


@FAST
@given(mutated(SEED_RULES + ["allow " + v[0] for v in VALID]))
def test_mutated_rules_raise_only_arg_error(text):
    _only_arg_errors(parse_expr, text)
    _only_arg_errors(parse_rule, text)


@FAST
@given(mutated(["12/0800", "12/0806 20/0001", "!12/86dd%ffff 14/4?", "-"]))
def test_mutated_patterns_raise_only_arg_error(text):
    _only_arg_errors(parse_pattern, text)


PRIMITIVES = st.sampled_from([v[0] for v in VALID if v[0] not in ("-",)])


def _combine(children):
    return st.one_of(
        st.tuples(children, children).map(lambda p: f"{p[0]} and {p[1]}"),
        st.tuples(children, children).map(lambda p: f"{p[0]} || {p[1]}"),
        children.map(lambda c: f"not {c}"),
        children.map(lambda c: f"({c})"),
        st.tuples(children, children, children).map(lambda p: f"({p[0]} ? {p[1]} : {p[2]})"),
    )


@FAST
@given(st.recursive(PRIMITIVES, _combine, max_leaves=8))
def test_generated_expressions_round_trip_through_describe(text):
    expr = parse_expr(text)
    assert parse_expr(describe(expr)) == expr


@FAST
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 1500),
                          st.lists(st.tuples(st.integers(0, 255), st.integers(0, 255)),
                                   min_size=1, max_size=6)), min_size=1, max_size=4))
def test_generated_classifier_patterns(spec):
    text = " ".join(
        f"{'!' if neg else ''}{off}/{bytes(v for v, _ in vm).hex()}%{bytes(m for _, m in vm).hex()}"
        for neg, off, vm in spec)
    pattern = parse_pattern(text)
    for clause, (neg, off, vm) in zip(pattern.clauses, spec):
        assert clause == Clause(off, bytes(v & m for v, m in vm), bytes(m for _, m in vm), neg)
    assert parse_pattern(describe_pattern(pattern)) == pattern
