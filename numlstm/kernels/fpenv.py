"""The floating-point environment of the CPU kernels: subnormal numbers flushed to zero.

A gradient carried back through many time steps shrinks by a factor at each
step (the forget gate, the recurrent weights); after a few hundred steps it
falls below the smallest normal float (1.2e-38 in float32) into the subnormal
range. x86 CPUs compute with subnormals in microcode, a hundred cycles or more
an operation where a normal one takes a fraction of a cycle. Measured on an
Intel Xeon (2 threads): one LSTM regressor's training step at (64, 768, 8, 64)
took 515 ms, 8.4 times the same step given a gradient at every step (61 ms);
a fit with a lookback of 336 half-hourly steps spent 3.2 s an epoch.

:func:`flush_subnormals` sets the calling thread's FTZ (results that would be
subnormal are 0) and DAZ (subnormal inputs read as 0) bits in MXCSR and returns
the control word it found; :func:`restore` puts that back. The layer kernels
call the pair around their work, in whichever thread runs them, so the setting
never outlives a kernel and the caller's environment is left as it was.
Values that would have been subnormal, below 1.2e-38 (float32) or 2.2e-308
(float64), become 0; nothing else changes. On CPUs other than x86 both emit no
code (those kernels may be slower on subnormals; none was measured).
"""

import platform

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

FTZ_DAZ = 0x8040  # MXCSR bit 15 (flush to zero) and bit 6 (denormals are zero)
X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")


def _mxcsr(builder, name, pointer):
    fn = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(ir.VoidType(), [ir.IntType(8).as_pointer()]), f"llvm.x86.sse.{name}")
    builder.call(fn, [builder.bitcast(pointer, ir.IntType(8).as_pointer())])


def make_flush_subnormals(x86):
    """``flush_subnormals()`` for an x86 CPU or another: see the module."""

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        if not x86:
            return ir.Constant(i32, 0)
        word = cgutils.alloca_once(builder, i32)
        _mxcsr(builder, "stmxcsr", word)
        old = builder.load(word)
        builder.store(builder.or_(old, ir.Constant(i32, FTZ_DAZ)), word)
        _mxcsr(builder, "ldmxcsr", word)
        return old

    @intrinsic
    def flush_subnormals(typingctx):
        return types.int32(), codegen

    return flush_subnormals


def make_restore(x86):
    """``restore(word)`` for an x86 CPU or another: see the module."""

    def codegen(context, builder, signature, args):
        if x86:
            word = cgutils.alloca_once_value(builder, args[0])
            _mxcsr(builder, "ldmxcsr", word)
        return context.get_dummy_value()

    @intrinsic
    def restore(typingctx, word):
        if word != types.int32:
            return None
        return types.void(word), codegen

    return restore


flush_subnormals = make_flush_subnormals(X86)
restore = make_restore(X86)
