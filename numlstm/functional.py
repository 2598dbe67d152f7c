"""The functional kernels: one LSTM layer forward and backward on arrays."""

import numpy as np

from numlstm._threads import kernel_threads
from numlstm._validation import check_nonempty, check_shape, float_array, resolve_device
from numlstm.kernels import cpu


def _layer_arrays(x, W, U, b, h0, c0):
    x = float_array(x, "x")
    dtype = x.dtype
    if x.ndim != 3:
        hint = " For one series, use x[None, :, None]." if x.ndim == 1 else (
            " For one feature, use x[:, :, None]." if x.ndim == 2 else "")
        raise ValueError(f"x has {x.ndim} dimension(s); expected 3, (batch, time, features).{hint}")
    check_nonempty(x, "x")
    B, T, I = x.shape
    W = float_array(W, "W", dtype=dtype)
    U = float_array(U, "U", dtype=dtype)
    b = float_array(b, "b", dtype=dtype)
    if U.ndim != 2 or U.shape[0] == 0 or U.shape[1] != 4 * U.shape[0]:
        raise ValueError(f"U has shape {U.shape}; expected (hidden, 4*hidden) with hidden >= 1, gate blocks [i|f|g|o].")
    H = U.shape[0]
    check_shape(W, "W", (I, 4 * H), f"(input, 4*hidden) for x with {I} feature(s) and hidden={H}")
    check_shape(b, "b", (4 * H,), f"(4*hidden,) for hidden={H}")
    states = []
    for name, s in (("h0", h0), ("c0", c0)):
        if s is None:
            s = np.zeros((B, H), dtype=dtype)
        else:
            s = float_array(s, name, dtype=dtype)
            check_shape(s, name, (B, H), "(batch, hidden)")
        states.append(np.ascontiguousarray(s))
    return (np.ascontiguousarray(x), np.ascontiguousarray(W), np.ascontiguousarray(U),
            np.ascontiguousarray(b), *states)


def _forward(x, W, U, b, h0, c0):
    B, T, _ = x.shape
    H = U.shape[0]
    zs = np.empty((B, T, 4 * H), dtype=x.dtype)
    cs = np.empty((B, T, H), dtype=x.dtype)
    hs = np.empty((B, T, H), dtype=x.dtype)
    cpu.layer_forward(x, W, U, b, h0, c0, zs, cs, hs, cpu.chunk_count(B, kernel_threads()))
    return zs, cs, hs


def lstm_forward(x, W, U, b, h0=None, c0=None, *, device="cpu"):
    """Run one LSTM layer over a batch of sequences.

    Parameters
    ----------
    x : ndarray, shape (batch, time, input)
        Input sequences, float32 or float64.
    W : ndarray, shape (input, 4*hidden)
        Input weights, gate blocks ``[i | f | g | o]`` (a Keras LSTM kernel).
    U : ndarray, shape (hidden, 4*hidden)
        Recurrent weights.
    b : ndarray, shape (4*hidden,)
        Bias.
    h0, c0 : ndarray, shape (batch, hidden), optional
        Initial hidden and cell states; zeros when omitted.
    device : {"cpu", "cuda", "auto"}
        Where to run: ``"cuda"`` on an NVIDIA GPU (raises, saying why, when
        none is usable), ``"auto"`` on the GPU when one is usable, else the
        CPU. Inputs and outputs are NumPy arrays either way.

    Returns
    -------
    h : ndarray, shape (batch, time, hidden)
        Hidden state at every step.
    (h_T, c_T) : tuple of ndarray, shape (batch, hidden)
        Final hidden and cell states.

    All arrays must share one dtype; nothing is cast.

    Examples
    --------
    >>> import numpy as np, numlstm
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((2, 5, 3))
    >>> W, U, b = rng.standard_normal((3, 16)), rng.standard_normal((4, 16)), np.zeros(16)
    >>> h, (h_T, c_T) = numlstm.lstm_forward(x, W, U, b)
    >>> h.shape, h_T.shape
    ((2, 5, 4), (2, 4))
    >>> bool(np.allclose(h[:, -1], h_T))
    True
    """
    device = resolve_device(device)
    x, W, U, b, h0, c0 = _layer_arrays(x, W, U, b, h0, c0)
    if device == "cuda":
        from numba import cuda

        from numlstm.kernels import cuda as gpu

        _, cs, hs = gpu.layer_forward(*(cuda.to_device(a) for a in (x, W, U, b, h0, c0)))
        hs, cs = hs.copy_to_host(), cs.copy_to_host()
    else:
        _, cs, hs = _forward(x, W, U, b, h0, c0)
    return hs, (hs[:, -1].copy(), cs[:, -1].copy())


