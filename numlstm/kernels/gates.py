"""Gate math shared by the CPU and CUDA kernels.

Every function here is plain Python that Numba compiles for whichever target
calls it (``@njit`` on the CPU, ``@cuda.jit`` on a GPU), registered by
:func:`inline_on_cpu`: on the CPU they are inlined at the Numba IR level
(left as calls, LLVM declines to inline the larger ones and the CPU loops that
use them stop vectorizing, which costs about 9x); CUDA kernels call their
:func:`gpu_twin`, an ordinary device function that NVVM inlines itself.
The activation functions pick their implementation from the argument's type at
compile time: float64 uses the exact ``math.tanh``; float32 uses a rational
approximation that is accurate to a few float32 ulps and, unlike a call into
libm, vectorizes (it is only multiplies, adds, a division and a clamp).
"""

import math
import os
import types as pytypes

import numpy as np
from numba import types
from llvmlite import ir as llvm_ir
from numba.extending import intrinsic, overload, register_jitable

# Rational minimax approximation of tanh on [-7.9, 7.9], the same coefficients
# Eigen uses for its float32 tanh; beyond the clamp tanh(x) rounds to +-1 in float32.
_TANH_CLAMP = 7.90531110763549805
_A1 = 4.89352455891786e-03
_A3 = 6.37261928875436e-04
_A5 = 1.48572235717979e-05
_A7 = 5.12229709037114e-08
_A9 = -8.60467152213735e-11
_A11 = 2.00018790482477e-13
_A13 = -2.76076847742355e-16
_B0 = 4.89352518554385e-03
_B2 = 2.26843463243900e-03
_B4 = 1.18534705686654e-04
_B6 = 1.19825839466702e-06


def tanh_f32_approx(x):
    """Vectorizable float32 tanh; a NumPy-callable twin of the jitted version."""
    x = np.clip(np.asarray(x, dtype=np.float32), -_TANH_CLAMP, _TANH_CLAMP)
    x2 = x * x
    p = x2 * _A13 + _A11
    p = x2 * p + _A9
    p = x2 * p + _A7
    p = x2 * p + _A5
    p = x2 * p + _A3
    p = x2 * p + _A1
    p = x * p
    q = x2 * _B6 + _B4
    q = x2 * q + _B2
    q = x2 * q + _B0
    return (p / q).astype(np.float32)


@intrinsic
def tanh(typingctx, x):
    """Hyperbolic tangent, dispatched on the argument's float width at compile time.

    An intrinsic rather than an overload: it is emitted straight into the
    caller's LLVM IR, so the loops around it vectorize, without Numba
    re-typing an inlined body at every call (that cost ~3 s of compilation
    per cell function). float64 lowers to the target's own ``math.tanh``
    (libm on the CPU, libdevice on a GPU); float32 to the rational
    approximation above, with the clamp written as compare-and-select so a
    NaN stays NaN.
    """
    if not isinstance(x, types.Float):
        return None
    sig = x(x)

    def codegen(context, builder, signature, args):
        (v,) = args
        if x.bitwidth != 32:
            return context.get_function(math.tanh, signature)(builder, args)
        f32 = llvm_ir.FloatType()

        def const(value):
            return llvm_ir.Constant(f32, float(np.float32(value)))

        hi, lo = const(_TANH_CLAMP), const(-_TANH_CLAMP)
        v = builder.select(builder.fcmp_ordered(">", v, hi), hi, v)
        v = builder.select(builder.fcmp_ordered("<", v, lo), lo, v)
        x2 = builder.fmul(v, v)

        def horner(coefficients):
            acc = const(coefficients[0])
            for c in coefficients[1:]:
                acc = builder.fadd(builder.fmul(x2, acc), const(c))
            return acc

        p = builder.fmul(v, horner((_A13, _A11, _A9, _A7, _A5, _A3, _A1)))
        q = horner((_B6, _B4, _B2, _B0))
        return builder.fdiv(p, q)

    return sig, codegen


if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
    # Numba's CUDA simulator runs kernels as plain Python, where an intrinsic
    # cannot be called: there, tanh is the exact one, for every target.
    @register_jitable
    def tanh(x):  # noqa: F811
        return math.tanh(x)


_INLINED = set()  # functions registered by inline_on_cpu
_GPU_TWINS = {}


def inline_on_cpu(fn):
    """``register_jitable(inline="always")``, for functions in the CPU's hot loops.

    CUDA kernels must call :func:`gpu_twin` of such a function instead: the
    ``numba-cuda`` package (0.30) cannot type a function once it has been
    IR-inlined into CPU code (its arguments arrive as ``omitted`` and the
    first arithmetic on them is a TypingError).
    """
    register_jitable(inline="always")(fn)
    _INLINED.add(fn)
    return fn


