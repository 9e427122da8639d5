"""Classifiers: choose each packet's output from its contents.

The pattern languages live in `nfv.classify` (Classifier's `offset/value%mask`
clauses, and the tcpdump-like expressions of IPClassifier and IPFilter); these
classes declare the elements and derive their output counts from the patterns.
"""
from __future__ import annotations

from nfv.classify.ipfilter import parse_expr, parse_rule
from nfv.classify.patterns import parse_pattern
from nfv.element import Element, Handler, Kernel, Rest, StateArray



def _table_state(e: Element) -> tuple[StateArray, ...]:
    """The element's rules compiled to a decision table (once), as arena arrays."""
    from nfv.classify import decide

    table = getattr(e, "_table", None)
    if table is None:
        rules = e.conf[e.rest.name]
        compile_rules = {"Classifier": decide.compile_classifier,
                         "IPClassifier": decide.compile_ipclassifier,
                         "IPFilter": decide.compile_ipfilter}[e.class_name]
        try:
            table = compile_rules(rules)
        except decide.TooComplex as err:
            where = e.rest_given[err.index] if err.index is not None else None
            raise e.error(err.message, where, hint=err.hint) from None
        e._table = table
    return tuple(StateArray(name, a.dtype.str, a.size, a)
                 for name, a in zip(("table_meta", "table_lookup", "table_bits"), table.arrays))


def pattern_source(name: str, patterns) -> str:
    """A kernel testing Classifier patterns in order with plain byte compares.

    Same meaning as the decision table (decide.evaluate_pattern): a clause whose
    bytes lie beyond the packet does not match, so its negation does.
    """
    from nfv import drops

    lines = ["@kernel", f"def {name}(pool, meta, i):",
             "    start = int(meta[i].offset)", "    n = int(meta[i].length)"]
    for port, pattern in enumerate(patterns):
        terms = []
        for c in pattern.clauses:
            parts = [f"n >= {c.offset + len(c.value)}"]
            for k, (value, mask) in enumerate(zip(c.value, c.mask)):
                at = f"pool[start + {c.offset + k}]"
                if mask == 0xFF:
                    parts.append(f"{at} == {value}")
                elif mask:
                    parts.append(f"({at} & {mask}) == {value}")
            test = "(" + " and ".join(parts) + ")"
            terms.append(f"not {test}" if c.negated else test)
        cond = " and ".join(terms) if terms and not pattern.match_all else "True"
        lines.append(f"    if {cond}:")
        lines.append(f"        return {port}")
    lines.append(f"    return -{drops.FILTERED}")
    return "\n".join(lines) + "\n"


class _DecisionElement(Element, abstract=True):
    """What the three classifiers share: rules compiled to a decision table in the arena."""

    matcher = ""  # the kernel in nfv.elements._kernels.classify

    def state(self):
        return _table_state(self)

    def kernel(self):
        return Kernel(f"classify:{self.matcher}")

    def read_handler(self, name, state):
        if name == "program":
            return self._table.describe() if hasattr(self, "_table") else ""
        return super().read_handler(name, state)


class _IPRules(_DecisionElement, abstract=True):
    """IPFilter and IPClassifier: small rule sets also as code (nfv/classify/specialise.py),
    and a packet count per rule.

    Both the table walk and the generated code find the first matching rule's index,
    count the packet in `rule_hits` (slot 0: no rule matched; slot k + 1: rule k) and
    send it to that rule's port, which the table keeps with its rules (so a table
    replaced at run time brings its own ports).
    """

    handlers = (Handler("program"), Handler("rule_counts"),
                Handler("reset_counts", read=False, write=True))

    def rules(self) -> tuple[list, list[int]]:
        """(expressions, output ports) in order."""
        raise NotImplementedError

    def specialised(self) -> bool:
        from nfv.classify import specialise

        return specialise.worth_it(self.rules()[0])

    def state(self):
        table = super().state()
        hits = StateArray("rule_hits", "u8", len(self.rules()[0]) + 1)
        if not self.specialised():
            return table + (hits,)
        # Set to 1 by whoever replaces the table at run time: the code then defers to it.
        return table + (StateArray("override", "u4", 1), hits)

    def read_handler(self, name, state):
        if name == "rule_counts":
            return self.rule_counts(state["rule_hits"])
        return super().read_handler(name, state)

    def rule_counts(self, hits) -> str:
        """One line per rule, `INDEX  PACKETS  RULE` (as written), then the packets
        that matched no rule, columns aligned as in `iptables -L -v`."""
        texts = [" ".join(arg.text.split()) for arg in self.rest_given]
        counts = [int(n) for n in hits[1:len(texts) + 1]] + [int(hits[0])]
        index_width = len(str(max(len(texts) - 1, 0)))
        count_width = max(len(str(n)) for n in counts)
        rows = [(str(k), text) for k, text in enumerate(texts)] + [("-", "(no rule matched)")]
        return "\n".join(f"{index:>{index_width}}  {n:>{count_width}}  {text}"
                         for (index, text), n in zip(rows, counts))

    def kernel(self):
        if not self.specialised():
            return super().kernel()
        from nfv.classify import specialise

        exprs, ports = self.rules()
        name = "rules_" + "".join(c if c.isalnum() else "_" for c in self.name)
        source = specialise.kernel_source(name, exprs, ports)
        return Kernel(f"generated:{name}", source=source)


