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
:func:`numlstm.core.optimizers.update_one`), compiled for the GPU with the
other small kernels of this engine in :mod:`numlstm.core.gpu_kernels`. Every
reduction is done in a fixed order (per-block partial sums, then one pass
over them), so a fit gives the same result on every run.

Dropout, bidirectional layers and token input (an embedding layer) run as on
the CPU: the dropout masks come from the same counter-based hash
(:mod:`numlstm.kernels.dropout`) with the same seed, step and streams, so
both devices draw the same masks; the embedding gradient is summed per
token without atomics (see :class:`Trainer`). A network without these
features launches exactly the kernels it did before they existed.
"""

from typing import NamedTuple

import numpy as np
from numba import cuda

from numlstm._device import launch
from numlstm.core import gpu_kernels as gk
from numlstm.core.cpu_engine import PER_STEP, RATE, RECURRENT_RATE, dropout_plan
from numlstm.core.engines import Engine
from numlstm.core.network import EMBED_DIM, EMBED_OFFSET, VOCABULARY
from numlstm.core.optimizers import step_size
from numlstm.kernels import cuda as kernels
from numlstm.kernels import cuda_sizes as sizes
from numlstm.kernels import dropout as _dropout
from numlstm.kernels import gru_cuda
from numlstm.kernels.cuda_common import Workspace, empty_device, transpose_kernel


def token_groups(batches):
    """For the embedding gradient, per batch of token ids (n, T) (host arrays): its
    positions grouped by token, in row-then-step order within a token (a stable sort).
    Returns host arrays ``(perm, tokens, starts)`` of all batches one after another
    (positions local to their batch; ``starts`` has one entry past each batch's last
    token) and per batch ``(begin, n_tokens)`` into ``tokens``/``starts``."""
    perms, tokens, starts, spans = [], [], [], []
    n_tok = 0
    at = 0
    for Xb in batches:
        flat = np.ascontiguousarray(Xb).reshape(-1)
        perm = np.argsort(flat, kind="stable")
        uniq, first = np.unique(flat[perm], return_index=True)
        perms.append(perm)
        tokens.append(uniq)
        starts.append(np.append(first, flat.size) + at)
        tokens.append(uniq[-1:])  # a filler, so that ``starts`` and ``tokens`` stay aligned
        spans.append((n_tok, len(uniq)))
        n_tok += len(uniq) + 1
        at += flat.size
    return (np.concatenate(perms).astype(np.int64), np.concatenate(tokens).astype(np.int64),
            np.concatenate(starts).astype(np.int64), spans)


def _blocks(n):
    return max(1, (n + sizes.ENGINE_THREADS - 1) // sizes.ENGINE_THREADS)


def _zeros(shape, dtype):
    a = cuda.device_array(shape, dtype=dtype)
    launch(gk.zero2, _blocks(a.size), sizes.ENGINE_THREADS)(a)
    return a


def _device_plan(drop, table):
    """The CPU's dropout plan, limited to what the GPU engine draws: per-sequence input
    and recurrent masks per layer. Per-step input masks and dropout on the head's
    input (the plans of numlstm.keras' Dropout layers, which train on the CPU) are
    refused with a ValueError."""
    plan = dropout_plan(drop, table)
    if (plan[:, PER_STEP] > 0).any() or plan[-1, RATE] > 0:
        raise ValueError("the GPU engine draws one dropout mask per sequence on each layer's inputs and states; "
                         "this plan also has per-step input masks or dropout on the head's input (Keras Dropout "
                         "layers). Train it on the CPU (device='cpu').")
    return plan


class LayerCache(NamedTuple):
    """What one recurrent row's forward pass leaves for its backward pass (device arrays)."""

    x: object  # the layer's input as it ran (dropped out, time-reversed for a reverse direction)
    first: object  # the kernels' saved gate values (see DeviceNetwork._layer_forward), None when predicting
    second: object
    hs: object  # the hidden states, (n, T, H), or (n, 1, H) when only the last step was kept
    zeros: object  # the zero initial state, (n, H)
    keep: object  # the step mask, or None
    hmask: object  # the recurrent dropout mask, or None
    imask: object  # the input dropout mask, or None


class DeviceNetwork:
    """A network's parameters on the GPU, and the forward pass through them.

    LSTM and GRU networks differ only in their layers' kernels
    (:mod:`numlstm.kernels.cuda`, :mod:`numlstm.kernels.gru_cuda`), chosen once
    per network in :meth:`_layer_forward` and :meth:`_layer_backward`.

    Dropout, token input (an embedding layer) and bidirectional layers follow
    :func:`numlstm.core.cpu_engine._network_forward` step for step: the dropout
    masks are the CPU's (:func:`numlstm.kernels.dropout.keep_scale`, the same
    seed, step and streams), so a batch gives the CPU's loss and gradient. A
    network without them runs exactly the kernels it always did: no mask is
    drawn, nothing is copied or reversed.
    """

    def __init__(self, net):
        self.net = net
        self.dtype = net.dtype
        self.gru = net.cell == "gru"
        self.D = net.directions
        self.tokens = net.vocabulary > 0
        self.params = cuda.to_device(net.params)
        self.ws = Workspace()  # the arrays of a batch, reused by the next one

    # --- views into the flat parameter buffers (device arrays) -------------------------------
    def _layer(self, buf, row):
        """``(W, U, b, block)`` of ``table`` row ``row`` (layer * directions + direction) in
        ``buf``; ``block`` is the row's ``W``, ``U`` and ``b`` as the rows of one (input +
        hidden + bias rows, G) array."""
        I, H, oW, oU, ob = (int(v) for v in self.net.table[row, :5])
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

    def _mask(self, n, units, seed, step, row0, row, kind, rate):
        """The dropout mask (n, units) of ``row``'s stream ``kind`` at ``step`` for batch rows
        ``row0, row0 + 1, ...``, or None at rate 0."""
        if rate <= 0:
            return None
        out = self.ws.get(f"{row}/mask{kind}", (n, units), self.dtype)
        launch(gk.dropout_mask, _blocks(out.size), sizes.ENGINE_THREADS)(np.int64(seed), np.int64(step),
                                                           np.int64(_dropout.stream(row, kind)), float(rate),
                                                           np.int64(row0), out)
        return out

    def _layer_forward(self, inp, W, U, b, zeros, keep=None, hmask=None, tag="", train=True, all_h=True):
        """One layer forward: ``(first, second, hs)``, ``first, second`` being ``zs, cs``
        for an LSTM, ``xs, gs`` for a GRU. Without ``train`` an LSTM layer may skip what
        only the backward pass reads (``first, second`` None) and, without ``all_h``, keep
        only the last step's states (``hs`` then (n, 1, H))."""
        if self.gru:
            return gru_cuda.layer_forward(inp, W, U, b, zeros, keep=keep, hmask=hmask)
        return kernels.layer_forward(inp, W, U, b, zeros, zeros, keep=keep, hmask=hmask, ws=self.ws, tag=tag,
                                     store=train, all_h=all_h)

    def _layer_backward(self, entry, W, U, dhs, block, need_dx, tag, dh_T=None):
        """One layer backward from its cache entry (see :meth:`forward`); weight gradients
        into ``block``; returns ``dx``. ``dhs`` None: the gradient enters as ``dh_T`` alone
        (an LSTM layer under the head)."""
        inp, first, second, hs, zeros, keep, hmask = (entry.x, entry.first, entry.second, entry.hs, entry.zeros,
                                                     entry.keep, entry.hmask)
        n, H = zeros.shape
        if self.gru:
            U_T = self.ws.get(tag + "U_T", (U.shape[1], U.shape[0]), self.dtype)
            launch(transpose_kernel, _blocks(U.size), sizes.ENGINE_THREADS)(U, U_T)
            dx, _, _, _ = gru_cuda.layer_backward(inp, W, U_T, zeros, first, second, hs, dhs,
                                                  _zeros((n, H), self.dtype), need_dx=need_dx, out=block, keep=keep,
                                                  hmask=hmask)
            return dx
        dh_carry = dh_T
        if dh_carry is None:
            dh_carry = self.ws.get(tag + "dh", (n, H), self.dtype)
            launch(gk.zero2, _blocks(dh_carry.size), sizes.ENGINE_THREADS)(dh_carry)
        dc_carry = self.ws.get(tag + "dc", (n, H), self.dtype)
        launch(gk.zero2, _blocks(dc_carry.size), sizes.ENGINE_THREADS)(dc_carry)
        dx, _, _, _ = kernels.layer_backward(inp, W, None, zeros, zeros, first, second, hs, dhs, dh_carry, dc_carry,
                                             need_dx=need_dx, out=block, keep=keep, hmask=hmask, U=U, ws=self.ws,
                                             tag=tag)
        return dx

    def forward(self, X, drop=None, seed=0, step=0, row0=0, train=True):
        """Head outputs (device) and the pass's cache: ``(out, cache, top, last)``, ``cache``
        one :class:`LayerCache` per ``table`` row, ``top`` the top layer's output and ``last`` the head's input (``top``
        itself for one direction, whose head reads its last step). ``X`` (device) is
        (n, T, features) float, or (n, T) token ids for a network with an embedding.
        Without ``train`` (prediction), the layers may skip what only a backward pass reads,
        and the arrays returned are those of the next call too."""
        n, T = X.shape[0], X.shape[1]
        drop = _device_plan(drop, self.net.table)
        keep = keep_rev = None
        inp = X
        if self.tokens:
            E, oE = int(self.net.head[EMBED_DIM]), int(self.net.head[EMBED_OFFSET])
            inp = self.ws.get("embedded", (n, T, E), self.dtype)
            launch(gk.embed, _blocks(inp.size), sizes.ENGINE_THREADS)(self.params, oE, X, inp)
            keep = self.ws.get("keep", (n, T), np.int8)
            launch(gk.keep_of, _blocks(keep.size), sizes.ENGINE_THREADS)(X, keep)
            if self.D == 2:
                keep_rev = self.ws.get("keep-reversed", (n, T), np.int8)
                launch(gk.reverse_steps, _blocks(keep.size), sizes.ENGINE_THREADS)(keep, keep_rev)
        cache = []
        for layer in range(len(self.net.hidden_sizes)):
            states = []
            for d in range(self.D):
                row = layer * self.D + d
                W, U, b, _ = self._layer(self.params, row)
                imask = self._mask(n, W.shape[0], seed, step, row0, row, _dropout.INPUT_MASK, drop[row, RATE])
                x = inp
                if imask is not None or d == 1:
                    x = self.ws.get(f"{row}/x", inp.shape, self.dtype)
                    launch(gk.layer_input, _blocks(x.size), sizes.ENGINE_THREADS)(
                        inp, empty_device(self.dtype) if imask is None else imask, d == 1, x)
                hmask = self._mask(n, U.shape[0], seed, step, row0, row, _dropout.STATE_MASK,
                                   drop[row, RECURRENT_RATE])
                zeros = self.ws.get("zeros", (n, U.shape[0]), self.dtype, zero=True)  # only ever read
                k = keep if d == 0 else keep_rev
                top = layer == len(self.net.hidden_sizes) - 1 and self.D == 1
                first, second, hs = self._layer_forward(x, W, U, b, zeros, keep=k, hmask=hmask, tag=f"{row}/",
                                                        train=train, all_h=train or not top)
                cache.append(LayerCache(x, first, second, hs, zeros, k, hmask, imask))
                states.append(hs)
            if self.D == 1:
                inp = states[0]
            else:
                fwd, rev = states
                inp = self.ws.get(f"{layer}/both", (n, T, 2 * fwd.shape[2]), self.dtype)
                launch(gk.concat_directions, _blocks(inp.size), sizes.ENGINE_THREADS)(fwd, rev, inp)
        last = inp
        if self.D == 2:
            last = self.ws.get("last", (n, 1, inp.shape[2]), self.dtype)
            launch(gk.top_features, _blocks(last.size), sizes.ENGINE_THREADS)(inp, last)
        Wd, bd = self._head(self.params)
        out = self.ws.get("out", (n, Wd.shape[1]), self.dtype)
        launch(gk.head_forward, _blocks(out.size), sizes.ENGINE_THREADS)(last, Wd, bd, out)
        return out, cache, inp, last

    def predict(self, X, rows=4096, drop=None, seed=0, step=0, row0=0):
        """Head outputs for the host array ``X``, ``rows`` at a time (a host array). With
        ``drop``, dropout stays on (Monte-Carlo dropout), row ``i`` drawing the masks of
        row ``row0 + i`` at ``step``, as the CPU's ``_predict_rows``."""
        out = np.empty((X.shape[0], self.net.output_size), dtype=self.dtype)
        for start in range(0, X.shape[0], rows):
            stop = min(X.shape[0], start + rows)
            pred = self.forward(cuda.to_device(np.ascontiguousarray(X[start:stop])), drop, seed, step,
                                row0 + start, train=False)[0]
            out[start:stop] = pred.copy_to_host()
        return out


class Trainer(DeviceNetwork):
    """A network's parameters and a data set on the GPU, and the epoch loop over them.

    With ``drop`` (``(dropout, recurrent_dropout)``) each batch draws its masks
    from ``seed`` and the update step, as the CPU's ``_train_epoch``. For token
    input, the embedding gradient is a sum per (token, unit) without atomics:
    the host groups each batch's (row, step) positions by token once per epoch
    (a stable sort of the batch's ids, so within a token they stay in row, then
    step order, the CPU's order of summation: the same bits as the CPU's sum),
    and one thread per (token in the batch, embedding unit) adds its positions.
    """

    def __init__(self, net, X, Y, M, batch_size, loss_id, lparams, optimizer, clipnorm, drop=None, seed=0,
                 client=None):
        super().__init__(net)
        self.drop = _device_plan(drop, net.table)
        self.seed = int(seed)
        self.grads = cuda.device_array_like(net.params)
        self.state = cuda.to_device(np.zeros((2, net.n_params), dtype=net.dtype))
        self.X, self.Y, self.M = (cuda.to_device(np.ascontiguousarray(a)) for a in (X, Y, M))
        self.X_host = np.ascontiguousarray(X) if self.tokens else None
        self.batch_size = min(batch_size, X.shape[0])
        self.loss_id = loss_id
        self.lparams = cuda.to_device(np.asarray(lparams, dtype=np.float64))
        self.kind = optimizer.kind
        self.hp = optimizer.hyperparams()
        self.d_hp = cuda.to_device(self.hp)
        self.clipnorm = float(clipnorm or 0.0)
        self.flag = cuda.to_device(np.array([-1], dtype=np.int64))
        self.scale = cuda.device_array(1, dtype=np.float64)
        self.parts = cuda.device_array(sizes.NORM_BLOCKS * sizes.ENGINE_THREADS, dtype=np.float64)
        self.step = 0

    def _token_groups(self, batches):
        """:func:`token_groups` of host batches, its arrays on the device."""
        perm, tokens, starts, spans = token_groups(batches)
        return cuda.to_device(perm), cuda.to_device(tokens), cuda.to_device(starts), spans

    def _embedding_grad(self, dX, groups, bi):
        """The embedding rows of ``self.grads``: zero, then each of batch ``bi``'s tokens'
        sum of ``dX`` (see :func:`numlstm.core.gpu_kernels.embedding_grad`)."""
        perm, tokens, starts, spans = groups
        begin, count = spans[bi]
        V, E, oE = (int(self.net.head[k]) for k in (VOCABULARY, EMBED_DIM, EMBED_OFFSET))
        launch(gk.zero1, _blocks(V * E), sizes.ENGINE_THREADS)(self.grads, oE, oE + V * E)
        launch(gk.embedding_grad, _blocks(count * E), sizes.ENGINE_THREADS)(dX, perm, tokens, starts, begin, count,
                                                                             self.grads, oE)

    def _batch(self, X, Y, M, losses, slot, groups=None, bi=0):
        """One batch: forward, loss, backward, clipping, update. For token input,
        ``groups`` (of :meth:`_token_groups`) and the batch's index ``bi`` in it; made
        from ``X`` when None."""
        pred, cache, top, last = self.forward(X, self.drop, self.seed, self.step)
        n = X.shape[0]
        dpred = self.ws.get("dpred", pred.shape, np.float64)
        launch(gk.loss, 1, 1)(self.loss_id, self.lparams, pred, Y, M, dpred, losses, slot, self.flag)
        Wd, _ = self._head(self.params)
        dWd, dbd = self._head(self.grads)
        dh_T = None
        if self.D == 1 and not self.gru:  # the head's gradient enters the top layer as dh_T
            dh_T = self.ws.get(f"{len(self.net.hidden_sizes) - 1}/dh", (n, Wd.shape[0]), self.dtype)
            launch(gk.head_backward_last, _blocks(max(Wd.size, dh_T.size)), sizes.ENGINE_THREADS)(
                last, Wd, dpred, dWd, dbd, dh_T)
            dout = None
        else:
            dlast = self.ws.get("dlast", last.shape, self.dtype)
            launch(gk.head_backward, _blocks(max(Wd.size, last.size)), sizes.ENGINE_THREADS)(
                last, Wd, dpred, dWd, dbd, dlast)
            dout = dlast
        if self.D == 2:
            dout = self.ws.get("dtop", top.shape, self.dtype)
            launch(gk.spread_top, _blocks(top.size), sizes.ENGINE_THREADS)(dlast, dout)
        for layer in range(len(self.net.hidden_sizes) - 1, -1, -1):
            want_dx = layer > 0 or self.tokens
            dinp = None
            for d in range(self.D):
                row = layer * self.D + d
                entry = cache[row]
                W, U, _, _ = self._layer(self.params, row)
                _, _, _, block = self._layer(self.grads, row)
                dh = dout
                if self.D == 2:
                    dh = self.ws.get(f"{row}/dhs", (n, dout.shape[1], U.shape[0]), self.dtype)
                    launch(gk.direction_grad, _blocks(dh.size), sizes.ENGINE_THREADS)(dout, d, dh)
                dx = self._layer_backward(entry, W, U, dh, block, want_dx, f"{row}/",
                                          dh_T if dout is None else None)
                if not want_dx:
                    continue
                imask = entry.imask
                if self.D == 1 and imask is None:
                    dinp = dx
                    continue
                if dinp is None:
                    dinp = self.ws.get(f"{layer}/dinp", dx.shape, self.dtype)
                launch(gk.add_input_grad, _blocks(dx.size), sizes.ENGINE_THREADS)(
                    dinp, dx, empty_device(self.dtype) if imask is None else imask, d == 1, d == 0)
            dout = dinp
        if self.tokens:
            if groups is None:
                groups, bi = self._token_groups([X.copy_to_host()]), 0
            self._embedding_grad(dout, groups, bi)
        launch(gk.sum_squares, sizes.NORM_BLOCKS, sizes.ENGINE_THREADS)(self.grads, self.parts)
        launch(gk.check_and_scale, 1, 1)(self.parts, losses, slot, self.clipnorm, self.flag, self.scale)
        alpha = step_size(self.kind, self.step + 1, self.hp)
        launch(gk.update, _blocks(self.net.n_params), sizes.ENGINE_THREADS)(
            self.kind, self.params, self.grads, self.state, alpha, self.d_hp, self.flag, self.scale)
        self.step += 1

    def epoch(self, order, batch_losses):
        """All batches in ``order``; returns the first failed batch or -1, and fills ``batch_losses``."""
        n = order.shape[0]
        d_order = cuda.to_device(order.astype(np.int64))
        losses = cuda.to_device(np.zeros(len(batch_losses)))
        starts = range(0, n, self.batch_size)
        groups = None
        if self.tokens:
            groups = self._token_groups([self.X_host[order[s:s + self.batch_size]] for s in starts])
        start_step = self.step
        for bi, start in enumerate(starts):
            size = min(self.batch_size, n - start)
            batch = []
            for name, src in (("X", self.X), ("Y", self.Y), ("M", self.M)):
                out = self.ws.get("batch-" + name, (size,) + src.shape[1:], src.dtype)
                gather = gk.gather3 if src.ndim == 3 else gk.gather2
                launch(gather, _blocks(out.size), sizes.ENGINE_THREADS)(src, d_order, start, out)
                batch.append(out)
            self._batch(*batch, losses, bi, groups, bi)
        failed = int(self.flag.copy_to_host()[0])
        batch_losses[:] = losses.copy_to_host()
        if failed >= 0:
            self.step = start_step + failed
        return failed

    def dataset_loss(self, X, Y, M):
        """Mean loss over a whole (validation) set (dropout off); the set is copied to the
        GPU once and only the loss comes back."""
        if getattr(self, "_held", None) is None or self._held[0] is not X:
            self._held = (X, *(cuda.to_device(np.ascontiguousarray(a)) for a in (X, Y, M)))
        _, d_X, d_Y, d_M = self._held
        pred = self.forward(d_X, train=False)[0]
        dpred = cuda.device_array(pred.shape, dtype=np.float64)
        loss = cuda.device_array(1, dtype=np.float64)
        no_failure = cuda.to_device(np.array([-1]))
        launch(gk.loss, 1, 1)(self.loss_id, self.lparams, pred, d_Y, d_M, dpred, loss, 0, no_failure)
        return float(loss.copy_to_host()[0])

    def get_params(self):
        return self.params.copy_to_host()

    def set_params(self, params):
        self.params.copy_to_device(np.ascontiguousarray(params, dtype=self.dtype))

    def get_optimizer_state(self):
        """The optimizer's (2, n_params) moments on the host, and the update count."""
        return self.state.copy_to_host(), self.step

    def set_optimizer_state(self, state, step):
        self.state.copy_to_device(np.ascontiguousarray(state, dtype=self.dtype))
        self.step = int(step)

    def close(self):
        """Nothing to release now: the device arrays go with the trainer."""


def predict(net, X, drop=None, seed=0, step=0, row0=0):
    """Raw head outputs for ``X`` on the GPU (with ``drop``, Monte-Carlo dropout: masks
    drawn from ``seed`` and ``step`` as on the CPU)."""
    return DeviceNetwork(net).predict(X, drop=drop, seed=seed, step=step, row0=row0)


# One GPU: data, weights and optimizer state on it. Its dropout is one mask per
# sequence on each layer's inputs and states (see _device_plan); L-BFGS runs in
# scipy on the host, and per-series models are many tiny fits, a CPU's work.
ENGINE = Engine("cuda", "the GPU", dropout=True, dropout_plans=False, lbfgs=False, tokens=True, checkpoint=True,
                per_series=False, trainer=Trainer, predict=predict)
