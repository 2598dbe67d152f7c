"""A plain, obvious NumPy LSTM: the reference every kernel is compared with.

Written for clarity, not speed: one time step at a time, float64 throughout
unless the inputs are float32, gate order ``[i | f | g | o]``.

Two optional per-row arrays follow the kernels' conventions:

- ``keep`` (batch, time), 0 or 1: a step with ``keep == 0`` is skipped, the
  state passing through it unchanged (padding masked out of the recurrence,
  as a Keras layer under a mask);
- ``hmask`` (batch, hidden): recurrent dropout, the state entering the
  recurrent product ``h_{t-1} @ U`` multiplied by it at every step (one mask
  per sequence, as Keras' ``recurrent_dropout``); a GRU's blend
  ``z * h_{t-1}`` uses the state itself.
"""

import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _masks(B, T, H, dtype, keep, hmask):
    keep = np.ones((B, T), bool) if keep is None else np.asarray(keep).astype(bool)
    hmask = np.ones((B, H), dtype) if hmask is None else hmask
    return keep, hmask


def lstm_forward(x, W, U, b, h0=None, c0=None, keep=None, hmask=None):
    B, T, _ = x.shape
    H = U.shape[0]
    keep, hmask = _masks(B, T, H, x.dtype, keep, hmask)
    h = np.zeros((B, H), x.dtype) if h0 is None else h0
    c = np.zeros((B, H), x.dtype) if c0 is None else c0
    cache = []
    hs = np.empty((B, T, H), x.dtype)
    for t in range(T):
        z = x[:, t] @ W + (h * hmask) @ U + b
        i, f, g, o = sigmoid(z[:, :H]), sigmoid(z[:, H:2 * H]), np.tanh(z[:, 2 * H:3 * H]), sigmoid(z[:, 3 * H:])
        c_new = f * c + i * g
        h_new = o * np.tanh(c_new)
        k = keep[:, t:t + 1]
        cache.append((h, c, i, f, g, o, c_new))
        h, c = np.where(k, h_new, h), np.where(k, c_new, c)
        hs[:, t] = h
    return hs, (h, c), cache


def lstm_backward(x, W, U, b, dh, h0=None, c0=None, dh_T=None, dc_T=None, keep=None, hmask=None):
    B, T, _ = x.shape
    H = U.shape[0]
    keep, hmask = _masks(B, T, H, x.dtype, keep, hmask)
    _, _, cache = lstm_forward(x, W, U, b, h0, c0, keep, hmask)
    dW, dU, db = np.zeros_like(W), np.zeros_like(U), np.zeros_like(b)
    dx = np.zeros_like(x)
    dh_next = np.zeros((B, H), x.dtype) if dh_T is None else dh_T.copy()
    dc_next = np.zeros((B, H), x.dtype) if dc_T is None else dc_T.copy()
    for t in reversed(range(T)):
        h_prev, c_prev, i, f, g, o, c = cache[t]
        dht = dh[:, t] + dh_next
        tc = np.tanh(c)
        do = dht * tc
        dc = dc_next + dht * o * (1 - tc ** 2)
        di, df, dg = dc * g, dc * c_prev, dc * i
        dz = np.concatenate([di * i * (1 - i), df * f * (1 - f), dg * (1 - g ** 2), do * o * (1 - o)], axis=1)
        k = keep[:, t:t + 1]
        dz = np.where(k, dz, 0)
        dW += x[:, t].T @ dz
        dU += (h_prev * hmask).T @ dz
        db += dz.sum(0)
        dx[:, t] = dz @ W.T
        dh_next = np.where(k, (dz @ U.T) * hmask, dht)
        dc_next = np.where(k, dc * f, dc_next)
    return {"dx": dx, "dW": dW, "dU": dU, "db": db, "dh0": dh_next, "dc0": dc_next}


