"""Packet sources: elements that make packets from their configuration (tests, benchmarks)."""
from __future__ import annotations

from nfv import argtypes
from nfv.element import Arg, Element, Handler

# Click's sources default to a packet of at least 64 bytes; ours is 64 zero bytes,
# the minimum Ethernet frame without its FCS.
DEFAULT_DATA = bytes(64)


def _check_source(e: Element) -> None:
    """Checks shared by InfiniteSource and RatedSource."""
    if e.conf["STOP"] and e.conf["END_CALL"]:
        raise e.error("STOP and END_CALL cannot both be given", "END_CALL",
                      hint="STOP true means END_CALL stop; keep one of them")
    data, length = e.conf["DATA"], e.conf["LENGTH"]
    if length is not None and length == 0:
        raise e.error("LENGTH must be at least 1", "LENGTH")
    if not data and length is None:
        raise e.error("DATA is empty", "DATA", hint="give some bytes, or a LENGTH for the packet")


class InfiniteSource(Element):
    """InfiniteSource([DATA], [LIMIT], [BURST], [ACTIVE], [KEYWORDS])

    Emits packets made of DATA as fast as the pipeline runs, BURST at a time,
    until LIMIT packets have been sent.

    Ports
        No inputs, 1 output (0/1).

    Arguments
        DATA       data: the packet's bytes, e.g. \\<0800>. Default: 64 zero bytes.
        LIMIT      count: packets to send; -1 sends forever. Default -1.
        BURST      unsigned, at least 1: packets sent per batch. Default 1.
        ACTIVE     boolean: send at all (see the active handler). Default true.
        LENGTH     byte count: make each packet this long (DATA is cut or
                   padded with zeros). Default: the length of DATA.
        STOP       boolean: stop the pipeline once LIMIT packets are sent. Default false.
        TIMESTAMP  boolean: set each packet's timestamp annotation. Default true.
        END_CALL   handler call `ELEMENT.HANDLER [VALUE]` written once LIMIT packets
                   are sent; not together with STOP.

    Handlers
        count (read)         packets sent so far.
        reset (write)        sets count to 0, so another LIMIT packets are sent.
        data (read/write)    the DATA setting.
        length (read/write)  the LENGTH setting.
        limit (read/write)   the LIMIT setting.
        burst (read/write)   the BURST setting.
        active (read/write)  the ACTIVE setting.

    Example
        InfiniteSource(LENGTH 64, LIMIT 1000000, STOP true) -> Counter -> Discard;

    See also
        RatedSource, FromDump
    """

    port_count = "0/1"
    args = (
        Arg("DATA", argtypes.data, positional=True, default=DEFAULT_DATA),
        Arg("LIMIT", argtypes.count, positional=True, default=-1),
        Arg("BURST", argtypes.unsigned, positional=True, default=1),
        Arg("ACTIVE", argtypes.boolean, positional=True, default=True),
        Arg("LENGTH", argtypes.byte_count),
        Arg("STOP", argtypes.boolean, default=False),
        Arg("TIMESTAMP", argtypes.boolean, default=True),
        Arg("END_CALL", argtypes.string),
    )
    handlers = (
        Handler("count"),
        Handler("reset", read=False, write=True),
        Handler("data", write=True),
        Handler("length", write=True),
        Handler("limit", write=True),
        Handler("burst", write=True),
        Handler("active", write=True),
    )

    def configure(self) -> None:
        if self.conf["BURST"] < 1:
            raise self.error("BURST must be at least 1", "BURST")
        _check_source(self)

    role = "source"


class RatedSource(Element):
    """RatedSource([DATA], [RATE], [LIMIT], [ACTIVE], [KEYWORDS])

    Emits packets made of DATA at RATE packets per second, until LIMIT packets have been sent.

    Ports
        No inputs, 1 output (0/1).

    Arguments
        DATA       data: the packet's bytes, e.g. \\<0800>. Default: 64 zero bytes.
        RATE       rate: packets per second. Default 10.
        LIMIT      count: packets to send; -1 sends forever. Default -1.
        ACTIVE     boolean: send at all (see the active handler). Default true.
        LENGTH     byte count: make each packet this long (DATA is cut or
                   padded with zeros). Default: the length of DATA.
        BANDWIDTH  bandwidth: sets RATE from the packet length and a target bit
                   or byte rate; not together with RATE.
        STOP       boolean: stop the pipeline once LIMIT packets are sent. Default false.
        END_CALL   handler call `ELEMENT.HANDLER [VALUE]` written once LIMIT packets
                   are sent; not together with STOP.

    Handlers
        count (read)         packets sent so far.
        reset (write)        sets count to 0, so another LIMIT packets are sent.
        data (read/write)    the DATA setting.
        length (read/write)  the LENGTH setting.
        rate (read/write)    the RATE setting.
        limit (read/write)   the LIMIT setting.
        active (read/write)  the ACTIVE setting.

    Example
        RatedSource(\\<0800>, 1000, 5000) -> Counter -> Discard;

    See also
        InfiniteSource
    """

    port_count = "0/1"
    args = (
        Arg("DATA", argtypes.data, positional=True, default=DEFAULT_DATA),
        Arg("RATE", argtypes.rate, positional=True, default=10),
        Arg("LIMIT", argtypes.count, positional=True, default=-1),
        Arg("ACTIVE", argtypes.boolean, positional=True, default=True),
        Arg("LENGTH", argtypes.byte_count),
        Arg("BANDWIDTH", argtypes.bandwidth),
        Arg("STOP", argtypes.boolean, default=False),
        Arg("END_CALL", argtypes.string),
    )
    handlers = (
        Handler("count"),
        Handler("reset", read=False, write=True),
        Handler("data", write=True),
        Handler("length", write=True),
        Handler("rate", write=True),
        Handler("limit", write=True),
        Handler("active", write=True),
    )

    def configure(self) -> None:
        if "RATE" in self.arg_given and "BANDWIDTH" in self.arg_given:
            raise self.error("RATE and BANDWIDTH cannot both be given", "BANDWIDTH",
                             hint="BANDWIDTH sets RATE from the packet length; keep one of them")
        if "BANDWIDTH" not in self.arg_given and self.conf["RATE"] is not None \
                and self.conf["RATE"] <= 0:
            raise self.error("RATE must be positive", "RATE")
        _check_source(self)

    role = "source"
