# cython: language_level=3, boundscheck=False, wraparound=False
"""Classic libpcap capture files, and `PacketList`, the packed packets they hold.

    packets = read_pcap("in.pcap")          # PacketList; timestamps in ns
    write_pcap("out.pcap", packets)         # nanosecond pcap, Ethernet, snaplen 65535
    packets = PacketList.from_bytes([bytes(p) for p in scapy_packets], ports=0)

Both byte orders and both timestamp resolutions (microsecond magic a1b2c3d4,
nanosecond magic a1b23c4d) are read; files are written little-endian. Only
Ethernet captures (link type 1) are accepted, because the pipeline expects a
frame to start with an Ethernet header. Every way a file can be wrong is a
`PcapError` naming the file and the byte offset of the problem.

A 100 MB capture is read in two passes over the bytes in C (count and check,
then copy), with no Python object per packet: packets stay in packed numpy
arrays until someone asks for one as `bytes`.
"""

from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy
from cpython.bytes cimport PyBytes_FromStringAndSize

import operator
import struct

import numpy as np

from nfv.errors import NfvError

__all__ = ["PacketList", "PcapError", "read_pcap", "parse_pcap", "write_pcap", "format_pcap",
           "LINKTYPE_ETHERNET", "LINKTYPE_NAMES", "MAX_RECORD_BYTES"]

# Sizes fixed by the file format.
cdef enum:
    GLOBAL_HEADER_SIZE = 24
    RECORD_HEADER_SIZE = 16
    # No real capture has a record this big (libpcap refuses anything over
    # 256 KiB, its largest snaplen); a bigger incl_len means the file is
    # corrupt, and believing it would make us allocate or skip garbage.
    RECORD_LIMIT = 262144

MAX_RECORD_BYTES = RECORD_LIMIT

LINKTYPE_ETHERNET = 1

# Names of the link types people are likely to meet, for error messages
# (numbers from tcpdump.org/linktypes.html).
LINKTYPE_NAMES = {
    0: "BSD loopback",
    1: "Ethernet",
    6: "IEEE 802.5 Token Ring",
    9: "PPP",
    12: "raw IP (OpenBSD)",
    101: "raw IP",
    105: "IEEE 802.11 wireless",
    108: "OpenBSD loopback",
    113: "Linux cooked capture (SLL)",
    127: "IEEE 802.11 with radiotap header",
    147: "user-defined (DLT_USER0)",
    192: "PPI",
    228: "raw IPv4",
    229: "raw IPv6",
    276: "Linux cooked capture v2 (SLL2)",
}

# What to do instead, for the link types that come from common mistakes.
_LINKTYPE_HINTS = {
    113: "it was probably captured with `tcpdump -i any`; capture on one Ethernet "
         "interface instead (tcpdump -i eth0 -w FILE)",
    276: "it was probably captured with `tcpdump -i any`; capture on one Ethernet "
         "interface instead (tcpdump -i eth0 -w FILE)",
    101: "the packets have no Ethernet header; capture on an Ethernet interface, "
         "or add one (e.g. scapy: Ether()/IP(raw_bytes))",
    228: "the packets have no Ethernet header; capture on an Ethernet interface",
    229: "the packets have no Ethernet header; capture on an Ethernet interface",
    127: "this is a wireless capture; nfv processes Ethernet frames",
    105: "this is a wireless capture; nfv processes Ethernet frames",
}

# The first four bytes of files that are not classic pcap, but that people
# will hand us anyway.
_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
_OTHER_FORMATS = {
    b"\x34\xcd\xb2\xa1": "a Kuznetzov 'modified pcap' file, not classic pcap; "
                         "convert with: editcap -F pcap IN OUT",
    b"\xa1\xb2\xcd\x34": "a Kuznetzov 'modified pcap' file, not classic pcap; "
                         "convert with: editcap -F pcap IN OUT",
}
# magic bytes -> (big-endian, nanosecond)
_MAGICS = {
    b"\xd4\xc3\xb2\xa1": (False, False),
    b"\xa1\xb2\xc3\xd4": (True, False),
    b"\x4d\x3c\xb2\xa1": (False, True),
    b"\xa1\xb2\x3c\x4d": (True, True),
}


