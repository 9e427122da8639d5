"""Flattening: compound elements, groups and parameters expanded into primitive elements.

Works like click-flatten.  Each scope (the file, a compound body) is read in
two passes: first its `define`s (simultaneous, as in Click), `elementclass`
statements (visible from the end of their definition on, lexically scoped)
and declarations; then its connections, which become edges between global
element names.  A compound instance `c` is a pair of tunnel ends, `("in", c)`
and `("out", c)`: edges into `c [i]` end at the tunnel, and the body's
`input [i] -> x` starts there.  Once everything is expanded, `resolve_tunnels`
joins the two sides, so the flat graph has only primitive elements.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from nfv.element import Element
from nfv.errors import ConfigError, Pos
from nfv.graph.params import VarEnv, expand, read_defines
from nfv.lang import ast
from nfv.lang.config import ConfigArg, concat, fixed_arg, split_args, split_keyword

MAX_DEPTH = 64  # compound nesting; deeper means a runaway definition

Node = str | tuple[str, str]  # a primitive's name, or a tunnel end ("in"|"out", owner)


@dataclass
class ClassBinding:
    """What a class name means at one point of the source."""

    name: str
    primitive: type[Element] | None = None
    compound: ast.Compound | None = None
    env: "ClassEnv | None" = None      # classes visible inside the compound
    vars: VarEnv | None = None         # parameters visible inside the compound
    previous: "ClassBinding | None" = None  # the definition `|| ...` extends
    poisoned: bool = False  # bound to an unknown class (already reported): uses stay quiet

    def overloads(self) -> list[tuple[ast.CompoundBody | None, "ClassBinding"]]:
        """Bodies in the order Click tries them; (None, b) is a primitive class b reached
        through `|| ...` (it accepts any arguments; its own checks come later)."""
        if self.compound is None:
            return [(None, self)] if self.primitive is not None else []
        own = [(b, self) for b in self.compound.bodies]
        if self.compound.extends and self.previous is not None:
            return own + self.previous.overloads()
        return own


@dataclass
class ClassEnv:
    """A persistent chain of `elementclass` definitions; primitives are the fallback."""

    name: str | None
    binding: ClassBinding | None
    parent: "ClassEnv | None"
    primitives: dict[str, type[Element]]

    def lookup(self, name: str) -> ClassBinding | None:
        env: ClassEnv | None = self
        while env is not None:
            if env.name == name:
                return env.binding
            env = env.parent
        cls = self.primitives.get(name)
        return ClassBinding(name, primitive=cls) if cls else None

    def define(self, name: str, binding: ClassBinding) -> "ClassEnv":
        return ClassEnv(name, binding, self, self.primitives)

    def names(self) -> set[str]:
        out, env = set(self.primitives), self
        while env is not None:
            if env.name:
                out.add(env.name)
            env = env.parent
        return out


class _Reported(Exception):
    """A statement depends on something already reported as an error; skip it quietly."""


@dataclass
class Edge:
    src: Node
    src_port: int
    dst: Node
    dst_port: int
    pos: Pos       # the arrow
    src_pos: Pos   # where the source's output port is written (or the element)
    dst_pos: Pos   # where the destination's input port is written (or the element)
    serial: int = -1  # creation order


@dataclass
class Primitive:
    name: str
    class_name: str
    cls: type[Element] | None
    config: ConfigArg | None
    pos: Pos


@dataclass
class _Instance:
    """A compound instance waiting to be expanded once its scope's port use is known."""

    name: str
    binding: ClassBinding
    config: ConfigArg | None
    pos: Pos
    depth: int


@dataclass
class _Decl:
    name: str
    pos: Pos
    cls: ast.ClassSpec
    config: ConfigArg | None
    cenv: ClassEnv
    node_in: Node | None = None
    node_out: Node | None = None


@dataclass
class _Scope:
    prefix: str
    cenv: ClassEnv
    venv: VarEnv
    io: tuple[Node, Node] | None          # tunnel ends bound to `input` / `output`
    depth: int
    decls: dict[str, _Decl] = field(default_factory=dict)
    anon_count: int = 0


