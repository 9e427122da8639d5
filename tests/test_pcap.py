"""Tests for nfv.dataplane.pcap: PacketList, classic pcap reading and writing.

Expected file bytes are built here with `struct` (or by scapy), never by the
writer under test, and files we write are read back by scapy as well as by us.
"""
from __future__ import annotations

import struct
import time
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.all import IP, UDP, Ether, rdpcap, wrpcap
from scapy.utils import EDecimal

from nfv.dataplane.pcap import (
    MAX_RECORD_BYTES, PacketList, PcapError, format_pcap, parse_pcap, read_pcap, write_pcap,
)
from nfv.errors import NfvError

USEC_MAGIC = 0xA1B2C3D4
NSEC_MAGIC = 0xA1B23C4D


def pcap_file(records, *, magic=NSEC_MAGIC, endian="<", snaplen=65535, linktype=1,
              version=(2, 4)):
    """A classic pcap file built by hand.

    records: (sec, frac, data) or (sec, frac, data, orig_len) tuples, frac in the
    unit the magic says.
    """
    out = [struct.pack(endian + "IHHiIII", magic, version[0], version[1], 0, 0, snaplen, linktype)]
    for rec in records:
        sec, frac, data = rec[:3]
        orig = rec[3] if len(rec) > 3 else len(data)
        out.append(struct.pack(endian + "IIII", sec, frac, len(data), orig) + data)
    return b"".join(out)


def frames(n=5, seed=0):
    """n distinct scapy UDP frames of different sizes."""
    return [Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
            / IP(src="10.0.0.1", dst=f"10.0.1.{i + 1}") / UDP(sport=1000 + i, dport=53)
            / (bytes([(seed + i) % 256]) * (i * 37 % 200))
            for i in range(n)]


def error_of(data: bytes, name="t.pcap") -> PcapError:
    with pytest.raises(PcapError) as info:
        parse_pcap(data, name)
    return info.value


# -- PacketList -----------------------------------------------------------------------


def test_packet_list_from_bytes_holds_packed_arrays():
    pkts = PacketList.from_bytes([b"abc", b"", b"hello"], ports=[0, 1, 2], timestamps=[5, 6, 7])
    assert len(pkts) == 3
    assert pkts.data.dtype == np.uint8 and bytes(pkts.data) == b"abchello"
    assert pkts.offsets.dtype == np.int64 and list(pkts.offsets) == [0, 3, 3]
    assert pkts.lengths.dtype == np.int32 and list(pkts.lengths) == [3, 0, 5]
    assert pkts.timestamps.dtype == np.uint64 and list(pkts.timestamps) == [5, 6, 7]
    assert pkts.ports.dtype == np.uint8 and list(pkts.ports) == [0, 1, 2]
    assert pkts[0] == b"abc" and pkts[1] == b"" and pkts[-1] == b"hello"
    assert pkts.to_list() == [b"abc", b"", b"hello"]
    assert list(pkts) == [b"abc", b"", b"hello"]


def test_packet_list_defaults_scalars_and_scapy_packets():
    pkts = PacketList.from_bytes(frames(3))
    assert list(pkts.ports) == [0, 0, 0] and list(pkts.timestamps) == [0, 0, 0]
    assert pkts.to_list() == [bytes(f) for f in frames(3)]
    pkts = PacketList.from_bytes([b"x", bytearray(b"yz"), memoryview(b"w")], ports=4,
                                 timestamps=2**63)
    assert pkts.to_list() == [b"x", b"yz", b"w"]
    assert list(pkts.ports) == [4] * 3 and list(pkts.timestamps) == [2**63] * 3
    empty = PacketList.from_bytes([])
    assert len(empty) == 0 and empty.to_list() == []