class PcapError(NfvError):
    """A capture file that cannot be read or written.

    `path` names the file, `offset` is the byte offset of the problem in it
    (None when it is not about a place in the file); the message says what is
    wrong and, when there is one, what to do.
    """

    def __init__(self, path, message, offset=None):
        where = f"{path}: " if offset is None else f"{path}: byte offset {offset}: "
        super().__init__(where + message)
        self.path = path
        self.offset = offset
        self.message = message


# -- PacketList ------------------------------------------------------------------------


def _int_array(values, dtype, what):
    """`values` as a 1-D C-contiguous array of `dtype`, refusing values it cannot hold
    (numpy's own cast would wrap them silently)."""
    a = np.asarray(values)
    if a.ndim != 1:
        raise ValueError(f"PacketList {what} must be one-dimensional, got shape {a.shape}")
    if a.size:
        if a.dtype.kind not in "iub":
            raise TypeError(f"PacketList {what} must be integers, got {a.dtype}")
        if a.dtype != dtype:
            info = np.iinfo(dtype)
            lo, hi = int(a.min()), int(a.max())
            if lo < info.min or hi > info.max:
                raise ValueError(f"PacketList {what} out of range for {np.dtype(dtype).name}: "
                                 f"{lo}..{hi}")
    return np.ascontiguousarray(a, dtype=dtype)


def _per_packet(values, dtype, n, what):
    """An array of n `dtype` values from None (zeros), a scalar (repeated) or a sequence."""
    if values is None:
        return np.zeros(n, dtype)
    if np.ndim(values) == 0:
        value = operator.index(values)
        info = np.iinfo(dtype)
        if not info.min <= value <= info.max:
            raise ValueError(f"PacketList {what} out of range for {np.dtype(dtype).name}: {value}")
        return np.full(n, value, dtype)
    a = _int_array(values, dtype, what)
    if len(a) != n:
        raise ValueError(f"PacketList has {n} packets but {len(a)} {what}")
    return a


def _starts(lengths):
    """Offsets of packets of these lengths laid back to back from 0."""
    cdef Py_ssize_t n = len(lengths)
    offsets = np.zeros(n, np.int64)
    if n > 1:
        np.cumsum(lengths[:n - 1], out=offsets[1:])
    return offsets


def _as_bytes(packet):
    if isinstance(packet, bytes):
        return packet
    if isinstance(packet, (int, str)):
        # bytes(5) would be five zero bytes, bytes("ab") an encoding error:
        # neither is a packet.
        raise TypeError(f"a packet must be bytes-like, got {type(packet).__name__}")
    return bytes(packet)  # bytearray, memoryview, a scapy packet, a uint8 array


