"""Kernels of the classifiers: one decision-table lookup each (nfv/classify/README.md)."""

from nfv.jit import kernel_call

from nfv import drops
from nfv.classify.match import ip_match, raw_match
from nfv.elements._kernels.packet import ip_header, packet_end


@kernel_call
def ip_classify(pool, meta, i, t_meta, t_lookup, t_bits):
    """IPFilter / IPClassifier: rules over the marked IP header (the data start if none)."""
    l3 = ip_header(meta, i)
    if l3 < 0:
        l3 = int(meta[i].offset)
    port = ip_match(pool, l3, packet_end(meta, i), t_meta, t_lookup, t_bits)
    return port if port >= 0 else -drops.FILTERED


@kernel_call
def raw_classify(pool, meta, i, t_meta, t_lookup, t_bits):
    """Classifier: byte patterns from the start of the packet data."""
    port = raw_match(pool, int(meta[i].offset), packet_end(meta, i), t_meta, t_lookup, t_bits)
    return port if port >= 0 else -drops.FILTERED
