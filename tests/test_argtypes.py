"""Tests for nfv.argtypes: accepted forms, error messages and offsets, and fuzzing.

Expected values come from independent sources where there is one (the
ipaddress module, int(x, 16), struct-free byte arithmetic), not from the
parser under test.
"""
from __future__ import annotations

import ipaddress
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nfv import argtypes as A
from nfv.errors import ArgError


def fails(parse, text):
    """The ArgError a parser raises for text (fails the test if it returns)."""
    with pytest.raises(ArgError) as info:
        parse(text)
    return info.value


def check_error(parse, text, fragment, offset, hint_fragment=None):
    e = fails(parse, text)
    assert fragment in e.message, e.message
    assert e.offset == offset, (e.message, e.offset)
    if hint_fragment is not None:
        assert e.hint and hint_fragment in e.hint, e.hint
    return e


# -- integers ---------------------------------------------------------------------


@pytest.mark.parametrize("text,value", [
    ("0", 0), ("42", 42), ("-7", -7), ("+3", 3), ("0x2a", 0x2A), ("0X2A", 0x2A),
    ("-0x10", -16), ("00", 0), ("07", 7), ("  12  ", 12),
    ("9223372036854775807", 2 ** 63 - 1), ("-9223372036854775808", -(2 ** 63)),
])
def test_integer_valid(text, value):
    assert A.integer(text) == value


@pytest.mark.parametrize("text,fragment,offset", [
    ("1.5", "expected an integer, got '1.5'", 1),
    ("12a", "expected an integer", 2),
    ("abc", "expected an integer", 0),
    ("0x", "expected an integer", None),
    ("-", "expected an integer", None),
    ("", "expected an integer, got nothing", None),
    ("0xg1", "expected an integer", 2),
    ("9223372036854775808", "expected an integer", None),
    ("1" * 5000, "expected an integer", None),
    ("010", "ambiguous leading zero", 0),
    ("-0800", "ambiguous leading zero", 1),
    ("١٢", "expected an integer", 0),          # non-ASCII digits are not numbers here
])
def test_integer_invalid(text, fragment, offset):
    check_error(A.integer, text, fragment, offset)


def test_integer_offset_counts_leading_whitespace():
    check_error(A.integer, "  12a", "expected an integer", 4)


def test_leading_zero_hint_offers_both_readings():
    e = fails(A.integer, "0800")
    assert "800" in e.hint and "0x800" in e.hint


def test_unsigned():
    assert A.unsigned("0") == 0
    assert A.unsigned("0xffffffffffffffff") == 2 ** 64 - 1
    assert A.unsigned("+5") == 5
    check_error(A.unsigned, "-5", "expected a non-negative integer, got '-5'", None)
    check_error(A.unsigned, "0x1" + "0" * 16, "non-negative integer", None)


def test_uint_range():
    parse = A.uint_range(1, 10)
    assert parse("1") == 1 and parse("10") == 10 and parse("0xa") == 10
    check_error(parse, "11", "expected an integer from 1 to 10, got '11'", None, "1-10")
    check_error(parse, "0", "from 1 to 10", None)
    check_error(parse, "x", "from 1 to 10", 0)
    assert parse.__name__ == "uint_range_1_10"
    assert (parse.lo, parse.hi) == (1, 10)
    with pytest.raises(ValueError):
        A.uint_range(5, 1)


def test_count():
    assert A.count("0") == 0
    assert A.count("1000") == 1000
    assert A.count("-1") == -1
    check_error(A.count, "-2", "expected a count", None, "-1 for unlimited")
    check_error(A.count, "many", "expected a count", 0)


@pytest.mark.parametrize("text,value", [
    ("true", True), ("TRUE", True), ("yes", True), ("1", True), ("t", True), ("y", True),
    ("on", True), ("On", True),
    ("false", False), ("No", False), ("0", False), ("f", False), ("n", False), ("off", False),
])
def test_boolean_valid(text, value):
    assert A.boolean(text) is value