class Flattener:
    """Expands one parsed config into primitives and edges; collects every error it can."""

    def __init__(self, primitives: dict[str, type[Element]]):
        self.primitives = primitives
        self.prims: dict[str, Primitive] = {}
        self.edges: list[Edge] = []
        self.errors: list[ConfigError] = []
        self.requires: list[str] = []
        self.at_tunnel: dict[Node, list[Edge]] = {}  # edges touching each tunnel end
        self.suppressed: set[str] = set()  # primitives whose port checks would repeat an error
        self.group_spans: list[tuple[str, int, int, Pos]] = []  # group owner, inner edge serials
        self.poisoned: set[Node] = set()   # nodes whose edges are dropped after an error
        self.expanding: list[str] = []     # compound class names being expanded (recursion)

    # -- entry ---------------------------------------------------------------------

    def run(self, config: ast.Config, defines: dict[str, ConfigArg]) -> None:
        root_env = ClassEnv(None, None, None, self.primitives)
        globals_env = VarEnv({})
        scope = _Scope("", root_env, globals_env, None, 0)
        self.expand_scope(config.statements, scope, overrides=defines)

    # -- scopes --------------------------------------------------------------------

    def expand_scope(self, statements: list[ast.Statement], scope: _Scope,
                     overrides: dict[str, ConfigArg] | None = None) -> None:
        self.read_defines(statements, scope, overrides or {})
        pending: list[_Instance] = []
        statements_with_classes = list(self.walk_classes(statements, scope))
        for stmt, cenv in statements_with_classes:
            if isinstance(stmt, ast.Connection):
                self.declare(stmt, scope, cenv)
        for stmt, cenv in statements_with_classes:
            if isinstance(stmt, ast.Connection):
                self.connect_reporting(stmt, scope, cenv, pending)
        for inst in pending:
            self.expand_instance(inst)

    def read_defines(self, statements, scope: _Scope, overrides: dict[str, ConfigArg]) -> None:
        values: dict[str, ConfigArg] = {}
        where: dict[str, Pos] = {}
        for stmt in self.flat_statements(statements):
            if isinstance(stmt, ast.Directive) and stmt.kind == "define":
                for name, name_pos, value in read_defines(stmt.config, scope.venv, self.errors):
                    if name in values:
                        self.errors.append(ConfigError(
                            f"parameter {name} defined twice", name_pos,
                            f"first defined at {where[name]}"))
                        continue
                    values[name], where[name] = value, name_pos
            elif isinstance(stmt, ast.Directive):
                self.requires.extend(a.text for a in split_args(stmt.config))
        values.update(overrides)  # command-line values win, as in Click
        if values:
            scope.venv = VarEnv(values, scope.venv)

    def flat_statements(self, statements):
        """Statements of this scope, including those inside element groups (same scope)."""
        for stmt in statements:
            yield stmt
            if isinstance(stmt, ast.Connection):
                for hop in stmt.hops:
                    for use in hop:
                        if isinstance(use.ref, ast.Group):
                            yield from self.flat_statements(use.ref.statements)

    def walk_classes(self, statements, scope: _Scope):
        """Yield (statement, class environment in force there), applying elementclass in order."""
        cenv = scope.cenv
        for stmt in statements:
            if isinstance(stmt, ast.ElementClassDef):
                cenv = self.define_class(stmt, cenv, scope)
                continue
            yield stmt, cenv

    def define_class(self, stmt: ast.ElementClassDef, cenv: ClassEnv, scope: _Scope) -> ClassEnv:
        previous = cenv.lookup(stmt.name)
        if isinstance(stmt.cls, ast.ClassName):
            target = cenv.lookup(stmt.cls.name)
            if target is None:
                self.errors.append(self.unknown_class(stmt.cls.name, stmt.cls.pos, cenv))
                target = ClassBinding(stmt.name, poisoned=True)
            return cenv.define(stmt.name, target)
        if stmt.cls.extends and previous is None:
            self.errors.append(ConfigError(
                f"'...' extends {stmt.name}, but no class {stmt.name} is defined before it",
                stmt.cls.pos, "remove '|| ...' or define the class first"))
        binding = ClassBinding(stmt.name, compound=stmt.cls, env=cenv, vars=scope.venv,
                               previous=previous)
        return cenv.define(stmt.name, binding)

    # -- declarations --------------------------------------------------------------

    def declare(self, stmt: ast.Connection, scope: _Scope, cenv: ClassEnv) -> None:
        declaration_only = not stmt.arrows
        for hop in stmt.hops:
            decls = [u.ref for u in hop if isinstance(u.ref, ast.Declaration)]
            # `a, b :: Counter` alone declares both names (Click's declaration shorthand).
            shorthand = decls[-1] if declaration_only and decls else None
            for use in hop:
                ref = use.ref
                if isinstance(ref, ast.Group):
                    self.declare_group(ref, scope, cenv)
                elif isinstance(ref, ast.Declaration):
                    self.add_decl(ref.name, ref.pos, ref.cls, ref.config, scope, cenv)
                elif isinstance(ref, ast.Name) and shorthand is not None:
                    self.add_decl(ref.name, ref.pos, shorthand.cls, shorthand.config, scope, cenv)

    def declare_group(self, group: ast.Group, scope: _Scope, cenv: ClassEnv) -> None:
        for stmt, inner_cenv in self.walk_classes(group.statements, _Scope(
                scope.prefix, cenv, scope.venv, None, scope.depth)):
            if isinstance(stmt, ast.Connection):
                self.declare(stmt, scope, inner_cenv)

    def add_decl(self, name, pos, cls, config, scope: _Scope, cenv: ClassEnv) -> None:
        if name in ("input", "output") and scope.io is not None:
            self.errors.append(ConfigError(f"'{name}' is reserved inside a compound element",
                                           pos, "choose another name"))
            return
        if name in scope.decls:
            first = scope.decls[name].pos
            self.errors.append(ConfigError(f"redeclaration of element '{name}'", pos,
                                           f"'{name}' was first declared at {first}"))
            return
        scope.decls[name] = _Decl(name, pos, cls, config, cenv)

    # -- connections ---------------------------------------------------------------

    def connect_reporting(self, stmt, scope, cenv, pending) -> None:
        """connect(), with its error recorded (the rest of the scope is still checked)."""
        try:
            self.connect(stmt, scope, cenv, pending)
        except ConfigError as e:
            self.errors.append(e)
        except _Reported:
            pass

    def connect(self, stmt: ast.Connection, scope: _Scope, cenv: ClassEnv,
                pending: list[_Instance]) -> None:
        last = len(stmt.hops) - 1
        groups_before = len(self.group_spans)
        resolved = []  # per hop: list of (in_node, out_node, use)
        for i, hop in enumerate(stmt.hops):
            if not hop:  # an implicit `input` (start) or `output` (end)
                implicit = "input" if i == 0 else "output"
                pos = stmt.arrow_pos[0] if i == 0 else stmt.arrow_pos[-1]
                if scope.io is None:
                    arrow = stmt.arrows[0] if i == 0 else stmt.arrows[-1]
                    where = "before" if i == 0 else "after"
                    self.errors.append(ConfigError(
                        f"expected an element {where} '{arrow}'", pos,
                        "only compounds and groups may leave 'input' or 'output' implicit"))
                    node = self.new_poison()
                    resolved.append([(node, node, ast.ElementUse(ast.Name(implicit, pos)))])
                    continue
                hop = [ast.ElementUse(ast.Name(implicit, pos))]
            resolved.append([self.resolve_or_poison(use, scope, cenv, pending, i > 0, i < last)
                             for use in hop])
        for i, arrow in enumerate(stmt.arrows):
            left = [(n_out, p, u.out_ports.pos if u.out_ports else u.ref.pos)
                    for (_, n_out, u) in resolved[i] for p in self.ports(u.out_ports, u.ref, 1)]
            right = [(n_in, p, u.in_ports.pos if u.in_ports else u.ref.pos)
                     for (n_in, _, u) in resolved[i + 1] for p in self.ports(u.in_ports, u.ref, 0)]
            if arrow == "=>":
                try:
                    left, right = self.many_to_many(left, right, resolved[i], resolved[i + 1],
                                                    stmt.arrow_pos[i])
                except ConfigError as e:
                    self.errors.append(e)
                    self.suppress(resolved[i] + resolved[i + 1])
                    continue
                pairs = list(zip(left, right))
            else:
                pairs = [(a, b) for a in left for b in right]
            for (src, sp, spos), (dst, dp, dpos) in pairs:
                self.add_edge(Edge(src, sp, dst, dp, stmt.arrow_pos[i], spos, dpos))
        self.check_groups(groups_before)

    def suppress(self, resolved) -> None:
        """After an error in a statement, its elements' port checks would only repeat it."""
        for n_in, n_out, _ in resolved:
            for node in (n_in, n_out):
                if isinstance(node, str):
                    self.suppressed.add(node)
                else:
                    self.poisoned.add(node)

    def new_poison(self) -> Node:
        node = ("poison", str(len(self.poisoned)))
        self.poisoned.add(node)
        return node

    def add_edge(self, edge: Edge) -> None:
        edge.serial = len(self.edges)
        self.edges.append(edge)
        for node in (edge.src, edge.dst):
            if isinstance(node, tuple):
                self.at_tunnel.setdefault(node, []).append(edge)

    def resolve_or_poison(self, use, scope, cenv, pending, as_dst, as_src):
        """resolve(), but an unresolvable reference becomes a poisoned node (error recorded),
        so its neighbours are not also reported as unconnected."""
        try:
            return self.resolve(use, scope, cenv, pending, as_dst, as_src)
        except ConfigError as e:
            self.errors.append(e)
        except _Reported:
            pass
        node = self.new_poison()
        return node, node, use

    @staticmethod
    def ports(port: ast.Port | None, ref: ast.ElementRef | None = None,
              side: int = 0) -> list[int]:
        """Port numbers written, else [0]; a group without ports means all of its ports."""
        if port:
            return port.numbers
        if isinstance(ref, ast.Group):
            return list(range(max(body_ports(ref.statements)[side], 1)))
        return [0]

    def many_to_many(self, left, right, left_uses, right_uses, pos: Pos):
        """`=>` pairs outputs with inputs; a lone element without ports takes ports 0..n-1."""
        if len(left) != len(right):
            if len(left_uses) == 1 and left_uses[0][2].out_ports is None and len(left) == 1:
                node, _, p = left[0]
                left = [(node, k, p) for k in range(len(right))]
            elif len(right_uses) == 1 and right_uses[0][2].in_ports is None and len(right) == 1:
                node, _, p = right[0]
                right = [(node, k, p) for k in range(len(left))]
            else:
                raise ConfigError(f"'=>' joins {len(left)} output port(s) to {len(right)} "
                                  "input port(s)", pos,
                                  "list as many ports on each side, e.g. c[0,1] => a, b")
        return left, right

    def resolve(self, use: ast.ElementUse, scope: _Scope, cenv: ClassEnv,
                pending: list[_Instance], as_dst: bool, as_src: bool) -> tuple[Node, Node, ast.ElementUse]:
        """The (input node, output node) an element reference stands for."""
        ref = use.ref
        if isinstance(ref, ast.Group):
            return self.expand_group(ref, scope, cenv, pending) + (use,)
        if isinstance(ref, ast.Declaration):
            decl = scope.decls.get(ref.name)
            if decl is None:  # a refused declaration, already reported
                raise _Reported()
            return self.decl_nodes(decl, scope, pending) + (use,)
        if isinstance(ref, ast.Anonymous):
            return self.anonymous(ref.cls, ref.config, ref.pos, scope, cenv, pending) + (use,)
        name = ref.name
        if name in scope.decls:
            return self.decl_nodes(scope.decls[name], scope, pending) + (use,)
        if name in ("input", "output") and scope.io is not None:
            if name == "input" and as_dst:
                raise ConfigError("'input' has no input ports: it stands for the compound's "
                                  "inputs, so it can only start a connection", ref.pos)
            if name == "output" and as_src:
                raise ConfigError("'output' has no output ports: it stands for the compound's "
                                  "outputs, so it can only end a connection", ref.pos)
            node = scope.io[0] if name == "input" else scope.io[1]
            return node, node, use
        binding = cenv.lookup(name)
        if binding is not None:
            return self.anonymous(ast.ClassName(name, ref.pos), None, ref.pos, scope, cenv,
                                  pending) + (use,)
        if name in self.expanding:
            raise self.recursive(name, ref.pos)
        raise self.undeclared(name, ref.pos, scope, cenv)

    def recursive(self, name: str, pos: Pos) -> ConfigError:
        return ConfigError(f"recursive elementclass '{name}': a compound cannot contain itself",
                           pos, "an element class is visible only after its definition ends")

    def undeclared(self, name: str, pos: Pos, scope: _Scope, cenv: ClassEnv) -> ConfigError:
        if name in ("input", "output"):
            return ConfigError(f"'{name}' used outside a compound element", pos,
                               "'input' and 'output' exist only inside { ... } and ( ... )")
        candidates = list(scope.decls) + sorted(cenv.names())
        close = difflib.get_close_matches(name, candidates, n=1)
        hint = f"did you mean '{close[0]}'?" if close else \
            f"declare it first, e.g. {name} :: Counter"
        return ConfigError(f"undeclared element '{name}' (and no element class of that name)",
                           pos, hint)

    def unknown_class(self, name: str, pos: Pos, cenv: ClassEnv) -> ConfigError:
        close = difflib.get_close_matches(name, sorted(cenv.names()), n=1, cutoff=0.6)
        if not close:
            lowered = {n.lower(): n for n in cenv.names()}
            close = [lowered[name.lower()]] if name.lower() in lowered else []
        hint = f"did you mean {close[0]}?" if close else "run 'nfv doc' for the element classes"
        return ConfigError(f"unknown element class '{name}'", pos, hint)

    def decl_nodes(self, decl: _Decl, scope: _Scope, pending) -> tuple[Node, Node]:
        if decl.node_in is None:
            decl.node_in, decl.node_out = self.instantiate(
                scope.prefix + decl.name, decl.cls, decl.config, decl.pos, scope, decl.cenv,
                pending)
        return decl.node_in, decl.node_out

    def anonymous(self, cls: ast.ClassSpec, config, pos, scope: _Scope, cenv: ClassEnv,
                  pending) -> tuple[Node, Node]:
        base = cls.name if isinstance(cls, ast.ClassName) else (cls.name or "")
        while True:
            scope.anon_count += 1
            name = f"{base}@{scope.anon_count}"
            if name not in scope.decls:
                break
        return self.instantiate(scope.prefix + name, cls, config, pos, scope, cenv, pending)

    def instantiate(self, gname: str, cls: ast.ClassSpec, config, pos, scope: _Scope,
                    cenv: ClassEnv, pending) -> tuple[Node, Node]:
        if isinstance(cls, ast.Compound):
            binding = ClassBinding(cls.name or "compound", compound=cls, env=cenv,
                                   vars=scope.venv)
        else:
            binding = cenv.lookup(cls.name)
            if binding is None or binding.poisoned:
                if binding is None:
                    self.errors.append(self.recursive(cls.name, cls.pos)
                                       if cls.name in self.expanding
                                       else self.unknown_class(cls.name, cls.pos, cenv))
                self.add_prim(Primitive(gname, cls.name, None, None, pos))
                return gname, gname
        try:
            expanded = expand(config, scope.venv) if config is not None else None
        except ConfigError as e:
            self.errors.append(e)
            expanded = None
            if binding.primitive is not None:
                self.add_prim(Primitive(gname, binding.name, None, None, pos))
                return gname, gname
        if binding.compound is None:
            self.add_prim(Primitive(gname, binding.primitive.class_name,
                                    binding.primitive, expanded, pos))
            return gname, gname
        pending.append(_Instance(gname, binding, expanded, pos, scope.depth + 1))
        return ("in", gname), ("out", gname)

    def add_prim(self, prim: Primitive) -> None:
        """Record a primitive; a flat name used twice (x/y declared, and y inside x) is an error."""
        first = self.prims.get(prim.name)
        if first is not None:
            self.errors.append(ConfigError(
                f"two elements would both be named '{prim.name}'", prim.pos,
                f"the other is declared at {first.pos}; rename one (a '/' in a name is also "
                "how compound components are named)"))
            prim = Primitive(prim.name + "@clash", prim.class_name, None, None, prim.pos)
            self.suppressed.add(first.name)
        self.prims[prim.name] = prim

    # -- groups and compounds ------------------------------------------------------

    def expand_group(self, group: ast.Group, scope: _Scope, cenv: ClassEnv,
                     pending) -> tuple[Node, Node]:
        """A group shares its scope's names; only `input`/`output` are its own tunnel."""
        scope.anon_count += 1
        owner = f"{scope.prefix}@group{scope.anon_count}"
        inner = _Scope(scope.prefix, cenv, scope.venv, (("in", owner), ("out", owner)),
                       scope.depth)
        inner.decls = scope.decls
        inner.anon_count = scope.anon_count
        first = len(self.edges)
        for stmt, inner_cenv in self.walk_classes(group.statements, inner):
            if isinstance(stmt, ast.Connection):
                self.connect_reporting(stmt, inner, inner_cenv, pending)
        scope.anon_count = inner.anon_count
        self.group_spans.append((owner, first, len(self.edges), group.pos))
        return ("in", owner), ("out", owner)

    def check_groups(self, mark: int) -> None:
        """Ports of the groups of the statement just connected (click.5's rules)."""
        spans, self.group_spans = self.group_spans[mark:], self.group_spans[:mark]
        for owner, first, last, pos in spans:
            for kind, label in (("in", "input"), ("out", "output")):
                node = (kind, owner)
                if node in self.poisoned:
                    continue
                edges = self.at_tunnel.get(node, [])
                inner = [e for e in edges if first <= e.serial < last]
                outer = [e for e in edges if not first <= e.serial < last]
                inside = {(e.src_port if kind == "in" else e.dst_port) for e in inner}
                outside = {}
                for e in outer:
                    outside.setdefault(e.dst_port if kind == "in" else e.src_port, e)
                gaps = [p for p in range(max(inside) + 1 if inside else 0) if p not in inside]
                if gaps:
                    self.errors.append(ConfigError(
                        f"the group uses {label} [{max(inside)}] but not {label} "
                        f"{port_list(gaps)}", pos, "group ports are numbered from 0 without gaps"))
                    continue  # what the outside connects would only repeat this
                for p, e in sorted(outside.items()):
                    if p not in inside:
                        self.errors.append(ConfigError(
                            f"the group has no {label} [{p}]",
                            e.dst_pos if kind == "in" else e.src_pos,
                            f"inside, it uses {len(inside)} {label}(s)"))
                for p in sorted(inside - set(outside)):
                    self.errors.append(ConfigError(
                        f"{label} [{p}] of the group is not connected outside it", pos,
                        "every port a group uses inside must be connected outside"))

    def expand_instance(self, inst: _Instance) -> None:
        if inst.depth > MAX_DEPTH:
            self.errors.append(ConfigError(
                f"compound elements nested more than {MAX_DEPTH} deep at '{inst.name}'", inst.pos,
                "an elementclass probably uses itself"))
            self.poisoned.update({("in", inst.name), ("out", inst.name)})
            return
        used_in = self.ports_used(("in", inst.name), as_dst=True)
        used_out = self.ports_used(("out", inst.name), as_dst=False)
        args = split_args(inst.config) if inst.config is not None else []
        reasons = []
        for exact in (True, False):
            for body, owner in inst.binding.overloads():
                if body is None:
                    self.expand_primitive(inst, owner, used_in, used_out)
                    return
                n_in, n_out = body_ports(body.statements)
                fits = (used_in == n_in and used_out == n_out) if exact else \
                    (used_in <= n_in and used_out <= n_out)
                values = bind_formals(body.formals, args)
                if isinstance(values, str):
                    reasons.append(f"{signature(body)}: {values}")
                    continue
                if not fits:
                    reasons.append(f"{signature(body)}: has {n_in} input(s) and {n_out} "
                                   f"output(s), {used_in} and {used_out} used")
                    continue
                self.expand_body(inst, body, owner, values)
                return
        name = inst.binding.name
        self.poisoned.update({("in", inst.name), ("out", inst.name)})
        self.errors.append(ConfigError(
            f"no definition of {name} fits '{inst.name.rsplit('/', 1)[-1]}' "
            f"({len(args)} argument(s), {used_in} input(s), {used_out} output(s) used)",
            inst.pos, "; ".join(dict.fromkeys(reasons))))

    def expand_primitive(self, inst: _Instance, binding: ClassBinding, used_in: int,
                         used_out: int) -> None:
        """An overload chain that ends in a primitive class: the instance is that primitive."""
        name = inst.name
        self.add_prim(Primitive(name, binding.primitive.class_name, binding.primitive,
                                inst.config, inst.pos))
        for k in range(used_in):
            self.add_edge(Edge(("in", name), k, name, k, inst.pos, inst.pos, inst.pos))
        for k in range(used_out):
            self.add_edge(Edge(name, k, ("out", name), k, inst.pos, inst.pos, inst.pos))

    def poisoned_elements(self) -> set[str]:
        """Primitives next to a poisoned node: their port checks would only repeat an error."""
        out = set(self.suppressed)
        seen = set(self.poisoned)
        queue = list(self.poisoned)
        while queue:  # poison spreads through tunnels, stopping at primitives
            node = queue.pop()
            for e in self.at_tunnel.get(node, []):
                for other in (e.src, e.dst):
                    if isinstance(other, str):
                        out.add(other)
                    elif other not in seen:
                        seen.add(other)
                        queue.append(other)
        return out

    def ports_used(self, node: Node, as_dst: bool) -> int:
        edges = self.at_tunnel.get(node, [])
        ports = [e.dst_port for e in edges if e.dst == node] if as_dst else \
            [e.src_port for e in edges if e.src == node]
        return max(ports) + 1 if ports else 0

    def expand_body(self, inst: _Instance, body: ast.CompoundBody, owner: ClassBinding,
                    values: dict[str, ConfigArg]) -> None:
        venv = VarEnv(values, owner.vars)
        scope = _Scope(inst.name + "/", owner.env, venv, (("in", inst.name), ("out", inst.name)),
                       inst.depth)
        if owner.compound and owner.compound.name:
            # Inside its own body a compound's name means the definition it shadows.
            scope.cenv = owner.env
        before = len(self.edges)
        self.expanding.append(owner.name)
        try:
            self.expand_scope(body.statements, scope)
        finally:
            self.expanding.pop()
        self.check_compound_ports(inst, before)

    def check_compound_ports(self, inst: _Instance, first_inner: int) -> None:
        """Body ports numbered without gaps; the outside uses only ports the body has."""
        for kind, label in (("in", "input"), ("out", "output")):
            node = (kind, inst.name)
            edges = self.at_tunnel.get(node, [])
            inner = [e for e in edges if e.serial >= first_inner]
            inside = {e.src_port for e in inner if e.src == node} if kind == "in" else \
                {e.dst_port for e in inner if e.dst == node}
            for p in range(max(inside) + 1 if inside else 0):
                if p not in inside:
                    self.errors.append(ConfigError(
                        f"compound '{inst.name}' uses {label} [{max(inside)}] but not "
                        f"{label} [{p}]", inst.pos, "compound ports must be numbered from 0 "
                        "without gaps"))
            for e in edges:
                outside = e.serial < first_inner and (e.dst == node if kind == "in"
                                                      else e.src == node)
                port = e.dst_port if kind == "in" else e.src_port
                if outside and port not in inside:
                    self.errors.append(ConfigError(
                        f"'{inst.name}' has no {label} [{port}]",
                        e.dst_pos if kind == "in" else e.src_pos,
                        f"its definition uses {len(inside)} {label}(s)"))


