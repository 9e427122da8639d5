"""Value parsers for element arguments, modelled on Click's `Args` argument types.

Each public parser takes the text of ONE configuration argument and returns
its value, or raises `ArgError(message, offset, hint)`:

    message  short, lower case, for a network engineer:
             "expected an IPv4 address, got '10.0.0.256'"
    offset   index into the given text of the offending character (None: the
             whole argument); the caller turns it into a line and column.
    hint     what a valid value looks like.

No parser raises anything else, whatever the input.  Surrounding whitespace is
ignored (offsets still count from the start of the text as given).

Where nfv differs from Click it is on purpose, to turn a silent surprise into
an error: an integer with a leading zero (`010`, octal in Click) is refused
unless it means the same in octal and decimal, and an unterminated quote or an
odd-length `\\<hex>` block is an error instead of being patched up.
"""
from __future__ import annotations

import difflib
import functools
import ipaddress
import re
from fractions import Fraction
from typing import Callable, TypeVar

from nfv.errors import ArgError

__all__ = [
    "ANNOTATIONS", "ANNOTATION_BYTES", "SERVICES",
    "integer", "unsigned", "uint_range", "boolean", "count",
    "byte_count", "seconds", "rate", "bandwidth",
    "ipv4_address", "ipv4_prefix", "ether_address", "ethertype",
    "port_number", "port_range", "color", "annotation",
    "string", "word", "data",
]

T = TypeVar("T")

# Well-known service names accepted wherever a port number is (IPFilter, IPRewriter...).
SERVICES: dict[str, int] = {
    "echo": 7, "ftp-data": 20, "ftp": 21, "ssh": 22, "telnet": 23, "smtp": 25,
    "domain": 53, "dns": 53, "bootps": 67, "bootpc": 68, "tftp": 69,
    "http": 80, "www": 80, "pop3": 110, "ntp": 123, "imap": 143, "snmp": 161,
    "snmptrap": 162, "bgp": 179, "ldap": 389, "https": 443, "syslog": 514,
    "submission": 587, "imaps": 993, "pop3s": 995, "openvpn": 1194,
    "mysql": 3306, "rdp": 3389, "postgresql": 5432, "http-alt": 8080,
}

# Packet annotation names and their byte offsets in nfv's annotation area
# (Click's user annotation layout: PAINT first, then small flags, then words).
ANNOTATIONS: dict[str, int] = {
    "PAINT": 0, "PAINT2": 1, "ICMP_PARAMPROB": 2, "FIX_IP_SRC": 3,
    "AGGREGATE": 4, "DST_IP": 8, "FLOW_ID": 12,
}
ANNOTATION_BYTES = 48  # size of the annotation area; offsets are 0..47

_INT64_MIN, _INT64_MAX, _UINT64_MAX = -(2 ** 63), 2 ** 63 - 1, 2 ** 64 - 1
_MAX_DIGITS = 40          # longer integers are out of range for every parser here
_MAX_NUMBER_CHARS = 100   # a real number literal longer than this is not a config value
_MAX_EXPONENT = 400       # keeps Fraction arithmetic small (covers float denormals)
_MAX_REAL = Fraction(10) ** 300

_DEC_DIGITS = frozenset("0123456789")
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_OCT_DIGITS = frozenset("01234567")


# -- shared helpers -----------------------------------------------------------------


def _show(text: str) -> str:
    """The text as quoted in a message (shortened: messages stay one line)."""
    if not text:
        return "nothing"
    if len(text) > 40:
        text = text[:37] + "..."
    return repr(text)


def _expected(what: str, text: str, offset: int | None = None,
              hint: str | None = None) -> ArgError:
    """The standard `expected X, got 'Y'` error (no offset for empty text)."""
    return ArgError(f"expected {what}, got {_show(text)}", offset if text else None, hint)


