// router.click -- a two-port IPv4 router with static next hops.
//
//   NIC 0: 192.0.2.1/24 (net A)          NIC 1: 198.51.100.1/24 (net B)
//   default route: 203.0.113.1 via NIC 1
//
// Frames are checked, their IPv4 header validated, the destination looked up
// in the route table, the TTL decremented and a new Ethernet header written
// for the next hop. Neighbours are static here (ARP comes with the arp and
// icmp elements); set their MACs with -D NEXTHOP_A=... on the command line.

define($MAC_A     02:00:00:00:00:0a,   // our NIC 0
       $MAC_B     02:00:00:00:00:0b,   // our NIC 1
       $NEXTHOP_A 02:00:00:00:aa:01,   // the host (or switch) we forward to on net A
       $NEXTHOP_B 02:00:00:00:bb:01)   // the upstream router on net B

rt :: RadixIPLookup(192.0.2.0/24       0,
                    198.51.100.0/24    1,
                    0.0.0.0/0 203.0.113.1 1);

// Each interface: keep IPv4, drop the rest, strip Ethernet, check the header.
elementclass IPInput { $nic |
    FromDevice($nic)
      -> type :: Classifier(12/0800, -)
      -> Strip(14)
      -> CheckIPHeader
      -> output;
    type [1] -> non_ip :: Counter -> Discard;
}

// Each way out: TTL, then a fresh Ethernet header for the next hop.
elementclass IPOutput { $nic, $src, $dst |
    input
      -> ttl :: DecIPTTL
      -> EtherEncap(0x0800, $src, $dst)
      -> sent :: Counter
      -> ToDevice($nic);
    ttl [1] -> expired :: Counter -> Discard;
}

in_a :: IPInput(0);
in_b :: IPInput(1);
out_a :: IPOutput(0, $MAC_A, $NEXTHOP_A);
out_b :: IPOutput(1, $MAC_B, $NEXTHOP_B);

in_a, in_b -> rt;
rt [0] -> out_a;
rt [1] -> out_b;
