/* Compound classes: formals, keywords, __REST__, overloading, '|| ...',
   nesting, synonyms and lexical scoping. */
define($DEV 0, $OUT 1)

elementclass Tagged {
    $color | input -> Paint($color) -> output
 || $color, $anno | input -> Paint($color, $anno) -> output
}

elementclass Split { input -> c :: Classifier(12/0800, -);
                     c [0] -> output; c [1] -> [1] output }

// Inside its own body `Queue` still means the primitive Queue.
elementclass Queue { CAP $cap | input -> q :: Queue($cap) -> output }
elementclass Buffer Queue;

elementclass Pipe {
    $a, __REST__ $rest | input -> t :: Tagged($a) -> inner :: { input -> Counter -> output }
                         -> Print("$rest") -> output
}

FromDevice($DEV) -> sp :: Split;
sp [0] -> p :: Pipe(3, one, TWO 2) -> Buffer(CAP 10) -> ToDevice($OUT);
sp [1] -> Tagged(7, PAINT2) -> Discard;
