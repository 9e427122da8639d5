"""Standard elements: counting, duplicating, painting, queues, switches, debugging.

Each class declares what Click's manual page says about the element of the
same name: ports, arguments, handlers.  The packet kernels are separate; this
module only reads and checks configurations.  The small value parsers at the
top (`choice`, `handler_call`) are shared by the other families of the library.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from nfv import argtypes
from nfv.element import Arg, Element, Handler, Kernel, StateArray
from nfv.errors import ArgError

# -- value parsers used across the element library --------------------------------------------


def choice(*words: str) -> Callable[[str], str]:
    """A parser accepting one of `words` (any case), returning its canonical spelling."""
    canon = {w.upper(): w for w in words}

    def parse(text: str) -> str:
        word = text.strip()
        if word.upper() in canon:
            return canon[word.upper()]
        raise ArgError(f"expected one of {', '.join(words)}, not {word!r}", 0 if word else None,
                       hint=f"write one of: {', '.join(words)}")

    parse.__name__ = f"choice({', '.join(words)})"
    return parse


@dataclass(frozen=True)
class HandlerCall:
    """Click's `N HANDLER [VALUE]`: when a count reaches N, write VALUE to HANDLER."""

    n: int
    handler: str
    value: str = ""


_HANDLER_NAME = re.compile(r"[A-Za-z_@][\w@/.:-]*")


def handler_call(text: str) -> HandlerCall:
    """Parse `N HANDLER [VALUE]` (Counter's COUNT_CALL); offsets point at the bad word."""
    usage = "write `N HANDLER [VALUE]`, e.g. `1000 src.active false`"
    m = re.match(r"\s*(\S+)", text)
    if not m:
        raise ArgError("expected a count and a handler", None, usage)
    try:
        n = argtypes.unsigned(m.group(1))
    except ArgError as e:
        raise ArgError(e.message, m.start(1) + (e.offset or 0), e.hint or usage) from None
    h = re.compile(r"\s+(\S+)").match(text, m.end())
    if not h:
        raise ArgError("missing the handler to call", m.start(1), usage)
    if not _HANDLER_NAME.fullmatch(h.group(1)):
        raise ArgError(f"bad handler name {h.group(1)!r}", h.start(1), "a handler is ELEMENT.NAME")
    return HandlerCall(n, h.group(1), text[h.end():].strip())


# The annotation Paint, CheckPaint and PaintSwitch use unless ANNO says otherwise.
PAINT_ANNO = argtypes.ANNOTATIONS["PAINT"]


# -- elements ---------------------------------------------------------------------------------


def _paint_anno_only(e: Element) -> None:
    """The dataplane keeps one paint byte per packet (the metadata record's `paint`)."""
    if e.conf["ANNO"] != PAINT_ANNO:
        raise e.error("only the PAINT annotation can be compiled", "ANNO",
                      hint="leave ANNO out: nfv keeps one paint annotation per packet")


class Discard(Element):
    """Discard([KEYWORDS])

    Drops every packet it receives, counting them.

    Ports
        1 input, no outputs (1/0).

    Arguments
        ACTIVE  boolean; accepted for Click compatibility (only meaningful when
                Discard pulls, and nfv is push-only). Default true.
        BURST   unsigned; packets per pull in Click's pull context. Default 1.

    Handlers
        count (read)          packets discarded so far.
        reset_counts (write)  sets count to 0.
        active (read/write)   the ACTIVE setting.

    Example
        c :: Classifier(12/0800, -);  c[1] -> Discard;

    See also
        Idle, Queue
    """

    port_count = "1/0"
    args = (
        Arg("ACTIVE", argtypes.boolean, default=True),
        Arg("BURST", argtypes.unsigned, default=1),
    )
    handlers = (
        Handler("count"),
        Handler("reset_counts", read=False, write=True),
        Handler("active", write=True),
    )

    role = "discard"


class Idle(Element):
    """Idle()

    Never sends a packet; drops any packet it is given.  Used to fill ports that
    a configuration must connect but never uses.

    Ports
        Any number of inputs and outputs (-/-).

    Arguments
        none.

    Handlers
        none.

    Example
        Idle -> ToDevice(1);

    See also
        Discard
    """

    port_count = "-/-"

    role = "idle"


class Null(Element):
    """Null()

    Passes packets from its input to its output unchanged.

    Ports
        1 input, 1 output (1/1).

    Arguments
        none.

    Handlers
        none.

    Example
        FromDevice(0) -> Null -> ToDevice(1);

    See also
        Counter
    """

    port_count = "1/1"

    role = "pass"