def test_packet_list_slices_and_take():
    pkts = PacketList.from_bytes([bytes([i]) * i for i in range(6)], ports=range(6),
                                 timestamps=range(100, 106))
    tail = pkts[3:]
    assert tail.to_list() == [b"\x03" * 3, b"\x04" * 4, b"\x05" * 5]
    assert list(tail.ports) == [3, 4, 5] and list(tail.timestamps) == [103, 104, 105]
    assert list(tail.offsets) == [0, 3, 7]  # packed again
    assert pkts[::-2].to_list() == [b"\x05" * 5, b"\x03" * 3, b"\x01"]
    picked = pkts.take([5, 0, -1])
    assert picked.to_list() == [b"\x05" * 5, b"", b"\x05" * 5]
    assert len(pkts.take([])) == 0
    assert pkts == PacketList.from_bytes(pkts.to_list(), ports=range(6),
                                         timestamps=range(100, 106))
    assert pkts != PacketList.from_bytes(pkts.to_list())  # timestamps and ports differ


def test_packet_list_concat_then_take_merges_lists():
    a = PacketList.from_bytes([b"a0", b"a1"], ports=1, timestamps=[10, 30])
    b = PacketList.from_bytes([b"b0", b"b1", b"b2"], ports=2, timestamps=[5, 20, 40])
    both = PacketList.concat([a, b])
    assert both.to_list() == [b"a0", b"a1", b"b0", b"b1", b"b2"]
    assert list(both.ports) == [1, 1, 2, 2, 2]
    merged = both.take(np.argsort(both.timestamps, kind="stable"))
    assert merged.to_list() == [b"b0", b"a0", b"b1", b"a1", b"b2"]
    assert list(merged.timestamps) == [5, 10, 20, 30, 40]
    assert len(PacketList.concat([])) == 0
    assert PacketList.concat([a]) == a


def test_packet_list_rejects_bad_input():
    with pytest.raises(IndexError):
        PacketList.from_bytes([b"a"])[1]
    with pytest.raises(IndexError):
        PacketList.from_bytes([b"a"])[-2]
    with pytest.raises(IndexError):
        PacketList.from_bytes([b"a"]).take([3])
    with pytest.raises(TypeError):
        PacketList.from_bytes([5])
    with pytest.raises(ValueError, match="out of range"):
        PacketList.from_bytes([b"a"], ports=256)
    with pytest.raises(ValueError, match="out of range"):
        PacketList.from_bytes([b"a"], timestamps=[-1])
    with pytest.raises(ValueError, match="2 packets but 1 ports"):
        PacketList.from_bytes([b"a", b"b"], ports=[1])
    with pytest.raises(ValueError, match="reach byte 5"):
        PacketList(b"abcd", [0, 2], [2, 3])
    with pytest.raises(ValueError, match="negative"):
        PacketList(b"abcd", [0], [-1])


# -- reading and writing round trips ---------------------------------------------------


@pytest.mark.parametrize("nanosecond", [True, False])
def test_round_trip_through_our_writer_and_reader(tmp_path, nanosecond):
    data = [bytes(f) for f in frames(20)]
    ts = np.array([1_700_000_000_123_456_789 + i * 1_001_001 for i in range(20)], np.uint64)
    pkts = PacketList.from_bytes(data, timestamps=ts)
    path = tmp_path / "t.pcap"
    write_pcap(path, pkts, nanosecond=nanosecond)
    back = read_pcap(path)
    assert back.to_list() == data
    expected = ts if nanosecond else ts // 1000 * 1000  # microseconds truncate
    assert list(back.timestamps) == list(expected)
    assert list(back.ports) == [0] * 20
    assert list(read_pcap(path, port=3).ports) == [3] * 20
    assert format_pcap(pkts, nanosecond=nanosecond) == path.read_bytes()