def lstm_backward(x, W, U, b, dh, h0=None, c0=None, *, dh_T=None, dc_T=None, device="cpu"):
    """Gradients of one LSTM layer by backpropagation through time.

    Recomputes the forward pass, then propagates ``dh`` (the gradient of the
    loss with respect to every hidden state) and, optionally, ``dh_T``/``dc_T``
    (gradients with respect to the final states) back through time.

    Parameters
    ----------
    x, W, U, b, h0, c0 : ndarray
        As for :func:`lstm_forward`.
    dh : ndarray, shape (batch, time, hidden)
        Gradient of the loss with respect to ``h``.
    dh_T, dc_T : ndarray, shape (batch, hidden), optional
        Gradients with respect to the final hidden and cell states.
    device : {"cpu", "cuda", "auto"}
        As for :func:`lstm_forward`. On the GPU the weight gradients are
        reduced in a fixed order, so repeated runs give identical results.

    Returns
    -------
    dict
        ``"dx"`` (batch, time, input), ``"dW"``, ``"dU"``, ``"db"`` shaped like
        the weights, ``"dh0"`` and ``"dc0"`` (batch, hidden).

    Examples
    --------
    >>> import numpy as np, numlstm
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((2, 5, 3))
    >>> W, U, b = rng.standard_normal((3, 16)), rng.standard_normal((4, 16)), np.zeros(16)
    >>> grads = numlstm.lstm_backward(x, W, U, b, np.ones((2, 5, 4)))
    >>> sorted(grads), grads["dU"].shape
    (['dU', 'dW', 'db', 'dc0', 'dh0', 'dx'], (4, 16))
    """
    device = resolve_device(device)
    x, W, U, b, h0, c0 = _layer_arrays(x, W, U, b, h0, c0)
    B, T, I = x.shape
    H = U.shape[0]
    dh = float_array(dh, "dh", dtype=x.dtype)
    check_shape(dh, "dh", (B, T, H), "(batch, time, hidden), the gradient with respect to h")
    carries = []
    for name, g in (("dh_T", dh_T), ("dc_T", dc_T)):
        if g is None:
            carries.append(np.zeros((B, H), dtype=x.dtype))
        else:
            g = float_array(g, name, dtype=x.dtype)
            check_shape(g, name, (B, H), "(batch, hidden)")
            carries.append(np.array(g, order="C"))  # a copy: the kernel writes dh0/dc0 into it
    dh_carry, dc_carry = carries
    if device == "cuda":
        return _backward_cuda(x, W, U, b, np.ascontiguousarray(dh), h0, c0, dh_carry, dc_carry)
    zs, cs, hs = _forward(x, W, U, b, h0, c0)
    dW = np.empty_like(W)
    dU = np.empty_like(U)
    db = np.empty_like(b)
    dx = np.empty_like(x)
    cpu.layer_backward(x, W, U, h0, c0, zs, cs, hs, np.ascontiguousarray(dh), dh_carry, dc_carry,
                       dW, dU, db, dx, cpu.chunk_count(B, kernel_threads()), True)
    return {"dx": dx, "dW": dW, "dU": dU, "db": db, "dh0": dh_carry, "dc0": dc_carry}


def _backward_cuda(x, W, U, b, dh, h0, c0, dh_carry, dc_carry):
    from numba import cuda

    from numlstm.kernels import cuda as gpu

    d_x, d_W, d_U, d_b, d_h0, d_c0 = (cuda.to_device(a) for a in (x, W, U, b, h0, c0))
    zs, cs, hs = gpu.layer_forward(d_x, d_W, d_U, d_b, d_h0, d_c0)
    d_dh, d_dc = cuda.to_device(dh_carry), cuda.to_device(dc_carry)
    dx, dW, dU, db = gpu.layer_backward(d_x, d_W, cuda.to_device(np.ascontiguousarray(U.T)), d_h0, d_c0, zs, cs,
                                        hs, cuda.to_device(dh), d_dh, d_dc)
    return {"dx": dx.copy_to_host(), "dW": dW.copy_to_host(), "dU": dU.copy_to_host(), "db": db.copy_to_host(),
            "dh0": d_dh.copy_to_host(), "dc0": d_dc.copy_to_host()}
