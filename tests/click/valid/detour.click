// Click's element-group detour, ports on both sides, many-to-many and many-to-one.
src :: FromDevice(0);
sink :: ToDevice(1);

src -> c :: Classifier(12/0806, 12/0800, -) => (
    input [0] -> output;
    input [1] -> Paint(1) -> output;
    input [2] -> Discard
) -> q :: Queue(64) -> sink;

other :: FromDevice(2)
    -> oc :: Classifier(12/0800, -);
oc [0, 1] => a :: Counter, b :: Counter;
a, b -> rr :: RoundRobinSwitch;
rr [0] -> [0] m :: Idle [0] -> Discard;
rr [1] -> [1] m
