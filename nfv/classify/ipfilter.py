"""The tcpdump-like pattern language of Click's `IPClassifier` and `IPFilter`.

`parse_expr(text)` reads one IPClassifier argument, `parse_rule(text)` one
IPFilter argument (`ACTION PATTERN`), into a small typed AST; `describe(expr)`
prints an AST back in canonical form.  Errors are `ArgError`s whose offset is
the character index in `text` where the problem starts.

Language (Click's IPClassifier manual)
--------------------------------------
Primitives, with SRCORDST one of `src`, `dst`, `src or dst` (the default),
`src and dst`, and OP one of `==` (default, also `=`), `!=`, `<`, `>`, `<=`,
`>=` (ordering ops only on numeric fields; addresses take `==`/`!=`)::

    [SRCORDST] host [OP] ADDR            [SRCORDST] net [OP] ADDR/LEN | ADDR mask MASK
    [SRCORDST] [tcp|udp] port [OP] PORT  [SRCORDST] [tcp|udp] port LO-HI | portrange LO-HI
    ip proto PROTO   ip vers N   ip hl N   ip id N   ip tos N   ip dscp N
    ip ttl N   ip len N   ip frag   ip unfrag   ip ect   ip ce
    tcp opt FLAG     tcp win N    icmp type TYPE
    tcp udp icmp igmp ipip gre esp ah sctp    (protocol alone; bare `ip` is true)
    true  false  any  all                     (`-` alone is also true)

Numeric primitives accept a mask: `FIELD & MASK [[OP] VALUE]` (no value means
"some masked bit is set").  Shortcuts as in Click: a bare address is `host`,
a bare `ADDR/LEN` is `net`, a bare service name is `port`, a bare TCP flag is
`tcp opt`, a bare ICMP type name is `icmp type`, `frag`/`unfrag`/`ect`/`ce`
and the `ip` field keywords may drop the leading `ip`.  Directly after
`and`/`or`, a bare value (number, address, service or ICMP name, or an operator
and value) repeats the previous host/net/port/field primitive with its
qualifiers: `src port 80 or 81`, `ip ttl < 5 or > 250`; protocol words never
repeat (`ip proto 6 or tcp opt syn` means what it says).  Connectives:
`not`/`!`, `and`/`&&`, `or`/`||`, parentheses and Click's conditional
`C ? A : B`; precedence not > and > or; primitives written next to each other
are ANDed (`tcp syn`, `fin ack`).

AST
---
`TrueExpr`, `FalseExpr`, `Not(term)`, `And(terms)`, `Or(terms)` and the one
leaf `FieldTest(field, op, value, mask)`, meaning ``(FIELD & mask) OP value``
where FIELD is the unsigned value of a header field described by `FIELDS`.
For `==`/`!=` the value never has bits outside the mask.  `And`/`Or` keep the
grouping of the text (a primitive such as `port 80` is one `Or` node); the
conditional `C ? A : B` becomes `(C and A) or (not C and B)`.

Decisions a compiler must honour
--------------------------------
* Transport fields (`l4.*`, `tcp.*`, `icmp.*`) carry the protocols they exist
  for (`FieldSpec.protos`).  A test on one is FALSE -- whatever its operator --
  unless `ip.proto` is one of those protocols and the packet is unfragmented
  or the first fragment (fragment offset 0).  So `port 80` matches TCP or UDP
  first fragments only, `src tcp port != 5` does not match UDP, and
  `not src port 5` does match later fragments: Click's semantics.
* `tcp port 80` is `And(ip.proto == 6, port 80)`; a protocol word is only
  added to the AST when it narrows the field's own protocols (`icmp type echo`
  is a single test).
* `net ADDR/LEN` with host bits set is masked silently, as Click does.
* Bare `ip` is `TrueExpr`: IPClassifier only ever sees IP packets.
* Not supported (clear errors instead): Click's `ip[POS:LEN]`/`transp[...]` byte
  tests, AddressInfo names, `ether host`, IPv6.  Nesting is capped at 64 levels.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Callable, NoReturn, Union

from nfv.errors import ArgError

__all__ = [
    "Expr", "TrueExpr", "FalseExpr", "Not", "And", "Or", "FieldTest", "FilterRule",
    "FieldSpec", "FIELDS", "OPS", "TRUE", "FALSE",
    "IP_VERS", "IP_HL", "IP_TOS", "IP_DSCP", "IP_ECN", "IP_LEN", "IP_ID", "IP_FRAG",
    "IP_TTL", "IP_PROTO", "IP_SRC", "IP_DST", "L4_SPORT", "L4_DPORT", "TCP_FLAGS",
    "TCP_WIN", "ICMP_TYPE", "FRAG_MASK",
    "PROTOCOLS", "PORT_NAMES", "ICMP_TYPES", "TCP_FLAG_BITS",
    "parse_expr", "parse_rule", "describe",
]

# -- fields ------------------------------------------------------------------------------

IP_VERS = "ip.vers"      #: IP version (high nibble of byte 0)
IP_HL = "ip.hl"          #: IP header length in 32-bit words (low nibble of byte 0)
IP_TOS = "ip.tos"        #: type-of-service byte
IP_DSCP = "ip.dscp"      #: DSCP, the upper 6 bits of the TOS byte
IP_ECN = "ip.ecn"        #: ECN, the lower 2 bits of the TOS byte
IP_LEN = "ip.len"        #: total length
IP_ID = "ip.id"          #: identification
IP_FRAG = "ip.frag"      #: the 16-bit flags + fragment-offset word (test with FRAG_MASK)
IP_TTL = "ip.ttl"        #: time to live
IP_PROTO = "ip.proto"    #: protocol number
IP_SRC = "ip.src"        #: source address as a 32-bit integer
IP_DST = "ip.dst"        #: destination address as a 32-bit integer
L4_SPORT = "l4.sport"    #: TCP/UDP source port
L4_DPORT = "l4.dport"    #: TCP/UDP destination port
TCP_FLAGS = "tcp.flags"  #: TCP flags byte (FIN 0x01 ... URG 0x20)
TCP_WIN = "tcp.win"      #: TCP receive window (unscaled)
ICMP_TYPE = "icmp.type"  #: ICMP type

#: More-fragments bit plus fragment offset: `ip.frag & FRAG_MASK != 0` means "a fragment".
FRAG_MASK = 0x3FFF

_TCP, _UDP, _ICMP = 6, 17, 1


@dataclass(frozen=True)
class FieldSpec:
    """Where a field lives: read `size` bytes big-endian at `offset`, shift right, keep `bits`.

    header  "ip": offset from the IP header; "l4": offset from the transport
            header, which starts 4 * ip.hl bytes after the IP header.
    protos  the IP protocols the field exists for (empty: every IP packet); see
            the module docstring for how tests on such fields behave.
    """

    name: str
    header: str
    offset: int
    size: int
    shift: int
    bits: int
    protos: frozenset[int] = frozenset()

    @property
    def max(self) -> int:
        """Largest value (and full mask) of the field."""
        return (1 << self.bits) - 1


def _spec(name, header, offset, size, shift, bits, protos=()) -> FieldSpec:
    return FieldSpec(name, header, offset, size, shift, bits, frozenset(protos))


#: Every field a `FieldTest` may name.
FIELDS: dict[str, FieldSpec] = {s.name: s for s in (
    _spec(IP_VERS, "ip", 0, 1, 4, 4),
    _spec(IP_HL, "ip", 0, 1, 0, 4),
    _spec(IP_TOS, "ip", 1, 1, 0, 8),
    _spec(IP_DSCP, "ip", 1, 1, 2, 6),
    _spec(IP_ECN, "ip", 1, 1, 0, 2),
    _spec(IP_LEN, "ip", 2, 2, 0, 16),
    _spec(IP_ID, "ip", 4, 2, 0, 16),
    _spec(IP_FRAG, "ip", 6, 2, 0, 16),
    _spec(IP_TTL, "ip", 8, 1, 0, 8),
    _spec(IP_PROTO, "ip", 9, 1, 0, 8),
    _spec(IP_SRC, "ip", 12, 4, 0, 32),
    _spec(IP_DST, "ip", 16, 4, 0, 32),
    _spec(L4_SPORT, "l4", 0, 2, 0, 16, (_TCP, _UDP)),
    _spec(L4_DPORT, "l4", 2, 2, 0, 16, (_TCP, _UDP)),
    _spec(TCP_FLAGS, "l4", 13, 1, 0, 8, (_TCP,)),
    _spec(TCP_WIN, "l4", 14, 2, 0, 16, (_TCP,)),
    _spec(ICMP_TYPE, "l4", 0, 1, 0, 8, (_ICMP,)),
)}

#: Comparison operators of `FieldTest.op`.
OPS = ("==", "!=", "<", ">", "<=", ">=")

# -- names -------------------------------------------------------------------------------

#: Protocol names (Click's list plus a few common ones).
PROTOCOLS = {"icmp": 1, "igmp": 2, "ipip": 4, "tcp": 6, "udp": 17, "gre": 47,
             "esp": 50, "ah": 51, "sctp": 132}

#: TCP/UDP service names: Click's list, plus http, imap, bgp, ldap, syslog.
PORT_NAMES = {
    "echo": 7, "discard": 9, "daytime": 13, "chargen": 19, "ftp-data": 20, "ftp": 21,
    "ssh": 22, "telnet": 23, "smtp": 25, "domain": 53, "dns": 53, "bootps": 67,
    "bootpc": 68, "tftp": 69, "finger": 79, "www": 80, "http": 80, "pop3": 110,
    "sunrpc": 111, "auth": 113, "nntp": 119, "ntp": 123, "netbios-ns": 137,
    "netbios-dgm": 138, "netbios-ssn": 139, "imap": 143, "snmp": 161, "snmp-trap": 162,
    "bgp": 179, "irc": 194, "imap3": 220, "ldap": 389, "https": 443, "syslog": 514,
    "rip": 520, "route": 520, "imaps": 993, "pop3s": 995,
}

#: ICMP type names (Click's table; `echo-request` is an alias of `echo`).
ICMP_TYPES = {
    "echo-reply": 0, "unreachable": 3, "sourcequench": 4, "redirect": 5, "echo": 8,
    "echo-request": 8, "routeradvert": 9, "routersolicit": 10, "timeexceeded": 11,
    "parameterproblem": 12, "timestamp": 13, "timestamp-reply": 14, "inforeq": 15,
    "inforeq-reply": 16, "maskreq": 17, "maskreq-reply": 18,
}

#: TCP flag names of `tcp opt` and their bits in `tcp.flags`.
TCP_FLAG_BITS = {"fin": 0x01, "syn": 0x02, "rst": 0x04, "psh": 0x08, "ack": 0x10, "urg": 0x20}

# -- AST ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrueExpr:
    """Matches every packet (`true`, `-`, `any`, `all`, bare `ip`)."""


@dataclass(frozen=True)
class FalseExpr:
    """Matches no packet (`false`)."""


@dataclass(frozen=True)
class Not:
    """Negation (`not`, `!`)."""

    term: "Expr"


@dataclass(frozen=True)
class And:
    """All terms hold (`and`, `&&`, juxtaposition); two or more terms."""

    terms: tuple["Expr", ...]


@dataclass(frozen=True)
class Or:
    """At least one term holds (`or`, `||`); two or more terms."""

    terms: tuple["Expr", ...]


@dataclass(frozen=True)
class FieldTest:
    """`(field & mask) op value`; `field` is a key of FIELDS, `op` one of OPS."""

    field: str
    op: str
    value: int
    mask: int


Expr = Union[TrueExpr, FalseExpr, Not, And, Or, FieldTest]

TRUE = TrueExpr()
FALSE = FalseExpr()


@dataclass(frozen=True)
class FilterRule:
    """One IPFilter argument.

    action  the action word as written, lower-cased: 'allow', 'deny', 'drop' or
            a port number ('deny' is kept apart from 'drop' because Click warns
            about it on elements with several outputs).
    port    output port: 0 for allow, -1 (drop) for deny/drop, else the number.
    """

    action: str
    port: int
    expr: Expr


# -- lexer -------------------------------------------------------------------------------

_TOKEN = re.compile(r"(?P<ws>[ \t\r\n\f\v]+)"
                    r"|(?P<op>==|!=|<=|>=|&&|\|\||[<>=!&()?:])"
                    r"|(?P<word>[A-Za-z0-9_./-]+)")
_NUMBER = re.compile(r"(?:0[xX][0-9a-fA-F]+|[0-9]+)\Z")
_ADDR = re.compile(r"([0-9]+)\.([0-9]+)\.([0-9]+)\.([0-9]+)\Z")
_CMP = frozenset(OPS)
_CONNECTIVES = frozenset({"and", "or", "&&", "||"})


@dataclass(frozen=True)
class _Tok:
    kind: str   # "word", "op" or "end"
    text: str
    pos: int

    @property
    def low(self) -> str:
        return self.text.lower()


def _lex(text: str, start: int) -> list[_Tok]:
    """Tokens of text[start:], with their offsets in `text`, ending with an "end" token."""
    toks, pos = [], start
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ArgError(f"unexpected character {_show(text[pos])}", pos, _char_hint(text[pos]))
        if m.lastgroup != "ws":
            word = "==" if m.group() == "=" else m.group()
            toks.append(_Tok(m.lastgroup, word, pos))
        pos = m.end()
    toks.append(_Tok("end", "", len(text)))
    return toks


def _char_hint(ch: str) -> str | None:
    if ch == "|":
        return "write 'or' or '||'"
    if ch == "[":
        return "byte-offset tests like ip[9] are not supported; use Classifier for raw bytes"
    if ch in "\"'":
        return "patterns are not quoted"
    return None


# -- parser ------------------------------------------------------------------------------

_MAX_DEPTH = 64          # nesting of parentheses, 'not' and '?:' (keeps recursion bounded)
_MAX_NODES = 20000       # '?:' copies its condition; stop before the tree explodes ...
_NODES_PER_TOKEN = 10    # ... but let long flat patterns (a few nodes per token) through
_PRIMITIVE_HINT = "e.g. 'tcp', 'host 10.0.0.1', 'src net 10.0.0.0/8' or 'dst port 80'"
_ACTION_HINT = "an action is allow, deny, drop or an output port number"
_SD_HINT = "src and dst qualify host, net and port"
_PORT_HINT = "a port is a number 0-65535, a service name such as http, ssh, domain, or LO-HI"
_IP_FIELDS = {"proto": (IP_PROTO, "protocol"), "vers": (IP_VERS, "ip version"),
              "hl": (IP_HL, "header length"), "id": (IP_ID, "ip id"), "tos": (IP_TOS, "tos"),
              "dscp": (IP_DSCP, "dscp"), "ttl": (IP_TTL, "ttl"), "len": (IP_LEN, "ip length")}
_IP_FLAGS = {"frag": FieldTest(IP_FRAG, "!=", 0, FRAG_MASK),
             "unfrag": FieldTest(IP_FRAG, "==", 0, FRAG_MASK),
             "ect": FieldTest(IP_ECN, "!=", 0, 3),
             "ce": FieldTest(IP_ECN, "==", 3, 3)}
_CONSTANTS = {"true": TRUE, "any": TRUE, "all": TRUE, "false": FALSE}
_KEYWORDS = ({"src", "dst", "host", "net", "port", "portrange", "mask", "opt", "win", "type",
              "ip", "not", "and", "or"} | set(_IP_FIELDS) | set(_IP_FLAGS) | set(_CONSTANTS))
_VOCABULARY = sorted(_KEYWORDS | set(PROTOCOLS) | set(PORT_NAMES) | set(ICMP_TYPES)
                     | set(TCP_FLAG_BITS))


@dataclass(frozen=True)
class _Last:
    """The previous typed primitive, repeated by a bare value after and/or (`port 80 or 81`)."""

    kind: str                         # "addr", "port" or "field"
    names: dict[str, int] | None      # names a "field" value may take
    repeat: Callable[[], "Expr"]


class _Parser:
    """Recursive descent over the token list; `self.i` indexes the next token."""

    def __init__(self, text: str):
        self.toks = _lex(text, 0)
        self.i = 0
        self.depth = 0
        self.last: _Last | None = None

    # token helpers

    def peek(self, ahead: int = 0) -> _Tok:
        return self.toks[min(self.i + ahead, len(self.toks) - 1)]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        if tok.kind != "end":
            self.i += 1
        return tok

    def at(self, *texts: str) -> bool:
        tok = self.peek()
        return tok.kind != "end" and tok.low in texts

    def expected(self, what: str, hint: str | None = None) -> NoReturn:
        """Fail at the next token, which is not `what`."""
        tok = self.peek()
        if tok.kind == "end":
            before = self.toks[self.i - 1].text if self.i else ""
            raise ArgError(f"missing {what} after '{before}'" if before else f"missing {what}",
                           tok.pos, hint)
        raise ArgError(f"expected {what}, got {_show(tok.text)}", tok.pos, hint)

    def enter(self) -> None:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise ArgError("pattern nested too deeply", self.peek().pos,
                           f"use at most {_MAX_DEPTH} levels of parentheses and 'not'")

    # grammar: pattern, expr, or, and, not, factor

    def pattern(self) -> Expr:
        """The rest of the tokens as one whole pattern."""
        tok = self.peek()
        if tok.kind == "end":
            raise ArgError("empty pattern", tok.pos, "use '-' or 'true' to match every packet")
        if tok.text == "-" and self.peek(1).kind == "end":
            return TRUE
        expr = self.expr()
        if self.peek().kind != "end":
            self.leftover(self.peek())
        if _size(expr, {}) > _MAX_NODES + _NODES_PER_TOKEN * len(self.toks):
            raise ArgError("pattern too complex", 0, "split it, or avoid nesting '?:' conditions")
        return expr

    def leftover(self, tok: _Tok) -> NoReturn:
        if tok.text == ")":
            raise ArgError("unbalanced ')'", tok.pos, "remove it or add a matching '('")
        if tok.text == ":":
            raise ArgError("':' without '?'", tok.pos, "the conditional form is 'COND ? A : B'")
        if tok.text == "&":
            raise ArgError("unexpected '&'", tok.pos,
                           "combine with '&&' or 'and'; '&' masks a field, as in 'ip tos & 0x1c'")
        if tok.text in _CMP:
            raise ArgError(f"unexpected '{tok.text}'", tok.pos,
                           "a comparison follows a field, e.g. 'ip ttl < 5'")
        raise ArgError(f"unexpected {_show(tok.text)}", tok.pos)

    def expr(self) -> Expr:
        self.enter()
        cond = self.or_expr()
        if self.at("?"):
            self.take()
            yes = self.expr()
            if not self.at(":"):
                self.expected("':'", "the conditional form is 'COND ? A : B'")
            self.take()
            no = self.expr()
            cond = Or((And((cond, yes)), And((Not(cond), no))))
        self.depth -= 1
        return cond

    def or_expr(self) -> Expr:
        terms = [self.and_expr()]
        while self.at("or", "||"):
            self.take()
            terms.append(self.and_expr())
        return terms[0] if len(terms) == 1 else Or(tuple(terms))

    def and_expr(self) -> Expr:
        terms = [self.not_expr()]
        while True:
            if self.at("and", "&&"):
                self.take()
            elif not self.starts_factor():
                break
            terms.append(self.not_expr())
        return terms[0] if len(terms) == 1 else And(tuple(terms))

    def starts_factor(self) -> bool:
        """Can the next token begin a primitive written right after another (juxtaposition)?"""
        tok = self.peek()
        if tok.kind == "word":
            return tok.low not in ("and", "or")
        return tok.text in ("(", "!")

    def not_expr(self) -> Expr:
        count = 0
        while self.at("not", "!"):
            self.take()
            self.enter()
            count += 1
        expr = self.factor()
        for _ in range(count):
            expr = Not(expr)
        self.depth -= count
        return expr

    def factor(self) -> Expr:
        tok = self.peek()
        if tok.text != "(" or tok.kind != "op":
            return self.primitive()
        self.take()
        expr = self.expr()
        if self.at(")"):
            self.take()
            return expr
        if self.peek().kind == "end":
            raise ArgError("unclosed '('", tok.pos, "add a matching ')'")
        return self.expected("')'")

    # primitives

    def primitive(self) -> Expr:
        tok = self.peek()
        after_connective = self.i > 0 and self.toks[self.i - 1].low in _CONNECTIVES
        if after_connective and self.last is not None and self.continues_last(tok):
            return self.last.repeat()
        self.last = None
        if tok.kind != "word":
            if tok.text in _CMP or tok.text == "&":
                raise ArgError(f"'{tok.text}' needs a field before it", tok.pos,
                               "e.g. 'ip ttl < 5' or 'dst port >= 1024'")
            return self.expected("a primitive", _PRIMITIVE_HINT)
        if tok.low in _CONSTANTS:
            self.take()
            return _CONSTANTS[tok.low]
        if tok.text == "-":
            raise ArgError("'-' must be the whole pattern", tok.pos,
                           "write 'true' to match every packet inside an expression")
        sd = self.srcdst()
        proto = None
        if self.at("ip", *PROTOCOLS):
            proto = self.take()
            sd = sd or self.srcdst()          # tcpdump order: 'tcp src port 80'
        return self.typed(sd, proto)

    def continues_last(self, tok: _Tok) -> bool:
        """Does `tok` (right after and/or) read as another value of the previous primitive?"""
        kind = self.last.kind
        if tok.kind == "op":
            return tok.text in _CMP or (tok.text == "&" and kind != "addr")
        if tok.kind != "word":
            return False
        word = tok.low
        if word in PROTOCOLS:
            # A protocol word starts its own primitive (`tcp opt syn`); read alone it means
            # `ip proto NAME` anyway, so `ip proto 6 or udp` loses nothing.
            return False
        if kind == "addr":
            return _looks_like_address(word)
        if kind == "port":
            return bool(_NUMBER.match(word)) or word in PORT_NAMES or (
                "-" in word and word[0].isdigit())
        return bool(_NUMBER.match(word)) or word in (self.last.names or ())

    def srcdst(self) -> tuple[str, _Tok] | None:
        """`src`, `dst`, `src or dst`, `src and dst` (either order) as (kind, first token)."""
        tok = self.peek()
        if tok.kind != "word" or tok.low not in ("src", "dst"):
            return None
        self.take()
        other = "dst" if tok.low == "src" else "src"
        link, then = self.peek(), self.peek(1)
        if link.kind == "word" and link.low in ("or", "and") and then.low == other \
                and then.kind == "word":
            self.take()
            self.take()
            return link.low, tok
        return tok.low, tok

    def typed(self, sd, proto: _Tok | None) -> Expr:
        """The primitive after its qualifiers: a keyword and its value, or a bare value."""
        tok = self.peek()
        word = tok.low if tok.kind == "word" else ""
        if word in ("host", "net"):
            self.take()
            return self.remember("addr", None, lambda: self.address(sd, proto, tok, word),
                                 lambda: self.address(sd, proto, tok, None))
        if word in ("port", "portrange"):
            self.take()
            return self.remember("port", None, lambda: self.port(sd, proto, tok, word),
                                 lambda: self.port(sd, proto, tok, "port"))
        if word in _IP_FIELDS:
            field, what = _IP_FIELDS[word]
            names = PROTOCOLS if word == "proto" else None
            return self.keyword_field(sd, proto, field, what, names)
        if word == "win":
            return self.keyword_field(sd, proto, TCP_WIN, "tcp window", None)
        if word == "type":
            return self.keyword_field(sd, proto, ICMP_TYPE, "icmp type", ICMP_TYPES)
        if word == "opt":
            self.take()
            return self.tcp_opt(sd, proto, tok)
        if word in _IP_FLAGS:
            self.take()
            self.no_srcdst(sd, tok)
            return self.with_proto(proto, _IP_FLAGS[word], frozenset(), tok)
        return self.bare(sd, proto, tok, word)

    def bare(self, sd, proto: _Tok | None, tok: _Tok, word: str) -> Expr:
        """A value without its keyword: address, service name, tcp flag, icmp type, protocol."""
        if tok.kind == "word" and _looks_like_address(word):
            return self.remember("addr", None, lambda: self.address(sd, proto, None, None))
        if word in TCP_FLAG_BITS:
            return self.tcp_opt(sd, proto, None)
        is_port, is_icmp = word in PORT_NAMES, word in ICMP_TYPES
        if is_port and is_icmp:
            which = proto.low if proto else ""
            if which not in ("tcp", "udp", "icmp"):
                raise ArgError(f"'{tok.text}' is both a port name and an icmp type", tok.pos,
                               f"write 'port {word}' or 'icmp type {word}'")
            is_port, is_icmp = which != "icmp", which == "icmp"
        if is_port:
            return self.remember("port", None, lambda: self.port(sd, proto, None, "port"))
        if is_icmp:
            return self.remember("field", ICMP_TYPES, lambda: self.field(
                sd, proto, None, ICMP_TYPE, "icmp type", ICMP_TYPES))
        if sd is not None:
            after = f"'{sd[1].text}{' ' + proto.text if proto else ''}'"
            if tok.kind == "end":
                raise ArgError(f"missing host, net or port after {after}", tok.pos, _SD_HINT)
            raise ArgError(f"expected host, net or port after {after}, got {_show(tok.text)}",
                           tok.pos, _SD_HINT)
        if proto is not None:
            return TRUE if proto.low == "ip" else _proto_test(PROTOCOLS[proto.low])
        if tok.kind == "word" and _NUMBER.match(word):
            raise ArgError(f"{_show(tok.text)} is not a primitive", tok.pos,
                           "say what the number is, e.g. 'port 80', 'ip proto 47' or 'ip ttl 64'")
        if tok.kind != "word":
            return self.expected("a primitive", _PRIMITIVE_HINT)
        if word in ("and", "or"):
            raise ArgError(f"missing a primitive before {_show(tok.text)}", tok.pos,
                           _PRIMITIVE_HINT)
        if word in _KEYWORDS:
            raise ArgError(f"unexpected {_show(tok.text)}", tok.pos, _PRIMITIVE_HINT)
        raise _unknown_word(tok)

    def remember(self, kind, names, first, repeat=None) -> Expr:
        """Parse a typed primitive with `first`; a later bare value repeats it with `repeat`."""
        expr = first()
        self.last = _Last(kind, names, repeat or first)
        return expr

    def keyword_field(self, sd, proto, field, what, names) -> Expr:
        kw = self.take()
        repeat = lambda: self.field(sd, proto, kw, field, what, names)  # noqa: E731
        return self.remember("field", names, repeat)

    def no_srcdst(self, sd, tok: _Tok) -> None:
        if sd is not None:
            raise ArgError(f"'{sd[1].text}' does not apply to '{tok.text}'", sd[1].pos, _SD_HINT)

    def with_proto(self, proto: _Tok | None, expr: Expr, protos: frozenset[int],
                   kw: _Tok) -> Expr:
        """Apply a protocol word written before a primitive (`tcp port 80`)."""
        if proto is None or proto.low == "ip":
            return expr
        number = PROTOCOLS[proto.low]
        if protos and number not in protos:
            allowed = " or ".join(n for n, v in PROTOCOLS.items() if v in protos)
            raise ArgError(f"'{kw.text}' does not apply to {proto.low}", kw.pos,
                           f"'{kw.low}' applies to {allowed}")
        if protos == {number}:
            return expr                       # the field already implies the protocol
        return And((_proto_test(number), expr))

    def address(self, sd, proto, kw: _Tok | None, kind: str | None) -> Expr:
        """`[OP] ADDR`, `[OP] ADDR/LEN` or `[OP] ADDR mask MASK`; kind host, net or None (any)."""
        op = "=="
        if self.peek().text in _CMP and self.peek().kind == "op":
            op_tok = self.take()
            if op_tok.text not in ("==", "!="):
                raise ArgError(f"'{op_tok.text}' does not apply to addresses", op_tok.pos,
                               "addresses are compared with == or !=")
            op = op_tok.text
        tok = self.peek()
        if tok.kind != "word":
            self.expected("an ip address", "e.g. 10.0.0.1 or 10.0.0.0/8")
        self.take()
        base, slash, length = tok.text.partition("/")
        addr = _ip_address(base, tok.pos)
        if slash:
            if kind == "host":
                raise ArgError("host takes an address, not a network", tok.pos,
                               f"write 'net {tok.text}'")
            mask = _prefix_mask(length, tok.pos + len(base) + 1)
        elif self.at("mask"):
            mask_kw = self.take()
            if kind == "host":
                raise ArgError("host takes no mask", mask_kw.pos,
                               f"write 'net {tok.text} mask ...'")
            mask_tok = self.peek()
            if mask_tok.kind != "word":
                self.expected("a netmask", "e.g. mask 255.255.255.0")
            self.take()
            mask = _ip_address(mask_tok.text, mask_tok.pos, "netmask")
        elif kind == "net":
            raise ArgError(f"net {_show(tok.text)} needs a prefix length or a mask",
                           tok.pos + len(tok.text),
                           f"write 'net {tok.text}/24' or 'net {tok.text} mask 255.255.255.0'")
        else:
            mask = 0xFFFFFFFF
        value = addr & mask
        expr = _by_srcdst(sd, IP_SRC, IP_DST, lambda f: FieldTest(f, op, value, mask))
        return self.with_proto(proto, expr, frozenset(), kw or tok)

    def mask_and_op(self, what: str, full: int, names) -> tuple[int, str | None, bool]:
        """`[& MASK] [OP]` before a value: (mask, op or None, whether a value must follow)."""
        mask, masked = full, False
        if self.at("&"):
            self.take()
            mask = self.number(f"{what} mask", full, None)
            masked = True
        if self.peek().kind == "op" and self.peek().text in _CMP:
            return mask, self.take().text, True
        # 'FIELD & MASK' alone means "some masked bit is set".
        return mask, None, not masked or self.value_follows(names)

    def value_follows(self, names) -> bool:
        tok = self.peek()
        return tok.kind == "word" and (bool(_NUMBER.match(tok.low)) or tok.low in (names or ()))

    def port(self, sd, proto, kw: _Tok | None, word: str) -> Expr:
        """`[& MASK] [OP] PORT` or `LO-HI` after `port`; only `LO-HI` after `portrange`."""
        mask, op, has_value = self.mask_and_op("port", 0xFFFF, PORT_NAMES)
        tok = self.peek()
        if not has_value:
            make = lambda f: FieldTest(f, "!=", 0, mask)  # noqa: E731
        elif tok.kind == "word" and tok.low not in PORT_NAMES and "-" in tok.text:
            if op is not None or mask != 0xFFFF:
                raise ArgError("a port range takes no operator or mask", tok.pos,
                               "write e.g. 'port 1024-65535'")
            lo, hi = self.take_port_range()
            make = lambda f: _range_test(f, lo, hi)  # noqa: E731
        else:
            if word == "portrange":
                self.expected("a port range LO-HI", "e.g. 'portrange 1024-65535'")
            value = self.masked_value("port", 0xFFFF, PORT_NAMES, mask, op)
            make = lambda f: FieldTest(f, op or "==", value, mask)  # noqa: E731
        expr = _by_srcdst(sd, L4_SPORT, L4_DPORT, make)
        return self.with_proto(proto, expr, FIELDS[L4_SPORT].protos, kw or tok)

    def take_port_range(self) -> tuple[int, int]:
        tok = self.take()
        lo_text, _, hi_text = tok.text.partition("-")
        if not lo_text or not hi_text or "-" in hi_text:
            raise ArgError(f"bad port range {_show(tok.text)}", tok.pos,
                           "write LO-HI, e.g. 1024-65535")
        lo = _word_value(lo_text, tok.pos, "port", 0xFFFF, PORT_NAMES, "port name")
        hi_pos = tok.pos + len(lo_text) + 1
        hi = _word_value(hi_text, hi_pos, "port", 0xFFFF, PORT_NAMES, "port name")
        if lo > hi:
            raise ArgError(f"port range {_show(tok.text)} is backwards", tok.pos,
                           f"did you mean {hi}-{lo}?")
        return lo, hi

    def field(self, sd, proto, kw: _Tok | None, field: str, what: str, names) -> Expr:
        """`[& MASK] [OP] VALUE` for a numeric field."""
        spec = FIELDS[field]
        self.no_srcdst(sd, kw or self.peek())
        mask, op, has_value = self.mask_and_op(what, spec.max, names)
        tok = self.peek()
        if has_value:
            value = self.masked_value(what, spec.max, names, mask, op)
            expr = FieldTest(field, op or "==", value, mask)
        else:
            expr = FieldTest(field, "!=", 0, mask)
        return self.with_proto(proto, expr, spec.protos, kw or tok)

    def tcp_opt(self, sd, proto, kw: _Tok | None) -> Expr:
        """A TCP flag name after `tcp opt` (or bare): the flag bit is set."""
        tok = self.peek()
        self.no_srcdst(sd, kw or tok)
        if tok.kind == "op" and (tok.text in _CMP or tok.text == "&"):
            raise ArgError("tcp opt takes no operator", tok.pos, "write e.g. 'tcp opt syn'")
        if tok.kind != "word":
            self.expected("a tcp flag", "one of " + ", ".join(TCP_FLAG_BITS))
        if tok.low not in TCP_FLAG_BITS:
            raise ArgError(f"unknown tcp flag {_show(tok.text)}", tok.pos,
                           _suggest(tok.low, TCP_FLAG_BITS, "one of " + ", ".join(TCP_FLAG_BITS)))
        self.take()
        bit = TCP_FLAG_BITS[tok.low]
        return self.with_proto(proto, FieldTest(TCP_FLAGS, "==", bit, bit),
                               FIELDS[TCP_FLAGS].protos, kw or tok)

    def number(self, what: str, maximum: int, names) -> int:
        tok = self.peek()
        if tok.kind != "word":
            self.expected(what, f"a number 0-{maximum}")
        self.take()
        kind = "port name" if names is PORT_NAMES else what
        return _word_value(tok.text, tok.pos, what, maximum, names, kind)

    def masked_value(self, what, maximum, names, mask, op) -> int:
        """A value for `==`/`!=` that must not have bits outside the mask (it could never match)."""
        tok = self.peek()
        value = self.number(what, maximum, names)
        if (op or "==") in ("==", "!=") and value & ~mask:
            raise ArgError(f"{what} {value} has bits outside mask {mask:#x}", tok.pos,
                           "with these bits set the test can never match")
        return value


# -- value helpers -----------------------------------------------------------------------


def _show(text: str) -> str:
    """Quote user text for a message, shortened and with unprintable characters escaped."""
    if len(text) > 24:
        text = text[:21] + "..."
    return "'" + "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text) + "'"


def _suggest(word: str, names, otherwise: str | None) -> str | None:
    close = difflib.get_close_matches(word, list(names), n=1)
    return f"did you mean {close[0]}?" if close else otherwise


def _unknown_word(tok: _Tok) -> ArgError:
    """An unknown word where a primitive should start; name it by what it resembles."""
    close = difflib.get_close_matches(tok.low, _VOCABULARY, n=1)
    if not close:
        return ArgError(f"unknown word {_show(tok.text)}", tok.pos, _PRIMITIVE_HINT)
    near = close[0]
    kind = ("protocol" if near in PROTOCOLS else "port name" if near in PORT_NAMES else
            "tcp flag" if near in TCP_FLAG_BITS else "icmp type" if near in ICMP_TYPES else
            "word")
    return ArgError(f"unknown {kind} {_show(tok.text)}", tok.pos, f"did you mean {near}?")


def _looks_like_address(word: str) -> bool:
    return word[:1].isdigit() and ("." in word or "/" in word)


def _int(text: str) -> int:
    """A decimal or 0x-hex number already matched by _NUMBER; huge ones are capped."""
    base = 16 if text[:2].lower() == "0x" else 10
    digits = text[2:] if base == 16 else text
    if len(digits.lstrip("0")) > 20:      # int() refuses very long digit strings
        return 1 << 80
    return int(digits, base)


def _word_value(text: str, pos: int, what: str, maximum: int, names, kind: str) -> int:
    """A number 0..maximum or a name from `names`, found at `pos`."""
    if _NUMBER.match(text):
        value = _int(text)
        if value > maximum:
            raise ArgError(f"{what} {_show(text)[1:-1]} out of range 0-{maximum}", pos)
        return value
    if names and text.lower() in names:
        return names[text.lower()]
    if names:
        listing = (_PORT_HINT if names is PORT_NAMES else
                   f"a number 0-{maximum} or a name such as {', '.join(list(names)[:4])}")
        raise ArgError(f"unknown {kind} {_show(text)}", pos, _suggest(text.lower(), names, listing))
    raise ArgError(f"{what} must be a number, got {_show(text)}", pos, f"a number 0-{maximum}")


def _ip_address(text: str, pos: int, what: str = "ip address") -> int:
    """Dotted quad -> 32-bit integer; errors point at the bad byte."""
    m = _ADDR.match(text)
    if m is None:
        raise ArgError(f"bad {what} {_show(text)}", pos,
                       "write four numbers 0-255, e.g. 10.0.0.1")
    value = 0
    for i in range(1, 5):
        part = m.group(i)
        if len(part) > 3 or int(part) > 255:
            raise ArgError(f"{what} byte {_show(part)[1:-1]} out of range 0-255",
                           pos + m.start(i))
        value = (value << 8) | int(part)
    return value


def _prefix_mask(text: str, pos: int) -> int:
    if not text or not text.isdigit() or not text.isascii():
        raise ArgError(f"bad prefix length {_show(text)}", pos, "a prefix length is 0-32")
    if len(text) > 2 or int(text) > 32:
        raise ArgError(f"prefix length {_show(text)[1:-1]} out of range 0-32", pos)
    return (0xFFFFFFFF << (32 - int(text))) & 0xFFFFFFFF


def _proto_test(number: int) -> FieldTest:
    return FieldTest(IP_PROTO, "==", number, 0xFF)


def _range_test(field: str, lo: int, hi: int) -> Expr:
    if lo == hi:
        return FieldTest(field, "==", lo, 0xFFFF)
    return And((FieldTest(field, ">=", lo, 0xFFFF), FieldTest(field, "<=", hi, 0xFFFF)))


def _by_srcdst(sd, src: str, dst: str, make: Callable[[str], Expr]) -> Expr:
    """Apply a test to the source field, the destination field, or both (default: either)."""
    kind = sd[0] if sd else "or"
    if kind == "src":
        return make(src)
    if kind == "dst":
        return make(dst)
    pair = (make(src), make(dst))
    return Or(pair) if kind == "or" else And(pair)


def _size(expr: Expr, seen: dict[int, int]) -> int:
    """Node count of the tree (shared subtrees counted per use, computed once each)."""
    key = id(expr)
    if key not in seen:
        if isinstance(expr, (And, Or)):
            seen[key] = 1 + sum(_size(t, seen) for t in expr.terms)
        elif isinstance(expr, Not):
            seen[key] = 1 + _size(expr.term, seen)
        else:
            seen[key] = 1
    return seen[key]


# -- public entry points -----------------------------------------------------------------


def parse_expr(text: str) -> Expr:
    """Parse one IPClassifier argument (a whole pattern; `-`, `any`, `all` match everything)."""
    return _Parser(text).pattern()


def parse_rule(text: str) -> FilterRule:
    """Parse one IPFilter argument `ACTION PATTERN` (e.g. `allow tcp dst port 22`)."""
    parser = _Parser(text)
    tok = parser.peek()
    if tok.kind == "end":
        raise ArgError("empty filter rule", tok.pos, "write ACTION PATTERN, e.g. 'allow tcp'")
    word = tok.low
    if tok.kind != "word":
        raise ArgError(f"expected an action, got {_show(tok.text)}", tok.pos, _ACTION_HINT)
    if word == "allow":
        port = 0
    elif word in ("deny", "drop"):
        port = -1
    elif word.isdigit():
        port = _word_value(word, tok.pos, "output port", 65535, None, "output port")
    else:
        hint = _suggest(word, ("allow", "deny", "drop"), _ACTION_HINT)
        raise ArgError(f"unknown action {_show(tok.text)}", tok.pos, hint)
    parser.take()
    if parser.peek().kind == "end":
        raise ArgError(f"missing pattern after {_show(tok.text)}", parser.peek().pos,
                       f"e.g. '{word} all' or '{word} tcp dst port 22'")
    return FilterRule(word if not word.isdigit() else str(port), port, parser.pattern())


# -- describe ----------------------------------------------------------------------------

_FIELD_WORDS = {IP_VERS: "ip vers", IP_HL: "ip hl", IP_TOS: "ip tos", IP_DSCP: "ip dscp",
                IP_LEN: "ip len", IP_ID: "ip id", IP_TTL: "ip ttl", IP_PROTO: "ip proto",
                TCP_WIN: "tcp win", ICMP_TYPE: "icmp type"}
_SD_FIELDS = {IP_SRC: "src", IP_DST: "dst", L4_SPORT: "src", L4_DPORT: "dst"}


def describe(expr: Expr) -> str:
    """Print an expression in canonical IPClassifier syntax.

    Every AST the parsers produce prints to text that parses back to an equal
    AST.  Tests a parser never makes (e.g. `tcp.flags` with several bits) are
    printed as `FIELD & MASK OP VALUE`, readable but not parseable.
    """
    if isinstance(expr, TrueExpr):
        return "true"
    if isinstance(expr, FalseExpr):
        return "false"
    if isinstance(expr, FieldTest):
        return _describe_test(expr)
    if isinstance(expr, Not):
        return "not " + _operand(expr.term)
    atom = _describe_compound_primitive(expr)
    if atom is not None:
        return atom
    joiner = " and " if isinstance(expr, And) else " or "
    return joiner.join(_operand(t) for t in expr.terms)


def _operand(expr: Expr) -> str:
    """A sub-expression, parenthesised if it is a compound that is not one primitive."""
    text = describe(expr)
    if isinstance(expr, (And, Or)) and _describe_compound_primitive(expr) is None:
        return f"({text})"
    return text


def _describe_compound_primitive(expr: Expr) -> str | None:
    """Print And/Or nodes that one primitive produces (`port 1-5`, `host X`) as that primitive."""
    if not isinstance(expr, (And, Or)) or len(expr.terms) != 2:
        return None
    a, b = expr.terms
    if isinstance(expr, And) and isinstance(a, FieldTest) and isinstance(b, FieldTest) \
            and a.field == b.field and a.field in (L4_SPORT, L4_DPORT) \
            and (a.op, b.op, a.mask, b.mask) == (">=", "<=", 0xFFFF, 0xFFFF) and a.value < b.value:
        return f"{_SD_FIELDS[a.field]} port {a.value}-{b.value}"
    if isinstance(expr, And) and isinstance(a, FieldTest) and (a.field, a.op, a.mask) == \
            (IP_PROTO, "==", 0xFF) and a.value in (_TCP, _UDP) and _fields(b) <= _L4_PORTS:
        port = _single_primitive(b)           # `tcp dst port 22` is And(tcp, dst port 22)
        if port is not None:
            return f"{describe(a)} {port}"
    left, right = _single_primitive(a), _single_primitive(b)
    if left and right and left.startswith("src ") and right.startswith("dst ") \
            and left[4:] == right[4:]:
        return left[4:] if isinstance(expr, Or) else "src and dst " + left[4:]
    return None


def _single_primitive(expr: Expr) -> str | None:
    """The text of `expr` if it prints as one primitive (no connective), else None."""
    if isinstance(expr, FieldTest):
        return _describe_test(expr)
    if isinstance(expr, (And, Or)):
        return _describe_compound_primitive(expr)
    return None


_L4_PORTS = frozenset({L4_SPORT, L4_DPORT})


def _fields(expr: Expr) -> set[str]:
    """Fields tested anywhere in `expr`."""
    if isinstance(expr, FieldTest):
        return {expr.field}
    if isinstance(expr, Not):
        return _fields(expr.term)
    if isinstance(expr, (And, Or)):
        return set().union(*(_fields(t) for t in expr.terms))
    return set()


def _describe_test(t: FieldTest) -> str:
    spec = FIELDS.get(t.field)
    if spec is None or t.op not in OPS or not 0 <= t.mask <= spec.max or t.value < 0:
        return _raw(t)
    full = t.mask == spec.max
    if t.field in (IP_SRC, IP_DST):
        return _describe_address(t) or _raw(t)
    if t.field in (L4_SPORT, L4_DPORT):
        return f"{_SD_FIELDS[t.field]} port {_op_value(t, full, str(t.value))}"
    if t.field == IP_PROTO and full and t.op == "==" and t.value in PROTOCOLS.values():
        return next(n for n, v in PROTOCOLS.items() if v == t.value)
    if t.field in _FIELD_WORDS:
        value = str(t.value)
        if t.field == ICMP_TYPE and t.value in ICMP_TYPES.values():
            value = next(n for n, v in ICMP_TYPES.items() if v == t.value)
        return f"{_FIELD_WORDS[t.field]} {_op_value(t, full, value)}"
    for word, known in _IP_FLAGS.items():
        if t == known:
            return f"ip {word}"
    if t.field == TCP_FLAGS and t.op == "==" and t.value == t.mask:
        for word, bit in TCP_FLAG_BITS.items():
            if bit == t.mask:
                return f"tcp opt {word}"
    return _raw(t)


def _op_value(t: FieldTest, full: bool, value: str) -> str:
    """`[& MASK] [OP] VALUE` as the parser reads it back."""
    if full:
        return value if t.op == "==" else f"{t.op} {value}"
    return f"& {t.mask:#x} {t.op} {value}"


def _describe_address(t: FieldTest) -> str | None:
    if t.op not in ("==", "!=") or t.value & ~t.mask:
        return None
    op = "" if t.op == "==" else "!= "
    sd = _SD_FIELDS[t.field]
    if t.mask == 0xFFFFFFFF:
        return f"{sd} host {op}{_dotted(t.value)}"
    inverted = ~t.mask & 0xFFFFFFFF
    if inverted & (inverted + 1) == 0:        # contiguous: the host bits are 0...01...1
        return f"{sd} net {op}{_dotted(t.value)}/{32 - inverted.bit_length()}"
    return f"{sd} net {op}{_dotted(t.value)} mask {_dotted(t.mask)}"


def _dotted(n: int) -> str:
    return ".".join(str((n >> s) & 0xFF) for s in (24, 16, 8, 0))


def _raw(t: FieldTest) -> str:
    return f"{t.field} & {t.mask:#x} {t.op} {t.value}"
