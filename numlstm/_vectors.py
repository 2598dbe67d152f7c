"""The SIMD vector width the CPU kernels are compiled for (``NUMLSTM_VECTOR_WIDTH``).

On Intel CPUs with AVX-512 (Skylake-SP, Ice Lake, Sapphire Rapids, ...), LLVM
prefers 256-bit vectors unless told otherwise, so Numba's loops use half the
registers' width (checked by compiling for those CPUs). numlstm's own kernels
do not depend on that preference: the matrix products are written with
explicit vectors as wide as the registers, and the cell kernels ask LLVM for
the full width in their own functions (:mod:`numlstm.kernels.tile`).
``NUMLSTM_VECTOR_WIDTH`` chooses, once per process and before the first
compile:

- ``auto`` (the default, or unset): numlstm's matrix products and layer
  kernels use the CPU's full width (512-bit on AVX-512); every other loop
  (gradient sums, losses, optimizers, the user's own) LLVM's choice;
- ``512``: full-width (``zmm``) vectors for every loop where the CPU has
  AVX-512F (no change on other CPUs);
- ``256``: at most 256-bit vectors, numlstm's kernels included, even where the
  CPU has wider ones (for older AVX-512 parts that lower their clock for them).

``512`` and ``256`` work by adjusting the CPU feature string Numba gives LLVM
(the host's, or ``NUMBA_CPU_FEATURES`` where set), so they apply to every Numba
function the process compiles, the user's own included, and only if numlstm
is imported before any Numba function was compiled (Numba's CPU target is set
up once); :func:`state` says what took effect. The setting is part of the
kernel cache's fingerprint. ``benchmarks/bench_cpu.py`` reports the width the
compiled kernels use.

This module is the ground floor: it imports nothing else from numlstm.
"""

import os
import re

ENV = "NUMLSTM_VECTOR_WIDTH"
AUTO = "numlstm's products and layer kernels full width, other loops LLVM's choice for this CPU"
CHOICES = ("auto", "512", "256")
_ADJUST = {"512": ",-prefer-256-bit", "256": ",+prefer-256-bit"}

_state = {"requested": "auto", "applied": False, "why": AUTO}


def requested():
    """The ``NUMLSTM_VECTOR_WIDTH`` setting, checked."""
    value = os.environ.get(ENV, "").strip().lower() or "auto"
    if value not in CHOICES:
        raise ValueError(f"{ENV}={os.environ.get(ENV)!r} is not one of {', '.join(CHOICES)}; unset it (or 'auto') "
                         "for the default, '512' for full-width AVX-512 vectors in every loop, '256' for at most "
                         "256-bit ones.")
    return value


def _target_started():
    from numba.core.registry import cpu_target

    return "_toplevel_target_context" in vars(cpu_target)


def apply():
    """Adjust Numba's CPU features for the requested width, if it can still take effect
    (called once, when this module is imported: first thing in ``import numlstm``)."""
    value = requested()
    _state.update(requested=value, applied=False)
    if value == "auto":
        _state["why"] = AUTO
        return _state
    from numba.core import config

    features = effective_features()
    if value == "512" and "+avx512f" not in features.split(","):
        _state["why"] = "no effect: this CPU has no AVX-512F"
        return _state
    if _target_started():
        _state["why"] = ("not applied: Numba had compiled code before numlstm was imported; import numlstm "
                         "first, or set NUMBA_CPU_FEATURES yourself")
        return _state
    config.CPU_FEATURES = features + _ADJUST[value]
    _state.update(applied=True, why=f"{value}-bit vectors preferred")
    return _state


def effective_features():
    """The CPU feature string Numba gives LLVM in this process: ``NUMBA_CPU_FEATURES`` where
    set (with any adjustment :func:`apply` made), else the host's as Numba reads them (its own
    function: AVX features off under ``NUMBA_ENABLE_AVX=0``, an empty string where the
    platform cannot report them)."""
    from numba.core import config
    from numba.core.codegen import get_host_cpu_features

    return config.CPU_FEATURES if config.CPU_FEATURES is not None else get_host_cpu_features()


def state():
    """``{"requested", "applied", "why"}``: what ``NUMLSTM_VECTOR_WIDTH`` did in this process."""
    return dict(_state)


def widest_register(asm):
    """The widest x86 vector register named in assembly text: ``"zmm"`` (512-bit), ``"ymm"``
    (256), ``"xmm"`` (128) or None (another architecture, or no vectors)."""
    for name in ("zmm", "ymm", "xmm"):
        if re.search(rf"\b{name}\d", asm):  # AT&T's %zmm0 and Intel's zmm0 alike
            return name
    return None


apply()
