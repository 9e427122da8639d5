// lb.click -- an L4 load balancer: a virtual IP on the front, three backends behind.
//
//   front NIC 0: VIP 10.0.0.100/24 (clients)     back NIC 1: 10.1.0.1/24 (backends)
//
// Connections to $VIP:$PORT (TCP or UDP) are spread over the backends by Maglev
// consistent hashing; each connection stays on its backend (a connection table),
// also when the backend set changes at run time (the `lb.backends` write
// handler). Backends see the client's own address and answer through this box
// (their route to the clients is 10.1.0.1); their replies leave from the VIP.
// Anything else sent to the front is counted and dropped (lb.not_vip), except
// ARP and pings for the VIP, which are answered. Next hops on both sides are
// found with ARP.

define($VIP      10.0.0.100,          // the service address clients connect to
       $PORT     80,                  // ... and its port
       $VIP_MAC  02:00:00:00:0a:64,   // our NIC 0
       $BACK_IP  10.1.0.1,            // our address on the backends' network (NIC 1)
       $BACK_MAC 02:00:00:00:0b:01,   // our NIC 1
       $B1 10.1.0.11, $B2 10.1.0.12, $B3 10.1.0.13,   // the backends (ADDR or ADDR:PORT)
       $CONNS    16384)               // connections tracked (64 bytes each)

lb :: IPLoadBalancer($VIP, $PORT, BACKENDS $B1 $B2 $B3, TABLE_SIZE 65537,
                     MAX_BACKENDS 16, CAPACITY $CONNS);

to_clients  :: ARPQuerier($VIP, $VIP_MAC);
to_backends :: ARPQuerier($BACK_IP, $BACK_MAC);
to_clients  -> ToDevice(0);
to_backends -> ToDevice(1);

// -- front: clients ---------------------------------------------------------------
FromDevice(0)
  -> front :: Classifier(12/0806 20/0001,    // ARP request
                         12/0806 20/0002,    // ARP reply
                         12/0800,            // IPv4
                         -);
front [0] -> ARPResponder($VIP $VIP_MAC) -> ToDevice(0);
front [1] -> [1] to_clients;
front [2] -> Strip(14)
          -> CheckIPHeader
          -> front_ip :: IPClassifier(icmp type echo, -);
front [3] -> Discard;
front_ip [0] -> front_ping :: ICMPPingResponder -> to_clients;   // ping the VIP
front_ping [1] -> Discard;
front_ip [1] -> [0] lb;

// -- back: backends ---------------------------------------------------------------
FromDevice(1)
  -> back :: Classifier(12/0806 20/0001, 12/0806 20/0002, 12/0800, -);
back [0] -> ARPResponder($BACK_IP $BACK_MAC) -> ToDevice(1);
back [1] -> [1] to_backends;
back [2] -> Strip(14) -> CheckIPHeader -> [1] lb;
back [3] -> Discard;

lb [0] -> to_backends;     // client packets, to their backend
lb [1] -> to_clients;      // backend replies, from the VIP
