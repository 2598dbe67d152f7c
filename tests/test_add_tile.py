"""The matrix-product loop (``kernels.cpu.add_tile``) against NumPy, in every vector geometry.

The loop is emitted as LLVM IR for the CPU's vector width (``kernels.tile``):
64-byte vectors, four per row, on AVX-512; 32-byte, two per row, on AVX; 16-byte
elsewhere. Which one the package uses depends on the CPU, so each is compiled
here (LLVM splits vectors wider than this CPU's registers, so all of them run
anywhere) and checked on shapes that exercise every remainder: columns that are
not a multiple of the block (masked tail), inner sizes across a k-block, row
ranges that are not a multiple of the register block, and odd offsets.
"""

import platform

import numba
import numpy as np
import pytest

from numlstm.kernels import cpu, tile
from numlstm.kernels._jit import CPU_OPTIONS

GEOMETRIES = [(64, 4), (32, 2), (16, 2)]


def compiled(vector_bytes, nv, panel=None):
    kernel = tile.make_add_tile(vector_bytes, nv, panel)

    def add_tile(Z, t_out, S, t_src, M, r0, r1):
        kernel(Z, t_out, S, t_src, M, r0, r1, Z.reshape(Z.size)[:0])

    return numba.njit(**CPU_OPTIONS)(add_tile)


@pytest.fixture(scope="module", params=GEOMETRIES, ids=lambda g: f"{g[0] * 8}-bit-x{g[1]}")
def add_tile(request):
    return compiled(*request.param)


SHAPES = [
    (1, 3, 0, 5), (3, 7, 1, 4), (4, 8, 0, 6), (7, 9, 2, 7), (8, 16, 0, 9), (9, 5, 1, 2),
    (12, 33, 0, 7), (15, 513, 3, 8), (16, 64, 0, 8), (17, 600, 1, 6), (23, 1030, 0, 5),
    (300, 70, 0, 9), (257, 1, 2, 9), (0, 5, 0, 9), (5, 0, 0, 9), (5, 5, 4, 4),
]


GUARD = 64  # elements of NaN before and after each array: a read past an end shows as NaN, a write as a change


def guarded(values):
    """``values`` copied into the middle of a NaN-filled buffer (C-contiguous), and the buffer."""
    buffer = np.full(values.size + 2 * GUARD, np.nan, dtype=values.dtype)
    view = buffer[GUARD:GUARD + values.size].reshape(values.shape)
    view[...] = values
    return view, buffer


def check(add_tile, dtype, K, N, r0, r1):
    rng = np.random.default_rng(K * 1000 + N)
    rows, T = 9, 3
    S, S_buffer = guarded(rng.standard_normal((rows, T, K)).astype(dtype))
    M, M_buffer = guarded(rng.standard_normal((K, N)).astype(dtype))
    Z, Z_buffer = guarded(rng.standard_normal((rows, T, N)).astype(dtype))
    expected = Z.astype(np.float64)
    expected[r0:r1, 2] += S[r0:r1, 1].astype(np.float64) @ M.astype(np.float64)
    add_tile(Z, np.int64(2), S, np.int64(1), M, np.int64(r0), np.int64(r1))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(Z, expected, rtol=tol, atol=tol * np.sqrt(max(K, 1)))  # NaN (a read outside) fails
    untouched = np.ones(rows, bool)
    untouched[r0:r1] = False
    assert np.array_equal(Z[untouched].astype(np.float64), expected[untouched])  # rows outside r0:r1 not written
    assert np.array_equal(Z[:, :2].astype(np.float64), expected[:, :2])  # nor other time steps
    for buffer in (Z_buffer, S_buffer, M_buffer):  # nothing written outside the arrays
        assert np.isnan(buffer[:GUARD]).all() and np.isnan(buffer[-GUARD:]).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("K, N, r0, r1", SHAPES)
