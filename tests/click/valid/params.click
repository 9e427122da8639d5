// define() is simultaneous: $B is used before it is defined.
FromDevice($A) -> Paint(${B}) -> p :: Print(${LABEL-untitled}, $B) -> ToDevice(${A});
define($A 2, $B 9);
q :: Print('$A keeps its dollar', 3);   // no expansion inside single quotes
r :: Print("$A is expanded");
require(package nfv, library extra.click)
FromDevice(3) -> q -> r -> Discard