def port_list(ports: list[int]) -> str:
    """[0-3, 5]: ports as compact ranges."""
    runs, start = [], None
    for k, p in enumerate(ports):
        if start is None:
            start = p
        if k + 1 == len(ports) or ports[k + 1] != p + 1:
            runs.append(f"{start}" if start == p else f"{start}-{p}")
            start = None
    return "[" + ", ".join(runs) + "]"


def body_ports(statements: list[ast.Statement]) -> tuple[int, int]:
    """How many inputs and outputs a compound body or group uses (scanned, not expanded)."""
    n_in = n_out = 0
    for stmt in statements:
        if not isinstance(stmt, ast.Connection):
            continue
        for i, hop in enumerate(stmt.hops):
            uses = hop or [ast.ElementUse(ast.Name("input" if i == 0 else "output", stmt.pos))]
            for use in uses:
                if isinstance(use.ref, ast.Name) and use.ref.name == "input" and i < len(stmt.arrows):
                    count = len(stmt.hops[i + 1]) if stmt.arrows[i] == "=>" and \
                        use.out_ports is None else max(Flattener.ports(use.out_ports)) + 1
                    n_in = max(n_in, count)
                if isinstance(use.ref, ast.Name) and use.ref.name == "output" and i > 0:
                    count = len(stmt.hops[i - 1]) if stmt.arrows[i - 1] == "=>" and \
                        use.in_ports is None else max(Flattener.ports(use.in_ports)) + 1
                    n_out = max(n_out, count)
    return n_in, n_out