class Counter(Element):
    """Counter([KEYWORDS])

    Passes packets unchanged and counts packets, bytes and the arrival rate.

    Ports
        1 input, 1 output (1/1).

    Arguments
        COUNT_CALL       `N HANDLER [VALUE]`: when the packet count reaches N, write
                         VALUE to the write handler HANDLER.
        BYTE_COUNT_CALL  `N HANDLER [VALUE]`: when the byte count reaches or passes N,
                         write VALUE to HANDLER.

    Handlers
        count (read)              packets seen since the last reset.
        byte_count (read)         bytes seen since the last reset.
        rate (read)               recent packet rate (EWMA, packets per second).
        reset_counts (write)      sets the counts and the rate to zero.
        reset (write)             same as reset_counts.
        count_call (write)        replaces COUNT_CALL.
        byte_count_call (write)   replaces BYTE_COUNT_CALL.

    Example
        FromDevice(0) -> in_count :: Counter -> ToDevice(1);

    See also
        Discard, Print
    """

    port_count = "1/1"
    args = (
        Arg("COUNT_CALL", handler_call),
        Arg("BYTE_COUNT_CALL", handler_call),
    )
    handlers = (
        Handler("count"),
        Handler("byte_count"),
        Handler("rate"),
        Handler("reset_counts", read=False, write=True),
        Handler("reset", read=False, write=True),
        Handler("count_call", read=False, write=True),
        Handler("byte_count_call", read=False, write=True),
    )

    def state(self):
        return (StateArray("counts", "u8", 4),)  # packets, bytes, first and last time (ns)

    def kernel(self):
        return Kernel("standard:counter", time=True)

    def read_handler(self, name, state):
        count, nbytes, first, last = (int(x) for x in state["counts"])
        if name == "rate":
            # The mean rate between the first and the last packet, in packets/s
            # (Click's is an EWMA; without a clock in the kernel the mean is honest).
            return f"{count / ((last - first) / 1e9):.1f}" if last > first else "0"
        return {"count": str(count), "byte_count": str(nbytes)}.get(name)

    def write_handler(self, name, value, state):
        if name in ("reset", "reset_counts"):
            state["counts"][:] = 0
            return True
        return False


class Tee(Element):
    """Tee([N])

    Sends a copy of each packet out every output.

    Ports
        1 input; N outputs when N is given, otherwise as many outputs as the
        configuration connects (1/1-).

    Arguments
        N  unsigned, at least 1: the number of outputs you expect.

    Handlers
        none.

    Example
        t :: Tee(2);  FromDevice(0) -> t;  t[0] -> ToDevice(1);  t[1] -> ToDump(copy.pcap);

    See also
        PaintSwitch, RoundRobinSwitch
    """

    port_count = "1/1-"
    args = (Arg("N", argtypes.unsigned, positional=True),)

    def configure(self) -> None:
        n = self.conf["N"]
        if n is None:
            return
        if n < 1:
            raise self.error("N must be at least 1", "N", hint="Tee needs an output to send to")
        self.port_count = f"1/{n}"

    role = "tee"


class Paint(Element):
    """Paint(COLOR, [ANNO])

    Sets each packet's paint annotation to COLOR.

    Ports
        1 input, 1 output (1/1).

    Arguments
        COLOR  integer 0..255, the paint to set.
        ANNO   annotation: which one-byte annotation to set. Default: PAINT.

    Handlers
        color (read/write)  the COLOR setting.

    Example
        FromDevice(0) -> Paint(1) -> rt;

    See also
        CheckPaint, PaintSwitch
    """

    port_count = "1/1"
    args = (
        Arg("COLOR", argtypes.color, positional=True, required=True),
        Arg("ANNO", argtypes.annotation, positional=True, default=PAINT_ANNO),
    )
    handlers = (Handler("color", write=True),)

    def kernel(self):
        _paint_anno_only(self)
        return Kernel("standard:paint", (self.conf["COLOR"],))


class CheckPaint(Element):
    """CheckPaint(COLOR, [ANNO])

    Passes packets whose paint annotation is COLOR; others go to output 1, or
    are dropped when output 1 is not connected.

    Ports
        1 input, 1 or 2 outputs (1/1-2).  Output 1: packets of another color.

    Arguments
        COLOR  integer 0..255, the paint to look for.
        ANNO   annotation: which one-byte annotation to test. Default: PAINT.

    Handlers
        color (read/write)  the COLOR setting.

    Example
        cp :: CheckPaint(1);  cp[0] -> ToDevice(0);  cp[1] -> Discard;

    See also
        Paint, PaintSwitch
    """

    port_count = "1/1-2"
    args = (
        Arg("COLOR", argtypes.color, positional=True, required=True),
        Arg("ANNO", argtypes.annotation, positional=True, default=PAINT_ANNO),
    )
    handlers = (Handler("color", write=True),)

    unconnected_drop = {1: "PAINT"}

    def kernel(self):
        _paint_anno_only(self)
        return Kernel("standard:check_paint", (self.conf["COLOR"],))


