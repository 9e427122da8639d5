"""`nfv run`: a config on the host, fed from pcap files, writing pcap files.

Devices are bound on the command line (`--in 0=in.pcap --out 1=out.pcap`);
FromDump/ToDump elements read and write the files their configs name, so a
Click config that works on dumps runs unchanged.  Runs to the end of input,
then prints per-element counters (a table, or JSON with `--stats json`).
"""
from __future__ import annotations

import json
import sys

import numpy as np

from nfv import drops
from nfv.compile.plan import FIRST_SINK
from nfv.errors import NfvError
from nfv.host import HostNF


def parse_binding(text: str, flag: str) -> tuple[int | str, str]:
    """`0=in.pcap` or `eth0=in.pcap` -> (0, 'in.pcap')."""
    dev, sep, path = text.partition("=")
    if not sep or not dev or not path:
        raise NfvError(f"{flag} {text}: write {flag} DEVICE=FILE, e.g. {flag} 0=in.pcap")
    return (int(dev) if dev.isdigit() else dev), path


def source_packets(nf: HostNF, element: str):
    """Packets of a source element: FromDump's file, or InfiniteSource/RatedSource's DATA."""
    from nfv.dataplane.pcap import PacketList, read_pcap

    inst = nf.graph.elements[element].instance
    if inst.class_name == "FromDump":
        return read_pcap(inst.conf["FILENAME"])
    limit = inst.conf["LIMIT"]
    if limit is None or limit < 0:
        raise NfvError(f"{element} ({inst.class_name}) has no LIMIT, so it would never end; "
                       "give it LIMIT N for nfv run, or use nfv bench")
    data = bytes(inst.conf["DATA"])
    length = inst.conf.get("LENGTH")
    if length is not None:  # Click: DATA cut or padded with zeros to LENGTH
        data = data[:length] + bytes(max(0, length - len(data)))
    return PacketList.from_bytes([data] * limit)


def bound_inputs(nf: HostNF, bindings: list[str]) -> list:
    """`--in DEV=FILE` bindings read into PacketLists whose ports are DEV's in_port."""
    from nfv.dataplane.pcap import read_pcap

    lists = []
    for text in bindings:
        dev, path = parse_binding(text, "--in")
        port = nf.input_port(dev)
        lists.append(read_pcap(path, port=port))
    return lists


def gather_inputs(nf: HostNF, bindings: list[str]):
    """All input packets, in_port set, merged by timestamp (stable: file order within a port)."""
    lists = bound_inputs(nf, bindings)
    for element in nf.plan.sources:
        plist = source_packets(nf, element)
        plist.ports[:] = nf.input_port(element)
        lists.append(plist)
    if not lists:
        raise NfvError("no input: bind a device with --in DEVICE=FILE "
                       "(or use FromDump/InfiniteSource in the config)")
    return merge(lists)


def merge(lists):
    """One PacketList in timestamp order (stable), without a Python object per packet."""
    from nfv.dataplane.pcap import PacketList

    if len(lists) == 1:
        return lists[0]
    joined = PacketList.concat(lists)
    return joined.take(np.argsort(np.asarray(joined.timestamps), kind="stable"))


def run(config: str, defines: dict[str, str], inputs: list[str], outputs: list[str],
        stats: str = "table", boundscheck: bool = False, out=sys.stdout) -> int:
    from nfv.dataplane.pcap import write_pcap

    nf = HostNF(config, defines, boundscheck)
    out_files = {}
    for text in outputs:
        dev, path = parse_binding(text, "--out")
        out_files[nf.output_port(dev)] = path
    packets = gather_inputs(nf, inputs)
    result = nf.run(packets)
    written = {}
    for port, path in out_files.items():
        plist = result.outputs.get(port)
        write_pcap(path, plist if plist is not None else type(packets).from_bytes([]))
        written[path] = len(plist) if plist is not None else 0
    for k, element in enumerate(nf.plan.sinks):
        plist = result.outputs.get(FIRST_SINK + k)
        inst = nf.graph.elements[element].instance
        if inst.class_name == "Print":
            for data, stamp in zip(plist.to_list() if plist is not None else [],
                                   plist.timestamps if plist is not None else []):
                print(inst.line(data, int(stamp)), file=sys.stderr)
            continue
        conf = inst.conf
        path = conf["FILENAME"]
        write_pcap(path, plist if plist is not None else type(packets).from_bytes([]),
                   snaplen=conf.get("SNAPLEN") or 65535)
        written[path] = len(plist) if plist is not None else 0
    report = {
        "packets": len(packets),
        "outputs": {str(nf.sink_element(p) or p): len(pl)
                    for p, pl in sorted(result.outputs.items())},
        "files": written,
        "drops": {drops.name(r): n for r, n in sorted(result.drops.items())},
        "oversize": result.oversize,
        "elements": nf.counters(),
    }
    if stats == "json":
        json.dump(report, out, indent=2)
        out.write("\n")
    else:
        print_report(report, out)
    return 0


def print_report(report: dict, out) -> None:
    rows = [("element", "class", "count", "drops")]
    rows += [(r["element"], r["class"], str(r["count"]), str(r["drops"]))
             for r in report["elements"]]
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    for k, r in enumerate(rows):
        out.write("  ".join(r[c].ljust(widths[c]) if c < 2 else r[c].rjust(widths[c])
                            for c in range(4)).rstrip() + "\n")
        if k == 0:
            out.write("  ".join("-" * w for w in widths) + "\n")
    out.write(f"\n{report['packets']} packets in")
    for port, n in report["outputs"].items():
        out.write(f"; {n} out on {port}")
    dropped = sum(report["drops"].values()) + report["oversize"]
    out.write(f"; {dropped} dropped")
    if report["drops"]:
        out.write(" (" + ", ".join(f"{k} {v}" for k, v in report["drops"].items()) + ")")
    out.write("\n")
    for path, n in report["files"].items():
        out.write(f"wrote {n} packets to {path}\n")
