"""Unikernel benchmarks behind perf/RESULTS.md (issue: unikernel target).

    .venv/bin/python perf/bench_unikernel.py [--boots 20] [--packets 20000000] [--frames 20000]
                                             [--only sizes,boot,rate,frames] [--json]

- sizes: image bytes (file and by section) of every shipped config;
- boot:  launch -> `ready` (host wall clock, QEMU start included) and guest
         entry -> `ready` (the guest's own TSC), median of N boots of the
         firewall with two TCP NICs and -m 8M;
- rate:  the firewall's inbound path fed by InfiniteSource inside the VM (no
         I/O: the guest copies the source frame into a buffer per packet, as
         the host driver copies each input frame), against the same config on
         the host through `nfv bench`'s loop;
- frames: frames/s through the VM's socket netdevs (lossless TCP stream),
         the firewall forwarding allowed web traffic from NIC 0 to NIC 1.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "perf" / "generated"
FIREWALL = ROOT / "configs" / "firewall.click"


def web_frame() -> bytes:
    """An allowed inbound web packet, 64 bytes on the wire (without FCS)."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether

    raw = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
                / IP(src="203.0.113.7", dst="192.0.2.80", ttl=64) / TCP(sport=40000, dport=80))
    return raw + bytes(max(0, 60 - len(raw)))


def source_firewall(limit: int) -> Path:
    """configs/firewall.click with its wan NIC replaced by an InfiniteSource and every
    other device by Discard/Idle, so the VM has no I/O and stops after LIMIT packets."""
    text = FIREWALL.read_text()
    data = web_frame().hex()
    swaps = {r"from_wan :: FromDevice\(0\);": f"from_wan :: InfiniteSource(DATA \\<{data}>, "
                                               f"LIMIT {limit}, BURST 256);",
             r"to_wan   :: ToDevice\(0\);": "to_wan :: Discard;",
             r"from_lan :: FromDevice\(1\);": "from_lan :: Idle;",
             r"to_lan   :: ToDevice\(1\);": "to_lan :: Discard;"}
    for pattern, replacement in swaps.items():
        text, n = re.subn(pattern, replacement, text)
        assert n == 1, f"configs/firewall.click changed: no '{pattern}'"
    OUT.mkdir(exist_ok=True)
    path = OUT / "firewall-source.click"
    path.write_text(text)
    return path


def sizes() -> list[dict]:
    from nfv.unikernel.build import build_image

    rows = []
    for config in sorted((ROOT / "configs").glob("*.click")):
        image = build_image(str(config))
        rows.append({"config": config.name, "bytes": image.size, **image.sections})
    return rows


def boots(count: int) -> dict:
    from nfv.unikernel.build import build_image
    from nfv.unikernel.vm import VM

    image = build_image(str(FIREWALL))
    wall, guest, accel = [], [], None
    for _ in range(count):
        with VM(image.path, nics=["tcp", "tcp"], memory="8M") as vm:
            wall.append(vm.launch_to_ready_ms)
            guest.append(vm.boot_us)
            accel = vm.accel
    return {"boots": count, "launch_to_ready_ms": round(statistics.median(wall), 1),
            "launch_to_ready_min_ms": round(min(wall), 1),
            "launch_to_ready_max_ms": round(max(wall), 1),
            "guest_boot_us": int(statistics.median(guest)), "memory": "8M", "accel": accel}


def rate(packets: int) -> dict:
    from nfv.bench import bench
    from nfv.compile.plan import FIRST_SOURCE
    from nfv.dataplane.pcap import PacketList
    from nfv.host import HostNF
    from nfv.unikernel.build import build_image
    from nfv.unikernel.vm import VM

    config = source_firewall(packets)
    image = build_image(str(config))
    runs = []
    for _ in range(3):
        vm = VM(image.path, nics=[], memory="8M").start()
        try:
            line = vm.wait_line("done", timeout=120)
        finally:
            vm.stop()
        fields = dict(kv.split("=") for kv in line.split()[1:])
        runs.append(int(fields["packets"]) / (int(fields["ns"]) / 1e9) / 1e6)
    nf = HostNF(str(config))
    frames = PacketList.from_bytes([web_frame()] * 1024, ports=[FIRST_SOURCE] * 1024)
    host = bench(nf, frames, seconds=2.0, repeat=5)
    vm_mpps = statistics.median(runs)
    return {"config": "firewall inbound path, InfiniteSource 64-byte web frames",
            "unikernel_mpps": round(vm_mpps, 2), "unikernel_runs": [round(r, 2) for r in runs],
            "host_mpps": host["mpps"], "ratio": round(vm_mpps / host["mpps"], 3),
            "packets_per_vm_run": packets}


def frames(count: int) -> dict:
    from nfv.dataplane.pcap import PacketList
    from nfv.unikernel.target import UnikernelNF

    nf = UnikernelNF(str(FIREWALL))
    try:
        nf.boot()
        plist = PacketList.from_bytes([web_frame()] * count, ports=[0] * count)
        t0 = time.perf_counter()
        result = nf.run(plist)
        took = time.perf_counter() - t0
        out = sum(len(p) for p in result.outputs.values())
    finally:
        nf.close()
    return {"frames": count, "forwarded": out, "seconds": round(took, 3),
            "frames_per_s": int(count / took), "netdev": "QEMU stream (TCP, loopback)"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boots", type=int, default=20)
    parser.add_argument("--packets", type=int, default=20_000_000)
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--only", default="sizes,boot,rate,frames")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from nfv.bench import machine

    wanted = args.only.split(",")
    results = {"machine": machine()}
    if "sizes" in wanted:
        results["sizes"] = sizes()
    if "boot" in wanted:
        results["boot"] = boots(args.boots)
    if "rate" in wanted:
        results["rate"] = rate(args.packets)
    if "frames" in wanted:
        results["frames"] = frames(args.frames)
    if args.json:
        json.dump(results, sys.stdout, indent=1)
        print()
    else:
        for key, value in results.items():
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
