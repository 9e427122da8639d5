"""`nfv bench`: packets per second of a config's compiled pipeline on the host.

The input (a pcap, or generated 64-byte UDP frames) is loaded into memory once
and looped through the driver and pipeline in batches for a few seconds, on
one core; the figure is the median of repeated runs.  The driver's own work
(copying each frame into its buffer, filling its record) is included, as a NIC
driver's would be; writing outputs anywhere is not.
"""
from __future__ import annotations

import json
import platform
import statistics
import sys

import numpy as np

from nfv.errors import NfvError
from nfv.host import HostNF


def udp_frames(count: int, size: int, port: int, seed: int = 1):
    """`count` distinct Ethernet/IPv4/UDP frames of `size` bytes (flows vary in src/dst/ports)."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    from nfv.dataplane.pcap import PacketList

    rng = np.random.default_rng(seed)
    frames = []
    for k in range(count):
        src = f"198.51.100.{rng.integers(1, 255)}"
        dst = f"192.0.2.{rng.integers(1, 255)}"
        p = (Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
             / IP(src=src, dst=dst, ttl=64)
             / UDP(sport=int(rng.integers(1024, 65535)), dport=int(rng.integers(1, 1024))))
        raw = bytes(p)
        frames.append(raw + bytes(max(0, size - len(raw))))
    return PacketList.from_bytes(frames, ports=[port] * count)


def machine() -> str:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model or platform.processor()}, Python {platform.python_version()}"


def bench(nf: HostNF, packets, seconds: float = 2.0, repeat: int = 5, now_ns: int = 0) -> dict:
    """Median packets/s over `repeat` runs of `seconds` each (after one warm-up run).

    The pipeline's clock starts at now_ns and runs on from one run to the next
    (each `loop` starts it where the last one stopped): a stateful element must
    never see time go back, or its flows would look decades old and be made again.
    """
    clock = now_ns
    _, elapsed_ns = nf.driver.loop(packets, min(seconds, 0.3), now_ns=clock)
    clock += elapsed_ns
    rates = []
    total = 0
    for _ in range(repeat):
        processed, elapsed_ns = nf.driver.loop(packets, seconds, now_ns=clock)
        clock += elapsed_ns
        rates.append(processed / (elapsed_ns / 1e9))
        total += processed
    mpps = statistics.median(rates) / 1e6
    return {"mpps": round(mpps, 2), "ns_per_packet": round(1e3 / mpps, 2), "packets": total,
            "runs": [round(r / 1e6, 2) for r in rates], "batch": nf.driver.batch_size,
            "machine": machine()}


def run(config: str, defines: dict[str, str], inputs: list[str], size: int, seconds: float,
        repeat: int, as_json: bool, batch: int = 256, out=sys.stdout) -> int:
    from nfv.run import bound_inputs, merge

    nf = HostNF(config, defines, batch_size=batch)
    if inputs:
        packets = merge(bound_inputs(nf, inputs))
    else:
        devices = [p for p, name in sorted(nf.plan.entries.items())
                   if nf.graph.elements[name].instance.role == "device"]
        if not devices:
            raise NfvError("the config reads no device; give --in DEVICE=FILE.pcap")
        packets = udp_frames(1024, size, devices[0])
    if len(packets) == 0:
        raise NfvError("no packets to benchmark with")
    result = bench(nf, packets, seconds, repeat)
    result["config"] = config
    if as_json:
        json.dump(result, out)
        out.write("\n")
    else:
        out.write(f"{config}: {result['mpps']:.2f} Mpps, {result['ns_per_packet']:.2f} ns/packet "
                  f"(median of {repeat} x {seconds:g} s, batch {batch}, one core; "
                  f"{result['machine']})\n")
    return 0
