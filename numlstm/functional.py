"""The functional kernels: one LSTM or GRU layer forward and backward on arrays."""

import numpy as np

from numlstm._cells import cell_spec
from numlstm._validation import check_nonempty, check_shape, float_array, resolve_device
from numlstm.kernels import layers


def _layer_arrays(x, W, U, b, states, cell="lstm"):
    """``x, W, U, b`` and the initial states (``{name: array or None}``) of one
    layer of ``cell``, validated, C-contiguous, in x's dtype."""
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
    spec = cell_spec(cell)
    gates, order = spec.gates, spec.gate_order
    if U.ndim != 2 or U.shape[0] == 0 or U.shape[1] != gates * U.shape[0]:
        raise ValueError(f"U has shape {U.shape}; expected (hidden, {gates}*hidden) with hidden >= 1, "
                         f"gate blocks {order}.")
    H = U.shape[0]
    check_shape(W, "W", (I, gates * H), f"(input, {gates}*hidden) for x with {I} feature(s) and hidden={H}")
    if spec.bias_rows == 2:
        single = ("; one bias vector goes in as the input bias, np.stack([b, np.zeros_like(b)]) (but a "
                  f"Keras {spec.name} with reset_after=False, which has one, is a different model that numlstm "
                  "does not run)" if b.shape == (gates * H,) else "")
        check_shape(b, "b", spec.bias_shape(H), f"{spec.bias_formula} for hidden={H}: row 0 the input bias, "
                                                f"row 1 the recurrent bias{single}")
    else:
        check_shape(b, "b", spec.bias_shape(H), f"{spec.bias_formula} for hidden={H}")
    return (np.ascontiguousarray(x), np.ascontiguousarray(W), np.ascontiguousarray(U),
            np.ascontiguousarray(b), *_batch_states(states, B, H, dtype))


def _batch_states(named, B, H, dtype, *, copy=False):
    """Each array of ``{name: (batch, hidden) array or None}`` validated and
    C-contiguous, zeros for None; copied when ``copy`` (a kernel writes into it)."""
    out = []
    for name, s in named.items():
        if s is None:
            out.append(np.zeros((B, H), dtype=dtype))
            continue
        s = float_array(s, name, dtype=dtype)
        check_shape(s, name, (B, H), "(batch, hidden)")
        out.append(np.array(s, order="C") if copy else np.ascontiguousarray(s))
    return out


def _output_gradients(x, H, dh, finals):
    """``dh`` and the gradients with respect to the final states (``{name: array
    or None}``), validated; the latter are copies, which the kernels overwrite
    with the gradients with respect to the initial states."""
    B, T, _ = x.shape
    dh = float_array(dh, "dh", dtype=x.dtype)
    check_shape(dh, "dh", (B, T, H), "(batch, time, hidden), the gradient with respect to h")
    return (np.ascontiguousarray(dh), *_batch_states(finals, B, H, x.dtype, copy=True))


def _kernels(cell, device):
    """One layer of ``cell`` on ``device`` ("cpu", "cuda" or "auto"), on host arrays: the
    one place the functional API picks a device (the layer itself runs through
    :mod:`numlstm.kernels.layers`, the same call on every device). ``forward(x, W, U,
    b, *states)`` returns ``(hs, cs)`` (``cs`` None for a GRU); ``backward(x, W, U, b,
    dh, states, carries)`` the gradients, ``carries`` (the gradients with respect to
    the final states, copies) overwritten with those with respect to the initial states."""
    from types import SimpleNamespace

    device = resolve_device(device)
    if device == "cuda":
        from numba import cuda

        to_device, to_host = cuda.to_device, (lambda a: a.copy_to_host())
    else:
        to_device = to_host = (lambda a: a)

    def forward(x, W, U, b, *states):
        _, second, hs = layers.forward(cell, device, *map(to_device, (x, W, U, b)), tuple(map(to_device, states)),
                                       for_backward=False)
        return to_host(hs), to_host(second) if cell == "lstm" else None

    def backward(x, W, U, b, dh, states, carries):
        arrays = tuple(map(to_device, (x, W, U, b)))
        states = tuple(map(to_device, states))
        carried = [to_device(c) for c in carries]
        dx, dW, dU, db = layers.forward_backward(cell, device, *arrays, states, to_device(dh), carried)
        out = {"dx": to_host(dx), "dW": to_host(dW), "dU": to_host(dU), "db": to_host(db),
               "dh0": to_host(carried[0])}
        if cell == "lstm":
            out["dc0"] = to_host(carried[1])
        return out

    return SimpleNamespace(forward=forward, backward=backward)


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
    kernels = _kernels("lstm", device)
    x, W, U, b, h0, c0 = _layer_arrays(x, W, U, b, {"h0": h0, "c0": c0})
    hs, cs = kernels.forward(x, W, U, b, h0, c0)
    return hs, (hs[:, -1].copy(), cs[:, -1].copy())