def test_boolean_invalid():
    check_error(A.boolean, "maybe", "expected true or false, got 'maybe'", None, "yes/no")
    check_error(A.boolean, "2", "expected true or false", None)
    check_error(A.boolean, "", "got nothing", None)


# -- numbers with units ---------------------------------------------------------------


@pytest.mark.parametrize("text,value", [
    ("1500", 1500), ("64B", 64), ("2kB", 2000), ("2KB", 2000), ("2k", 2000), ("2K", 2000),
    ("2KiB", 2048), ("2Ki", 2048), ("3MB", 3 * 10 ** 6), ("3MiB", 3 * 2 ** 20),
    ("1GB", 10 ** 9), ("1GiB", 2 ** 30), ("1TiB", 2 ** 40), ("1.5kB", 1500), ("64 B", 64),
    ("0", 0), ("0.5KiB", 512),
])
def test_byte_count_valid(text, value):
    result = A.byte_count(text)
    assert result == value and isinstance(result, int)


@pytest.mark.parametrize("text,fragment,offset,hint", [
    ("2kb", "unknown size unit 'kb'", 1, "write kB"),
    ("2b", "unknown size unit 'b'", 1, "bits"),
    ("2 zB", "unknown size unit 'zB'", 2, None),
    ("2mB", "unknown size unit", 1, "MB"),
    ("0.5B", "not a whole number of bytes", None, None),
    ("-1kB", "cannot be negative", 0, None),
    ("kB", "expected a byte count", 0, None),
    ("1e400B", "out of range", None, None),
    ("1e99999B", "out of range", 0, None),
    ("1e30", "out of range", None, None),
])
def test_byte_count_invalid(text, fragment, offset, hint):
    check_error(A.byte_count, text, fragment, offset, hint)


@pytest.mark.parametrize("text,value", [
    ("1", 1.0), ("1.5", 1.5), ("1.5s", 1.5), ("2sec", 2.0), ("100ms", 0.1), ("100msec", 0.1),
    ("10us", 10e-6), ("5ns", 5e-9), ("2min", 120.0), ("2m", 120.0), ("1h", 3600.0),
    ("1hr", 3600.0), ("1d", 86400.0), ("0", 0.0), (".5", 0.5), ("1e3ms", 1.0),
    ("250 ms", 0.25), ("1MS", 0.001),
])
def test_seconds_valid(text, value):
    assert A.seconds(text) == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize("text,fragment,offset", [
    ("-1s", "a time cannot be negative", 0),
    ("10 parsecs", "unknown time unit 'parsecs'", 3),
    ("ms", "expected a time", 0),
    ("1.2.3", "unknown time unit '.3'", 3),
    ("inf", "expected a time", 0),
    ("nan", "expected a time", 0),
    ("", "got nothing", None),
])
def test_seconds_invalid(text, fragment, offset):
    check_error(A.seconds, text, fragment, offset)


def test_seconds_unit_typo_suggests():
    e = fails(A.seconds, "5mins")
    assert "min" in e.hint


def test_rate():
    assert A.rate("1000") == 1000.0
    assert A.rate("2.5") == 2.5
    assert A.rate("1e6") == 1e6
    assert A.rate("100pps") == 100.0
    check_error(A.rate, "-3", "cannot be negative", 0)
    check_error(A.rate, "10Mbps", "unknown rate unit 'Mbps'", 2, "not a bandwidth")
    check_error(A.rate, "fast", "expected a packet rate, got 'fast'", 0)


@pytest.mark.parametrize("text,bits", [
    ("10Mbps", 10e6), ("1Gbps", 1e9), ("100kbps", 100e3), ("100Kbps", 100e3),
    ("1MBps", 8e6), ("1000", 8000.0), ("1.5Gbps", 1.5e9), ("56 kbps", 56e3),
    ("10Mb/s", 10e6), ("2MB/s", 16e6), ("9600baud", 9600.0), ("0", 0.0), ("1Tbps", 1e12),
])
def test_bandwidth_valid(text, bits):
    assert A.bandwidth(text) == pytest.approx(bits, rel=1e-12)


