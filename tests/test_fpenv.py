"""numlstm.kernels.fpenv: the CPU kernels flush subnormal numbers to zero while they run,
and leave the caller's floating-point environment as they found it."""

import numpy as np
import pytest
from numba import njit, prange

import numlstm
import reference as ref
from numlstm.kernels import fpenv

TINY = np.finfo(np.float32).tiny  # the smallest normal float32, 1.2e-38

x86_only = pytest.mark.skipif(not fpenv.X86, reason="the flush is emitted on x86 CPUs only")


@njit
def _products(a, b, flush):
    """``a * b`` elementwise into a new array, in a loop as the kernels' (between the flush
    and the restore where ``flush``); and the control word the flush found (0 without)."""
    out = np.empty_like(a)
    word = np.int32(0)
    if flush:
        word = fpenv.flush_subnormals()
    for i in range(a.shape[0]):
        out[i] = a[i] * b[i]
    if flush:
        fpenv.restore(word)
    return out, word


@x86_only
def test_the_flush_zeroes_subnormal_results_and_restore_puts_the_environment_back():
    a = np.full(37, TINY, dtype=np.float32)
    b = np.full(37, 0.5, dtype=np.float32)  # TINY * 0.5 = 5.9e-39, subnormal
    plain, _ = _products(a, b, False)
    flushed, word = _products(a, b, True)
    assert ((0 < plain) & (plain < TINY)).all()
    assert (flushed == 0).all()
    assert word & fpenv.FTZ_DAZ == 0  # the word found: Python's default environment
    again, _ = _products(a, b, False)  # restored: this thread computes subnormals again
    np.testing.assert_array_equal(again, plain)
    assert np.float32(TINY) * np.float32(0.5) == plain[0]  # and NumPy, in this thread, too


def _decaying_layer(rng, cell, T):
    """A layer whose gradient, given at the last step only, falls below TINY within T steps."""
    B, I, H = 3, 2, 4
    make = ref.random_layer if cell == "lstm" else ref.random_gru_layer
    x, W, U, b = make(rng, B, T, I, H, scale=0.1)
    dh = np.zeros((B, T, H))
    dh[:, -1] = rng.standard_normal((B, H))
    return x, W, U, b, dh


@x86_only
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_gradient_decaying_through_a_long_sequence_has_no_subnormal_values(rng, cell):
    # float32 through 300 steps, the gradient given at the last one only: the reference's
    # gradient with respect to the first inputs is below TINY (subnormal in float32). The kernels,
    # in every thread, flush those to 0 and match the reference everywhere else.
    x, W, U, b, dh = _decaying_layer(rng, cell, 300)
    want = (ref.lstm_backward if cell == "lstm" else ref.gru_backward)(x, W, U, b, dh)["dx"]
    assert ((np.abs(want) > 0) & (np.abs(want) < TINY)).any(), "the case must reach the subnormal range"
    backward = numlstm.lstm_backward if cell == "lstm" else numlstm.gru_backward
    got = backward(*(a.astype(np.float32) for a in (x, W, U, b, dh)))["dx"]  # rows in chunks, one per thread
    magnitude = np.abs(got)
    assert not ((magnitude > 0) & (magnitude < TINY)).any()
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-6 * np.abs(want).max())
    assert np.float32(TINY) * np.float32(0.5) > 0  # the caller's environment is as it was


@njit(parallel=True)
def _products_in_threads(a, b):
    """``a * b`` row by row in Numba's worker threads, with nothing flushed."""
    out = np.empty_like(a)
    for i in prange(a.shape[0]):
        for j in range(a.shape[1]):
            out[i, j] = a[i, j] * b[i, j]
    return out


@x86_only
def test_the_worker_threads_are_left_as_they_were_after_a_kernel_ran_in_them(rng):
    # A backward pass in two chunks runs the flushing kernels in Numba's worker threads; the
    # same threads then compute subnormals again in code that does not flush.
    x, W, U, b, dh = _decaying_layer(rng, "lstm", 300)
    numlstm.lstm_backward(*(a.astype(np.float32) for a in (x, W, U, b, dh)))
    a = np.full((64, 16), TINY, dtype=np.float32)
    out = _products_in_threads(a, np.full_like(a, 0.5))
    assert ((0 < out) & (out < TINY)).all()