class PaintSwitch(Element):
    """PaintSwitch([ANNO])

    Sends each packet to the output numbered by its paint annotation; paint 255
    sends a copy to every output.  Packets whose paint names no output are dropped.

    Ports
        1 input, any number of outputs, at most 255 used (1/-).

    Arguments
        ANNO  annotation: which one-byte annotation selects the output. Default: PAINT.

    Handlers
        none.

    Example
        ps :: PaintSwitch;  ps[0] -> ToDevice(0);  ps[1] -> ToDevice(1);

    See also
        Paint, CheckPaint, HashSwitch, RoundRobinSwitch
    """

    port_count = "1/-"
    args = (Arg("ANNO", argtypes.annotation, positional=True, default=PAINT_ANNO),)

    broadcast = 255  # paint 255: a copy to every output, as in Click

    def kernel(self):
        _paint_anno_only(self)
        return Kernel("standard:paint_switch")


class Print(Element):
    """Print([LABEL], [MAXLENGTH], [KEYWORDS])

    Prints a line per packet: LABEL, the length, and the first bytes of data.
    In nfv a kernel cannot print: the packet goes on unchanged and a copy goes to
    the host, which prints the lines in packet order (`nfv run`: on stderr after
    the run; `nfv.testing.NF.send`: the copies come back under the element's name).

    Ports
        1 input, 1 output (1/1).

    Arguments
        LABEL      string printed before each packet. Default: empty.
        MAXLENGTH  integer: bytes of data to print; negative prints all. Default 24.
        CONTENTS   NONE, HEX or ASCII: how to print the data. Default HEX.
        TIMESTAMP  boolean: print the packet's timestamp. Default false.
        PRINTANNO  boolean: print the user annotation bytes. Default false.
        HEADROOM   boolean: print headroom and tailroom. Default false.
        ACTIVE     boolean: print at all. Default true.

    Handlers
        active (read/write)  the ACTIVE setting.

    Example
        FromDevice(0) -> Print(in, 64) -> ToDevice(1);

    See also
        Counter, ToDump
    """

    port_count = "1/1"
    args = (
        Arg("LABEL", argtypes.string, positional=True, default=""),
        Arg("MAXLENGTH", argtypes.integer, positional=True, default=24),
        Arg("CONTENTS", choice("NONE", "HEX", "ASCII"), default="HEX"),
        Arg("TIMESTAMP", argtypes.boolean, default=False),
        Arg("PRINTANNO", argtypes.boolean, default=False),
        Arg("HEADROOM", argtypes.boolean, default=False),
        Arg("ACTIVE", argtypes.boolean, default=True),
    )
    handlers = (Handler("active", write=True),)

    # A kernel cannot print: Print sends a copy of each packet to a sink of its own
    # (as ToDump does) and the driver's side prints it, in packet order, after the batch.
    @property
    def role(self):
        return "sink" if self.conf.get("ACTIVE", True) else "pass"

    def line(self, data: bytes, timestamp_ns: int) -> str:
        """The text Click's Print writes for one packet: `LABEL: LENGTH | DATA`."""
        parts = []
        if self.conf["LABEL"]:
            parts.append(f"{self.conf['LABEL']}: ")
        if self.conf["TIMESTAMP"]:
            parts.append(f"{timestamp_ns // 10**9}.{timestamp_ns % 10**9:09d}: ")
        parts.append(f"{len(data):4d}")
        limit = self.conf["MAXLENGTH"]
        shown = data if limit < 0 else data[:limit]
        if self.conf["CONTENTS"] == "HEX" and shown:
            words = [shown[k:k + 4].hex() for k in range(0, len(shown), 4)]
            parts.append(" | " + " ".join(words))
        elif self.conf["CONTENTS"] == "ASCII" and shown:
            parts.append(" | " + "".join(chr(b) if 32 <= b < 127 else "." for b in shown))
        return "".join(parts)


class Queue(Element):
    """Queue([CAPACITY])

    Click's FIFO queue.  nfv runs everything push-to-completion, so a Queue in
    front of ToDevice means that device's transmit ring: packets that find the
    ring full are dropped and counted.

    Ports
        1 input, 1 output (1/1).

    Arguments
        CAPACITY  unsigned: the most packets held at once. Default 1000.

    Handlers
        length (read)            packets queued now.
        highwater_length (read)  the most packets ever queued at once.
        drops (read)             packets dropped because the queue was full.
        capacity (read/write)    the CAPACITY setting.
        reset_counts (write)     sets drops and highwater_length to zero.
        reset (write)            drops every queued packet.

    Example
        FromDevice(0) -> Queue(512) -> ToDevice(1);

    See also
        SimpleQueue, ToDevice, Discard
    """

    port_count = "1/1"
    args = (Arg("CAPACITY", argtypes.unsigned, positional=True, default=1000),)
    handlers = (
        Handler("length"),
        Handler("highwater_length"),
        Handler("drops"),
        Handler("capacity", write=True),
        Handler("reset_counts", read=False, write=True),
        Handler("reset", read=False, write=True),
    )

    role = "pass"  # the device ring is the queue (DESIGN.md)

    def read_handler(self, name, state):
        # Nothing waits in an nfv Queue: packets run to completion into the device ring.
        if name in ("length", "highwater_length"):
            return "0"
        return super().read_handler(name, state)