def test_bandwidth_invalid():
    e = check_error(A.bandwidth, "10mbps", "unknown bandwidth unit 'mbps'", 2, "Mbps")
    assert e.hint.index("Mbps") < e.hint.index("MBps")  # bits first
    check_error(A.bandwidth, "10 furlongs", "unknown bandwidth unit", 3)
    check_error(A.bandwidth, "-1Mbps", "cannot be negative", 0)
    check_error(A.bandwidth, "Mbps", "expected a bandwidth", 0)


# -- addresses --------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["10.0.0.1", "0.0.0.0", "255.255.255.255", "192.168.1.254"])
def test_ipv4_address_valid(text):
    assert A.ipv4_address(text) == ipaddress.IPv4Address(text)


def test_ipv4_address_leading_zeros_are_decimal():
    assert A.ipv4_address("010.001.000.009") == ipaddress.IPv4Address("10.1.0.9")


@pytest.mark.parametrize("text,offset", [
    ("10.0.0.256", 7),       # the bad number
    ("10.0.0", None),        # too few numbers: the whole thing
    ("10.0.0.1.5", 8),       # the extra dot
    ("10..0.1", 3),          # the empty number
    ("10.0.0.", 6),          # trailing dot
    ("10.0.x.1", 5),         # the bad character
    ("10.0.0.1/8", 8),
    ("1000.0.0.1", 0),
    ("", None),
])
def test_ipv4_address_invalid(text, offset):
    e = check_error(A.ipv4_address, text, "expected an IPv4 address", offset)
    assert e.hint


def test_ipv4_address_message_and_hint():
    e = fails(A.ipv4_address, "10.0.0.256")
    assert e.message == "expected an IPv4 address, got '10.0.0.256'"
    assert e.hint == "four numbers 0-255, e.g. 10.0.0.1"
    assert "IPv4" in fails(A.ipv4_address, "fe80::1").hint


@pytest.mark.parametrize("text,expected", [
    ("10.0.0.0/8", "10.0.0.0/8"),
    ("10.0.0.0/255.0.0.0", "10.0.0.0/8"),
    ("10.1.2.3/8", "10.0.0.0/8"),                 # host bits masked off
    ("10.1.2.3 255.255.0.0", "10.1.0.0/16"),      # ADDR MASK
    ("10.1.2.3 16", "10.1.0.0/16"),
    ("192.168.1.7", "192.168.1.7/32"),            # bare address
    ("0.0.0.0/0", "0.0.0.0/0"),
    ("1.2.3.4/0.0.0.0", "0.0.0.0/0"),
    ("1.2.3.4/32", "1.2.3.4/32"),
    ("10.0.0.0 / 8", "10.0.0.0/8"),
])
def test_ipv4_prefix_valid(text, expected):
    assert A.ipv4_prefix(text) == ipaddress.IPv4Network(expected)


@pytest.mark.parametrize("text,fragment,offset", [
    ("10.0.0.0/33", "expected a prefix length 0-32, got '33'", 9),
    ("10.0.0.0/x", "prefix length", 9),
    ("10.0.0.0/", "missing prefix length", 8),
    ("10.0.0.0/255.0.255.0", "netmask '255.0.255.0' is not contiguous", 9),
    ("10.0.0.0/255.0.0.256", "expected a netmask", 17),
    ("10.0.0.300/8", "expected an IPv4 prefix", 7),
    ("/8", "expected an IPv4 prefix", 0),
    ("10.0.0.0 255.0.0.0 extra", "expected a netmask", 18),
])
def test_ipv4_prefix_invalid(text, fragment, offset):
    check_error(A.ipv4_prefix, text, fragment, offset)