def gpu_twin(fn):
    """The GPU's copy of an :func:`inline_on_cpu` function.

    The same code object, registered as a plain ``register_jitable`` (NVVM
    inlines device functions itself), with every ``inline_on_cpu`` function it
    calls replaced by that function's twin. Made once per function.
    """
    twin = _GPU_TWINS.get(fn)
    if twin is None:
        namespace = dict(fn.__globals__)
        twin = pytypes.FunctionType(fn.__code__, namespace, fn.__name__, fn.__defaults__, fn.__closure__)
        twin.__doc__, twin.__qualname__ = fn.__doc__, fn.__qualname__
        _GPU_TWINS[fn] = twin
        for name, value in list(namespace.items()):
            if callable(value) and value in _INLINED:
                namespace[name] = gpu_twin(value)
        register_jitable(twin)
    return twin


def like(value, x):  # pragma: no cover - replaced by the overload inside jitted code
    """``value`` as a float of ``x``'s own width.

    A bare Python float literal is float64 to Numba, and float32 * float64 is
    float64: one literal in the gate math would silently upcast every float32
    kernel and stop it vectorizing.
    """
    return value


@overload(like, target="generic")
def _like_overload(value, x):
    if isinstance(x, types.Float) and x.bitwidth == 32:
        return lambda value, x: np.float32(value)
    if isinstance(x, types.Float):
        return lambda value, x: np.float64(value)
    return None


@inline_on_cpu
def sigmoid(x):
    """Logistic function through tanh: exact identity, no overflow, vectorizes."""
    half = like(0.5, x)
    return half + half * tanh(half * x)


@inline_on_cpu
def cell_forward(zi, zf, zg, zo, c_prev):
    """One LSTM cell from pre-activations ``z = x W + h U + b``.

    Returns the activated gates ``(i, f, g, o)``, the new cell state and the
    new hidden state.
    """
    i = sigmoid(zi)
    f = sigmoid(zf)
    g = tanh(zg)
    o = sigmoid(zo)
    c = f * c_prev + i * g
    h = o * tanh(c)
    return i, f, g, o, c, h


@inline_on_cpu
def cell_backward(zi, zf, zg, zo, c, c_prev, dh, dc_next):
    """Backward through one cell, from the stored pre-activations.

    The gates are recomputed from ``z`` rather than stored: it costs a few
    vectorized flops and saves a store stream in the forward pass. ``dh`` is
    the total gradient reaching ``h_t`` and ``dc_next`` the gradient flowing
    back into ``c_t`` from step ``t+1``. Returns the gradients of the four
    pre-activations and the gradient flowing into ``c_{t-1}``.
    """
    one = like(1.0, c)
    i = sigmoid(zi)
    f = sigmoid(zf)
    g = tanh(zg)
    o = sigmoid(zo)
    tc = tanh(c)
    dc = dc_next + dh * o * (one - tc * tc)
    dzi = dc * g * i * (one - i)
    dzf = dc * c_prev * f * (one - f)
    dzg = dc * i * (one - g * g)
    dzo = dh * tc * o * (one - o)
    return dzi, dzf, dzg, dzo, dc * f


@inline_on_cpu
def gru_cell_forward(az, ar, an, gz, gr, gn, h_prev):
    """One GRU cell (reset applied after the recurrent product, as Keras
    ``reset_after=True`` and PyTorch ``nn.GRU``) from its two projections:
    ``a = x W + b_input`` and ``g = h U + b_recurrent``, blocks ``[z | r | n]``.

    Returns the new hidden state ``z * h_prev + (1 - z) * n``, written as
    ``n + z * (h_prev - n)``: one multiply fewer, the same value.
    """
    z = sigmoid(az + gz)
    r = sigmoid(ar + gr)
    n = tanh(an + r * gn)
    return n + z * (h_prev - n)


@inline_on_cpu
def gru_cell_backward(az, ar, an, gz, gr, gn, h_prev, dh):
    """Backward through one GRU cell, from the stored projections (the gates
    are recomputed, as in :func:`cell_backward`).

    ``dh`` is the total gradient reaching ``h_t``. Returns the gradients of
    the update and reset pre-activations (the same for both projections), of
    the candidate's input projection ``a_n`` and of its recurrent projection
    ``g_n``, and the part of the gradient into ``h_{t-1}`` that does not go
    through ``U`` (``z * dh``).
    """
    one = like(1.0, h_prev)
    z = sigmoid(az + gz)
    r = sigmoid(ar + gr)
    n = tanh(an + r * gn)
    dan = dh * (one - z) * (one - n * n)
    dz = dh * (h_prev - n) * z * (one - z)
    dr = dan * gn * r * (one - r)
    return dz, dr, dan, dan * r, dh * z