cdef class PacketList:
    """Packets packed in numpy arrays: one byte buffer and one entry per packet.

    `data` (uint8) holds the packets back to back; packet i is
    ``data[offsets[i] : offsets[i] + lengths[i]]``, received at
    ``timestamps[i]`` (uint64 nanoseconds) on ``ports[i]`` (uint8: a device
    port on input; the output port in a driver's results). `offsets` is int64,
    `lengths` int32.

    Indexing gives a packet as `bytes`, a slice gives a new PacketList;
    `to_list()` gives all of them. Build one with `from_bytes` (or `read_pcap`):
    there is no append, because packets are handled in bulk, never one at a time.
    """

    def __init__(self, data, offsets, lengths, timestamps=None, ports=None):
        if isinstance(data, (bytes, bytearray, memoryview)):
            data = np.frombuffer(data, dtype=np.uint8)
        data = _int_array(data, np.uint8, "data")
        offsets = _int_array(offsets, np.int64, "offsets")
        lengths = _int_array(lengths, np.int32, "lengths")
        n = len(offsets)
        if len(lengths) != n:
            raise ValueError(f"PacketList has {n} offsets but {len(lengths)} lengths")
        timestamps = _per_packet(timestamps, np.uint64, n, "timestamps")
        ports = _per_packet(ports, np.uint8, n, "ports")
        if n:
            if offsets.min() < 0 or lengths.min() < 0:
                raise ValueError("PacketList offsets and lengths must not be negative")
            end = int((offsets + lengths).max())
            if end > len(data):
                raise ValueError(f"PacketList packets reach byte {end} of a {len(data)}-byte buffer")
        self.data = data
        self.offsets = offsets
        self.lengths = lengths
        self.timestamps = timestamps
        self.ports = ports

    @staticmethod
    def from_bytes(packets, ports=None, timestamps=None):
        """A PacketList of `packets` (bytes-like objects, or anything `bytes()` turns
        into packet bytes, such as scapy packets). `ports` and `timestamps` are one
        value for all or one per packet; they default to 0."""
        chunks = [_as_bytes(p) for p in packets]
        lengths = np.fromiter(map(len, chunks), dtype=np.int64, count=len(chunks))
        offsets = _starts(lengths)
        data = np.frombuffer(b"".join(chunks), dtype=np.uint8)
        return PacketList(data, offsets, lengths, timestamps, ports)

    @staticmethod
    def concat(lists):
        """One PacketList of the packets of `lists`, one list after the other
        (to interleave them, follow with `take`, e.g. in timestamp order)."""
        lists = list(lists)
        for p in lists:
            if not isinstance(p, PacketList):
                raise TypeError(f"concat takes PacketLists, got {type(p).__name__}")
        if not lists:
            return PacketList.from_bytes([])
        bases = np.zeros(len(lists), np.int64)
        np.cumsum([len((<PacketList>p).data) for p in lists[:len(lists) - 1]], out=bases[1:])
        return PacketList(np.concatenate([(<PacketList>p).data for p in lists]),
                          np.concatenate([(<PacketList>p).offsets + base
                                          for p, base in zip(lists, bases)]),
                          np.concatenate([(<PacketList>p).lengths for p in lists]),
                          np.concatenate([(<PacketList>p).timestamps for p in lists]),
                          np.concatenate([(<PacketList>p).ports for p in lists]))

    def __len__(self):
        return len(self.offsets)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self.take(np.arange(len(self.offsets))[index])
        cdef Py_ssize_t n = len(self.offsets)
        cdef Py_ssize_t i = operator.index(index)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"packet index {index} out of range for {n} packets")
        cdef const uint8_t[::1] data = self.data
        cdef const int64_t[::1] offsets = self.offsets
        cdef const int32_t[::1] lengths = self.lengths
        if lengths[i] == 0:
            return b""
        return PyBytes_FromStringAndSize(<const char *>&data[offsets[i]], lengths[i])

    def __iter__(self):
        return iter(self.to_list())

    def to_list(self):
        """Every packet as `bytes`, in order."""
        cdef Py_ssize_t i, n = len(self.offsets)
        cdef const uint8_t[::1] data = self.data
        cdef const int64_t[::1] offsets = self.offsets
        cdef const int32_t[::1] lengths = self.lengths
        out = []
        for i in range(n):
            if lengths[i] == 0:
                out.append(b"")
            else:
                out.append(PyBytes_FromStringAndSize(<const char *>&data[offsets[i]], lengths[i]))
        return out

    cpdef PacketList take(self, indices):
        """A new, packed PacketList of the packets at `indices` (in that order;
        negative indices count from the end), with their timestamps and ports."""
        cdef Py_ssize_t n = len(self.offsets)
        idx = np.asarray(indices)
        if idx.size == 0:
            idx = np.zeros(0, np.int64)
        elif idx.dtype.kind not in "iu":
            raise TypeError(f"packet indices must be integers, got {idx.dtype}")
        idx = np.ascontiguousarray(idx, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"packet index out of range for {n} packets")
        idx = np.where(idx < 0, idx + n, idx)
        new_lengths = self.lengths[idx]
        new_offsets = _starts(new_lengths)
        new_data = np.empty(int(new_lengths.sum(dtype=np.int64)), np.uint8)
        cdef const int64_t[::1] pick = idx
        cdef const uint8_t[::1] src = self.data
        cdef const int64_t[::1] src_off = self.offsets
        cdef const int32_t[::1] src_len = self.lengths
        cdef uint8_t[::1] dst = new_data
        cdef const int64_t[::1] dst_off = new_offsets
        cdef Py_ssize_t k, count = len(idx)
        with nogil:
            for k in range(count):
                if src_len[pick[k]] > 0:
                    memcpy(&dst[dst_off[k]], &src[src_off[pick[k]]], src_len[pick[k]])
        return PacketList(new_data, new_offsets, new_lengths,
                          self.timestamps[idx], self.ports[idx])

    def __eq__(self, other):
        if not isinstance(other, PacketList):
            return NotImplemented
        return (len(self) == len(other)
                and np.array_equal(self.timestamps, other.timestamps)
                and np.array_equal(self.ports, other.ports)
                and self.to_list() == other.to_list())

    def __repr__(self):
        return (f"PacketList({len(self.offsets)} packets, "
                f"{int(self.lengths.sum(dtype=np.int64))} bytes)")