@pytest.mark.parametrize("text", [
    "00:11:22:33:44:55", "00-11-22-33-44-55", "0:1:2:3:4:5", "aa:BB:cc:DD:ee:FF",
])
def test_ether_address_valid(text):
    groups = text.replace("-", ":").split(":")
    assert A.ether_address(text) == bytes(int(g, 16) for g in groups)


@pytest.mark.parametrize("text,offset", [
    ("00:11:22:33:44", None),          # five bytes
    ("00:11:22:33:44:55:66", 18),      # seventh byte
    ("00:11-22:33:44:55", 5),          # mixed separators
    ("00:111:22:33:44:55", 5),         # three digits
    ("00:11::33:44:55", 6),            # empty group
    ("00:11:22:33:44:55:", 17),        # trailing separator
    ("00:11:2g:33:44:55", 7),          # not hex
    ("0011.2233.4455", 2),          # a third digit
    ("", None),
])
def test_ether_address_invalid(text, offset):
    e = check_error(A.ether_address, text, "expected an Ethernet address", offset)
    assert "00:11:22:33:44:55" in e.hint


# -- protocol numbers ----------------------------------------------------------------------


def test_ethertype():
    assert A.ethertype("0x0800") == int("0800", 16)
    assert A.ethertype("0x86DD") == int("86dd", 16)
    assert A.ethertype("2048") == 2048
    check_error(A.ethertype, "0x10000", "expected an ethertype", None, "0x0800")
    check_error(A.ethertype, "0800", "ambiguous leading zero", 0, "0x800")
    check_error(A.ethertype, "ip", "expected an ethertype", 0)


def test_port_number():
    assert A.port_number("0") == 0
    assert A.port_number("65535") == 65535
    assert A.port_number("0x50") == 80
    assert A.port_number("http") == 80
    assert A.port_number("HTTPS") == 443
    assert A.port_number("http-alt") == 8080
    check_error(A.port_number, "65536", "expected a port number, got '65536'", None)
    check_error(A.port_number, "-1", "expected a port number", None)
    check_error(A.port_number, "htp", "unknown service name 'htp'", None, "did you mean http?")
    check_error(A.port_number, "gopher", "unknown service name", None, "service name")
    check_error(A.port_number, "", "got nothing", None)


def test_services_table():
    expected = {"echo": 7, "ftp-data": 20, "ftp": 21, "ssh": 22, "telnet": 23, "smtp": 25,
                "domain": 53, "dns": 53, "bootps": 67, "bootpc": 68, "tftp": 69, "http": 80,
                "www": 80, "pop3": 110, "ntp": 123, "imap": 143, "snmp": 161,
                "snmptrap": 162, "bgp": 179, "ldap": 389, "https": 443, "syslog": 514,
                "submission": 587, "imaps": 993, "pop3s": 995, "openvpn": 1194,
                "mysql": 3306, "rdp": 3389, "postgresql": 5432, "http-alt": 8080}
    assert A.SERVICES == expected
    for name, port in expected.items():
        assert A.port_number(name) == port


@pytest.mark.parametrize("text,value", [
    ("80", (80, 80)), ("http", (80, 80)), ("1024-65535", (1024, 65535)),
    ("ftp-data", (20, 20)), ("ftp-data-ftp", (20, 21)), ("ssh-http-alt", (22, 8080)),
    ("1024 - 2048", (1024, 2048)), ("0-0", (0, 0)),
])
def test_port_range_valid(text, value):
    assert A.port_range(text) == value


@pytest.mark.parametrize("text,fragment,offset", [
    ("2000-1000", "port range '2000-1000' is backwards", 5),
    ("1024-70000", "expected a port number, got '70000'", 5),
    ("1024-htp", "unknown service name 'htp'", 5),
    ("htp-80", "unknown service name 'htp'", 0),
    ("1024-", "has no upper end", 4),
    ("-5", "expected a port number", None),
    ("1024 - x", "unknown service name", 7),
])
def test_port_range_invalid(text, fragment, offset):
    check_error(A.port_range, text, fragment, offset)


