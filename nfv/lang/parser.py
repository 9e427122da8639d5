"""Recursive-descent parser for the Click language (Click's `click.5` grammar).

Hand-written rather than generated: Click's configuration strings need a
context-dependent lexer anyway, and a hand-written parser can say exactly what
it expected at the exact token ("expected an element after '->'").

Supported: declarations (`a, b :: C(cfg)`), connection chains over lines with
optional semicolons, port lists on both sides (`a[1] -> [0]b`, `c[0,1]`),
many-to-one and one-to-many lists (`a, b -> c`), the many-to-many arrow `=>`,
declarations and anonymous elements inside chains, element groups `( ... )`,
compound classes `{ formals | body || body || ... }` with positional, keyword
and `__REST__` formals, `elementclass Name {...}` and `elementclass A B`,
`require(...)`, `provide(...)`, `define(...)`, line directives.
"""
from __future__ import annotations

from pathlib import Path

from nfv.errors import ConfigError, NfvError
from nfv.lang import ast
from nfv.lang.lexer import Lexer, Token

_ELEMENT_START = {"ident", "{", "(", "["}
MAX_NESTING = 100


class Parser:
    def __init__(self, text: str, file: str):
        self.lex = Lexer(text, file)
        self.text = text
        self.file = file
        self.depth = 0

    # -- helpers -------------------------------------------------------------------

    def enter(self, tok: Token) -> None:
        """One more level of `{ }` or `( )`; bounded so no input can exhaust the stack."""
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise ConfigError(f"groups and compounds nested more than {MAX_NESTING} deep",
                              tok.pos, "flatten the configuration")

    def expect(self, kind: str, what: str, hint: str | None = None) -> Token:
        tok = self.lex.peek()
        if tok.kind != kind:
            raise ConfigError(f"expected {what}, found {tok.describe()}", tok.pos, hint)
        return self.lex.next()

    def accept(self, kind: str) -> Token | None:
        if self.lex.peek().kind == kind:
            return self.lex.next()
        return None

    # -- statements ----------------------------------------------------------------

    def parse(self) -> ast.Config:
        statements = self.statements(closers={"eof"})
        self.expect("eof", "a statement")
        return ast.Config(self.file, self.text, statements)

    def statements(self, closers: set[str]) -> list[ast.Statement]:
        out: list[ast.Statement] = []
        while True:
            tok = self.lex.peek()
            if tok.kind in closers:
                return out
            if tok.kind == ";":
                self.lex.next()
                continue
            out.append(self.statement())

    def statement(self) -> ast.Statement:
        tok = self.lex.peek()
        if tok.kind == "keyword":
            if tok.text == "elementclass":
                return self.elementclass()
            self.lex.next()
            open_tok = self.expect("(", f"'(' after '{tok.text}'",
                                   f"write {tok.text}(...)")
            return ast.Directive(tok.text, self.lex.config_string(open_tok.pos), tok.pos)
        if tok.kind in _ELEMENT_START or tok.kind in ("->", "=>"):
            return self.connection()
        hint = None
        if tok.kind == "number":
            hint = "port numbers go in brackets, as in a[1] -> [0]b"
        elif tok.kind == "var":
            hint = "parameters like $x are only expanded inside configuration strings"
        raise ConfigError(f"expected a statement, found {tok.describe()}", tok.pos, hint)

    def elementclass(self) -> ast.ElementClassDef:
        kw = self.lex.next()
        name = self.expect("ident", "a class name after 'elementclass'",
                           "write elementclass Name { input -> ... -> output }")
        tok = self.lex.peek()
        if tok.kind == "{":
            cls = self.compound()
            cls.name = name.text
        elif tok.kind == "ident":
            self.lex.next()
            cls = ast.ClassName(tok.text, tok.pos)
        else:
            raise ConfigError(f"expected '{{' or a class name after 'elementclass {name.text}', "
                              f"found {tok.describe()}", tok.pos)
        return ast.ElementClassDef(name.text, kw.pos, cls)

    # -- connections ---------------------------------------------------------------

    def connection(self) -> ast.Connection:
        start = self.lex.peek().pos
        hops = [self.element_list(first=True)]
        arrows, arrow_pos = [], []
        while self.lex.peek().kind in ("->", "=>"):
            arrow = self.lex.next()
            arrows.append(arrow.kind)
            arrow_pos.append(arrow.pos)
            nxt = self.lex.peek()
            if nxt.kind in ("->", "=>"):
                raise ConfigError(f"expected an element after '{arrow.kind}', found "
                                  f"{nxt.describe()}", nxt.pos)
            if nxt.kind in _ELEMENT_START:
                hops.append(self.element_list(first=False))
            else:
                hops.append([])  # implicit `output` (inside groups and compounds)
        if not arrows and not hops[0]:
            tok = self.lex.peek()
            raise ConfigError(f"expected an element, found {tok.describe()}", tok.pos)
        return ast.Connection(hops, arrows, arrow_pos, start)

    def element_list(self, first: bool) -> list[ast.ElementUse]:
        if first and self.lex.peek().kind in ("->", "=>"):
            return []  # implicit `input`
        uses = [self.element(first)]
        while self.accept(","):
            tok = self.lex.peek()
            if tok.kind not in _ELEMENT_START:
                raise ConfigError(f"expected an element after ',', found {tok.describe()}", tok.pos)
            uses.append(self.element(first))
        return uses

    def element(self, first: bool) -> ast.ElementUse:
        in_ports = self.ports() if self.lex.peek().kind == "[" else None
        tok = self.lex.peek()
        if tok.kind not in ("ident", "{", "("):
            if in_ports is None:
                raise ConfigError(f"expected an element, found {tok.describe()}", tok.pos)
            # A bare port: `[0] -> ...` means input[0], `... -> [1]` means [1]output.
            if first:
                return ast.ElementUse(ast.Name("input", in_ports.pos), None, in_ports)
            return ast.ElementUse(ast.Name("output", in_ports.pos), in_ports, None)
        ref = self.element_ref()
        out_ports = self.ports() if self.lex.peek().kind == "[" else None
        return ast.ElementUse(ref, in_ports, out_ports)

    def ports(self) -> ast.Port:
        open_tok = self.lex.next()
        numbers = []
        while True:
            tok = self.lex.peek()
            if tok.kind != "number":
                raise ConfigError(f"expected a port number, found {tok.describe()}", tok.pos,
                                  "ports are written [0], [1], or [0, 1]")
            self.lex.next()
            numbers.append(int(tok.text))
            if not self.accept(","):
                break
        self.expect("]", "']' after port number")
        return ast.Port(numbers, open_tok.pos)

    def element_ref(self) -> ast.ElementRef:
        tok = self.lex.peek()
        if tok.kind == "{":
            cls = self.compound()
            return ast.Anonymous(cls, self.opt_config(), tok.pos)
        self.lex.next()
        if tok.kind == "(":
            self.enter(tok)
            body = self.statements(closers={")", "eof"})
            self.expect(")", "')' closing the element group", f"the group opened at {tok.pos}")
            self.depth -= 1
            return ast.Group(body, tok.pos)
        # an identifier
        if self.accept("::"):
            cls_tok = self.lex.peek()
            if cls_tok.kind == "ident":
                self.lex.next()
                cls: ast.ClassSpec = ast.ClassName(cls_tok.text, cls_tok.pos)
            elif cls_tok.kind == "{":
                cls = self.compound()
            else:
                raise ConfigError(f"expected a class name after '{tok.text} ::', found "
                                  f"{cls_tok.describe()}", cls_tok.pos,
                                  f"write {tok.text} :: Counter, for example")
            return ast.Declaration(tok.text, tok.pos, cls, self.opt_config())
        if self.lex.peek().kind == "(":
            return ast.Anonymous(ast.ClassName(tok.text, tok.pos), self.opt_config(), tok.pos)
        return ast.Name(tok.text, tok.pos)

    def opt_config(self):
        if self.lex.peek().kind != "(":
            return None
        open_tok = self.lex.next()
        return self.lex.config_string(open_tok.pos)

    # -- compounds -----------------------------------------------------------------

    def compound(self) -> ast.Compound:
        open_tok = self.expect("{", "'{'")
        self.enter(open_tok)
        bodies, extends = [], False
        while True:
            if self.lex.peek().kind == "...":
                self.lex.next()
                if not bodies:
                    raise ConfigError("'...' must follow at least one definition and '||'",
                                      open_tok.pos)
                extends = True
                break
            body_pos = self.lex.peek().pos
            formals = self.formals()
            statements = self.statements(closers={"||", "}", "eof"})
            bodies.append(ast.CompoundBody(formals, statements, body_pos))
            if not self.accept("||"):
                break
        self.expect("}", "'}' closing the compound", f"the compound opened at {open_tok.pos}")
        self.depth -= 1
        return ast.Compound(bodies, extends, open_tok.pos)

    def formals(self) -> list[ast.Formal]:
        """`$a, KEY $b, __REST__ $c |`, or nothing if the body starts with statements."""
        state = self.lex.mark()
        tok = self.lex.peek()
        if tok.kind == "|":
            self.lex.next()
            return []
        starts_formals = tok.kind == "var"
        if tok.kind == "ident":
            self.lex.next()
            starts_formals = self.lex.peek().kind == "var"
        self.lex.reset(state)
        if not starts_formals:
            return []
        formals: list[ast.Formal] = []
        seen_keyword = seen_rest = False
        while True:
            tok = self.lex.next()
            keyword = None
            if tok.kind == "ident":
                keyword = tok.text
                var = self.expect("var", f"a parameter like $x after '{keyword}'")
            elif tok.kind == "var":
                var = tok
            else:
                raise ConfigError(f"expected a parameter like $x, found {tok.describe()}", tok.pos)
            if seen_rest:
                raise ConfigError("__REST__ must be the last parameter", tok.pos)
            if keyword is None and seen_keyword:
                raise ConfigError(f"positional parameter {var.text} after a keyword parameter",
                                  tok.pos, "list positional parameters first")
            if any(f.var == var.text for f in formals):
                raise ConfigError(f"parameter {var.text} declared twice", var.pos)
            seen_keyword |= keyword is not None
            seen_rest |= keyword == "__REST__"
            formals.append(ast.Formal(var.text, keyword, tok.pos))
            if self.accept("|"):
                return formals
            if not self.accept(","):
                nxt = self.lex.peek()
                raise ConfigError(f"expected ',' or '|' after parameter {var.text}, found "
                                  f"{nxt.describe()}", nxt.pos,
                                  "formals are written { $a, KEY $b | body }")


def parse_text(text: str, file: str = "<config>") -> ast.Config:
    """Parse Click-language text; raises ConfigError at the first syntax error."""
    return Parser(text, file).parse()


def parse_file(path: str) -> ast.Config:
    """Read and parse a file; unreadable files are a ConfigError too."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NfvError(f"{path}: no such file") from None
    except UnicodeDecodeError as e:
        raise NfvError(f"{path}: not a text file (byte {e.start} is not UTF-8)") from None
    except OSError as e:
        raise NfvError(f"{path}: cannot read: {e.strerror}") from None
    return parse_text(text, path)