# -- reading ---------------------------------------------------------------------------


cdef inline uint32_t _get32(const uint8_t *p, bint big) noexcept nogil:
    if big:
        return ((<uint32_t>p[0]) << 24) | ((<uint32_t>p[1]) << 16) | ((<uint32_t>p[2]) << 8) | p[3]
    return ((<uint32_t>p[3]) << 24) | ((<uint32_t>p[2]) << 16) | ((<uint32_t>p[1]) << 8) | p[0]


# What the first pass found: every record checked, or the first bad one.
cdef enum ScanStatus:
    SCAN_OK
    SCAN_SHORT_RECORD_HEADER
    SCAN_ABSURD_LENGTH
    SCAN_OVER_SNAPLEN
    SCAN_SHORT_DATA

cdef struct Scan:
    ScanStatus status
    Py_ssize_t count       # records (all of them, or before the bad one)
    Py_ssize_t nbytes      # packet bytes in those records
    Py_ssize_t bad_offset  # where the bad record starts
    uint32_t bad_length    # its incl_len


cdef Scan _scan(const uint8_t *p, Py_ssize_t size, bint big, uint32_t snaplen) noexcept nogil:
    """Walk the records after the global header, checking each one's lengths."""
    cdef Scan s
    cdef Py_ssize_t pos = GLOBAL_HEADER_SIZE
    cdef uint32_t incl
    s.status = SCAN_OK
    s.count = 0
    s.nbytes = 0
    s.bad_offset = 0
    s.bad_length = 0
    while pos < size:
        s.bad_offset = pos
        if size - pos < RECORD_HEADER_SIZE:
            s.status = SCAN_SHORT_RECORD_HEADER
            return s
        incl = _get32(p + pos + 8, big)
        s.bad_length = incl
        if incl > RECORD_LIMIT:
            s.status = SCAN_ABSURD_LENGTH
            return s
        if snaplen != 0 and incl > snaplen:
            s.status = SCAN_OVER_SNAPLEN
            return s
        if <Py_ssize_t>incl > size - pos - RECORD_HEADER_SIZE:
            s.status = SCAN_SHORT_DATA
            return s
        s.count += 1
        s.nbytes += incl
        pos += RECORD_HEADER_SIZE + incl
    return s


cdef void _unpack(const uint8_t *p, Py_ssize_t count, bint big, bint nano,
                  uint8_t *data, int64_t *offsets, int32_t *lengths,
                  uint64_t *timestamps) noexcept nogil:
    """Second pass over records `_scan` accepted: copy them out packed."""
    cdef Py_ssize_t i, pos = GLOBAL_HEADER_SIZE
    cdef int64_t out = 0
    cdef uint32_t incl
    cdef uint64_t frac_ns = 1 if nano else 1000
    for i in range(count):
        incl = _get32(p + pos + 8, big)
        timestamps[i] = (<uint64_t>_get32(p + pos, big)) * 1000000000ULL \
            + (<uint64_t>_get32(p + pos + 4, big)) * frac_ns
        offsets[i] = out
        lengths[i] = <int32_t>incl
        if incl:
            memcpy(data + out, p + pos + RECORD_HEADER_SIZE, incl)
        out += incl
        pos += RECORD_HEADER_SIZE + incl


