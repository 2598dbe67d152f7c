"""The matrix-product loop (``kernels.cpu.add_tile``) against NumPy, in both of its forms.

The loop takes eight rows of ``M`` per pass on CPUs with 32 vector registers
(``WIDE_K``, AVX-512) and four otherwise. Which form the package uses depends on
the CPU, so both are compiled here from the same source with ``WIDE_K`` set each
way, and checked on shapes that exercise every remainder: inner sizes that are
not multiples of 8 or 4, odd row ranges, more columns than one block.
"""

import types

import numba
import numpy as np
import pytest

from numlstm.kernels import cpu
from numlstm.kernels._jit import CPU_OPTIONS


def compiled(wide_k):
    source = cpu.add_tile.py_func
    scope = dict(source.__globals__, WIDE_K=wide_k)
    return numba.njit(**CPU_OPTIONS)(types.FunctionType(source.__code__, scope, source.__name__))


@pytest.fixture(scope="module", params=[False, True], ids=["four-rows-of-M", "eight-rows-of-M"])
def add_tile(request):
    return compiled(request.param)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("K, N, r0, r1", [
    (1, 3, 0, 5), (3, 7, 1, 4), (4, 8, 0, 6), (7, 9, 2, 7), (8, 16, 0, 4), (9, 5, 1, 2),
    (12, 33, 0, 7), (15, 513, 3, 8), (16, 64, 0, 8), (17, 600, 1, 6), (23, 1030, 0, 5),
])
def test_matches_numpy_on_every_remainder(add_tile, dtype, K, N, r0, r1):
    rng = np.random.default_rng(K * 1000 + N)
    rows, T = 9, 3
    S = rng.standard_normal((rows, T, K)).astype(dtype)
    M = rng.standard_normal((K, N)).astype(dtype)
    Z = rng.standard_normal((rows, T, N)).astype(dtype)
    expected = Z.astype(np.float64)
    expected[r0:r1, 2] += S[r0:r1, 1].astype(np.float64) @ M.astype(np.float64)
    add_tile(Z, np.int64(2), S, np.int64(1), M, np.int64(r0), np.int64(r1))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(Z, expected, rtol=tol, atol=tol * np.sqrt(K))
    untouched = np.ones(rows, bool)
    untouched[r0:r1] = False
    assert np.array_equal(Z[untouched].astype(np.float64), expected[untouched])  # rows outside r0:r1 not written
