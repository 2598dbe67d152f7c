"""Exponential smoothing with additive errors: the filter's sum of squared errors over a grid
of smoothing parameters, and its forecasts from chosen origins.

The state is a level ``l``, a damped trend ``b`` and a season ``s`` of ``m`` steps (``m`` = 1
and ``s`` = 0 without a season; ``b`` = 0 and ``phi`` = 0 without a trend). At step ``t``
the one-step forecast is ``l + phi*b + s[t % m]``; with its error ``e`` (0 where the
observation is missing, so the state runs on as forecast)::

    l <- l + phi*b + alpha*e
    b <- phi*b + beta*e
    s[t % m] <- s[t % m] + gamma*e

and from an origin ``t`` the forecast ``h`` steps ahead is
``l + (phi + ... + phi**h)*b + s[(t + h) % m]`` (Hyndman and Athanasopoulos,
*Forecasting: Principles and Practice*, 3rd ed., section 8.7, models ETS(A,Ad,A) and
its special cases). Float64 throughout.
"""

import numpy as np
from numba.extending import register_jitable

from numlstm.kernels._jit import CPU_OPTIONS, njit

# The grid's columns.
ALPHA, BETA, PHI, GAMMA = 0, 1, 2, 3


@register_jitable
def _step(value, level, trend, s, j, alpha, beta, phi, gamma):
    """One step of the filter (the recursions above) on observation ``value`` (NaN: missing),
    updating ``s[j]`` in place; the new level and trend and the one-step error (0 if missing)."""
    e = 0.0
    if not np.isnan(value):
        e = value - (level + phi * trend + s[j])
    s[j] += gamma * e
    return level + phi * trend + alpha * e, phi * trend + beta * e, e


@njit(**CPU_OPTIONS)
def grid_sse(y, m, start, grid, l0, b0, s0, sse):
    """Run the filter over ``y`` (T,) once per row of ``grid`` (G, 4: alpha, beta, phi,
    gamma) from the initial state ``l0``, ``b0``, ``s0`` (m,); write to ``sse`` (G,) the sum
    of squared one-step errors from step ``start`` on, and return how many observations
    it counted."""
    n_time = y.shape[0]
    n = 0
    for t in range(start, n_time):
        if not np.isnan(y[t]):
            n += 1
    s = np.empty(m)
    for g in range(grid.shape[0]):
        alpha, beta, phi, gamma = grid[g, ALPHA], grid[g, BETA], grid[g, PHI], grid[g, GAMMA]
        level, trend = l0, b0
        for j in range(m):
            s[j] = s0[j]
        total = 0.0
        for t in range(n_time):
            level, trend, e = _step(y[t], level, trend, s, t % m, alpha, beta, phi, gamma)
            if t >= start:
                total += e * e  # 0 where y[t] is missing
        sse[g] = total
    return n


@njit(**CPU_OPTIONS)
def forecasts(y, m, params, l0, b0, s0, origins, out):
    """The filter with ``params`` (4,: alpha, beta, phi, gamma) over ``y`` (T,) from the initial
    state ``l0``, ``b0``, ``s0`` (m,); into row ``i`` of ``out`` (n, horizon) the forecast from
    origin ``origins[i]`` (ascending steps of ``y``: the last step the filter has read)."""
    alpha, beta, phi, gamma = params[ALPHA], params[BETA], params[PHI], params[GAMMA]
    horizon = out.shape[1]
    s = np.empty(m)
    for j in range(m):
        s[j] = s0[j]
    level, trend = l0, b0
    i = 0
    n_origins = origins.shape[0]
    for t in range(y.shape[0]):
        if i >= n_origins:
            break
        level, trend, _ = _step(y[t], level, trend, s, t % m, alpha, beta, phi, gamma)
        while i < n_origins and origins[i] == t:
            damped = 0.0
            power = 1.0
            for h in range(horizon):
                power *= phi
                damped += power
                out[i, h] = level + damped * trend + s[(t + h + 1) % m]
            i += 1