def random_layer(rng, B, T, I, H, dtype=np.float64, scale=0.5):
    x = rng.standard_normal((B, T, I)).astype(dtype)
    W = (scale * rng.standard_normal((I, 4 * H))).astype(dtype)
    U = (scale * rng.standard_normal((H, 4 * H))).astype(dtype)
    b = (scale * rng.standard_normal(4 * H)).astype(dtype)
    return x, W, U, b


def network_forward(x, layers, head):
    """Stacked layers, then a dense head on the last hidden state."""
    h = x
    for W, U, b in layers:
        h, _, _ = lstm_forward(h, W, U, b)
    Wd, bd = head
    return h[:, -1] @ Wd + bd


# --- GRU ------------------------------------------------------------------------------
# Keras GRU(reset_after=True) / PyTorch nn.GRU: W (input, 3H), U (H, 3H), b (2, 3H)
# (row 0 the input bias, row 1 the recurrent bias), gate blocks [z | r | n].


def gru_forward(x, W, U, b, h0=None, keep=None, hmask=None):
    B, T, _ = x.shape
    H = U.shape[0]
    keep, hmask = _masks(B, T, H, x.dtype, keep, hmask)
    h = np.zeros((B, H), x.dtype) if h0 is None else h0
    cache = []
    hs = np.empty((B, T, H), x.dtype)
    for t in range(T):
        a = x[:, t] @ W + b[0]  # input projection
        g = (h * hmask) @ U + b[1]  # recurrent projection
        z = sigmoid(a[:, :H] + g[:, :H])
        r = sigmoid(a[:, H:2 * H] + g[:, H:2 * H])
        n = np.tanh(a[:, 2 * H:] + r * g[:, 2 * H:])
        h_new = z * h + (1 - z) * n
        cache.append((h, z, r, n, g[:, 2 * H:]))
        h = np.where(keep[:, t:t + 1], h_new, h)
        hs[:, t] = h
    return hs, h, cache


def gru_backward(x, W, U, b, dh, h0=None, dh_T=None, keep=None, hmask=None):
    B, T, _ = x.shape
    H = U.shape[0]
    keep, hmask = _masks(B, T, H, x.dtype, keep, hmask)
    _, _, cache = gru_forward(x, W, U, b, h0, keep, hmask)
    dW, dU, db = np.zeros_like(W), np.zeros_like(U), np.zeros_like(b)
    dx = np.zeros_like(x)
    dh_next = np.zeros((B, H), x.dtype) if dh_T is None else dh_T.copy()
    for t in reversed(range(T)):
        h_prev, z, r, n, gn = cache[t]
        dht = dh[:, t] + dh_next
        dn = dht * (1 - z) * (1 - n ** 2)  # gradient of the candidate's pre-activation
        dz = dht * (h_prev - n) * z * (1 - z)
        dr = dn * gn * r * (1 - r)
        k = keep[:, t:t + 1]
        da = np.where(k, np.concatenate([dz, dr, dn], axis=1), 0)  # of the input projection
        dg = np.where(k, np.concatenate([dz, dr, dn * r], axis=1), 0)  # of the recurrent projection
        dW += x[:, t].T @ da
        dU += (h_prev * hmask).T @ dg
        db[0] += da.sum(0)
        db[1] += dg.sum(0)
        dx[:, t] = da @ W.T
        dh_next = np.where(k, dht * z + (dg @ U.T) * hmask, dht)
    return {"dx": dx, "dW": dW, "dU": dU, "db": db, "dh0": dh_next}


def random_gru_layer(rng, B, T, I, H, dtype=np.float64, scale=0.5):
    x = rng.standard_normal((B, T, I)).astype(dtype)
    W = (scale * rng.standard_normal((I, 3 * H))).astype(dtype)
    U = (scale * rng.standard_normal((H, 3 * H))).astype(dtype)
    b = (scale * rng.standard_normal((2, 3 * H))).astype(dtype)
    return x, W, U, b