def test_writer_emits_the_documented_bytes():
    pkts = PacketList.from_bytes([b"\x01\x02\x03", b"abcdef"],
                                 timestamps=[5_000_000_007, 6_123_456_789])
    expected_ns = pcap_file([(5, 7, b"\x01\x02\x03"), (6, 123_456_789, b"abcdef")],
                            magic=NSEC_MAGIC)
    assert format_pcap(pkts) == expected_ns
    expected_us = pcap_file([(5, 0, b"\x01\x02\x03"), (6, 123_456, b"abcdef")], magic=USEC_MAGIC)
    assert format_pcap(pkts, nanosecond=False) == expected_us
    # snaplen cuts the data but keeps the original length, as tcpdump does
    expected_cut = pcap_file([(5, 7, b"\x01\x02\x03"), (6, 123_456_789, b"abcd", 6)], snaplen=4)
    assert format_pcap(pkts, snaplen=4) == expected_cut


@pytest.mark.parametrize("nano", [False, True])
def test_scapy_writes_we_read(tmp_path, nano):
    pkts = frames(12, seed=7)
    for i, p in enumerate(pkts):
        p.time = EDecimal(1_600_000_000 + i) + EDecimal(i * 111_111) / EDecimal(10**9 if nano else 10**6)
    path = tmp_path / "scapy.pcap"
    wrpcap(str(path), pkts, nano=nano)
    ours = read_pcap(path)
    assert len(ours) == len(pkts)
    for i, p in enumerate(pkts):
        assert ours[i] == bytes(p), i
        unit = 1 if nano else 1000
        assert ours.timestamps[i] == (1_600_000_000 + i) * 10**9 + i * 111_111 * unit, i


