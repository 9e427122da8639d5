/* a block comment
   over lines */ in :: FromDevice(0) // trailing
// a whole line
  -> /* inline */ c :: Counter/*glued*/->Print(/* in a config ) */ "a // b", 5 // ) too
  ) -> out :: ToDevice(1);;
# 40 "generated.click"
;in2 :: FromDevice(1)//no space
-> Discard
