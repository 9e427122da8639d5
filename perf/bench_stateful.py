"""Stateful benchmarks behind perf/RESULTS.md (issue: stateful middleboxes).

    .venv/bin/python perf/bench_stateful.py [--seconds 2] [--repeat 5] [--only NAME,...] [--json]

Cases (64-byte UDP frames from memory, batches of 256, one core, median of runs):
  nat-1k            the same with 1,024 flows: the table stays in cache (the
                    rewrite's own cost; a breakdown case, no target)
  nat-64k, nat-1M   IPRewriter source NAT (pattern ADDR 1024-65535 - - 0 1) with
                    65,536 / 1,048,576 active flows: the frames cycle through that
                    many distinct 5-tuples, in random order, so every packet finds
                    its mapping (the first pass, the warm-up, makes them).
  lb-1M             IPLoadBalancer over 16 backends, Maglev table 65,537, 1M flows.
  router-arp        the router of bench_host (1M routes) with ARPQuerier for next
                    hops instead of static Ethernet headers (the next hops are static
                    ARP entries, i.e. resolved).
And the new-flow rate (flows/s): a fresh table, every packet a flow never seen,
for `nat` and `lb` (`--only nat-new,lb-new`).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "perf" / "generated"
sys.path.insert(0, str(ROOT / "perf"))


def nat(capacity: int) -> str:
    return ("FromDevice(0) -> Strip(14) -> CheckIPHeader\n"
            f"  -> rw :: IPRewriter(pattern 192.0.2.1 1024-65535 - - 0 1, drop, CAPACITY {capacity})\n"
            "  -> Unstrip(14) -> ToDevice(1);\n"
            "FromDevice(1) -> Strip(14) -> CheckIPHeader -> [1] rw [1] -> Unstrip(14) -> ToDevice(0);\n")


def lb(capacity: int) -> str:
    backends = " ".join(f"10.1.0.{k + 1}" for k in range(16))
    return ("FromDevice(0) -> Strip(14) -> CheckIPHeader\n"
            f"  -> lb :: IPLoadBalancer(VIP 192.0.2.80, PORT 53, BACKENDS {backends},\n"
            f"                          TABLE_SIZE 65537, CAPACITY {capacity})\n"
            "  -> Unstrip(14) -> ToDevice(1);\n"
            "FromDevice(1) -> Strip(14) -> CheckIPHeader -> [1] lb [1] -> Unstrip(14) -> ToDevice(0);\n")


def router_arp() -> str:
    """bench_host's 1M-route router, next hops resolved by ARPQuerier (static entries)."""
    from bench_host import router

    import re

    text = router(1_000_000)
    head, _, _ = text.partition("FromDevice(0)")
    # every route gets a gateway per output, 172.16.0.(OUT + 1), known to ARPQuerier
    head = re.sub(r"^(\s*[\d.]+/\d+) (\d)(,|\);)$",
                  lambda m: f"{m.group(1)} 172.16.0.{int(m.group(2)) + 1} {m.group(2)}{m.group(3)}",
                  head, flags=re.M)
    head = head.replace("0.0.0.0/0 192.0.2.1 0", "0.0.0.0/0 172.16.0.1 0")
    lines = [head, "FromDevice(0) -> Strip(14) -> CheckIPHeader -> rt;\n"]
    for k in range(4):
        lines.append(f"rt [{k}] -> aq{k} :: ARPQuerier(172.16.0.{k + 101}, 02:00:00:00:00:0{k + 1}, "
                     f"STATIC 172.16.0.{k + 1} 02:00:00:00:aa:0{k + 1}) -> ToDevice({k});\n"
                     f"Idle -> [1] aq{k};\n")
    return "".join(lines)


def flows(count: int, port: int, dst: int | None = None, dport: int | None = None,
          seed: int = 5):
    """`count` 64-byte UDP frames, each a distinct flow (source 10.x.y.z:random port),
    to random public destinations (or `dst`:`dport`), valid IP checksums, in random order."""
    from nfv.bench import udp_frames
    from nfv.dataplane.pcap import PacketList

    rng = np.random.default_rng(seed)
    template = np.frombuffer(udp_frames(1, 64, port)[0], np.uint8)
    frames = np.tile(template, (count, 1))
    # distinct (source address, source port) pairs
    keys = rng.choice(1 << 40, size=count, replace=False)
    src = (0x0A000000 | ((keys >> 16) & 0xFFFFFF)).astype(np.uint32)
    sport = (1024 + (keys & 0xFFFF) % 64512).astype(np.uint16)
    dsts = np.full(count, dst, np.uint32) if dst is not None else \
        rng.integers(0x01000000, 0xDF000000, count, dtype=np.uint32)
    dports = np.full(count, dport if dport is not None else 53, np.uint16)
    for col, (values, width) in {26: (src, 4), 30: (dsts, 4), 34: (sport, 2), 36: (dports, 2)}.items():
        for b in range(width):
            frames[:, col + b] = (values >> (8 * (width - 1 - b))) & 0xFF
    frames[:, 40:42] = [0x12, 0x34]    # a UDP checksum to update (its value is not checked)
    frames[:, 24:26] = 0
    words = frames[:, 14:34].astype(np.uint32).reshape(count, 10, 2)
    s = (words[:, :, 0] << 8 | words[:, :, 1]).sum(axis=1)
    while (s > 0xFFFF).any():
        s = (s & 0xFFFF) + (s >> 16)
    s = ~s & 0xFFFF
    frames[:, 24] = s >> 8
    frames[:, 25] = s & 0xFF
    return PacketList.from_bytes([f.tobytes() for f in frames], ports=[port] * count)


