"""IPFilter/IPClassifier rules written out as straight-line code for one rule set.

The decision table (decide.py) is the rule set as data: it can be replaced between
two batches without recompiling, which the unikernel needs.  For the rules a
config is compiled with, plain code is several times faster for small sets: each
field the rules use is read once, then the rules are tested in order.  The
generated kernel keeps the table as its fallback: a one-word `override` flag in
the arena, set by whoever loads a new table, sends packets to the table walk.

Both count each packet in the element's `rule_hits` array the same way:
rule_hits[k + 1] for rule k, rule_hits[0] when no rule matches.

Meaning is exactly decide.evaluate's: a field whose bytes are not all in the
packet is absent (value -1 here), a test on an absent field is false and its
negation true; transport fields exist only for their protocols and for the first
fragment (offset 0) of a header with IHL >= 5.
"""
from __future__ import annotations

from nfv import drops
from nfv.classify.ipfilter import FIELDS, And, FalseExpr, FieldTest, Not, Or, TrueExpr

MAX_RULES = 64        # beyond this the table's sub-linear walk wins
MAX_NODES = 4000      # expression nodes across all rules


def size(expr) -> int:
    if isinstance(expr, (And, Or)):
        return 1 + sum(size(t) for t in expr.terms)
    if isinstance(expr, Not):
        return 1 + size(expr.term)
    return 1


def fields_of(expr, out: set) -> set:
    if isinstance(expr, FieldTest):
        out.add(expr.field)
    elif isinstance(expr, (And, Or)):
        for t in expr.terms:
            fields_of(t, out)
    elif isinstance(expr, Not):
        fields_of(expr.term, out)
    return out


def worth_it(exprs) -> bool:
    return len(exprs) <= MAX_RULES and sum(size(e) for e in exprs) <= MAX_NODES


def _var(field: str) -> str:
    return "f_" + field.replace(".", "_")


def condition(expr) -> str:
    """Python source of `expr` over the field variables (absent fields are -1)."""
    if isinstance(expr, TrueExpr):
        return "True"
    if isinstance(expr, FalseExpr):
        return "False"
    if isinstance(expr, Not):
        return f"not ({condition(expr.term)})"
    if isinstance(expr, (And, Or)):
        glue = " and " if isinstance(expr, And) else " or "
        return "(" + glue.join(condition(t) for t in expr.terms) + ")"
    var = _var(expr.field)
    masked = var if expr.mask == FIELDS[expr.field].max else f"({var} & {expr.mask})"
    return f"({var} >= 0 and {masked} {expr.op} {expr.value})"


def _extract(field: str) -> list[str]:
    """Lines that set the field's variable: its value, or -1 when absent."""
    spec = FIELDS[field]
    var = _var(field)
    base = "l3" if spec.header == "ip" else "l4"
    load = {1: "int(pool[{p}])", 2: "load16(pool, {p})", 4: "load32(pool, {p})"}[spec.size]
    value = load.format(p=f"{base} + {spec.offset}")
    if spec.shift:
        value = f"({value} >> {spec.shift})"
    value = f"({value} & {spec.max})"
    fits = f"{base} + {spec.offset + spec.size} <= end"
    if spec.header == "ip":
        return [f"    {var} = {value} if {fits} else -1"]
    protos = " or ".join(f"proto == {p}" for p in sorted(spec.protos)) or "True"
    return [f"    {var} = {value} if l4 >= 0 and ({protos}) and {fits} else -1"]


def kernel_source(name: str, exprs, ports) -> str:
    """A kernel `name(pool, meta, i, t_meta, t_lookup, t_bits, override, rule_hits)`
    for these rules.

    exprs[k] matching sends the packet to ports[k] (-1: drop) and counts it in
    rule_hits[k + 1]; no match drops and counts in rule_hits[0].  rule_hits may be
    left out when the kernel runs as plain Python (the tests of its meaning); in
    the compiled pipeline it is an array and numba folds the `is not None` away.
    """
    used: set[str] = set()
    for e in exprs:
        fields_of(e, used)
    needs_l4 = any(FIELDS[f].header == "l4" for f in used)
    lines = ["from nfv.elements._kernels.packet import ip_header, load16, load32, packet_end",
             "from nfv.elements._kernels.classify import ip_classify as table_walk",
             "",
             "",
             "@kernel",
             f"def {name}(pool, meta, i, t_meta, t_lookup, t_bits, override, rule_hits=None):",
             "    if override[0] != 0:  # the rules were replaced at run time: walk the table",
             "        return table_walk(pool, meta, i, t_meta, t_lookup, t_bits, rule_hits)",
             "    l3 = ip_header(meta, i)",
             "    if l3 < 0:",
             "        l3 = int(meta[i].offset)",
             "    end = packet_end(meta, i)"]
    if needs_l4:
        lines += ["    l4 = -1",
                  "    proto = -1",
                  "    if l3 + 10 <= end:",
                  "        ihl = int(pool[l3]) & 15",
                  "        proto = int(pool[l3 + 9])",
                  "        if ihl >= 5 and (load16(pool, l3 + 6) & 0x1FFF) == 0:",
                  "            l4 = l3 + 4 * ihl"]
    for field in sorted(used):
        lines += _extract(field)
    for k, (expr, port) in enumerate(zip(exprs, ports)):
        result = port if port >= 0 else -drops.FILTERED
        lines += [f"    if {condition(expr)}:", *_count(k + 1, 2), f"        return {result}"]
    lines += [*_count(0, 1), f"    return -{drops.FILTERED}"]
    return "\n".join(lines) + "\n"


def _count(slot: int, indent: int) -> list[str]:
    pad = "    " * indent
    return [f"{pad}if rule_hits is not None:", f"{pad}    rule_hits[{slot}] += 1"]