def _linktype_error(name, network):
    linktype = network & 0xFFFF
    if linktype == LINKTYPE_ETHERNET:
        # Bits 26-31 of the field describe an FCS after each frame; 16-25 are reserved.
        if network & 0x10000000:
            what = (f"its Ethernet frames end with a {(network >> 29) * 2}-byte FCS "
                    f"(link type field 0x{network:08x}), which nfv does not strip")
        else:
            what = f"reserved bits are set in the link type field (0x{network:08x})"
        return PcapError(name, what, 20)
    label = LINKTYPE_NAMES.get(linktype, "unknown")
    message = (f"link type {linktype} ({label}) is not supported: nfv reads Ethernet "
               f"captures (link type {LINKTYPE_ETHERNET}) only")
    hint = _LINKTYPE_HINTS.get(linktype)
    if hint:
        message += f"; {hint}"
    return PcapError(name, message, 20)


def parse_pcap(data, name="<memory>", port=0):
    """Parse the bytes of a classic pcap file into a PacketList.

    `name` is used in error messages; every packet gets input port `port`.
    Raises PcapError, and nothing else, for any content of `data`.
    """
    cdef const uint8_t[::1] buf = data
    cdef Py_ssize_t size = buf.shape[0]
    port = operator.index(port)
    if not 0 <= port <= 255:
        raise ValueError(f"port must be 0..255, got {port}")
    if size == 0:
        raise PcapError(name, "empty file, not a pcap capture (it should start with a "
                              "24-byte pcap header)", 0)
    magic = bytes(buf[:4])
    if magic == _PCAPNG_MAGIC:
        raise PcapError(name, "pcapng is not supported; convert with: editcap -F pcap IN OUT", 0)
    if magic in _OTHER_FORMATS:
        raise PcapError(name, _OTHER_FORMATS[magic], 0)
    if magic[:2] == b"\x1f\x8b":
        raise PcapError(name, "gzip-compressed; decompress it first (gunzip)", 0)
    if size >= 4 and magic not in _MAGICS:
        raise PcapError(name, f"not a pcap file: magic 0x{magic.hex()} (expected a1b2c3d4 for "
                              f"microsecond or a1b23c4d for nanosecond timestamps, in either "
                              f"byte order)", 0)
    if size < GLOBAL_HEADER_SIZE:
        raise PcapError(name, f"truncated pcap global header: the file has {size} bytes, "
                              f"the header needs {GLOBAL_HEADER_SIZE}", 0)
    cdef bint big, nano
    big, nano = _MAGICS[magic]
    cdef uint32_t snaplen = _get32(&buf[16], big)
    cdef uint32_t network = _get32(&buf[20], big)
    if network != LINKTYPE_ETHERNET:
        raise _linktype_error(name, network)

    cdef Scan s
    with nogil:
        s = _scan(&buf[0], size, big, snaplen)
    index = s.count  # the bad record's number, 0-based, when there is one
    remaining = size - s.bad_offset
    if s.status == SCAN_SHORT_RECORD_HEADER:
        raise PcapError(name, f"truncated record header of packet #{index}: {remaining} of "
                              f"{RECORD_HEADER_SIZE} bytes before the end of the file",
                        s.bad_offset)
    if s.status == SCAN_ABSURD_LENGTH:
        raise PcapError(name, f"packet #{index} claims incl_len {s.bad_length} bytes, more than "
                              f"any capture holds ({MAX_RECORD_BYTES}); the file is corrupt",
                        s.bad_offset)
    if s.status == SCAN_OVER_SNAPLEN:
        raise PcapError(name, f"packet #{index} has incl_len {s.bad_length}, more than the "
                              f"file's snaplen {snaplen}; the file is corrupt", s.bad_offset)
    if s.status == SCAN_SHORT_DATA:
        raise PcapError(name, f"truncated packet data: packet #{index} has incl_len "
                              f"{s.bad_length} but only {remaining - RECORD_HEADER_SIZE} bytes "
                              f"follow its record header", s.bad_offset)

    out_data = np.empty(s.nbytes, np.uint8)
    out_offsets = np.empty(s.count, np.int64)
    out_lengths = np.empty(s.count, np.int32)
    out_timestamps = np.empty(s.count, np.uint64)
    cdef uint8_t[::1] d = out_data
    cdef int64_t[::1] o = out_offsets
    cdef int32_t[::1] l = out_lengths
    cdef uint64_t[::1] t = out_timestamps
    if s.count:
        with nogil:
            # nbytes may be 0 (all records empty): no &d[0] then.
            _unpack(&buf[0], s.count, big, nano, &d[0] if s.nbytes else NULL,
                    &o[0], &l[0], &t[0])
    return PacketList(out_data, out_offsets, out_lengths, out_timestamps,
                      np.full(s.count, port, np.uint8))