def test_color():
    assert A.color("0") == 0 and A.color("255") == 255 and A.color("0xff") == 255
    check_error(A.color, "256", "expected a paint color, got '256'", None, "0-255")
    check_error(A.color, "red", "expected a paint color", 0)


def test_annotation():
    assert A.ANNOTATIONS["PAINT"] == 0
    for name, offset in A.ANNOTATIONS.items():
        assert A.annotation(name) == offset
        assert A.annotation(name.lower()) == offset
    assert A.annotation("0") == 0 and A.annotation("47") == 47
    check_error(A.annotation, "48", "expected an annotation offset", None, "0-47")
    check_error(A.annotation, "PIANT", "unknown annotation 'PIANT'", None, "PAINT")
    check_error(A.annotation, "", "got nothing", None)


# -- strings --------------------------------------------------------------------------------


@pytest.mark.parametrize("text,value", [
    ("hello", "hello"),
    ('"hello world"', "hello world"),
    ("'it''s'", "its"),
    ('"a"b\'c\'', "abc"),
    (r'"a\tb\nc"', "a\tb\nc"),
    (r'"q\"uote\\"', 'q"uote\\'),
    (r'"\x41\x4a"', "AJ"),
    (r'"\x4"', "\x04"),
    (r'"\x414"', "A4"),            # at most two hex digits
    (r'"\101\0"', "A\0"),           # octal
    (r'"\1234"', "S4"),             # at most three octal digits
    (r"'\n'", "\\n"),               # single quotes are literal
    (r"a\nb", "a\\nb"),             # so is bare text
    (r'"\q"', "q"),                 # unknown escape: the character itself
    ('"a\\\nb"', "ab"),             # backslash-newline continues the line
    (r'"\<41 42>"', "AB"),
    (r"\<41>x", "Ax"),              # \<...> also works outside quotes (Click's cp_unquote)
    ('""', ""),
    ("", ""),
    ("hello world", "hello world"),  # unquoted spaces are kept
])
def test_string_valid(text, value):
    assert A.string(text) == value


@pytest.mark.parametrize("text,fragment,offset", [
    ('"abc', "unterminated double quote", 0),
    ("ab'cd", "unterminated single quote", 2),
    ('x "a\\"', "unterminated double quote", 2),
    (r'"\x"', "\\x escape without hex digits", 1),
    (r'"\777"', "octal escape", 1),
    (r'"\<41"', "unterminated \\<...> hex block", 1),
])
def test_string_invalid(text, fragment, offset):
    check_error(A.string, text, fragment, offset)


def test_word():
    assert A.word("eth0") == "eth0"
    assert A.word("'eth0'") == "eth0"
    assert A.word('"eth"0') == "eth0"
    check_error(A.word, "eth 0", "expected a single word, got 'eth 0'", 3)
    check_error(A.word, "'a b'", "expected a single word", 2)
    check_error(A.word, '""', "empty string", None)
    check_error(A.word, "", "expected a word, got nothing", None)
    check_error(A.word, '"eth0', "unterminated double quote", 0)


@pytest.mark.parametrize("text,value", [
    (r'"\<00 11 2233>"', bytes.fromhex("00112233")),
    (r'"\<DEADbeef>"', bytes.fromhex("deadbeef")),
    (r'"GET / HTTP/1.0\r\n"', b"GET / HTTP/1.0\r\n"),
    (r'"ab\<0d0a>cd"', b"ab\r\ncd"),
    (r'"\<00 /* pad */ 01>"', b"\x00\x01"),
    ('"\\<0a // comment\n 0b>"', b"\n\x0b"),
    ("plain", b"plain"),
    ("'caf\u00e9'", "caf\u00e9".encode("latin-1")),
    (r'"\xff\377"', b"\xff\xff"),
    ("", b""),
])
def test_data_valid(text, value):
    assert A.data(text) == value


