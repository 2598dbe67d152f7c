"""Optimizers on the flat parameter vector.

Adam and SGD follow Keras 3's update rules and defaults exactly; L-BFGS is
scipy's, run full-batch by :mod:`numlstm.core.training`.
"""

import math

import numpy as np
from numba.extending import register_jitable

from numlstm._validation import check_number, check_positive_int
from numlstm.kernels._jit import njit
from numlstm.kernels.gates import inline_on_cpu

KIND_ADAM, KIND_SGD, KIND_LBFGS = range(3)


class Adam:
    """Adam with Keras defaults (``beta_1=0.9, beta_2=0.999, epsilon=1e-7``)."""

    kind = KIND_ADAM

    def __init__(self, learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
        self.learning_rate = check_number(learning_rate, "learning_rate", low=0, low_open=True)
        self.beta_1 = check_number(beta_1, "beta_1", low=0, high=1, high_open=True)
        self.beta_2 = check_number(beta_2, "beta_2", low=0, high=1, high_open=True)
        self.epsilon = check_number(epsilon, "epsilon", low=0, low_open=True)

    def hyperparams(self):
        return np.array([self.learning_rate, self.beta_1, self.beta_2, self.epsilon])

    def __repr__(self):
        return f"Adam(learning_rate={self.learning_rate}, beta_1={self.beta_1}, beta_2={self.beta_2}, epsilon={self.epsilon})"


class SGD:
    """Stochastic gradient descent with optional (Nesterov) momentum, as Keras."""

    kind = KIND_SGD

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False):
        self.learning_rate = check_number(learning_rate, "learning_rate", low=0, low_open=True)
        self.momentum = check_number(momentum, "momentum", low=0, high=1, high_open=True)
        self.nesterov = bool(nesterov)

    def hyperparams(self):
        return np.array([self.learning_rate, self.momentum, float(self.nesterov), 0.0])

    def __repr__(self):
        return f"SGD(learning_rate={self.learning_rate}, momentum={self.momentum}, nesterov={self.nesterov})"


class LBFGS:
    """Full-batch L-BFGS through ``scipy.optimize.minimize``; one epoch is one iteration."""

    kind = KIND_LBFGS

    def __init__(self, memory=10, tol=1e-9):
        self.memory = check_positive_int(memory, "memory")
        self.tol = check_number(tol, "tol", low=0)

    def hyperparams(self):
        return np.zeros(4)

    def __repr__(self):
        return f"LBFGS(memory={self.memory}, tol={self.tol})"


def make_optimizer(optimizer, learning_rate):
    """An optimizer object from a name (``"adam"``, ``"sgd"``, ``"lbfgs"``) or an instance."""
    if isinstance(optimizer, (Adam, SGD, LBFGS)):
        return optimizer
    if isinstance(optimizer, str):
        name = optimizer.lower()
        if name == "adam":
            return Adam(learning_rate=learning_rate)
        if name == "sgd":
            return SGD(learning_rate=learning_rate)
        if name in ("lbfgs", "l-bfgs", "l-bfgs-b"):
            return LBFGS()
    raise ValueError(
        f"optimizer must be 'adam', 'sgd', 'lbfgs' or an instance of numlstm.optimizers.Adam/SGD/LBFGS, "
        f"got {optimizer!r}."
    )


@register_jitable
def step_size(kind, step, hp):
    """The step's learning rate: Adam's includes its bias corrections."""
    if kind == KIND_ADAM:
        lr, b1, b2 = hp[0], hp[1], hp[2]
        return lr * math.sqrt(1.0 - b2 ** step) / (1.0 - b1 ** step)
    return hp[0]


@inline_on_cpu
def update_one(kind, params, state, i, g, alpha, hp):
    """Update parameter ``i`` with gradient ``g``: the rule shared by the CPU loop
    and the CUDA kernel (one thread per parameter)."""
    if kind == KIND_ADAM:
        b1, b2, eps = hp[1], hp[2], hp[3]
        state[0, i] += (g - state[0, i]) * (1.0 - b1)
        state[1, i] += (g * g - state[1, i]) * (1.0 - b2)
        params[i] -= alpha * state[0, i] / (math.sqrt(state[1, i]) + eps)
    elif kind == KIND_SGD:
        momentum, nesterov = hp[1], hp[2]
        if momentum == 0.0:
            params[i] -= alpha * g
        else:
            state[0, i] = momentum * state[0, i] - alpha * g
            if nesterov != 0.0:
                params[i] += momentum * state[0, i] - alpha * g
            else:
                params[i] += state[0, i]


@njit(error_model="numpy", nogil=True)
def apply_update(kind, params, grads, state, step, hp):
    """One step of ``kind`` in place; ``step`` counts from 1; ``state`` is (2, P)."""
    alpha = step_size(kind, step, hp)
    for i in range(params.shape[0]):
        update_one(kind, params, state, i, grads[i], alpha, hp)
