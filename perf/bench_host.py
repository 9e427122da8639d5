"""Host pipeline benchmarks behind perf/RESULTS.md (issue: host dataplane).

    .venv/bin/python perf/bench_host.py [--seconds 2] [--repeat 5] [--only NAME,...] [--json]

Each case is a Click config (written out under perf/generated/) run with
`nfv bench`'s loop: 64-byte frames from memory, batches of 256, one core,
median of repeated runs.  Cases: fwd (FromDevice -> Counter -> ToDevice),
the shipped firewall, IPFilter with 10/100/1,000 rules, a router with 1M
routes (RadixIPLookup), and HashSwitch over 4 outputs.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "perf" / "generated"


def fwd() -> str:
    return "FromDevice(0) -> Counter -> ToDevice(1);\n"


def ipfilter(n: int, seed: int = 7) -> str:
    """n realistic rules: prefixes, protocols, ports and ranges, first match wins."""
    rng = random.Random(seed)
    rules = []
    for _ in range(n - 1):
        src = f"{rng.choice([10, 172, 192, 198, 203])}.{rng.randrange(256)}.{rng.randrange(256)}.0/" \
              f"{rng.choice([8, 16, 24])}"
        dst = f"192.0.2.{rng.randrange(256)}"
        proto = rng.choice(["tcp", "udp"])
        port = rng.choice([f"dst port {rng.randrange(1, 1024)}",
                           f"dst port {rng.randrange(1024, 30000)}-{rng.randrange(30000, 65536)}"])
        action = rng.choice(["allow", "deny"])
        rules.append(f"{action} src net {src} && dst host {dst} && {proto} {port}")
    rules.append("allow all")
    body = ",\n    ".join(rules)
    return (f"FromDevice(0) -> CheckIPHeader(OFFSET 14)\n"
            f"  -> IPFilter(\n    {body})\n  -> ToDevice(1);\n")


def router(n: int, seed: int = 11) -> str:
    """n distinct routes (mostly /24, some /16-/23 and /25-/32) and a default route."""
    rng = random.Random(seed)
    seen, routes = set(), []
    while len(routes) < n:
        length = rng.choices([24, 16, 20, 22, 23, 28, 32], [80, 4, 4, 5, 5, 1, 1])[0]
        addr = rng.getrandbits(32) & ~((1 << (32 - length)) - 1)
        if (addr, length) in seen:
            continue
        seen.add((addr, length))
        routes.append(f"{addr >> 24}.{(addr >> 16) & 255}.{(addr >> 8) & 255}.{addr & 255}/{length}"
                      f" {len(routes) % 4}")
    routes.append("0.0.0.0/0 192.0.2.1 0")
    table = ",\n    ".join(routes)
    return (f"rt :: RadixIPLookup(\n    {table});\n"
            "FromDevice(0) -> Strip(14) -> CheckIPHeader -> rt;\n"
            "rt [0] -> ToDevice(0); rt [1] -> ToDevice(1); rt [2] -> ToDevice(2); "
            "rt [3] -> ToDevice(3);\n")


def hashswitch() -> str:
    return ("FromDevice(0) -> h :: HashSwitch(26, 8);\n"
            "h [0] -> ToDevice(0); h [1] -> ToDevice(1); h [2] -> ToDevice(2); h [3] -> ToDevice(3);\n")


def random_destinations(count: int, port: int, seed: int = 3):
    """64-byte UDP frames to uniformly random unicast destinations, valid IP checksums."""
    import numpy as np

    from nfv.bench import udp_frames
    from nfv.dataplane.pcap import PacketList

    template = bytearray(udp_frames(1, 64, port)[0])
    rng = np.random.default_rng(seed)
    frames = []
    for dst in rng.integers(0x01000000, 0xE0000000, count):
        f = bytearray(template)
        f[30:34] = int(dst).to_bytes(4, "big")
        f[24:26] = b"\0\0"
        s = sum(int.from_bytes(f[k:k + 2], "big") for k in range(14, 34, 2))
        while s > 0xFFFF:
            s = (s & 0xFFFF) + (s >> 16)
        f[24:26] = (~s & 0xFFFF).to_bytes(2, "big")
        frames.append(bytes(f))
    return PacketList.from_bytes(frames, ports=[port] * count)


CASES = {
    "fwd": fwd,
    "firewall": None,
    "ipfilter-10": lambda: ipfilter(10),
    "ipfilter-100": lambda: ipfilter(100),
    "ipfilter-1000": lambda: ipfilter(1000),
    "router-1M": lambda: router(1_000_000),
    "hashswitch": hashswitch,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated case names")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from nfv.bench import bench, udp_frames
    from nfv.host import HostNF

    OUT.mkdir(exist_ok=True)
    wanted = [c for c in args.only.split(",") if c] or list(CASES)
    results = []
    for name in wanted:
        make = CASES[name]
        path = ROOT / "configs" / "firewall.click" if make is None else OUT / f"{name}.click"
        if make is not None:
            path.write_text(make())
        t0 = time.perf_counter()
        nf = HostNF(str(path))
        setup = time.perf_counter() - t0
        port = min(nf.plan.entries)
        # The router sees 65,536 random destinations (so lookups miss the caches as a
        # real table walk does); the others 1,024 flows towards 192.0.2.0/24.
        packets = random_destinations(65536, port) if name.startswith("router") else \
            udp_frames(1024, 64, port)
        r = bench(nf, packets, args.seconds, args.repeat)
        r.update(case=name, setup_s=round(setup, 2),
                 command=f"perf/bench_host.py --only {name} --seconds {args.seconds} "
                         f"--repeat {args.repeat}")
        results.append(r)
        if not args.json:
            print(f"{name:14} {r['mpps']:8.2f} Mpps {r['ns_per_packet']:8.2f} ns/packet   "
                  f"(setup {setup:.1f} s; runs {r['runs']})", flush=True)
    if args.json:
        json.dump(results, sys.stdout, indent=1)
    else:
        print(f"# {results[0]['machine'] if results else ''}; batch 256, 64-byte frames, one core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
