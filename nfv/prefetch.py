"""prefetch(array, index): start loading the cache line of array[index].

A warm-up pass that loads each packet's table line keeps only as many misses in
flight as the core's reorder window holds loads waiting on memory: a load cannot
retire before its line arrives.  A prefetch retires at once, so an element's
`ahead` kernel asks for the line of a packet some places on (codegen.AHEAD) and
the miss overlaps the pipeline's work on the packets before it (VPP's nodes
prefetch likewise; prefetches issued all at once in one loop were mostly lost).

Plain LLVM IR (llvm.prefetch: read, keep in all cache levels, data), which is
`prefetcht0` on x86-64: an SSE-era instruction that uses no SSE register and never
faults, so the unikernel runs it too.  No bounds check: a prefetch of an address
outside the array is dropped by the CPU, never a fault; callers still mask their
index into the table so the line is a useful one.
"""
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic


@intrinsic
def prefetch(typingctx, array, index):
    if not isinstance(array, types.Array) or not isinstance(index, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        i8p = ir.IntType(8).as_pointer()
        address = builder.bitcast(builder.gep(data, [args[1]]), i8p)
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        builder.call(fn, [address, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return ir.Constant(ir.IntType(64), 0)

    return types.int64(array, index), codegen
