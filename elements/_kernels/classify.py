"""Kernels of the classifiers: one decision-table lookup each (nfv/classify/README.md)."""

from nfv.jit import kernel, kernel_call

from nfv import drops
from nfv.classify.match import ip_verdict, raw_match, verdict_port, verdict_rule
from nfv.elements._kernels.packet import ip_header, packet_end


@kernel_call
def ip_table_verdict(pool, meta, i, t_meta, t_lookup, t_bits):
    """The first rule the packet matches over its marked IP header (the data start if
    none), and that rule's port, as match.ip_verdict packs them.  A call, not inlined:
    the table walk is big."""
    l3 = ip_header(meta, i)
    if l3 < 0:
        l3 = int(meta[i].offset)
    return ip_verdict(pool, l3, packet_end(meta, i), t_meta, t_lookup, t_bits)


@kernel
def count_rule(rule_hits, rule):
    """One more packet for `rule`: rule_hits[0] counts the packets no rule matched,
    rule_hits[k + 1] rule k's.  A rule beyond the array (a bigger rule set loaded at
    run time) is left uncounted rather than written outside it."""
    slot = rule + 1
    if 0 <= slot < rule_hits.size:
        rule_hits[slot] += 1


@kernel
def ip_classify(pool, meta, i, t_meta, t_lookup, t_bits, rule_hits):
    """IPFilter / IPClassifier: the matching rule counted, and its port (FILTERED to deny)."""
    verdict = ip_table_verdict(pool, meta, i, t_meta, t_lookup, t_bits)
    count_rule(rule_hits, verdict_rule(verdict))
    port = verdict_port(verdict)
    return port if port >= 0 else -drops.FILTERED


@kernel_call
def raw_classify(pool, meta, i, t_meta, t_lookup, t_bits):
    """Classifier: byte patterns from the start of the packet data."""
    port = raw_match(pool, int(meta[i].offset), packet_end(meta, i), t_meta, t_lookup, t_bits)
    return port if port >= 0 else -drops.FILTERED
