"""Training and prediction on an NVIDIA GPU: the CUDA twin of :mod:`numlstm.core.training`,
for LSTM and GRU networks alike.

During a fit, the weights, the optimizer state and every training window stay
in GPU memory; each batch is gathered, run forward and backward, scored,
clipped and applied there. Per epoch, the host sends the shuffled order and
reads back only the batch losses and a flag saying whether a loss or gradient
was not finite (the update kernels skip every batch after such a one, as the
CPU loop stops there).

The loss and the optimizer rule are the CPU's own code
(:func:`numlstm.core.losses.loss_and_grad_impl`,
:func:`numlstm.core.optimizers.update_one`), compiled for the GPU. Every
reduction is done in a fixed order (per-block partial sums, then one pass
over them), so a fit gives the same result on every run.
"""

import math

import numpy as np
from numba import cuda

from numlstm.core import losses as _losses
from numlstm.core.optimizers import step_size, update_one
from numlstm.kernels.gates import gpu_twin
from numlstm.kernels import cuda as kernels
from numlstm.kernels import gru_cuda
from numlstm.kernels.cuda import launch

update_one_gpu = gpu_twin(update_one)

THREADS = 256
NORM_BLOCKS = 64  # partial sums of squares for the global gradient norm


@cuda.jit
def _gather3(src, order, start, out):
    """``out[i] = src[order[start + i]]`` for (n, T, F) arrays."""
    n, T, F = out.shape
    e = cuda.grid(1)
    if e < n * T * F:
        f = e % F
        t = (e // F) % T
        i = e // (F * T)
        out[i, t, f] = src[order[start + i], t, f]


@cuda.jit
def _gather2(src, order, start, out):
    n, F = out.shape
    e = cuda.grid(1)
    if e < n * F:
        out[e // F, e % F] = src[order[start + e // F], e % F]


@cuda.jit
def _zero2(a):
    e = cuda.grid(1)
    if e < a.shape[0] * a.shape[1]:
        a[e // a.shape[1], e % a.shape[1]] = 0


@cuda.jit
def _transpose(src, dst):
    rows, cols = src.shape
    e = cuda.grid(1)
    if e < rows * cols:
        dst[e % cols, e // cols] = src[e // cols, e % cols]


@cuda.jit
def _head_forward(hs, Wd, bd, out):
    n, O = out.shape
    T, H = hs.shape[1], hs.shape[2]
    e = cuda.grid(1)
    if e < n * O:
        r = e // O
        o = e % O
        acc = bd[o]
        for j in range(H):
            acc += hs[r, T - 1, j] * Wd[j, o]
        out[r, o] = acc


@cuda.jit
def _loss(loss_id, lparams, pred, Y, M, dpred, losses, slot, flag):
    """One thread: the batch's loss into ``losses[slot]`` and its gradient into ``dpred``."""
    if cuda.grid(1) == 0 and flag[0] < 0:
        losses[slot] = _losses.loss_and_grad_impl(loss_id, lparams, pred, Y, M, dpred)


@cuda.jit
def _head_backward(hs, Wd, dpred, dWd, dbd, dhs):
    """Head gradients (one thread per weight, rows summed in order) and the gradient
    reaching the top layer's last hidden state; ``dhs`` is zero elsewhere."""
    n, T, H = dhs.shape
    O = dpred.shape[1]
    e = cuda.grid(1)
    if e < H * O:
        j = e // O
        o = e % O
        acc = dpred[0, o] * 0
        for r in range(n):
            acc += hs[r, T - 1, j] * dpred[r, o]
        dWd[j, o] = acc
        if j == 0:
            acc = dpred[0, o] * 0
            for r in range(n):
                acc += dpred[r, o]
            dbd[o] = acc
    if e < n * T * H:
        j = e % H
        rt = e // H
        r = rt // T
        t = rt % T
        acc = dpred[0, 0] * 0
        if t == T - 1:
            for o in range(O):
                acc += dpred[r, o] * Wd[j, o]
        dhs[r, t, j] = acc


@cuda.jit
def _sum_squares(v, parts):
    acc = 0.0
    i = cuda.grid(1)
    stride = cuda.gridsize(1)
    while i < v.shape[0]:
        acc += float(v[i]) * float(v[i])
        i += stride
    parts[cuda.grid(1)] = acc


@cuda.jit
def _check_and_scale(parts, losses, slot, clipnorm, flag, scale):
    """One thread: the global norm from the partial sums (in order); mark the batch as
    failed when its loss or norm is not finite; the clipping factor into ``scale[0]``."""
    if cuda.grid(1) == 0 and flag[0] < 0:
        s = 0.0
        for k in range(parts.shape[0]):
            s += parts[k]
        norm = math.sqrt(s)
        if not (math.isfinite(losses[slot]) and math.isfinite(norm)):
            flag[0] = slot
        scale[0] = clipnorm / norm if clipnorm > 0 and norm > clipnorm else 1.0


@cuda.jit
def _update(kind, params, grads, state, alpha, hp, flag, scale):
    i = cuda.grid(1)
    if i < params.shape[0] and flag[0] < 0:
        update_one_gpu(kind, params, state, i, grads[i] * scale[0], alpha, hp)


def _blocks(n):
    return max(1, (n + THREADS - 1) // THREADS)


def _zeros(shape, dtype):
    a = cuda.device_array(shape, dtype=dtype)
    launch(_zero2, _blocks(a.size), THREADS)(a)
    return a


class DeviceNetwork:
    """A network's parameters on the GPU, and the forward pass through them.

    LSTM and GRU networks differ only in their layers' kernels
    (:mod:`numlstm.kernels.cuda`, :mod:`numlstm.kernels.gru_cuda`), chosen once
    per network in :meth:`_layer_forward` and :meth:`_layer_backward`.
    """

    def __init__(self, net):
        self.net = net
        self.dtype = net.dtype
        self.gru = net.cell == "gru"
        self.params = cuda.to_device(net.params)

    # --- views into the flat parameter buffers (device arrays) -------------------------------
    def _layer(self, buf, k):
        """``(W, U, b, block)`` of layer ``k`` in ``buf``; ``block`` is the layer's
        ``W``, ``U`` and ``b`` as the rows of one (input + hidden + bias rows, G) array."""
        I, H, oW, oU, ob = (int(v) for v in self.net.table[k, :5])
        if self.gru:
            G = 3 * H
            return (buf[oW:oU].reshape((I, G)), buf[oU:ob].reshape((H, G)), buf[ob:ob + 2 * G].reshape((2, G)),
                    buf[oW:ob + 2 * G].reshape((I + H + 2, G)))
        G = 4 * H
        return buf[oW:oU].reshape((I, G)), buf[oU:ob].reshape((H, G)), buf[ob:ob + G], buf[oW:ob + G].reshape(
            (I + H + 1, G))

    def _head(self, buf):
        H, O, oW, ob = (int(v) for v in self.net.head[:4])
        return buf[oW:ob].reshape((H, O)), buf[ob:ob + O]

    def _layer_forward(self, inp, W, U, b, zeros):
        """One layer forward: its cache entry ``(input, first, second, hs, zero state)``,
        ``first, second`` being ``zs, cs`` for an LSTM, ``xs, gs`` for a GRU."""
        if self.gru:
            xs, gs, hs = gru_cuda.layer_forward(inp, W, U, b, zeros)
            return inp, xs, gs, hs, zeros
        zs, cs, hs = kernels.layer_forward(inp, W, U, b, zeros, zeros)
        return inp, zs, cs, hs, zeros

    def _layer_backward(self, entry, W, U_T, dhs, block, need_dx):
        """One layer backward from its cache entry; weight gradients into ``block``; returns ``dx``."""
        inp, first, second, hs, zeros = entry
        n, H = zeros.shape
        if self.gru:
            dx, _, _, _ = gru_cuda.layer_backward(inp, W, U_T, zeros, first, second, hs, dhs,
                                                  _zeros((n, H), self.dtype), need_dx=need_dx, out=block)
            return dx
        dh_carry, dc_carry = _zeros((n, H), self.dtype), _zeros((n, H), self.dtype)
        dx, _, _, _ = kernels.layer_backward(inp, W, U_T, zeros, zeros, first, second, hs, dhs, dh_carry, dc_carry,
                                             need_dx=need_dx, out=block)
        return dx

    def forward(self, X):
        """Head outputs (device) and each layer's cache entry (see :meth:`_layer_forward`)."""
        n = X.shape[0]
        cache = []
        inp = X
        for k in range(len(self.net.hidden_sizes)):
            W, U, b, _ = self._layer(self.params, k)
            zeros = _zeros((n, U.shape[0]), self.dtype)
            cache.append(self._layer_forward(inp, W, U, b, zeros))
            inp = cache[-1][3]
        Wd, bd = self._head(self.params)
        out = cuda.device_array((n, Wd.shape[1]), dtype=self.dtype)
        launch(_head_forward, _blocks(out.size), THREADS)(inp, Wd, bd, out)
        return out, cache

    def predict(self, X, rows=4096):
        """Head outputs for the host array ``X``, ``rows`` at a time (a host array)."""
        out = np.empty((X.shape[0], self.net.output_size), dtype=self.dtype)
        for start in range(0, X.shape[0], rows):
            stop = min(X.shape[0], start + rows)
            pred, _ = self.forward(cuda.to_device(np.ascontiguousarray(X[start:stop])))
            out[start:stop] = pred.copy_to_host()
        return out


class Trainer(DeviceNetwork):
    """A network's parameters and a data set on the GPU, and the epoch loop over them."""

    def __init__(self, net, X, Y, M, batch_size, loss_id, lparams, optimizer, clipnorm, drop=None, seed=0):
        if (drop is not None and np.any(drop)) or net.bidirectional or net.vocabulary:
            raise ValueError("dropout, bidirectional layers and embedding layers train on the CPU for now; use "
                             "device='cpu' for this model.")
        super().__init__(net)
        self.grads = cuda.device_array_like(net.params)
        self.state = cuda.to_device(np.zeros((2, net.n_params), dtype=net.dtype))
        self.X, self.Y, self.M = (cuda.to_device(np.ascontiguousarray(a)) for a in (X, Y, M))
        self.batch_size = min(batch_size, X.shape[0])
        self.loss_id = loss_id
        self.lparams = cuda.to_device(np.asarray(lparams, dtype=np.float64))
        self.kind = optimizer.kind
        self.hp = optimizer.hyperparams()
        self.d_hp = cuda.to_device(self.hp)
        self.clipnorm = float(clipnorm or 0.0)
        self.flag = cuda.to_device(np.array([-1], dtype=np.int64))
        self.scale = cuda.device_array(1, dtype=np.float64)
        self.parts = cuda.device_array(NORM_BLOCKS * THREADS, dtype=np.float64)
        self.step = 0

    def _batch(self, X, Y, M, losses, slot):
        pred, cache = self.forward(X)
        dpred = cuda.device_array(pred.shape, dtype=np.float64)
        launch(_loss, 1, 1)(self.loss_id, self.lparams, pred, Y, M, dpred, losses, slot, self.flag)
        top = cache[-1][3]
        Wd, _ = self._head(self.params)
        dWd, dbd = self._head(self.grads)
        dhs = cuda.device_array(top.shape, dtype=self.dtype)
        launch(_head_backward, _blocks(max(Wd.size, top.size)), THREADS)(top, Wd, dpred, dWd, dbd, dhs)
        for k in range(len(cache) - 1, -1, -1):
            W, U, _, _ = self._layer(self.params, k)
            _, _, _, block = self._layer(self.grads, k)
            U_T = cuda.device_array((U.shape[1], U.shape[0]), dtype=self.dtype)
            launch(_transpose, _blocks(U.size), THREADS)(U, U_T)
            dhs = self._layer_backward(cache[k], W, U_T, dhs, block, need_dx=k > 0)
        launch(_sum_squares, NORM_BLOCKS, THREADS)(self.grads, self.parts)
        launch(_check_and_scale, 1, 1)(self.parts, losses, slot, self.clipnorm, self.flag, self.scale)
        alpha = step_size(self.kind, self.step + 1, self.hp)
        launch(_update, _blocks(self.net.n_params), THREADS)(self.kind, self.params, self.grads, self.state,
                                                             alpha, self.d_hp, self.flag, self.scale)
        self.step += 1

    def epoch(self, order, batch_losses):
        """All batches in ``order``; returns the first failed batch or -1, and fills ``batch_losses``."""
        n = order.shape[0]
        d_order = cuda.to_device(order.astype(np.int64))
        losses = cuda.to_device(np.zeros(len(batch_losses)))
        start_step = self.step
        for bi, start in enumerate(range(0, n, self.batch_size)):
            size = min(self.batch_size, n - start)
            batch = []
            for src in (self.X, self.Y, self.M):
                out = cuda.device_array((size,) + src.shape[1:], dtype=src.dtype)
                gather = _gather3 if src.ndim == 3 else _gather2
                launch(gather, _blocks(out.size), THREADS)(src, d_order, start, out)
                batch.append(out)
            self._batch(*batch, losses, bi)
        failed = int(self.flag.copy_to_host()[0])
        batch_losses[:] = losses.copy_to_host()
        if failed >= 0:
            self.step = start_step + failed
        return failed

    def dataset_loss(self, X, Y, M):
        """Mean loss over a whole (validation) set; the set is copied to the GPU once and
        only the loss comes back."""
        if getattr(self, "_held", None) is None or self._held[0] is not X:
            self._held = (X, *(cuda.to_device(np.ascontiguousarray(a)) for a in (X, Y, M)))
        _, d_X, d_Y, d_M = self._held
        pred, _ = self.forward(d_X)
        dpred = cuda.device_array(pred.shape, dtype=np.float64)
        loss = cuda.device_array(1, dtype=np.float64)
        no_failure = cuda.to_device(np.array([-1]))
        launch(_loss, 1, 1)(self.loss_id, self.lparams, pred, d_Y, d_M, dpred, loss, 0, no_failure)
        return float(loss.copy_to_host()[0])

    def get_params(self):
        return self.params.copy_to_host()

    def set_params(self, params):
        self.params.copy_to_device(np.ascontiguousarray(params, dtype=self.dtype))


def predict(net, X, drop=None, seed=0, step=0):
    """Raw head outputs for ``X`` on the GPU."""
    if (drop is not None and np.any(drop)) or net.bidirectional or net.vocabulary:
        raise ValueError("dropout, bidirectional layers and embedding layers run on the CPU for now; use "
                         "device='cpu' for this model.")
    return DeviceNetwork(net).predict(X)
