# Cython view of nfv.dataplane.pcap's PacketList, so the host driver and the
# I/O backends can type their arguments: `from nfv.dataplane.pcap cimport PacketList`.

cdef class PacketList:
    # Packed arrays, one entry per packet (see the class docstring in pcap.pyx).
    cdef readonly object data        # np.uint8: all packets back to back
    cdef readonly object offsets     # np.int64: first byte of each packet in data
    cdef readonly object lengths     # np.int32: bytes of each packet
    cdef readonly object timestamps  # np.uint64: nanoseconds
    cdef readonly object ports       # np.uint8: device or source port

    cpdef PacketList take(self, indices)