class Classifier(_DecisionElement):
    """Classifier(PATTERN...)

    Sends each packet to the output of the first PATTERN it matches, by raw
    bytes at fixed offsets; packets that match none are dropped.

    Ports
        1 input, one output per PATTERN (1/N).

    Arguments
        PATTERN  space-separated clauses `OFFSET/VALUE` or `OFFSET/VALUE%MASK`, all
                 of which must match: OFFSET in decimal, VALUE and MASK in hex
                 (`?` is a don't-care nibble), `!` before a clause negates it.
                 A pattern `-` matches every packet.

    Handlers
        program (read)  the compiled decision program, step by step.

    Example
        c :: Classifier(12/0806 20/0001, 12/0806 20/0002, 12/0800, -);

    See also
        IPClassifier, IPFilter
    """

    port_count = "1/1-"
    matcher = "raw_classify"
    rest = Rest("PATTERN", parse_pattern, min=1)
    handlers = (Handler("program"),)
    # Up to this many clauses the patterns become straight-line code (Classifier has no
    # handler that changes them at run time, so they are part of the graph's shape).
    MAX_SPECIALISED_CLAUSES = 32

    def configure(self) -> None:
        self.port_count = f"1/{len(self.conf['PATTERN'])}"

    def state(self):
        return () if self.specialised() else super().state()

    def kernel(self):
        if not self.specialised():
            return super().kernel()
        name = "classifier_" + "".join(c if c.isalnum() else "_" for c in self.name)
        return Kernel(f"generated:{name}", source=pattern_source(name, self.conf["PATTERN"]))

    def specialised(self) -> bool:
        return sum(len(p.clauses) for p in self.conf["PATTERN"]) <= self.MAX_SPECIALISED_CLAUSES

    def read_handler(self, name, state):
        if name == "program" and self.specialised():
            return pattern_source("classifier", self.conf["PATTERN"])
        return super().read_handler(name, state)


class IPClassifier(_IPRules):
    """IPClassifier(PATTERN...)

    Sends each IP packet to the output of the first PATTERN it matches, written
    in tcpdump-like syntax; packets that match none are dropped.  Packets need
    their IP header annotation (CheckIPHeader or MarkIPHeader sets it).

    Ports
        1 input, one output per PATTERN (1/N).

    Arguments
        PATTERN  an expression such as `tcp dst port 80`, `src net 10.0.0.0/8 and icmp`,
                 `ip ttl < 5`; `-`, `any` or `all` matches every packet.

    Handlers
        program (read)        the compiled decision program, step by step.
        rule_counts (read)    one line per PATTERN: its index, the packets it matched
                              and its text; a last line `-` counts the packets that
                              matched none.
        reset_counts (write)  sets the rule counts to zero.

    Example
        ipc :: IPClassifier(tcp dst port 80, udp, -);

    See also
        IPFilter, Classifier, CheckIPHeader
    """

    port_count = "1/1-"
    matcher = "ip_classify"
    rest = Rest("PATTERN", parse_expr, min=1)

    def configure(self) -> None:
        self.port_count = f"1/{len(self.conf['PATTERN'])}"

    def rules(self):
        exprs = self.conf["PATTERN"]
        return exprs, list(range(len(exprs)))


class IPFilter(_IPRules):
    """IPFilter(RULE...)

    Filters IP packets with rules `ACTION PATTERN`, tried in order; the first
    rule whose PATTERN matches decides.  Packets that match no rule are dropped.
    Packets need their IP header annotation (CheckIPHeader or MarkIPHeader sets it).

    Ports
        1 input; outputs 0 up to the highest output a rule names (at least 1).

    Arguments
        RULE  `ACTION PATTERN`: ACTION is `allow` (output 0), `drop` or `deny`
              (drop the packet), or an output number; PATTERN uses IPClassifier's
              syntax.

    Handlers
        program (read)        the compiled decision program, step by step.
        rule_counts (read)    one line per RULE: its index, the packets it decided
                              and its text; a last line `-` counts the packets that
                              matched no rule (dropped), e.g.
                                   0  1523  deny src net 10.0.0.0/8
                                   1    12  allow tcp dst port 22 or 80
                                   -     3  (no rule matched)
        reset_counts (write)  sets the rule counts to zero.

    Example
        IPFilter(allow tcp dst port 22 or 80, allow icmp, deny all);

    See also
        IPClassifier, Classifier, CheckIPHeader
    """

    port_count = "1/1"
    matcher = "ip_classify"
    rest = Rest("RULE", parse_rule, min=1)

    def configure(self) -> None:
        ports = [rule.port for rule in self.conf["RULE"] if rule.port >= 0]
        self.port_count = f"1/{max(ports, default=0) + 1}"

    def rules(self):
        rules = self.conf["RULE"]
        return [r.expr for r in rules], [r.port for r in rules]
