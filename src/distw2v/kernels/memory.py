"""Software prefetch for numba kernels (LLVM's llvm.prefetch), which numba does not expose.

Training touches a handful of random matrix rows per word; asking for them early lets their
loads overlap with other work instead of stalling on each first touch.
"""

from __future__ import annotations

from typing import Any

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

_LINE = 64  # bytes per cache line


@intrinsic
def prefetch_row(typingctx: Any, matrix: Any, row: Any) -> Any:
    """Start loading every cache line of `matrix[row]` (a C-contiguous 2-D array) for reading."""

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        array_type = sig.args[0]
        array = context.make_array(array_type)(context, builder, args[0])
        index = context.cast(builder, args[1], sig.args[1], types.intp)
        zero = context.get_constant(types.intp, 0)
        start = cgutils.get_item_pointer(context, builder, array_type, array, [index, zero])
        byte_ptr = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        hint = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte_ptr, i32, i32, i32]),
            "llvm.prefetch.p0")
        base = builder.bitcast(start, byte_ptr)
        row_bytes = builder.mul(builder.extract_value(array.shape, 1),
                                context.get_constant(types.intp, array_type.dtype.bitwidth // 8))
        step = context.get_constant(types.intp, _LINE)
        with cgutils.for_range_slice(builder, zero, row_bytes, step) as (offset, _):
            # read access, keep in all cache levels, data cache
            builder.call(hint, [builder.gep(base, [offset]), ir.Constant(i32, 0),
                                ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.void(matrix, row), codegen
