"""Losses with masks: NaN targets are masked out of the mean.

Every loss returns its mean over the unmasked targets and writes the gradient
with respect to the network's raw outputs. Classification losses work on
logits (the sigmoid/softmax is folded in, which is exact and stable).
"""

import math

import numpy as np
from numba.extending import register_jitable

from numlstm.kernels._jit import njit

MSE, MAE, HUBER, BINARY_CE, CATEGORICAL_CE, PINBALL, GAUSSIAN_NLL = range(7)

NAMES = {
    "mse": MSE,
    "mae": MAE,
    "huber": HUBER,
    "binary_crossentropy": BINARY_CE,
    "categorical_crossentropy": CATEGORICAL_CE,
    "pinball": PINBALL,
    "gaussian_nll": GAUSSIAN_NLL,
}


class Huber:
    """Huber loss, quadratic within ``delta`` of the target and linear beyond (Keras default delta=1)."""

    name = "huber"

    def __init__(self, delta=1.0):
        self.delta = delta

    def params(self):
        return np.array([self.delta], dtype=np.float64)

    def __repr__(self):
        return f"Huber(delta={self.delta!r})"


class Pinball:
    """Pinball (quantile) loss; the network emits one output per target and quantile."""

    name = "pinball"

    def __init__(self, quantiles=(0.1, 0.5, 0.9)):
        self.quantiles = tuple(quantiles)

    def params(self):
        return np.asarray(self.quantiles, dtype=np.float64)

    def __repr__(self):
        return f"Pinball(quantiles={self.quantiles!r})"


def outputs_per_target(loss_id, n_params):
    """How many network outputs each target needs."""
    if loss_id == PINBALL:
        return n_params
    if loss_id == GAUSSIAN_NLL:
        return 2
    return 1


@register_jitable
def loss_and_grad_impl(loss_id, lparams, pred, Y, M, dpred):
    """Mean loss over unmasked targets; writes d(loss)/d(pred) into ``dpred``.

    ``pred`` (n, P) raw outputs, ``Y`` (n, O) targets, ``M`` (n, O) 1 where the
    target counts, 0 where it is masked. Layout of ``pred`` by loss: one column
    per target (mse, mae, huber, binary); one per class (categorical, ``Y``
    one-hot); ``[target][quantile]`` (pinball); means then log-variances
    (gaussian_nll).
    """
    n, O = Y.shape
    for r in range(n):
        for k in range(dpred.shape[1]):
            dpred[r, k] = 0.0
    count = 0.0
    for r in range(n):
        for o in range(O):
            count += M[r, o]
    if loss_id == CATEGORICAL_CE:
        count = 0.0
        for r in range(n):
            count += M[r, 0]
    if count == 0.0:
        return 0.0
    total = 0.0
    if loss_id == CATEGORICAL_CE:
        K = pred.shape[1]
        for r in range(n):
            if M[r, 0] == 0:
                continue
            top = pred[r, 0]
            for k in range(K):
                top = top if top >= pred[r, k] else pred[r, k]  # no max(): this also runs on a GPU
            s = 0.0
            for k in range(K):
                s += math.exp(pred[r, k] - top)
            log_s = math.log(s) + top
            for k in range(K):
                total += Y[r, k] * (log_s - pred[r, k])
                dpred[r, k] = (math.exp(pred[r, k] - log_s) - Y[r, k]) / count
        return total / count
    if loss_id == PINBALL:
        Q = lparams.shape[0]
        for r in range(n):
            for o in range(O):
                if M[r, o] == 0:
                    continue
                for q in range(Q):
                    tau = lparams[q]
                    e = Y[r, o] - pred[r, o * Q + q]
                    if e >= 0:
                        total += tau * e
                        dpred[r, o * Q + q] = -tau / (count * Q)
                    else:
                        total += (tau - 1.0) * e
                        dpred[r, o * Q + q] = (1.0 - tau) / (count * Q)
        return total / (count * Q)
    for r in range(n):
        for o in range(O):
            if M[r, o] == 0:
                continue
            y = Y[r, o]
            if loss_id == GAUSSIAN_NLL:
                mu = pred[r, o]
                s = pred[r, O + o]
                e = y - mu
                w = math.exp(-s)
                total += 0.5 * (s + e * e * w)
                dpred[r, o] = -e * w / count
                dpred[r, O + o] = 0.5 * (1.0 - e * e * w) / count
                continue
            p = pred[r, o]
            e = p - y
            if loss_id == MSE:
                total += e * e
                dpred[r, o] = 2.0 * e / count
            elif loss_id == MAE:
                total += abs(e)
                dpred[r, o] = (1.0 if e > 0 else (-1.0 if e < 0 else 0.0)) / count
            elif loss_id == HUBER:
                delta = lparams[0]
                if abs(e) <= delta:
                    total += 0.5 * e * e
                    dpred[r, o] = e / count
                else:
                    total += delta * (abs(e) - 0.5 * delta)
                    dpred[r, o] = delta * (1.0 if e > 0 else -1.0) / count
            else:  # binary cross-entropy on a logit: softplus(p) - y p
                total += (p if p > 0.0 else 0.0) - p * y + math.log1p(math.exp(-abs(p)))
                dpred[r, o] = (1.0 / (1.0 + math.exp(-p)) - y) / count
    return total / count


# The CPU entry point; the CUDA trainer runs loss_and_grad_impl in a kernel.
loss_and_grad = njit(error_model="numpy", nogil=True)(loss_and_grad_impl)