def lstm_backward(x, W, U, b, dh, h0=None, c0=None, *, dh_T=None, dc_T=None, device="cpu"):
    """Gradients of one LSTM layer by backpropagation through time.

    Recomputes the forward pass, then propagates ``dh`` (the gradient of the
    loss with respect to every hidden state) and, optionally, ``dh_T``/``dc_T``
    (gradients with respect to the final states) back through time.
    On the CPU the recomputed forward pass is written into memory kept
    between calls (up to 256 MiB of it; larger problems allocate theirs
    afresh) rather than into arrays allocated and freed at every call.

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
    kernels = _kernels("lstm", device)
    x, W, U, b, h0, c0 = _layer_arrays(x, W, U, b, {"h0": h0, "c0": c0})
    dh, dh_carry, dc_carry = _output_gradients(x, U.shape[0], dh, {"dh_T": dh_T, "dc_T": dc_T})
    return kernels.backward(x, W, U, b, dh, (h0, c0), (dh_carry, dc_carry))


def gru_forward(x, W, U, b, h0=None, *, device="cpu"):
    """Run one GRU layer over a batch of sequences.

    The layout of a Keras ``GRU(reset_after=True)`` (the Keras default), which
    computes the same model as a PyTorch ``nn.GRU``; gate blocks
    ``[z | r | n]``::

        z = sigmoid(x W_z + b[0, z] + h U_z + b[1, z])          # update gate
        r = sigmoid(x W_r + b[0, r] + h U_r + b[1, r])          # reset gate
        n = tanh(x W_n + b[0, n] + r * (h U_n + b[1, n]))       # candidate
        h_new = z * h + (1 - z) * n

    Parameters
    ----------
    x : ndarray, shape (batch, time, input)
        Input sequences, float32 or float64.
    W : ndarray, shape (input, 3*hidden)
        Input weights, gate blocks ``[z | r | n]`` (a Keras GRU kernel).
    U : ndarray, shape (hidden, 3*hidden)
        Recurrent weights.
    b : ndarray, shape (2, 3*hidden)
        Biases: row 0 the input bias, row 1 the recurrent bias (they differ
        only in the candidate, where the reset gate scales the recurrent one).
    h0 : ndarray, shape (batch, hidden), optional
        Initial hidden state; zeros when omitted.
    device : {"cpu", "cuda", "auto"}
        Where to run: ``"cuda"`` on an NVIDIA GPU (raises, saying why, when
        none is usable), ``"auto"`` on the GPU when one is usable, else the
        CPU. Inputs and outputs are NumPy arrays either way.

    Returns
    -------
    h : ndarray, shape (batch, time, hidden)
        Hidden state at every step.
    h_T : ndarray, shape (batch, hidden)
        Final hidden state.

    All arrays must share one dtype; nothing is cast. Weights of a PyTorch
    ``nn.GRU`` or a Keras GRU convert with
    ``numlstm.interop.from_torch(..., cell="gru")`` /
    ``from_keras(..., cell="gru")``.

    Examples
    --------
    >>> import numpy as np, numlstm
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((2, 5, 3))
    >>> W, U, b = rng.standard_normal((3, 12)), rng.standard_normal((4, 12)), np.zeros((2, 12))
    >>> h, h_T = numlstm.gru_forward(x, W, U, b)
    >>> h.shape, h_T.shape
    ((2, 5, 4), (2, 4))
    >>> bool(np.allclose(h[:, -1], h_T))
    True
    """
    kernels = _kernels("gru", device)
    x, W, U, b, h0 = _layer_arrays(x, W, U, b, {"h0": h0}, cell="gru")
    hs, _ = kernels.forward(x, W, U, b, h0)
    return hs, hs[:, -1].copy()


def gru_backward(x, W, U, b, dh, h0=None, *, dh_T=None, device="cpu"):
    """Gradients of one GRU layer by backpropagation through time.

    Recomputes the forward pass, then propagates ``dh`` (the gradient of the
    loss with respect to every hidden state) and, optionally, ``dh_T`` (the
    gradient with respect to the final state) back through time.
    On the CPU the recomputed forward pass is written into memory kept
    between calls (up to 256 MiB of it; larger problems allocate theirs
    afresh) rather than into arrays allocated and freed at every call.

    Parameters
    ----------
    x, W, U, b, h0 : ndarray
        As for :func:`gru_forward`.
    dh : ndarray, shape (batch, time, hidden)
        Gradient of the loss with respect to ``h``.
    dh_T : ndarray, shape (batch, hidden), optional
        Gradient with respect to the final hidden state.
    device : {"cpu", "cuda", "auto"}
        As for :func:`gru_forward`. On the GPU the weight gradients are
        reduced in a fixed order, so repeated runs give identical results.

    Returns
    -------
    dict
        ``"dx"`` (batch, time, input), ``"dW"``, ``"dU"``, ``"db"`` shaped like
        the weights (``db[0]`` for the input bias, ``db[1]`` for the recurrent
        one) and ``"dh0"`` (batch, hidden).

    Examples
    --------
    >>> import numpy as np, numlstm
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((2, 5, 3))
    >>> W, U, b = rng.standard_normal((3, 12)), rng.standard_normal((4, 12)), np.zeros((2, 12))
    >>> grads = numlstm.gru_backward(x, W, U, b, np.ones((2, 5, 4)))
    >>> sorted(grads), grads["db"].shape
    (['dU', 'dW', 'db', 'dh0', 'dx'], (2, 12))
    """
    kernels = _kernels("gru", device)
    x, W, U, b, h0 = _layer_arrays(x, W, U, b, {"h0": h0}, cell="gru")
    dh, dh_carry = _output_gradients(x, U.shape[0], dh, {"dh_T": dh_T})
    return kernels.backward(x, W, U, b, dh, (h0,), (dh_carry,))