def _parser(func: Callable[[str], T]) -> Callable[[str], T]:
    """Make `func` a public parser: it sees stripped text; offsets count in the original."""

    @functools.wraps(func)
    def parse(text: str) -> T:
        if not isinstance(text, str):
            raise ArgError(f"expected text, got a {type(text).__name__}")
        lead = len(text) - len(text.lstrip())
        try:
            return func(text.strip())
        except ArgError as e:
            if e.offset is not None:
                e.offset += lead
            raise

    return parse


def _at(parse: Callable[[str], T], text: str, start: int, end: int | None = None) -> T:
    """Run a parser on text[start:end], with error offsets counted in `text`.

    An error about the whole piece points at the piece's first character, so
    `1024-htp` is reported at `htp`, not at the start of the argument.
    """
    piece = text[start:end]
    try:
        return parse(piece)
    except ArgError as e:
        if e.offset is not None:
            e.offset += start
        elif piece.strip():
            e.offset = start + len(piece) - len(piece.lstrip())
        raise


def _suggest(name: str, choices, fallback: str) -> str:
    """A 'did you mean' hint for a misspelt name, else `fallback`."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]}?" if close else fallback


# -- integers -----------------------------------------------------------------------


def _read_int(text: str, what: str, hint: str, lo: int, hi: int) -> int:
    """Parse `[+-]digits` or `[+-]0xHEX` in [lo, hi], the whole text.

    Errors say "expected <what>, got ..." and point at the first bad
    character; a value out of range points at the number itself.
    """
    if not text:
        raise _expected(what, text, None, hint)
    i = 1 if text[0] in "+-" else 0
    if text[i:i + 2] in ("0x", "0X"):
        first, allowed, base = i + 2, _HEX_DIGITS, 16
    else:
        first, allowed, base = i, _DEC_DIGITS, 10
    j = first
    while j < len(text) and text[j] in allowed:
        j += 1
    if j < len(text):
        raise _expected(what, text, j, hint)
    digits = text[first:]
    if not digits:
        raise _expected(what, text, None, hint)
    significant = digits.lstrip("0") or "0"
    if len(significant) > _MAX_DIGITS:
        raise _expected(what, text, None, hint)
    value = int(significant, base)
    if base == 10 and len(digits) > 1 and digits[0] == "0" and value >= 8:
        # Click reads a leading 0 as octal; rather than guess which one the
        # user meant, refuse (the two readings agree only below 8).
        raise ArgError(f"ambiguous leading zero in {_show(text)}", first,
                       f"a leading 0 means octal in Click; write {value} "
                       f"for decimal or 0x{significant} for hex")
    if text[0] == "-":
        value = -value
    if not lo <= value <= hi:
        raise _expected(what, text, None, hint)
    return value


@_parser
def integer(text: str) -> int:
    """A signed 64-bit integer: `42`, `-7`, `+3`, `0x2a` (hex), `0`.

    A leading zero (`010`) is refused unless the value is below 8, because
    Click would read it as octal.  Example: integer("0x10") == 16.
    """
    return _read_int(text, "an integer", "a whole number, e.g. 42, -7 or 0x2a",
                     _INT64_MIN, _INT64_MAX)


@_parser
def unsigned(text: str) -> int:
    """An unsigned 64-bit integer: `42`, `0x2a`, `0`.  Example: unsigned("1500") == 1500."""
    return _read_int(text, "a non-negative integer", "a whole number >= 0, e.g. 42 or 0x2a",
                     0, _UINT64_MAX)


def uint_range(lo: int, hi: int) -> Callable[[str], int]:
    """A parser for unsigned integers in [lo, hi]: uint_range(1, 10)("7") == 7.

    The error names the range: "expected an integer from 1 to 10, got '11'".
    """
    if not 0 <= lo <= hi:
        raise ValueError(f"uint_range({lo}, {hi}): need 0 <= lo <= hi")
    what = f"an integer from {lo} to {hi}"

    @_parser
    def parse(text: str) -> int:
        return _read_int(text, what, f"a whole number {lo}-{hi}", lo, hi)

    parse.__name__ = parse.__qualname__ = f"uint_range_{lo}_{hi}"
    parse.__doc__ = f"An unsigned integer from {lo} to {hi} (decimal or 0x hex)."
    parse.lo, parse.hi = lo, hi  # type: ignore[attr-defined]  (for docs and checks)
    return parse


@_parser
def count(text: str) -> int:
    """A count for LIMIT/BURST-style arguments: an unsigned integer, or `-1` for unlimited.

    Example: count("100") == 100, count("-1") == -1.
    """
    return _read_int(text, "a count", "a whole number >= 0, or -1 for unlimited", -1, _INT64_MAX)


_TRUE = frozenset({"true", "yes", "1", "t", "y", "on"})
_FALSE = frozenset({"false", "no", "0", "f", "n", "off"})


@_parser
def boolean(text: str) -> bool:
    """true/false, yes/no, 1/0, t/f, y/n (Click's BoolArg), also on/off; any case.

    Example: boolean("Yes") is True.
    """
    word_ = text.lower()
    if word_ in _TRUE:
        return True
    if word_ in _FALSE:
        return False
    raise _expected("true or false", text, None, "true/false, yes/no, 1/0 or on/off")


# -- real numbers with units ---------------------------------------------------------

_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE]([+-]?[0-9]+))?", re.ASCII)


def _read_number(text: str, what: str, hint: str) -> tuple[Fraction, str, int]:
    """Split `<number><optional spaces><unit>` into (exact value, unit, unit offset).

    The number is decimal with an optional fraction and exponent (`1.5`, `1e6`);
    the value is exact, so `1.5kB` is exactly 1500 bytes.
    """
    m = _NUMBER.match(text)
    if not m:
        raise _expected(what, text, 0, hint)
    literal = m.group(0)
    if len(literal) > _MAX_NUMBER_CHARS or (
            m.group(1) and (len(m.group(1)) > 5 or abs(int(m.group(1))) > _MAX_EXPONENT)):
        raise ArgError(f"number out of range in {_show(text)}", 0, hint)
    rest = text[m.end():]
    unit = rest.lstrip()
    return Fraction(literal), unit, m.end() + len(rest) - len(unit)


def _nonnegative(value: Fraction, noun: str, text: str, hint: str) -> None:
    if value < 0:
        raise ArgError(f"{noun} cannot be negative, got {_show(text)}", 0, hint)


def _finite(value: Fraction, text: str, hint: str) -> float:
    """The value as a float, refusing magnitudes a float cannot hold."""
    if abs(value) > _MAX_REAL:
        raise ArgError(f"number out of range in {_show(text)}", 0, hint)
    return float(value)


# unit -> seconds; Click's SecondsArg units, looked up in lower case.
_TIME_UNITS: dict[str, Fraction] = {
    "": Fraction(1), "s": Fraction(1), "sec": Fraction(1),
    "ms": Fraction(1, 10 ** 3), "msec": Fraction(1, 10 ** 3),
    "us": Fraction(1, 10 ** 6), "usec": Fraction(1, 10 ** 6),
    "ns": Fraction(1, 10 ** 9), "nsec": Fraction(1, 10 ** 9),
    "m": Fraction(60), "min": Fraction(60),
    "h": Fraction(3600), "hr": Fraction(3600),
    "d": Fraction(86400), "day": Fraction(86400),
}


@_parser
def seconds(text: str) -> float:
    """A time in seconds, >= 0: `1`, `1.5`, `1.5s`, `100ms`, `10us`, `5ns`, `2min`, `1h`, `1d`.

    As in Click, a bare `m` means minutes.  Example: seconds("100ms") == 0.1.
    """
    hint = "a number with an optional unit s, ms, us, ns, min, h or d, e.g. 1.5s or 100ms"
    value, unit, at = _read_number(text, "a time", hint)
    factor = _TIME_UNITS.get(unit.lower())
    if factor is None:
        raise ArgError(f"unknown time unit {_show(unit)}", at,
                       _suggest(unit.lower(), [u for u in _TIME_UNITS if u], hint))
    _nonnegative(value, "a time", text, hint)
    return _finite(value * factor, text, hint)


@_parser
def rate(text: str) -> float:
    """A packet rate in packets per second, >= 0: `1000`, `2.5`, `1e6`, `1000pps`.

    Example: rate("1e3") == 1000.0.
    """
    hint = "packets per second, e.g. 1000"
    value, unit, at = _read_number(text, "a packet rate", hint)
    if unit not in ("", "pps"):
        why = ("this is a packet rate, not a bandwidth; " if unit.lower().endswith(("bps", "b/s"))
               else "")
        raise ArgError(f"unknown rate unit {_show(unit)}", at, why + hint)
    _nonnegative(value, "a rate", text, hint)
    return _finite(value, text, hint)


# Click's BandwidthArg: bit units count 1/8 byte; a bare number is bytes per second.
_BW_UNITS = {"bps": 1, "b/s": 1, "baud": 1, "Bps": 8, "B/s": 8}
_DECIMAL_PREFIXES = {"": 1, "k": 10 ** 3, "K": 10 ** 3, "M": 10 ** 6, "G": 10 ** 9, "T": 10 ** 12}
_BW_TABLE = {p + u: bits * scale for u, bits in _BW_UNITS.items()
             for p, scale in _DECIMAL_PREFIXES.items()}


def _case_hint(unit: str, table, fallback: str) -> str:
    """Hint for a unit that is only wrong in case (`mbps`), else a spelling hint."""
    same = [u for u in table if u.lower() == unit.lower()]
    if same:
        same.sort(key=str.swapcase)  # bits (lower-case b) before bytes
        return f"units are case-sensitive: did you mean {' or '.join(same)}?"
    return _suggest(unit, [u for u in table if u], fallback)


@_parser
def bandwidth(text: str) -> float:
    """A bandwidth, returned in BITS per second.

    Units as in Click's BandwidthArg: `bps`, `b/s`, `baud` (bits) and `Bps`,
    `B/s` (bytes), with prefixes k/K (1000), M, G, T; a bare number is BYTES per
    second, as in Click.  Examples: bandwidth("10Mbps") == 10e6,
    bandwidth("1MBps") == 8e6, bandwidth("1000") == 8000.0.
    """
    hint = "a number with a unit, e.g. 10Mbps, 1Gbps or 100kbps (MBps = megabytes/s)"
    value, unit, at = _read_number(text, "a bandwidth", hint)
    if unit == "":
        bits = 8  # bare number: bytes per second, as in Click
    elif unit in _BW_TABLE:
        bits = _BW_TABLE[unit]
    else:
        raise ArgError(f"unknown bandwidth unit {_show(unit)}", at,
                       _case_hint(unit, _BW_TABLE, hint))
    _nonnegative(value, "a bandwidth", text, hint)
    return _finite(value * bits, text, hint)


_BINARY_PREFIXES = {"Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40}
_BYTE_TABLE = {p + b: scale
               for p, scale in {**_DECIMAL_PREFIXES, **_BINARY_PREFIXES}.items()
               for b in ("", "B")}


@_parser
def byte_count(text: str) -> int:
    """A number of bytes: `1500`, `64B`, `2k`/`2kB`/`2KB` (x1000), `2KiB` (x1024),
    `MB`/`MiB`, `GB`/`GiB`, `TB`/`TiB`; fractions allowed if the result is whole.

    Example: byte_count("1.5kB") == 1500, byte_count("2KiB") == 2048.
    """
    hint = "a number of bytes, e.g. 1500, 64B, 2kB or 4KiB"
    value, unit, at = _read_number(text, "a byte count", hint)
    scale = _BYTE_TABLE.get(unit)
    if scale is None:
        if unit.endswith("b") and unit[:-1] + "B" in _BYTE_TABLE:
            hint = f"lower-case b means bits; write {unit[:-1]}B for bytes"
        else:
            hint = _case_hint(unit, _BYTE_TABLE, hint)
        raise ArgError(f"unknown size unit {_show(unit)}", at, hint)
    _nonnegative(value, "a byte count", text, hint)
    total = value * scale
    if total.denominator != 1:
        raise ArgError(f"{_show(text)} is not a whole number of bytes", None, hint)
    if total > _INT64_MAX:
        raise ArgError(f"byte count out of range: {_show(text)}", None, hint)
    return int(total)


# -- addresses ------------------------------------------------------------------------


def _quad(text: str, fail: Callable[[int | None], ArgError]) -> int:
    """A dotted quad `a.b.c.d` (each 0-255, decimal) as a 32-bit integer.

    `fail(offset)` builds the caller's error, so a prefix or a mask reports
    itself rather than "an IPv4 address".
    """
    if not text:
        raise fail(None)
    value, start = 0, 0
    parts = text.split(".")
    for n, part in enumerate(parts):
        if n == 4:
            raise fail(start - 1)  # at the fifth number's dot
        if not part:
            raise fail(min(start, len(text) - 1))
        for k, ch in enumerate(part):
            if ch not in _DEC_DIGITS:
                raise fail(start + k)
        octet = int(part.lstrip("0")[:4] or "0")  # 4 significant digits already exceed 255
        if octet > 255:
            raise fail(start)
        value = value << 8 | octet
        start += len(part) + 1
    if len(parts) < 4:
        raise fail(None)
    return value


_IPV4_HINT = "four numbers 0-255, e.g. 10.0.0.1"


@_parser
def ipv4_address(text: str) -> ipaddress.IPv4Address:
    """An IPv4 address as a dotted quad: `10.0.0.1` (all four numbers required).

    Example: ipv4_address("192.168.1.1") == IPv4Address("192.168.1.1").
    """
    hint = _IPV4_HINT
    if ":" in text:
        hint = "only IPv4 addresses are accepted here, e.g. 10.0.0.1"
    return ipaddress.IPv4Address(_quad(text, lambda at: _expected("an IPv4 address", text, at, hint)))


def _mask_length(mask: int) -> int | None:
    """The prefix length of a netmask, or None if its one bits are not contiguous."""
    inverse = mask ^ 0xFFFFFFFF
    if inverse & (inverse + 1):
        return None
    return 32 - inverse.bit_length()


_PREFIX_HINT = "address/length or address/mask, e.g. 10.0.0.0/8 or 10.0.0.0/255.0.0.0"


def _prefix_length(text: str, start: int, whole: str) -> int:
    """The part after the `/` (or space): a length 0-32 or a dotted netmask."""
    piece = text[start:].strip()
    at = start + len(text[start:]) - len(text[start:].lstrip())
    if not piece:
        raise ArgError(f"missing prefix length in {_show(whole)}", start - 1, _PREFIX_HINT)
    if "." in piece:
        mask = _quad(piece, lambda k: _expected("a netmask", whole,
                                                at if k is None else at + k, _PREFIX_HINT))
        length = _mask_length(mask)
        if length is None:
            raise ArgError(f"netmask {_show(piece)} is not contiguous", at,
                           "a netmask is ones then zeros, e.g. 255.255.255.0 (= /24)")
        return length
    if not all(ch in _DEC_DIGITS for ch in piece) or len(piece) > 3 or int(piece) > 32:
        raise ArgError(f"expected a prefix length 0-32, got {_show(piece)}", at, _PREFIX_HINT)
    return int(piece)


@_parser
def ipv4_prefix(text: str) -> ipaddress.IPv4Network:
    """An IPv4 prefix: `10.0.0.0/8`, `10.0.0.0/255.0.0.0`, `10.0.0.0 255.0.0.0`,
    or a bare address meaning /32.

    Host bits are masked off as Click does for routes (`10.1.2.3/8` is
    10.0.0.0/8).  The mask must be contiguous.
    Example: ipv4_prefix("10.1.2.3/8") == IPv4Network("10.0.0.0/8").
    """
    slash = text.find("/")
    space = next((i for i, ch in enumerate(text) if ch.isspace()), -1)
    cut = slash if slash >= 0 else space
    addr_text = text if cut < 0 else text[:cut].rstrip()
    if not addr_text:
        raise _expected("an IPv4 prefix", text, 0 if text else None, _PREFIX_HINT)
    addr = _quad(addr_text, lambda at: _expected("an IPv4 prefix", text, at, _PREFIX_HINT))
    length = 32 if cut < 0 else _prefix_length(text, cut + 1, text)
    return ipaddress.IPv4Network((addr, length), strict=False)


_ETHER_HINT = "six hex bytes, e.g. 00:11:22:33:44:55"


@_parser
def ether_address(text: str) -> bytes:
    """An Ethernet address (6 bytes): `00:11:22:33:44:55`, `00-11-22-33-44-55`,
    `0:1:2:3:4:5` (one-digit groups).  One kind of separator throughout.

    Example: ether_address("0:1:2:3:4:ff") == bytes([0, 1, 2, 3, 4, 255]).
    """
    def fail(at: int | None) -> ArgError:
        return _expected("an Ethernet address", text, at, _ETHER_HINT)

    if not text:
        raise fail(None)
    groups: list[tuple[int, int]] = []   # (start, end) of each hex group
    sep, start = None, 0
    for i, ch in enumerate(text + ":"):
        if i < len(text) and ch in _HEX_DIGITS:
            if i - start == 2:
                raise fail(i)  # a third digit in one group
            continue
        if i < len(text) and (ch not in ":-" or (sep is not None and ch != sep)):
            raise fail(i)
        if i == start:
            raise fail(min(i, len(text) - 1))  # empty group
        if len(groups) == 6:
            raise fail(start)
        groups.append((start, i))
        if i < len(text):
            sep = ch
        start = i + 1
    if len(groups) != 6:
        raise fail(None)
    return bytes(int(text[a:b], 16) for a, b in groups)


# -- protocol numbers ------------------------------------------------------------------


@_parser
def ethertype(text: str) -> int:
    """A 16-bit Ethernet type, usually hex: `0x0800`, `0x86dd`; decimal `2048` also works."""
    return _read_int(text, "an ethertype", "a 16-bit number, e.g. 0x0800 (IPv4) or 0x86dd (IPv6)",
                     0, 0xFFFF)


_PORT_HINT = "a number 0-65535 or a service name like http, ssh or dns"


@_parser
def port_number(text: str) -> int:
    """A TCP/UDP port: `0`..`65535`, or a service name from SERVICES (`http`, `ssh`, ...).

    Names are case-insensitive.  Example: port_number("https") == 443.
    """
    if text[:1] and (text[0] in _DEC_DIGITS or text[0] in "+-"):
        return _read_int(text, "a port number", _PORT_HINT, 0, 0xFFFF)
    name = text.lower()
    if name in SERVICES:
        return SERVICES[name]
    if not text:
        raise _expected("a port number", text, None, _PORT_HINT)
    raise ArgError(f"unknown service name {_show(text)}", None,
                   _suggest(name, SERVICES, _PORT_HINT))


@_parser
def port_range(text: str) -> tuple[int, int]:
    """A port or an inclusive port range: `80`, `http`, `1024-65535`, `ftp-data-ftp`.

    Returns (lo, hi) with lo <= hi.  Example: port_range("1024-65535") == (1024, 65535).
    """
    if text.lower() in SERVICES or "-" not in text[1:]:
        port = port_number(text)
        return port, port
    # Service names contain dashes (ftp-data, http-alt): split at the first dash
    # where both sides are ports.  If none works, report the most telling error:
    # a bad upper end after a good lower end, else the bad lower end.
    upper_error = lower_error = None
    for dash in (i for i, ch in enumerate(text) if ch == "-" and i > 0):
        try:
            lo = _at(port_number, text, 0, dash)
        except ArgError as e:
            lower_error = lower_error or e
            continue
        if not text[dash + 1:].strip():
            upper_error = upper_error or ArgError(
                f"port range {_show(text)} has no upper end", dash, "e.g. 1024-65535")
            continue
        try:
            hi = _at(port_number, text, dash + 1)
        except ArgError as e:
            upper_error = upper_error or e
            continue
        if lo > hi:
            raise ArgError(f"port range {_show(text)} is backwards", dash + 1,
                           f"write the low port first: {hi}-{lo}")
        return lo, hi
    error = upper_error or lower_error
    assert error is not None  # text has a dash past its first character
    raise error


@_parser
def color(text: str) -> int:
    """A paint color (Paint, PaintSwitch): an integer 0..255.  Example: color("3") == 3."""
    return _read_int(text, "a paint color", "a number 0-255", 0, 255)


@_parser
def annotation(text: str) -> int:
    """A packet annotation: a name from ANNOTATIONS (`PAINT`, `DST_IP`, ...; any case)
    or a byte offset 0..47.  Returns the byte offset.  Example: annotation("DST_IP") == 8.
    """
    hint = f"a name like PAINT or DST_IP, or a byte offset 0-{ANNOTATION_BYTES - 1}"
    if text[:1] and (text[0] in _DEC_DIGITS or text[0] in "+-"):
        return _read_int(text, "an annotation offset", hint, 0, ANNOTATION_BYTES - 1)
    name = text.upper()
    if name in ANNOTATIONS:
        return ANNOTATIONS[name]
    if not text:
        raise _expected("an annotation", text, None, hint)
    raise ArgError(f"unknown annotation {_show(text)}", None, _suggest(name, ANNOTATIONS, hint))


# -- strings ---------------------------------------------------------------------------

# C escapes understood inside double quotes, as in Click's cp_process_backslash.
_C_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


class _Unquoted:
    """Output of unquoting: characters, each with the offset of the source text it came from."""

    def __init__(self) -> None:
        self.chars: list[str] = []
        self.origin: list[int] = []

    def add(self, ch: str, at: int) -> None:
        self.chars.append(ch)
        self.origin.append(at)

    def text(self) -> str:
        return "".join(self.chars)


def _skip_comment(text: str, i: int) -> int:
    """Skip a `/* */` or `//` comment at i inside a hex block; return the index after it."""
    if text.startswith("//", i):
        end = text.find("\n", i)
        return len(text) if end < 0 else end + 1
    end = text.find("*/", i + 2)
    if end < 0:
        raise ArgError("unterminated comment in \\<...> hex block", i, "close it with */")
    return end + 2


def _hex_block(text: str, i: int, out: _Unquoted) -> int:
    """Expand `\\<hex digits>` starting at i (the backslash); return the index after `>`.

    Spaces and comments between digits are ignored (`\\<00 11 2233>`); digits
    pair up into bytes, so an odd count is an error at the unpaired digit.
    """
    digits: list[int] = []  # offsets of the hex digits
    j = i + 2
    while True:
        # a quote here ends the string before the block: the > is missing
        if j >= len(text) or text[j] == '"':
            raise ArgError("unterminated \\<...> hex block", i, "close it with >, e.g. \\<00 ff>")
        ch = text[j]
        if ch == ">":
            break
        if ch in _HEX_DIGITS:
            digits.append(j)
            j += 1
        elif ch.isspace():
            j += 1
        elif text.startswith(("/*", "//"), j):
            j = _skip_comment(text, j)
        else:
            raise ArgError(f"unexpected {ch!r} in \\<...> hex block", j,
                           "only hex digits and spaces, e.g. \\<0a 0b ff>")
    if len(digits) % 2:
        raise ArgError("odd number of hex digits in \\<...> hex block", digits[-1],
                       "each byte needs two hex digits, e.g. \\<0a>")
    for a, b in zip(digits[::2], digits[1::2]):
        out.add(chr(int(text[a] + text[b], 16)), a)
    return j + 1


def _escape(text: str, i: int, out: _Unquoted) -> int:
    """Expand the backslash escape at i inside double quotes; return the index after it."""
    if i + 1 >= len(text):
        out.add("\\", i)
        return i + 1
    ch = text[i + 1]
    if ch == "\n":               # line continuation
        return i + 2
    if ch == "\r":
        return i + 3 if text.startswith("\n", i + 2) else i + 2
    if ch in _C_ESCAPES:
        out.add(_C_ESCAPES[ch], i)
        return i + 2
    if ch in _OCT_DIGITS:        # \N, \NN, \NNN octal
        j = i + 1
        while j < len(text) and j < i + 4 and text[j] in _OCT_DIGITS:
            j += 1
        value = int(text[i + 1:j], 8)
        if value > 0xFF:
            raise ArgError(f"octal escape {_show(text[i:j])} is over 255", i,
                           "octal escapes go up to \\377")
        out.add(chr(value), i)
        return j
    if ch == "x":                # \xH or \xHH (Click reads on; nfv stops at two digits)
        j = i + 2
        while j < len(text) and j < i + 4 and text[j] in _HEX_DIGITS:
            j += 1
        if j == i + 2:
            raise ArgError("\\x escape without hex digits", i, "e.g. \\x0a")
        out.add(chr(int(text[i + 2:j], 16)), i)
        return j
    if ch == "<":
        return _hex_block(text, i, out)
    out.add(ch, i)               # \\ \" \' \$ \, and any other: the character itself
    return i + 2


def _unquote(text: str) -> _Unquoted:
    """Click's string unquoting (cp_unquote).

    `"..."` takes backslash escapes, `'...'` is literal, `\\<hex>` works
    inside double quotes and bare; anything else is copied as is, and pieces
    concatenate: `"a"b'c'` is `abc`.
    """
    out = _Unquoted()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise ArgError("unterminated single quote", i, "add the closing '")
            for k in range(i + 1, end):
                out.add(text[k], k)
            i = end + 1
        elif ch == '"':
            j = i + 1
            while True:
                if j >= len(text):
                    raise ArgError("unterminated double quote", i, 'add the closing "')
                if text[j] == '"':
                    break
                if text[j] == "\\":
                    j = _escape(text, j, out)
                else:
                    out.add(text[j], j)
                    j += 1
            i = j + 1
        elif text.startswith("\\<", i):
            i = _hex_block(text, i, out)
        else:
            out.add(ch, i)
            i += 1
    return out


@_parser
def string(text: str) -> str:
    """A string, unquoted as Click does: `"double"` with escapes (\\n \\t \\\\ \\" \\xHH,
    octal \\NNN, \\<hex bytes>), `'single'` literal, bare text as is; adjacent
    pieces concatenate.  Unlike Click's StringArg, unquoted spaces are kept.

    Example: string('"a\\tb"c\\'d\\'') == "a\\tbcd".
    """
    return _unquote(text).text()


@_parser
def word(text: str) -> str:
    """A single word: `eth0`, `"eth0"`; quotes are removed, and the result may not
    be empty or contain whitespace (quoted or not).  Example: word("'eth0'") == "eth0".
    """
    if not text:
        raise _expected("a word", text)
    out = _unquote(text)
    result = out.text()
    if not result:
        raise ArgError("expected a word, got an empty string", None, "e.g. eth0")
    for ch, at in zip(out.chars, out.origin):
        if ch.isspace():
            raise ArgError(f"expected a single word, got {_show(text)}", at,
                           "no spaces allowed here")
    return result


@_parser
def data(text: str) -> bytes:
    """Bytes from a Click DATA string: like `string`, with `\\<hex>` for raw bytes
    (`"\\<00 11 2233>"`, spaces ignored); text characters are Latin-1.

    Example: data('"GET \\<0d0a>"') == b"GET \\r\\n".
    """
    out = _unquote(text)
    for ch, at in zip(out.chars, out.origin):
        if ord(ch) > 0xFF:
            raise ArgError(f"character {ch!r} does not fit in a byte", at,
                           "write it as bytes, e.g. \\<c3 a9> or \"\\xc3\\xa9\"")
    return out.text().encode("latin-1")