def test_matches_numpy_on_every_remainder(add_tile, dtype, K, N, r0, r1):
    check(add_tile, dtype, K, N, r0, r1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_package_loop_matches_numpy(dtype):
    def package_loop(Z, t_out, S, t_src, M, r0, r1):
        cpu.add_tile(Z, t_out, S, t_src, M, r0, r1, Z.reshape(-1)[:0])

    for K, N, r0, r1 in SHAPES:
        check(package_loop, dtype, K, N, r0, r1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("K, N, r0, r1", [(8, 256, 0, 9), (0, 37, 1, 8), (300, 70, 2, 9), (5, 5, 4, 4), (3, 1, 0, 9)])
def test_rows_can_start_from_a_bias_instead_of_z(dtype, K, N, r0, r1):
    # Z[r, t_out] = b + S[r, t_src] @ M: a layer's bias and input projection in one pass; with no
    # k (K = 0) the rows are the bias. Rows and steps outside stay as they were; nothing outside is touched.
    rng = np.random.default_rng(K + 7 * N)
    rows, T = 9, 3
    S, S_buffer = guarded(rng.standard_normal((rows, T, K)).astype(dtype))
    M, M_buffer = guarded(rng.standard_normal((K, N)).astype(dtype))
    Z, Z_buffer = guarded(rng.standard_normal((rows, T, N)).astype(dtype))
    b, b_buffer = guarded(rng.standard_normal(N).astype(dtype))
    expected = Z.astype(np.float64)
    expected[r0:r1, 2] = b.astype(np.float64) + S[r0:r1, 1].astype(np.float64) @ M.astype(np.float64)
    cpu.add_tile(Z, np.int64(2), S, np.int64(1), M, np.int64(r0), np.int64(r1), b)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(Z, expected, rtol=tol, atol=tol * np.sqrt(K + 1))
    for buffer in (Z_buffer, S_buffer, M_buffer, b_buffer):
        assert np.isnan(buffer[:GUARD]).all() and np.isnan(buffer[-GUARD:]).all()


def test_the_sum_is_taken_in_k_order_whatever_the_tiling():
    # Each output adds its products one k at a time onto Z: the same bits for any row range,
    # any vector geometry and any number of column blocks a panel.
    rng = np.random.default_rng(7)
    S = rng.standard_normal((13, 1, 300)).astype(np.float32)
    M = rng.standard_normal((300, 70)).astype(np.float32)
    results = []
    for vector_bytes, nv, panel in [g + (None,) for g in GEOMETRIES] + [(64, 4, 1), (64, 4, 3)]:
        kernel = compiled(vector_bytes, nv, panel)
        Z = np.zeros((13, 1, 70), np.float32)
        kernel(Z, np.int64(0), S, np.int64(0), M, np.int64(0), np.int64(13))
        Z2 = np.zeros((13, 1, 70), np.float32)
        for r in range(13):
            kernel(Z2, np.int64(0), S, np.int64(0), M, np.int64(r), np.int64(r + 1))
        assert np.array_equal(Z, Z2)
        results.append(Z)
    for other in results[1:]:
        assert np.array_equal(results[0], other)


def test_other_integer_types_for_the_indices_are_cast():
    rng = np.random.default_rng(3)
    S = rng.standard_normal((4, 2, 5)).astype(np.float32)
    M = rng.standard_normal((5, 70)).astype(np.float32)
    Z = np.zeros((4, 2, 70), np.float32)
    cpu.add_tile(Z, np.int32(1), S, np.int32(0), M, np.int32(1), np.int32(3), Z.reshape(-1)[:0])
    np.testing.assert_allclose(Z[1:3, 1], S[1:3, 0] @ M, rtol=1e-5, atol=1e-5)
    assert not Z[:, 0].any() and not Z[0].any() and not Z[3].any()


def test_arrays_it_cannot_take_are_a_typing_error_not_a_wrong_result():
    Z = np.zeros((2, 1, 4), np.float32)
    S = np.zeros((2, 1, 3), np.float32)
    read_only = Z.copy()
    read_only.flags.writeable = False
    with pytest.raises(numba.TypingError):
        cpu.add_tile(read_only, np.int64(0), S, np.int64(0), np.zeros((3, 4), np.float32), np.int64(0), np.int64(2),
                     Z.reshape(-1)[:0])
    with pytest.raises(numba.TypingError):
        cpu.add_tile(Z, np.int64(0), S, np.int64(0), np.zeros((4, 3), np.float32).T, np.int64(0), np.int64(2),
                     Z.reshape(-1)[:0])
    with pytest.raises(numba.TypingError):
        cpu.add_tile(Z, np.int64(0), S, np.int64(0), np.zeros((3, 4), np.float64), np.int64(0), np.int64(2),
                     Z.reshape(-1)[:0])


@pytest.mark.parametrize("features, requested, expected", [
    ("+avx512f,+avx2,+avx,+fma", "auto", (64, 4)),
    ("+avx512f,+avx2,+avx,+fma", "512", (64, 4)),
    ("+avx512f,+avx2,+avx,+fma", "256", (32, 2)),
    ("-avx512f,+avx2,+avx,+fma", "auto", (32, 2)),
    ("+neon", "auto", (16, 2)),
    ("", "auto", (16, 2)),
])
def test_geometry_follows_the_features_numba_compiles_for(features, requested, expected):
    assert tile.geometry(features, requested) == expected


@numba.njit(**CPU_OPTIONS)
def _prefetch_every_row(array):
    for t in range(array.shape[1]):
        tile.prefetch_rows(array, t, 0, array.shape[0])
        tile.prefetch_rows(array, t, array.shape[0], array.shape[0])  # no rows: nothing asked
    return array[-1, -1, -1]


@numba.njit(**CPU_OPTIONS)
def _prefetch_every_row_empty(array):
    for t in range(array.shape[1]):
        tile.prefetch_rows(array, t, 0, array.shape[0])


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="x86's instruction name")
def test_prefetch_rows_compiles_to_prefetch_instructions():
    # The requests are there (the test of values above would pass without them): on x86 the
    # L2-locality prefetch is prefetcht1.
    _prefetch_every_row(np.zeros((2, 3, 40), np.float32))
    asm = _prefetch_every_row.inspect_asm(_prefetch_every_row.signatures[0])
    assert "prefetcht1" in asm


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 5, 7), (2, 4, 17), (4, 3, 64), (2, 2, 100), (2, 3, 0)])
def test_prefetch_rows_reads_nothing_wrong_and_changes_nothing(shape, dtype):
    # Rows of every length around a cache line (64 bytes), starting on and off a line, the last
    # row of the array included (its last line requested, not the one after it): no fault, and
    # the array is unchanged.
    base = np.random.default_rng(0).standard_normal((np.prod(shape) + 3,)).astype(dtype)
    if shape[2] == 0:  # an empty row: nothing asked for, and no fault
        _prefetch_every_row_empty(base[:0].reshape(shape))
        return
    for start in (0, 1, 3):
        array = base[start:start + np.prod(shape)].reshape(shape)
        before = array.copy()
        assert _prefetch_every_row(array) == before[-1, -1, -1]
        np.testing.assert_array_equal(array, before)