def signature(body: ast.CompoundBody) -> str:
    parts = [f.var if f.keyword is None else f"{f.keyword} {f.var}" for f in body.formals]
    return "{ " + ", ".join(parts) + " | ... }" if parts else "{ no parameters }"


def bind_formals(formals: list[ast.Formal], args: list[ConfigArg]) -> dict[str, ConfigArg] | str:
    """Match a compound's formals with actual arguments; a string says why they don't fit."""
    positional = [f for f in formals if f.keyword is None]
    keywords = {f.keyword: f for f in formals if f.keyword not in (None, "__REST__")}
    rest = next((f for f in formals if f.keyword == "__REST__"), None)
    values: dict[str, ConfigArg] = {}
    leftovers: list[ConfigArg] = []
    next_positional = 0
    for arg in args:
        kw = split_keyword(arg)
        if kw and kw[0] in keywords and keywords[kw[0]].var not in values:
            values[keywords[kw[0]].var] = kw[1]
        elif next_positional < len(positional):
            values[positional[next_positional].var] = arg
            next_positional += 1
        else:
            leftovers.append(arg)
    if next_positional < len(positional):
        return f"too few arguments (missing {positional[next_positional].var})"
    for key, formal in keywords.items():
        if formal.var not in values:
            return f"missing '{key}' parameter"
    if rest is not None:
        values[rest.var] = join_args(leftovers, rest.pos)
    elif leftovers:
        return "too many arguments"
    return values


