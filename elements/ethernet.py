"""Ethernet elements: adding and rewriting the link-layer header."""
from __future__ import annotations

from nfv import argtypes
from nfv.element import Arg, Element, Handler, Kernel, StateArray


class EtherEncap(Element):
    """EtherEncap(ETHERTYPE, SRC, DST)

    Puts a 14-byte Ethernet header in front of each packet (in the packet's
    headroom; no bytes are copied).

    Ports
        1 input, 1 output (1/1).

    Arguments
        ETHERTYPE  ethertype, e.g. 0x0800 for IPv4 (written as a number, in host order).
        SRC        Ethernet address: the source, e.g. 00:11:22:33:44:55.
        DST        Ethernet address: the destination.

    Handlers
        ethertype (read/write)  the ETHERTYPE setting.
        src (read/write)        the SRC setting.
        dst (read/write)        the DST setting.

    Example
        ... -> EtherEncap(0x0800, 02:00:00:00:00:01, 02:00:00:00:00:02) -> ToDevice(1);

    See also
        EtherRewrite, Strip, Unstrip
    """

    port_count = "1/1"
    args = (
        Arg("ETHERTYPE", argtypes.ethertype, positional=True, required=True),
        Arg("SRC", argtypes.ether_address, positional=True, required=True),
        Arg("DST", argtypes.ether_address, positional=True, required=True),
    )
    handlers = (
        Handler("ethertype", write=True),
        Handler("src", write=True),
        Handler("dst", write=True),
    )

    def state(self):
        header = bytes(self.conf["DST"]) + bytes(self.conf["SRC"]) + \
            self.conf["ETHERTYPE"].to_bytes(2, "big")
        return (StateArray("header", "u1", 14, list(header)),)

    def kernel(self):
        return Kernel("ethernet:ether_encap")


class EtherRewrite(Element):
    """EtherRewrite(SRC, DST)

    Overwrites the source and destination addresses of each packet's Ethernet
    header, leaving the ethertype as it is.  Useful when a link has a single
    next hop (a transparent middlebox).

    Ports
        1 input, 1 output (1/1).

    Arguments
        SRC  Ethernet address: the new source, e.g. 00:11:22:33:44:55.
        DST  Ethernet address: the new destination.

    Handlers
        src (read/write)  the SRC setting.
        dst (read/write)  the DST setting.

    Example
        FromDevice(0) -> EtherRewrite(02:00:00:00:00:01, 02:00:00:00:00:02) -> ToDevice(1);

    See also
        EtherEncap
    """

    port_count = "1/1"
    args = (
        Arg("SRC", argtypes.ether_address, positional=True, required=True),
        Arg("DST", argtypes.ether_address, positional=True, required=True),
    )
    handlers = (Handler("src", write=True), Handler("dst", write=True))

    def state(self):
        header = bytes(self.conf["DST"]) + bytes(self.conf["SRC"])
        return (StateArray("header", "u1", 12, list(header)),)

    def kernel(self):
        return Kernel("ethernet:ether_rewrite")
