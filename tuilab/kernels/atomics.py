"""Hand-offs between two kernels running at once on two threads: one int64 counter at a time.

A plain load in a wait loop may be hoisted out of it by LLVM (nothing in the loop writes
it), and a plain store may become visible before the data it announces. An acquire load
and a release store are the C11 pair that rules out both: what the writer stored before
its release is visible to the reader after an acquire that sees the new value.
"""

from llvmlite import ir
from numba import types
from numba.extending import intrinsic


def _int64_array(arr):
    return isinstance(arr, types.Array) and arr.dtype == types.int64 and arr.layout == "C"


@intrinsic
def load_acquire(typingctx, arr, index):
    """arr[index], read with acquire ordering (arr: a C-contiguous int64 array)."""
    if not (_int64_array(arr) and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        return builder.load_atomic(builder.gep(data, [args[1]]), ordering="acquire", align=8)

    return types.int64(arr, index), codegen


@intrinsic
def store_release(typingctx, arr, index, value):
    """arr[index] = value, written with release ordering (arr: a C-contiguous int64 array)."""
    if not (_int64_array(arr) and isinstance(index, types.Integer) and isinstance(value, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        v = context.cast(builder, args[2], sig.args[2], types.int64)
        builder.store_atomic(v, builder.gep(data, [args[1]]), ordering="release", align=8)
        return context.get_dummy_value()

    return types.void(arr, index, value), codegen


@intrinsic
def yield_cpu(typingctx):
    """Offer this thread's core to another runnable thread (POSIX sched_yield; returns at once when
    none waits). A waiting kernel calls it so that a busy machine can run the thread it waits for."""

    def codegen(context, builder, sig, args):
        fn = builder.module.globals.get("sched_yield") or ir.Function(
            builder.module, ir.FunctionType(ir.IntType(32), []), name="sched_yield")
        builder.call(fn, [])
        return context.get_dummy_value()

    return types.void(), codegen
