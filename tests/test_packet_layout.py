"""The packet layout has one definition per language (packet_layout.h for C,
META_DTYPE for Python and Numba); these tests hold the two together."""

import ctypes

import numpy as np

from nfv.dataplane import packet


def test_meta_dtype_matches_compiled_c_struct():
    c_layout = packet.c_meta_layout()
    dtype = packet.META_DTYPE
    assert packet.META_SIZE == dtype.itemsize
    # Same fields in the same order, at the same offsets, with the same widths.
    assert list(c_layout) == list(dtype.names)
    for name in dtype.names:
        field_type, field_offset = dtype.fields[name][:2]
        assert c_layout[name] == (field_offset, field_type.itemsize), name


def test_meta_record_has_no_hidden_padding():
    # Every byte belongs to a named field, so a zeroed array is a fully defined
    # record on both sides and nothing differs between compilers.
    dtype = packet.META_DTYPE
    assert sum(dtype.fields[n][0].itemsize for n in dtype.names) == dtype.itemsize
    assert dtype.itemsize == 32  # two records per 64-byte cache line
    assert dtype.isalignedstruct


def test_pool_constants_fit_the_metadata():
    assert packet.BUF_STRIDE & (packet.BUF_STRIDE - 1) == 0  # offset >> 11 finds the slot
    assert 4096 % packet.BUF_STRIDE == 0  # no buffer straddles a page
    assert 0 < packet.HEADROOM < packet.BUF_STRIDE
    assert packet.BUF_STRIDE - packet.HEADROOM >= 1518  # a full Ethernet frame fits
    assert packet.BUF_STRIDE - packet.HEADROOM <= np.iinfo(np.uint16).max  # length is u16
    assert 32 <= packet.MAX_BATCH <= 256
    assert packet.NO_PORT == 0xFF
    assert packet.NO_NET_HEADER == 0xFFFFFFFF
    assert packet.DROP_NONE == 0


def test_numba_kernel_reads_and_writes_records_through_a_raw_pointer():
    # The pipeline entry gets raw pointers (DESIGN.md): check that Numba sees
    # the same records numpy wrote, and that its writes land where numpy reads.
    import numba
    from numba import types

    meta_dtype = packet.META_DTYPE  # carray takes the numpy dtype itself

    @numba.cfunc(types.uint32(types.voidptr, types.intc), nopython=True)
    def strip_ethernet(meta_ptr, n):
        meta = numba.carray(meta_ptr, n, dtype=meta_dtype)
        total = 0
        for i in range(n):
            meta[i].offset += 14
            meta[i].length -= 14
            meta[i].out_port = meta[i].in_port + 1
            total += meta[i].dst_ip & 0xFF
        return total

    meta = np.zeros(3, packet.META_DTYPE)
    meta["offset"] = np.arange(3) * packet.BUF_STRIDE + packet.HEADROOM
    meta["length"] = 60
    meta["in_port"] = [0, 1, 2]
    meta["dst_ip"] = [0x0A000001, 0x0A000002, 0x0A000003]
    total = strip_ethernet.ctypes(ctypes.c_void_p(meta.ctypes.data), len(meta))

    assert total == 6
    assert list(meta["offset"]) == [i * packet.BUF_STRIDE + packet.HEADROOM + 14 for i in range(3)]
    assert list(meta["length"]) == [46] * 3
    assert list(meta["out_port"]) == [1, 2, 3]
    assert list(meta["offset"] // packet.BUF_STRIDE) == [0, 1, 2]  # slot index survives Strip
