"""A cache hint for kernels: start loading memory that the next few statements will read."""

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

_TO_L2 = 2  # llvm.prefetch locality 2: x86 prefetcht1, into L2 (measured best; see mlp.gather_rows)


@intrinsic
def prefetch(typingctx, arr, index):
    """Ask the CPU to bring the element at flat `index` of the C-contiguous arr into L2.

    A hint only: it changes no value and never faults, so a stale index costs nothing but time.
    """
    if not (isinstance(arr, types.Array) and arr.layout == "C" and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = builder.module.declare_intrinsic(
            "llvm.prefetch", fnty=ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]))
        address = builder.bitcast(builder.gep(data, [args[1]]), i8p)
        # read (0), locality, data cache (1)
        builder.call(fn, [address, ir.Constant(i32, 0), ir.Constant(i32, _TO_L2), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.void(arr, index), codegen