CASES = {
    "nat-1k": (lambda: nat(1024), 1024, {}),   # the table in cache: the rewrite's own cost
    "nat-64k": (lambda: nat(65536), 65536, {}),
    "nat-1M": (lambda: nat(1 << 20), 1 << 20, {}),
    "lb-1M": (lambda: lb(1 << 20), 1 << 20, {"dst": 0xC0000250, "dport": 53}),
    "router-arp": (router_arp, 65536, None),
}
NEW_FLOW_CASES = {
    "nat-new": (lambda: nat(1 << 21), {}),
    "lb-new": (lambda: lb(1 << 21), {"dst": 0xC0000250, "dport": 53}),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated case names")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from bench_host import random_destinations
    from nfv.bench import bench, machine
    from nfv.host import HostNF

    OUT.mkdir(exist_ok=True)
    wanted = [c for c in args.only.split(",") if c] or list(CASES) + list(NEW_FLOW_CASES)
    results = []
    for name in wanted:
        if name in NEW_FLOW_CASES:
            make, where = NEW_FLOW_CASES[name]
        else:
            make, count, where = CASES[name]
        path = OUT / f"{name}.click"
        path.write_text(make())
        t0 = time.perf_counter()
        nf = HostNF(str(path))
        setup = time.perf_counter() - t0
        port = min(nf.plan.entries)
        command = (f"perf/bench_stateful.py --only {name} --seconds {args.seconds} "
                   f"--repeat {args.repeat}")
        if name in NEW_FLOW_CASES:
            # every packet a new flow: a fresh table each run, and fewer packets than flows
            packets = flows(1 << 21, port, **where)
            rates = []
            for _ in range(args.repeat):
                nf.reset()
                processed, elapsed = nf.driver.loop(packets, 0.15)
                assert processed < len(packets), "the run wrapped around: use more flows"
                rates.append(processed / (elapsed / 1e9))
            rates.sort()
            r = {"case": name, "flows_per_s": round(rates[len(rates) // 2]),
                 "runs": [round(x) for x in rates], "machine": machine(), "command": command,
                 "setup_s": round(setup, 2)}
            results.append(r)
            if not args.json:
                print(f"{name:14} {r['flows_per_s'] / 1e6:8.2f} M new flows/s   "
                      f"(setup {setup:.1f} s; runs {[round(x / 1e6, 2) for x in rates]})",
                      flush=True)
            continue
        packets = random_destinations(count, port) if where is None else \
            flows(count, port, **where)
        # Steady state: every flow made (one whole pass over the input, at the new-flow
        # rate), then a second of traffic so the table's pages are all mapped (huge
        # pages, the hypervisor's page tables) before anything is timed.
        done = clock = 0
        while done < 2 * len(packets):
            processed, elapsed = nf.driver.loop(packets, 0.2, now_ns=clock)
            done, clock = done + processed, clock + elapsed
        clock += nf.driver.loop(packets, 1.0, now_ns=clock)[1]
        r = bench(nf, packets, args.seconds, args.repeat, now_ns=clock)
        r.update(case=name, setup_s=round(setup, 2), command=command)
        if name.startswith(("nat", "lb")):
            element = "rw" if name.startswith("nat") else "lb"
            r["mappings"] = int(nf.read(f"{element}.size"))
        results.append(r)
        if not args.json:
            extra = f"; {r['mappings']} mappings" if "mappings" in r else ""
            print(f"{name:14} {r['mpps']:8.2f} Mpps {r['ns_per_packet']:8.2f} ns/packet   "
                  f"(setup {setup:.1f} s; runs {r['runs']}{extra})", flush=True)
    if args.json:
        json.dump(results, sys.stdout, indent=1)
    else:
        print(f"# {results[0]['machine'] if results else ''}; batch 256, 64-byte frames, one core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