@pytest.mark.parametrize("nanosecond", [True, False])
def test_we_write_scapy_reads(tmp_path, nanosecond):
    data = [bytes(f) for f in frames(12, seed=3)]
    ts = [1_650_000_000_000_000_000 + i * 987_654_321 for i in range(12)]
    path = tmp_path / "ours.pcap"
    write_pcap(path, PacketList.from_bytes(data, timestamps=ts), nanosecond=nanosecond)
    theirs = rdpcap(str(path))
    assert len(theirs) == 12
    for i, p in enumerate(theirs):
        assert bytes(p) == data[i], i
        assert p.wirelen == len(data[i])
        expected = Decimal(ts[i] if nanosecond else ts[i] // 1000 * 1000) / Decimal(10**9)
        assert Decimal(p.time) == expected, i
        assert p[IP].dst == f"10.0.1.{i + 1}"


def test_scapy_reads_snaplen_cut_packets(tmp_path):
    data = [bytes(f) for f in frames(4)]
    path = tmp_path / "cut.pcap"
    write_pcap(path, PacketList.from_bytes(data), snaplen=40)
    theirs = rdpcap(str(path))
    assert [bytes(p) for p in theirs] == [d[:40] for d in data]
    assert [p.wirelen for p in theirs] == [len(d) for d in data]
    assert read_pcap(path).to_list() == [d[:40] for d in data]


@pytest.mark.parametrize("magic,unit", [(USEC_MAGIC, 1000), (NSEC_MAGIC, 1)])
@pytest.mark.parametrize("endian", [">", "<"])
def test_hand_built_files_in_both_byte_orders(magic, unit, endian):
    records = [(1, 2, b"\xaa" * 14), (0xFFFFFFFF, 999_999, b"\x01\x02" * 30), (3, 0, b"")]
    pkts = parse_pcap(pcap_file(records, magic=magic, endian=endian))
    assert pkts.to_list() == [r[2] for r in records]
    assert list(pkts.timestamps) == [sec * 10**9 + frac * unit for sec, frac, _ in records]


def test_incl_len_above_orig_len_is_accepted():
    pkts = parse_pcap(pcap_file([(1, 0, b"abcdef", 2)]))
    assert pkts.to_list() == [b"abcdef"]


def test_snaplen_zero_means_unlimited():
    pkts = parse_pcap(pcap_file([(1, 0, b"x" * 3000)], snaplen=0))
    assert pkts.lengths[0] == 3000


def test_file_with_header_only_has_no_packets(tmp_path):
    assert len(parse_pcap(pcap_file([]))) == 0
    path = tmp_path / "empty-capture.pcap"
    write_pcap(path, PacketList.from_bytes([]))
    assert path.stat().st_size == 24 and len(read_pcap(path)) == 0


def test_large_capture_is_read_without_per_packet_python():
    # 200k records, 12.8 MB of packets: the C loops take milliseconds; a
    # Python-object-per-packet reader would take around a second.
    n = 200_000
    pkts = PacketList(np.arange(n * 64, dtype=np.uint64).astype(np.uint8),
                      np.arange(n, dtype=np.int64) * 64, np.full(n, 64, np.int32),
                      np.arange(n, dtype=np.uint64) * 1000)
    blob = format_pcap(pkts)
    start = time.perf_counter()
    back = parse_pcap(blob)
    elapsed = time.perf_counter() - start
    assert len(back) == n and np.array_equal(back.data, pkts.data)
    assert np.array_equal(back.timestamps, pkts.timestamps)
    assert elapsed < 0.5, f"parsing {len(blob)} bytes took {elapsed:.3f} s"


# -- errors -------------------------------------------------------------------------------


def test_errors_are_nfv_errors():
    assert issubclass(PcapError, NfvError)


def test_empty_file():
    e = error_of(b"")
    assert str(e) == ("t.pcap: byte offset 0: empty file, not a pcap capture (it should start "
                      "with a 24-byte pcap header)")
    assert (e.path, e.offset) == ("t.pcap", 0)


def test_pcapng_is_named_with_the_conversion_command():
    shb = struct.pack("<II", 0x0A0D0D0A, 28) + struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
    e = error_of(shb + struct.pack("<I", 28), "cap.pcapng")
    assert str(e) == ("cap.pcapng: byte offset 0: pcapng is not supported; convert with: "
                      "editcap -F pcap IN OUT")


@pytest.mark.parametrize("data,fragment", [
    (b"GET / HTTP/1.1\r\n\r\n" + b"x" * 10, "not a pcap file: magic 0x47455420"),
    (b"\x1f\x8b\x08\x00" + b"\x00" * 30, "gzip-compressed; decompress it first"),
    (struct.pack("<I", 0xA1B2CD34) + b"\x00" * 20, "Kuznetzov 'modified pcap'"),
    (b"\xd4\xc3\xb2", "truncated pcap global header: the file has 3 bytes, the header needs 24"),
])
def test_bad_magic_and_short_header(data, fragment):
    e = error_of(data)
    assert fragment in str(e) and e.offset == 0, str(e)


@pytest.mark.parametrize("endian", ["<", ">"])
def test_truncated_global_header(endian):
    header = pcap_file([], endian=endian)
    for size in (4, 10, 23):
        e = error_of(header[:size])
        assert str(e) == (f"t.pcap: byte offset 0: truncated pcap global header: the file "
                          f"has {size} bytes, the header needs 24")


@pytest.mark.parametrize("linktype,name,hint", [
    (101, "raw IP", "no Ethernet header"),
    (113, "Linux cooked capture (SLL)", "tcpdump -i any"),
    (127, "IEEE 802.11 with radiotap header", "wireless capture"),
    (276, "Linux cooked capture v2 (SLL2)", "tcpdump -i any"),
    (0, "BSD loopback", None),
    (4242, "unknown", None),
])
def test_link_types_other_than_ethernet(linktype, name, hint):
    e = error_of(pcap_file([(1, 0, b"x" * 20)], linktype=linktype), "in.pcap")
    assert str(e).startswith(
        f"in.pcap: byte offset 20: link type {linktype} ({name}) is not supported: nfv reads "
        f"Ethernet captures (link type 1) only"), str(e)
    if hint:
        assert hint in str(e)


def test_ethernet_with_fcs_is_refused():
    e = error_of(pcap_file([], linktype=1 | 0x10000000 | (2 << 29)))
    assert "4-byte FCS" in str(e) and e.offset == 20


def test_truncated_record_header():
    good = pcap_file([(1, 0, b"a" * 60), (2, 0, b"b" * 60)])
    e = error_of(good + b"\x01\x00\x00\x00\x00\x00\x00")
    assert str(e) == ("t.pcap: byte offset 176: truncated record header of packet #2: 7 of 16 "
                      "bytes before the end of the file")


def test_truncated_packet_data():
    good = pcap_file([(1, 0, b"a" * 60), (2, 0, b"b" * 60)])
    e = error_of(good[:-10])
    assert str(e) == ("t.pcap: byte offset 100: truncated packet data: packet #1 has incl_len 60 "
                      "but only 50 bytes follow its record header")
    # a record header whose incl_len runs past the end of a complete-looking file
    e = error_of(pcap_file([(1, 0, b"a" * 60)]) + struct.pack("<IIII", 0, 0, 1000, 1000))
    assert "packet #1 has incl_len 1000 but only 0 bytes" in str(e) and e.offset == 100


def test_incl_len_over_snaplen():
    e = error_of(pcap_file([(1, 0, b"a" * 60), (1, 0, b"b" * 200)], snaplen=128))
    assert str(e) == ("t.pcap: byte offset 100: packet #1 has incl_len 200, more than the "
                      "file's snaplen 128; the file is corrupt")


def test_absurd_incl_len():
    header = pcap_file([], snaplen=0xFFFFFFFF)
    e = error_of(header + struct.pack("<IIII", 0, 0, 0x7FFFFFFF, 60) + b"x" * 64)
    assert str(e) == (f"t.pcap: byte offset 24: packet #0 claims incl_len 2147483647 bytes, more "
                      f"than any capture holds ({MAX_RECORD_BYTES}); the file is corrupt")
    # the largest real record is fine
    ok = header + struct.pack("<IIII", 0, 0, MAX_RECORD_BYTES, MAX_RECORD_BYTES)
    assert parse_pcap(ok + b"z" * MAX_RECORD_BYTES).lengths[0] == MAX_RECORD_BYTES


def test_file_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.pcap"
    with pytest.raises(PcapError, match=r"nope\.pcap: cannot read: No such file"):
        read_pcap(missing)
    with pytest.raises(PcapError, match="cannot write"):
        write_pcap(tmp_path / "no-dir" / "x.pcap", PacketList.from_bytes([b"a"]))
    (tmp_path / "empty.pcap").write_bytes(b"")
    with pytest.raises(PcapError, match=r"empty\.pcap: byte offset 0: empty file"):
        read_pcap(tmp_path / "empty.pcap")


def test_writer_refuses_bad_arguments():
    pkts = PacketList.from_bytes([b"a"], timestamps=2**32 * 10**9)
    with pytest.raises(ValueError, match="2106"):
        format_pcap(pkts)
    with pytest.raises(ValueError, match="snaplen"):
        format_pcap(PacketList.from_bytes([b"a"]), snaplen=0)


# -- fuzzing: any bytes give a PacketList or a PcapError --------------------------------


def parses_or_pcap_error(data: bytes):
    try:
        pkts = parse_pcap(data, "fuzz.pcap")
    except PcapError as e:
        assert str(e).startswith("fuzz.pcap: ")
        return None
    # whatever was accepted is self-consistent
    assert len(pkts.offsets) == len(pkts.lengths) == len(pkts.timestamps)
    assert int(pkts.lengths.sum()) == len(pkts.data)
    return pkts


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_fuzz_random_bytes(data):
    parses_or_pcap_error(data)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([USEC_MAGIC, NSEC_MAGIC]), st.sampled_from(["<", ">"]),
       st.binary(max_size=120))
def test_fuzz_valid_header_random_records(magic, endian, body):
    parses_or_pcap_error(pcap_file([], magic=magic, endian=endian, snaplen=256) + body)


VALID = pcap_file([(i, i * 3, bytes([i]) * (10 + 7 * i)) for i in range(6)], snaplen=200)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), max_size=6),
       st.integers(0, len(VALID)))
def test_fuzz_mutated_valid_file(flips, cut):
    data = bytearray(VALID)
    for where, value in flips:
        data[where] = value
    parses_or_pcap_error(bytes(data[:cut]))
