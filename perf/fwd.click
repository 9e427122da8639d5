// The forwarding baseline: count and forward.
FromDevice(0) -> Counter -> ToDevice(1);
