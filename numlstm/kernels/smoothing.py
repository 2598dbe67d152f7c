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


@njit(**CPU_OPTIONS)
def error_shifts(y, m, params, l0, b0, s0, first, queries, out):
    """The filter with ``params`` (4,) over ``y`` (T,) from the initial state ``l0``, ``b0``,
    ``s0`` (m,); into row ``i`` of ``out`` (q, horizon), per lead ``h`` the median less the mean
    of the errors ``y[s + h + 1] - forecast`` of its forecasts from the origins ``s >= first``
    whose outcome is observed by step ``queries[i]`` (ascending): ``s + h + 1 <= queries[i]``;
    0 where none is. For a few queries each median is a selection over the known errors; for
    many, each lead's errors are ranked once and counted into a Fenwick tree as they become
    known, so the median of every prefix costs a logarithm."""
    n_time = y.shape[0]
    horizon = out.shape[1]
    n_queries = queries.shape[0]
    for i in range(n_queries):
        for h in range(horizon):
            out[i, h] = 0.0
    last = n_time - 2  # the last origin with an outcome in the record
    if n_queries > 0 and queries[n_queries - 1] - 1 < last:
        last = queries[n_queries - 1] - 1  # no query knows a later origin's outcome
    if n_queries == 0 or last < first:
        return
    n = last - first + 1
    # every origin's errors, per lead in the order they become known (origin s at s + h + 1)
    errors = np.empty((horizon, n))
    at = np.empty((horizon, n), dtype=np.int64)
    sizes = np.zeros(horizon, dtype=np.int64)
    alpha, beta, phi, gamma = params[ALPHA], params[BETA], params[PHI], params[GAMMA]
    s = np.empty(m)
    for j in range(m):
        s[j] = s0[j]
    level, trend = l0, b0
    for t in range(last + 1):
        level, trend, _ = _step(y[t], level, trend, s, t % m, alpha, beta, phi, gamma)
        if t < first:
            continue
        damped = 0.0
        power = 1.0
        for h in range(horizon):
            power *= phi
            damped += power
            target = t + h + 1
            if target < n_time and np.isfinite(y[target]):
                k = sizes[h]
                errors[h, k] = y[target] - (level + damped * trend + s[(t + h + 1) % m])
                at[h, k] = target
                sizes[h] = k + 1
    few = 1
    while (1 << few) <= n:
        few += 1  # about log2(n): up to this many queries, a selection each is cheaper than ranking
    rank = np.empty(n, dtype=np.int64)
    tree = np.zeros(n + 1, dtype=np.int64)
    for h in range(horizon):
        size = sizes[h]
        values = errors[h, :size]
        ready = at[h, :size]
        if n_queries <= few:
            for i in range(n_queries):
                known = np.searchsorted(ready, queries[i], side="right")  # a prefix: ready ascends
                if known > 0:
                    out[i, h] = np.median(values[:known]) - np.mean(values[:known])
            continue
        order = np.argsort(values)
        for r in range(size):
            rank[order[r]] = r + 1
        for r in range(size + 1):
            tree[r] = 0
        top = 1
        while 2 * top <= size:
            top *= 2
        known = 0
        total = 0.0
        for i in range(n_queries):
            while known < size and ready[known] <= queries[i]:
                r = rank[known]
                while r <= size:
                    tree[r] += 1
                    r += r & -r
                total += values[known]
                known += 1
            if known == 0:
                continue
            middle = 0.0
            for k in ((known + 1) // 2, known // 2 + 1):  # the middle one, or the middle two
                pos, rest, step = 0, k, top
                while step > 0:
                    if pos + step <= size and tree[pos + step] < rest:
                        pos += step
                        rest -= tree[pos]
                    step //= 2
                middle += values[order[pos]]
            out[i, h] = middle / 2 - total / known
