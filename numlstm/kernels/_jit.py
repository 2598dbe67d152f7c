"""Compile options shared by every CPU kernel, and the ``njit`` that caches them."""

import numba

from numlstm import _cache


def njit(*args, **options):
    """``numba.njit`` with numlstm's on-disk cache (:mod:`numlstm._cache`) instead of Numba's.

    Used as ``@njit`` or ``@njit(**options)``; a ``cache`` option is ignored: whether
    to cache is numlstm's setting (``NUMLSTM_CACHE``), read once at import.
    """
    options.pop("cache", None)
    # No C-callable wrapper: nothing calls numlstm's kernels through a C pointer, and Numba would
    # generate and optimise one per compiled function (116 of them in a first fit and predict).
    options.setdefault("no_cfunc_wrapper", True)

    def compile_lazily(fn):
        return _cache.attach(numba.njit(**options)(fn))

    if args and callable(args[0]):
        return compile_lazily(args[0])
    return compile_lazily


# Everything but "nnan"/"ninf": a diverging fit must still see its NaNs and
# infinities, so the loss check can stop it. "reassoc" lets reductions
# vectorize; "arcp"/"contract" give reciprocal and FMA forms.
FASTMATH = {"contract", "arcp", "reassoc", "nsz", "afn"}

# error_model="numpy": a float division by zero gives inf, as in NumPy, instead
# of a Python exception whose check per element stops every loop vectorizing.
CPU_OPTIONS = dict(fastmath=FASTMATH, error_model="numpy", nogil=True)