@pytest.mark.parametrize("text,fragment,offset", [
    (r'"\<001>"', "odd number of hex digits", 5),
    (r'"\<00 1>"', "odd number of hex digits", 6),
    (r'"\<0g>"', "unexpected 'g'", 4),
    (r'"\<00', "unterminated \\<...> hex block", 1),
    (r'"\<00 /* x>"', "unterminated comment", 6),
    ("'\u20ac'", "does not fit in a byte", 1),
    ('"abc', "unterminated double quote", 0),
])
def test_data_invalid(text, fragment, offset):
    check_error(A.data, text, fragment, offset)


# -- properties -------------------------------------------------------------------------------

PARSERS = [
    A.integer, A.unsigned, A.uint_range(1, 10), A.boolean, A.count, A.byte_count,
    A.seconds, A.rate, A.bandwidth, A.ipv4_address, A.ipv4_prefix, A.ether_address,
    A.ethertype, A.port_number, A.port_range, A.color, A.annotation, A.string, A.word, A.data,
]

# Characters that reach the parsers' deeper paths (numbers, units, separators, quotes).
_INTERESTING = st.text(alphabet="0123456789abcdefxABCDEFkKMGTiBbps/.:- \t\"'\\<>*ne+\u20ac",
                       max_size=30)


def _check_only_argerror(parse, text):
    try:
        parse(text)
    except ArgError as e:
        assert isinstance(e.message, str) and e.message
        assert e.message[0] == e.message[0].lower() or not e.message[0].isalpha()
        assert e.hint is None or (isinstance(e.hint, str) and e.hint)
        # the offset, when given, names a character of the text
        assert e.offset is None or 0 <= e.offset < len(text), (text, e.offset)


@pytest.mark.parametrize("parse", PARSERS, ids=lambda p: p.__name__)
@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=40))
def test_any_text_raises_only_argerror(parse, text):
    _check_only_argerror(parse, text)


@pytest.mark.parametrize("parse", PARSERS, ids=lambda p: p.__name__)
@settings(max_examples=60, deadline=None)
@given(text=_INTERESTING)
def test_near_miss_text_raises_only_argerror(parse, text):
    _check_only_argerror(parse, text)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2 ** 32 - 1), st.integers(0, 32), st.booleans())
def test_prefix_matches_ipaddress(addr, length, dotted):
    net = ipaddress.IPv4Network((addr, length), strict=False)
    mask = str(net.netmask) if dotted else str(length)
    assert A.ipv4_prefix(f"{ipaddress.IPv4Address(addr)}/{mask}") == net
    assert A.ipv4_address(str(ipaddress.IPv4Address(addr))) == ipaddress.IPv4Address(addr)


@settings(max_examples=100, deadline=None)
@given(st.integers(-(2 ** 63), 2 ** 63 - 1))
def test_integer_roundtrip(n):
    assert A.integer(str(n)) == n
    assert A.integer(("-" if n < 0 else "") + hex(abs(n))) == n


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=20))
def test_data_hex_block_roundtrip(raw):
    assert A.data('"\\<' + raw.hex() + '>"') == raw
    octal = "".join(f"\\{b:03o}" for b in raw)
    assert A.data(f'"{octal}"') == raw


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=20))
def test_single_quotes_keep_text_verbatim(text):
    if "'" not in text:
        assert A.string(f"'{text}'") == text
        if all(ord(c) < 256 for c in text):
            assert A.data(f"'{text}'") == text.encode("latin-1")


@settings(max_examples=100, deadline=None)
@given(st.floats(0, 1e9, allow_nan=False))
def test_seconds_plain_number_matches_float(x):
    assert math.isclose(A.seconds(repr(x)), x, rel_tol=1e-12, abs_tol=0)
