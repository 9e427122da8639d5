"""Devices and packet files: where packets enter and leave an nfv pipeline.

In nfv a device is a NIC of the running target: a number `0`..`7` (the order
the host driver or the unikernel found them) or an interface name given to
`nfv run` / `nfv boot`.  FromDump and ToDump read and write pcap files, so
they only run on the host.
"""
from __future__ import annotations

import re

from nfv import argtypes
from nfv.element import Arg, Element, Handler
from nfv.errors import ArgError

from .standard import choice

MAX_NICS = 8


def device(text: str) -> int | str:
    """A device: a NIC number 0..7 (returned as int) or an interface name (returned as str)."""
    word = text.strip()
    if re.fullmatch(r"[+-]?\d+", word):
        n = int(word)
        if not 0 <= n < MAX_NICS:
            raise ArgError(f"NIC number {n} is out of range", 0,
                           f"nfv devices are NIC numbers 0..{MAX_NICS - 1} or interface names")
        return n
    name = argtypes.word(word)
    if not re.fullmatch(r"[A-Za-z_][\w.:@-]*", name):
        raise ArgError(f"bad device name {name!r}", 0,
                       f"a device is a NIC number 0..{MAX_NICS - 1} or an interface name like eth0")
    return name


class FromDevice(Element):
    """FromDevice(DEVNAME, [KEYWORDS])

    Emits the packets received on a NIC.

    Ports
        No inputs, 1 output (0/1).

    Arguments
        DEVNAME     the device: a NIC number 0..7 or an interface name.
        SNIFFER     boolean; accepted for Click compatibility. Default true.
        PROMISC     boolean: put the NIC in promiscuous mode. Default false.
        SNAPLEN     unsigned: longest packet kept; longer ones are truncated. Default 2046.
        FORCE_IP    boolean: emit only IP packets (others are dropped). Default false.
        BURST       unsigned, at least 1: packets taken from the receive ring per batch. Default 32.
        METHOD      word; Click's capture method, accepted and ignored (nfv polls the NIC's ring).
        BPF_FILTER  string; not supported: filter with Classifier or IPFilter after FromDevice.

    Handlers
        count (read)          packets received.
        drops (read)          packets the NIC dropped before nfv could take them.
        reset_counts (write)  sets count and drops to zero.

    Example
        FromDevice(0) -> Counter -> ToDevice(1);

    See also
        ToDevice, FromDump, Queue
    """

    port_count = "0/1"
    args = (
        Arg("DEVNAME", device, positional=True, required=True),
        Arg("SNIFFER", argtypes.boolean, default=True),
        Arg("PROMISC", argtypes.boolean, default=False),
        Arg("SNAPLEN", argtypes.unsigned, default=2046),
        Arg("FORCE_IP", argtypes.boolean, default=False),
        Arg("BURST", argtypes.unsigned, default=32),
        Arg("METHOD", argtypes.word),
        Arg("BPF_FILTER", argtypes.string),
    )
    handlers = (
        Handler("count"),
        Handler("drops"),
        Handler("reset_counts", read=False, write=True),
    )

    def configure(self) -> None:
        if self.conf["BURST"] < 1:
            raise self.error("BURST must be at least 1", "BURST")
        if self.conf["BPF_FILTER"]:
            raise self.error("BPF_FILTER is not supported", "BPF_FILTER",
                             hint="filter after the device instead, e.g. "
                                  "FromDevice(0) -> Classifier(12/0800, -) or IPFilter(...)")

    role = "device"


class ToDevice(Element):
    """ToDevice(DEVNAME, [KEYWORDS])

    Sends packets out a NIC.  Packets that find the transmit ring full are
    dropped and counted; a Queue in front of ToDevice sets the ring's size.

    Ports
        1 input, no outputs (1/0).

    Arguments
        DEVNAME                 the device: a NIC number 0..7 or an interface name.
        BURST                   unsigned, at least 1: packets handed to the NIC per
                                batch. Default 32.
        IGNORE_QUEUE_OVERFLOWS  boolean; accepted for Click compatibility (overflows are
                                always counted, never printed). Default false.

    Handlers
        count (read)          packets sent.
        drops (read)          packets dropped because the transmit ring was full.
        reset_counts (write)  sets count and drops to zero.

    Example
        FromDevice(0) -> Queue -> ToDevice(1);

    See also
        FromDevice, ToDump, Queue
    """

    port_count = "1/0"
    args = (
        Arg("DEVNAME", device, positional=True, required=True),
        Arg("BURST", argtypes.unsigned, default=32),
        Arg("IGNORE_QUEUE_OVERFLOWS", argtypes.boolean, default=False),
    )
    handlers = (
        Handler("count"),
        Handler("drops"),
        Handler("reset_counts", read=False, write=True),
    )

    def configure(self) -> None:
        if self.conf["BURST"] < 1:
            raise self.error("BURST must be at least 1", "BURST")

    role = "device_out"


