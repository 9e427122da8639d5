"""`make demo`: the firewall config on a scapy traffic mix, on the host.

    .venv/bin/python -m nfv.demo [--count 2000]

Builds a seeded mix of the traffic a server subnet sees from the internet
(web, ssh from inside and outside the admin network, DNS, mail, pings,
spoofed sources, fragments, expiring TTLs, ARP, IPv6, runts), pushes it
through configs/firewall.click on the host pipeline, and prints what was
forwarded and dropped, per counter and per drop reason.  (When the unikernel
target lands, the same demo boots it instead.)
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

from nfv import drops

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "firewall.click"


def traffic(count: int, seed: int = 2026):
    """(label, frame) pairs: a mix labelled by what kind of traffic each frame is."""
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.l2 import ARP, Ether

    rng = random.Random(seed)
    eth = dict(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    internet = lambda: f"203.0.113.{rng.randrange(1, 255)}"  # noqa: E731
    server = lambda: f"192.0.2.{rng.randrange(1, 255)}"      # noqa: E731
    kinds = [
        ("web", lambda: IP(src=internet(), dst=server()) / TCP(dport=rng.choice([80, 443]))),
        ("ssh from admin net", lambda: IP(src=f"198.51.100.{rng.randrange(1, 255)}",
                                          dst=server()) / TCP(dport=22)),
        ("ssh from internet", lambda: IP(src=internet(), dst=server()) / TCP(dport=22)),
        ("dns", lambda: IP(src=internet(), dst="192.0.2.53") / UDP(dport=53)),
        ("mail", lambda: IP(src=internet(), dst="192.0.2.25") / TCP(dport=25)),
        ("ping", lambda: IP(src=internet(), dst=server()) / ICMP(type=8)),
        ("spoofed source", lambda: IP(src=f"10.{rng.randrange(256)}.0.1", dst=server())
         / TCP(dport=80)),
        ("fragment", lambda: IP(src=internet(), dst=server(), flags="MF") / UDP(dport=53)),
        ("ttl expiring", lambda: IP(src=internet(), dst=server(), ttl=1) / TCP(dport=80)),
        ("other port", lambda: IP(src=internet(), dst=server()) / TCP(dport=rng.randrange(1024, 65535))),
    ]
    out = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.04:
            out.append(("arp", bytes(Ether(**eth) / ARP(pdst=server()))))
        elif roll < 0.06:
            out.append(("ipv6", bytes(Ether(type=0x86DD, **eth) / (b"\x60" + bytes(39)))))
        elif roll < 0.07:
            out.append(("runt", bytes(Ether(**eth))[:rng.randrange(1, 14)]))
        else:
            label, make = rng.choice(kinds)
            out.append((label, bytes(Ether(**eth) / make())))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="the firewall on a scapy traffic mix")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--target", choices=("unikernel", "host"), default="unikernel")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    if args.target == "host":
        from nfv.host import HostNF

        nf = HostNF(str(CONFIG))
        print(f"{CONFIG.name} compiled for the host in {time.perf_counter() - t0:.2f} s")
    else:
        from nfv.unikernel.target import UnikernelNF

        nf = UnikernelNF(str(CONFIG))
        image = nf.image
        sections = ", ".join(f"{k} {image.sections.get(k, 0):,}"
                             for k in (".text", ".rodata", ".data", ".arena_init", ".bss"))
        print(f"{CONFIG.name} built into a unikernel in {time.perf_counter() - t0:.1f} s"
              f"{' (cached)' if image.cached else ''}: {image.size:,} bytes ({sections})")
        vm = nf.boot()
        print(f"booted on QEMU microvm with {vm.accel.upper()}: ready {vm.launch_to_ready_ms:.1f} ms "
              f"after launch ({vm.boot_us} us inside the guest), {image.nic_count} virtio-net NICs, "
              f"{vm.memory} of RAM")
    try:
        report(nf, traffic(args.count))
    finally:
        if args.target == "unikernel":
            nf.close()
            print("VM stopped")
    return 0


def report(nf, mix) -> None:
    """Send the mix into NIC 0 and print what the firewall forwarded and dropped."""
    from nfv.dataplane.pcap import PacketList

    result = nf.run(PacketList.from_bytes([f for _, f in mix], ports=[0] * len(mix)))
    print(f"sent {len(mix)} frames into NIC 0 (the internet side)\n")
    kinds: dict[str, int] = {}
    for label, _ in mix:
        kinds[label] = kinds.get(label, 0) + 1
    print("traffic mix: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) + "\n")
    width = 24
    print(f"{'counter':{width}}  {'packets':>8}")
    for name in ("wan_allowed", "wan_expired", "wan_other"):
        print(f"{name:{width}}  {nf.read(name + '.count'):>8}")
    print(f"{'inbound (denied)':{width}}  {nf.read('inbound.drops'):>8}\n")
    print("inbound rules (packets matched per rule):")
    print(nf.read("inbound.rule_counts").rstrip() + "\n")
    forwarded = sum(len(p) for p in result.outputs.values())
    print(f"forwarded to NIC 1: {forwarded}")
    dropped = sum(result.drops.values()) + result.oversize
    reasons = ", ".join(f"{drops.name(r)} {n}" for r, n in sorted(result.drops.items()))
    print(f"dropped: {dropped} ({reasons})")


if __name__ == "__main__":
    sys.exit(main())