def read_pcap(path, port=0):
    """Read a classic pcap file (Ethernet link type) into a PacketList.

    Timestamps come out in nanoseconds whatever the file's resolution; every
    packet gets input port `port`. Raises PcapError for anything wrong with the
    file, including one that cannot be opened.
    """
    name = str(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise PcapError(name, f"cannot read: {e.strerror or e}") from None
    return parse_pcap(data, name, port)


# -- writing ---------------------------------------------------------------------------


cdef inline void _put32(uint8_t *p, uint32_t v) noexcept nogil:
    p[0] = v & 0xFF
    p[1] = (v >> 8) & 0xFF
    p[2] = (v >> 16) & 0xFF
    p[3] = v >> 24


def _encode(PacketList packets, bint nanosecond, linktype, snaplen):
    """The pcap file for `packets` as a bytearray (little-endian)."""
    linktype = operator.index(linktype)
    snaplen = operator.index(snaplen)
    if not 0 <= linktype <= 0xFFFFFFFF:
        raise ValueError(f"linktype must fit 32 bits, got {linktype}")
    if not 1 <= snaplen <= 0xFFFFFFFF:
        raise ValueError(f"snaplen must be 1..4294967295, got {snaplen}")
    cdef Py_ssize_t i, n = len(packets)
    if n and int(packets.timestamps.max()) >= (1 << 32) * 1000000000:
        raise ValueError("a packet timestamp is past 2106: pcap seconds are 32 bits")

    cdef const uint8_t[::1] data = packets.data
    cdef const int64_t[::1] offsets = packets.offsets
    cdef const int32_t[::1] lengths = packets.lengths
    cdef const uint64_t[::1] timestamps = packets.timestamps
    cdef uint32_t cap = snaplen
    cdef Py_ssize_t total = GLOBAL_HEADER_SIZE
    for i in range(n):
        total += RECORD_HEADER_SIZE + min(<uint32_t>lengths[i], cap)

    out = bytearray(total)
    struct.pack_into("<IHHiIII", out, 0, 0xA1B23C4D if nanosecond else 0xA1B2C3D4,
                     2, 4, 0, 0, snaplen, linktype)
    cdef uint8_t[::1] o = out
    cdef Py_ssize_t pos = GLOBAL_HEADER_SIZE
    cdef uint32_t incl
    cdef uint64_t ts
    with nogil:
        for i in range(n):
            ts = timestamps[i]
            incl = min(<uint32_t>lengths[i], cap)
            _put32(&o[pos], <uint32_t>(ts // 1000000000ULL))
            if nanosecond:
                _put32(&o[pos + 4], <uint32_t>(ts % 1000000000ULL))
            else:
                _put32(&o[pos + 4], <uint32_t>((ts % 1000000000ULL) // 1000))
            _put32(&o[pos + 8], incl)
            _put32(&o[pos + 12], <uint32_t>lengths[i])
            if incl:
                memcpy(&o[pos + RECORD_HEADER_SIZE], &data[offsets[i]], incl)
            pos += RECORD_HEADER_SIZE + incl
    return out


def format_pcap(PacketList packets, nanosecond=True, linktype=LINKTYPE_ETHERNET, snaplen=65535):
    """The bytes of a classic pcap file holding `packets` (see `write_pcap`)."""
    return bytes(_encode(packets, nanosecond, linktype, snaplen))


def write_pcap(path, PacketList packets, nanosecond=True, linktype=LINKTYPE_ETHERNET,
               snaplen=65535):
    """Write `packets` to a classic, little-endian pcap file at `path`.

    nanosecond: a1b23c4d magic and ns timestamps; False writes the older
    microsecond format (a1b2c3d4), truncating timestamps to microseconds.
    Packets longer than `snaplen` are cut to it, their original length kept
    in the record, as tcpdump does. Raises PcapError if the file cannot be written.
    """
    out = _encode(packets, nanosecond, linktype, snaplen)
    try:
        with open(path, "wb") as f:
            f.write(out)
    except OSError as e:
        raise PcapError(str(path), f"cannot write: {e.strerror or e}") from None