def join_args(args: list[ConfigArg], fallback: Pos) -> ConfigArg:
    """Arguments joined back with ', ' (for __REST__), keeping their maps."""
    pieces: list[ConfigArg] = []
    for i, a in enumerate(args):
        if i:
            pieces.append(fixed_arg(", ", a.pos))
        pieces.append(a)
    return concat(pieces, fallback)


def resolve_tunnels(edges: list[Edge]) -> list[Edge]:
    """Join tunnel ends so every edge goes from a primitive to a primitive.

    An edge into ("in", c) port k continues along every edge leaving ("in", c)
    port k, and so on through nested compounds; loops of tunnels are ignored.
    """
    leaving: dict[tuple[Node, int], list[Edge]] = {}
    for e in edges:
        if isinstance(e.src, tuple):
            leaving.setdefault((e.src, e.src_port), []).append(e)
    out: list[Edge] = []
    seen_keys = set()

    def follow(start: Edge, hop: Edge, visited: frozenset) -> None:
        if not isinstance(hop.dst, tuple):
            key = (start.src, start.src_port, hop.dst, hop.dst_port)
            if key not in seen_keys:
                seen_keys.add(key)
                out.append(Edge(start.src, start.src_port, hop.dst, hop.dst_port, start.pos,
                                start.src_pos, hop.dst_pos))
            return
        tunnel = (hop.dst, hop.dst_port)
        if tunnel in visited:
            return
        for nxt in leaving.get(tunnel, []):
            follow(start, nxt, visited | {tunnel})

    for e in edges:
        if not isinstance(e.src, tuple):
            follow(e, e, frozenset())
    return out