class FromDump(Element):
    """FromDump(FILENAME, [TIMING], [KEYWORDS])

    Emits the packets stored in a pcap file (as written by `tcpdump -w` or ToDump).  Host only.

    Ports
        No inputs, 1 output (0/1).

    Arguments
        FILENAME     string: the pcap file to read.
        TIMING       boolean: keep the packets' original spacing in time. Default false.
        STOP         boolean: stop the pipeline when the file is done. Default false.
        ACTIVE       boolean: emit packets at all (see the active handler). Default true.
        END_CALL     handler call `ELEMENT.HANDLER [VALUE]` written when the file is done;
                     not together with STOP.
        FORCE_IP     boolean: emit only IP packets (others are dropped). Default false.
        START_AFTER  seconds: skip the first part of the trace.
        END_AFTER    seconds: stop this long after the trace's first timestamp.
        INTERVAL     seconds: stop this long after the first packet emitted.

    Handlers
        count (read)          packets emitted.
        active (read/write)   the ACTIVE setting.
        encap (read)          the file's link type (ETHER, IP).
        filesize (read)       the file's length in bytes.
        filepos (read)        how far into the file reading has got, in bytes.

    Example
        FromDump(in.pcap, STOP true) -> Counter -> ToDump(out.pcap);

    See also
        ToDump, FromDevice
    """

    port_count = "0/1"
    host_only = True
    args = (
        Arg("FILENAME", argtypes.string, positional=True, required=True),
        Arg("TIMING", argtypes.boolean, positional=True, default=False),
        Arg("STOP", argtypes.boolean, default=False),
        Arg("ACTIVE", argtypes.boolean, default=True),
        Arg("END_CALL", argtypes.string),
        Arg("FORCE_IP", argtypes.boolean, default=False),
        Arg("START_AFTER", argtypes.seconds),
        Arg("END_AFTER", argtypes.seconds),
        Arg("INTERVAL", argtypes.seconds),
    )
    handlers = (
        Handler("count"),
        Handler("active", write=True),
        Handler("encap"),
        Handler("filesize"),
        Handler("filepos"),
    )

    def configure(self) -> None:
        if not self.conf["FILENAME"]:
            raise self.error("FILENAME is empty", "FILENAME")
        if self.conf["STOP"] and self.conf["END_CALL"]:
            raise self.error("STOP and END_CALL cannot both be given", "END_CALL",
                             hint="STOP true means END_CALL stop; keep one of them")
        if self.conf["END_AFTER"] is not None and self.conf["INTERVAL"] is not None:
            raise self.error("END_AFTER and INTERVAL cannot both be given", "INTERVAL",
                             hint="both say when to stop; keep one of them")

    role = "source"


class ToDump(Element):
    """ToDump(FILENAME, [SNAPLEN], [ENCAP], [KEYWORDS])

    Writes the packets it receives to a pcap file readable by tcpdump, wireshark
    or FromDump; passes them on if its output is connected.  Host only.

    Ports
        1 input, 0 or 1 output (1/0-1).

    Arguments
        FILENAME      string: the pcap file to write; `-` writes to standard output.
        SNAPLEN       unsigned: most bytes of each packet stored. Default 2000.
        ENCAP         ETHER or IP: the first header of every packet, recorded in the
                      file header. Default ETHER.
        EXTRA_LENGTH  boolean: record the packets' full lengths when they were
                      truncated. Default true.

    Handlers
        count (read)  packets written.

    Example
        FromDevice(0) -> ToDump(rx.pcap, ENCAP ETHER);

    See also
        FromDump, Print
    """

    port_count = "1/0-1"
    host_only = True
    args = (
        Arg("FILENAME", argtypes.string, positional=True, required=True),
        Arg("SNAPLEN", argtypes.unsigned, positional=True, default=2000),
        Arg("ENCAP", choice("ETHER", "IP"), positional=True, default="ETHER"),
        Arg("EXTRA_LENGTH", argtypes.boolean, default=True),
    )
    handlers = (Handler("count"),)

    def configure(self) -> None:
        if not self.conf["FILENAME"]:
            raise self.error("FILENAME is empty", "FILENAME")

    role = "sink"