class SimpleQueue(Queue):
    """SimpleQueue([CAPACITY])

    Click's notification-free FIFO queue; in nfv it means exactly what Queue
    means (the device ring in front of ToDevice).

    Ports
        1 input, 1 output (1/1).

    Arguments
        CAPACITY  unsigned: the most packets held at once. Default 1000.

    Handlers
        length (read)            packets queued now.
        highwater_length (read)  the most packets ever queued at once.
        drops (read)             packets dropped because the queue was full.
        capacity (read/write)    the CAPACITY setting.
        reset_counts (write)     sets drops and highwater_length to zero.
        reset (write)            drops every queued packet.

    Example
        FromDevice(0) -> SimpleQueue -> ToDevice(1);

    See also
        Queue, ToDevice
    """

    class_name = "SimpleQueue"


class Strip(Element):
    """Strip(LENGTH)

    Removes the first LENGTH bytes of each packet (the data pointer moves; no bytes are copied).

    Ports
        1 input, 1 output (1/1).

    Arguments
        LENGTH  byte count: how many bytes to remove.

    Handlers
        none.

    Example
        FromDevice(0) -> Strip(14) -> CheckIPHeader -> ...

    See also
        Unstrip, EtherEncap
    """

    port_count = "1/1"
    args = (Arg("LENGTH", argtypes.byte_count, positional=True, required=True),)

    def kernel(self):
        return Kernel("standard:strip", (self.conf["LENGTH"],))


class Unstrip(Element):
    """Unstrip(LENGTH)

    Puts back LENGTH bytes at the front of each packet, usually bytes an earlier Strip removed.

    Ports
        1 input, 1 output (1/1).

    Arguments
        LENGTH  byte count: how many bytes to restore.

    Handlers
        none.

    Example
        Strip(14) -> CheckIPHeader -> DecIPTTL -> Unstrip(14) -> ToDevice(1);

    See also
        Strip, EtherEncap
    """

    port_count = "1/1"
    args = (Arg("LENGTH", argtypes.byte_count, positional=True, required=True),)

    def kernel(self):
        return Kernel("standard:unstrip", (self.conf["LENGTH"],))


class RoundRobinSwitch(Element):
    """RoundRobinSwitch()

    Sends each packet to the next output in turn, wrapping around after the last.

    Ports
        1 input, as many outputs as the configuration connects, at least 1 (1/1-).

    Arguments
        none.

    Handlers
        none.

    Example
        rr :: RoundRobinSwitch;  rr[0] -> ToDevice(1);  rr[1] -> ToDevice(2);

    See also
        HashSwitch, PaintSwitch, Tee
    """

    port_count = "1/1-"

    def state(self):
        return (StateArray("next", "u8", 1),)

    def kernel(self):
        return Kernel("standard:round_robin", (self.noutputs,))


class HashSwitch(Element):
    """HashSwitch(OFFSET, LENGTH)

    Chooses each packet's output from a hash of LENGTH bytes starting OFFSET
    bytes into the packet; packets too short for those bytes go to output 0.

    Ports
        1 input, as many outputs as the configuration connects, at least 1 (1/1-).

    Arguments
        OFFSET  unsigned: where the hashed bytes start.
        LENGTH  unsigned, at least 1: how many bytes to hash.

    Handlers
        none.

    Example
        hs :: HashSwitch(30, 4);  // IPv4 destination address behind a 14-byte Ethernet header

    See also
        RoundRobinSwitch, PaintSwitch
    """

    port_count = "1/1-"
    args = (
        Arg("OFFSET", argtypes.unsigned, positional=True, required=True),
        Arg("LENGTH", argtypes.unsigned, positional=True, required=True),
    )

    def configure(self) -> None:
        if self.conf["LENGTH"] < 1:
            raise self.error("LENGTH must be at least 1", "LENGTH",
                             hint="give the number of bytes to hash, e.g. HashSwitch(30, 4)")

    def kernel(self):
        return Kernel("standard:hash_switch",
                      (self.conf["OFFSET"], self.conf["LENGTH"], self.noutputs))
