"""The Forecaster's local exponential-smoothing member.

Each series (and target) gets an exponential-smoothing model of its own: additive
errors, a trend that is none or damped, a season that is none or additive (of the
model's ``season_``). The form and its smoothing parameters are chosen at fit on the
series' record, by the smallest corrected Akaike criterion (AICc) over a fixed grid,
each form's initial state read from the record's first observations (Hyndman and
Athanasopoulos, *Forecasting: Principles and Practice*, 3rd ed., chapter 8). A series
whose observed values are all above 0 is fitted on its logarithm too (:func:`choose_pair`);
that form replaces its own only where it leads on the fit's validation windows
(:func:`prefer_log`). At
forecast time its filter runs over the whole record given, from its first
observation to the origin, so the member reads more than the network's lookback: the
level, trend and season it carries are estimated from every step. The filter's
parameters are chosen by squared errors, so it forecasts a mean; where the Forecaster's
point forecast is a median (the network trained on the absolute error, the default, or
on quantiles) each lead's forecast moves by the median less the mean of the filter's
errors at that lead over the record known at the origin (``forecast``'s ``median``;
:func:`median_shifts`), which on a skewed series (rain, counts, discharge) is far
from 0 and on a symmetric one near it.

With ``Forecaster(smoothing="auto")`` (the default since 2026-12-07, for models without
covariates) the point forecast is the weighted mean of the pipeline's (baseline, linear stage
and network) and this member's, the member's weight per series and target ``WEIGHT`` (a half),
or 0 or 1 where the pipeline or the member alone had a clearly lower error on the fit's
validation windows (:func:`weigh`); a quantile band or a set of Monte-Carlo
samples moves with its centre. A series' member is dropped at fit where its forecasts
from the fit's validation windows had a higher mean absolute error than the naive
baseline chosen for the series (:func:`screen`; a new series: on the last fifth of its own
history). Without the screen the member had failed a held-out check and was an option.
The two fail on different series: the network reads a short window and learns across
series, the member a long record of one (see ``docs/how-it-works.md``).

Parameters are stored per (series, target) as the ``PARAMS`` columns: the form (see
``FORMS``), alpha, beta, phi, gamma and the member's weight in the mix; NaN everywhere for
a series with too few observations to choose (no member: the pipeline alone forecasts it).

Details, as measured on the skill benchmark (``benchmarks/skill.py``): the AICc counts
alpha and the initial level, beta and the initial trend, gamma and the ``m`` initial
seasonal values (phi, one of three grid values, is not counted); a form with a trend
starts its level at the first steps' regression line at step 0. The initial state is
read from the record's first season or two (ten steps without a season), so the member
forecasts only from origins after that stretch (before, NaN: a forecast never reads a
step after its origin).
"""

from __future__ import annotations

import numpy as np

from numlstm.kernels import smoothing as _kernels

WEIGHT = 0.5  # the member's weight in the mix unless the validation windows clearly prefer another
CHOICES = (WEIGHT, 0.0, 1.0)  # the weights weigh() chooses from, the default first (it wins ties)
MARGIN = 0.9  # another weight only where its validation error is at most this times WEIGHT's
PARAMS = ("form", "alpha", "beta", "phi", "gamma", "weight")
FORMS = ("level", "level and season", "damped trend", "damped trend and season")
LOG = len(FORMS)  # a form's code plus this: the same form on the series' logarithm (see choose_one's log)

# The grid: alpha; beta and gamma as shares of what keeps the model stable (beta of alpha,
# gamma of 1 - alpha); phi damps the trend.
_ALPHA = np.array([0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.99])
_BETA_SHARE = np.array([0.02, 0.1, 0.3])
_PHI = np.array([0.8, 0.9, 0.98])
_GAMMA_SHARE = np.array([0.02, 0.1, 0.3])
_LEVEL_STEPS = 10  # a form without a season starts its level (and trend) from this many first steps


def _form(trend, season):
    return 2 * int(trend) + int(season)


def _grid(trend, season):
    """(G, 4) rows of (alpha, beta, phi, gamma) for a form."""
    rows = [(a, a * b, p, (1 - a) * g)
            for a in _ALPHA
            for b in (_BETA_SHARE if trend else [0.0])
            for p in (_PHI if trend else [0.0])
            for g in (_GAMMA_SHARE if season else [0.0])]
    return np.array(rows, dtype=np.float64)


def _initial(y, m, trend, season):
    """The initial level, trend and season (m,) of a form, from the start of ``y``
    (1-D, its first value observed), and how many first steps of ``y`` they read (a
    forecast from an earlier origin would read observations after it)."""
    if season:
        first, second = np.full(m, np.nan), y[m:2 * m]  # a record shorter than a season: the rest unknown
        first[:min(m, y.size)] = y[:m]
        level = float(np.nanmean(first))
        slope = 0.0
        if trend and np.isfinite(second).any():
            slope = (float(np.nanmean(second)) - level) / m
        s0 = np.where(np.isfinite(first), first - level, 0.0)
        return level, slope, s0 - s0.mean(), (2 * m if trend else m)
    head = y[:_LEVEL_STEPS]
    t = np.flatnonzero(np.isfinite(head))
    if trend and t.size >= 2:
        slope, intercept = np.polyfit(t.astype(np.float64), head[t], 1)
        return float(intercept), float(slope), np.zeros(1), _LEVEL_STEPS
    return (float(head[0]) if trend else float(head[t].mean())), 0.0, np.zeros(1), _LEVEL_STEPS


def _observed_part(y):
    """``y`` from its first observation on (float64, contiguous) and where that is; None if none is."""
    seen = np.flatnonzero(np.isfinite(y))
    if seen.size == 0:
        return None, 0
    return np.ascontiguousarray(y[seen[0]:], dtype=np.float64), int(seen[0])


def _best(y, season):
    """The ``PARAMS`` row (6,) of the form and grid point with the lowest AICc on ``y`` (1-D,
    its first value observed, NaN where missing), that AICc (inf if no form can be scored), and
    the first step the forms are scored from."""
    best, best_ic = np.full(len(PARAMS), np.nan), np.inf
    m = season or 1
    seasonal = m >= 2 and y.size >= 3 * m
    start = 2 * m if seasonal else 2  # every form is scored on the same steps
    for trend in (False, True):
        for has_season in ((False, True) if seasonal else (False,)):
            grid = _grid(trend, has_season)
            mm = m if has_season else 1
            level, slope, s0, _ = _initial(y, mm, trend, has_season)
            sse = np.empty(grid.shape[0])
            n = _kernels.grid_sse(y, mm, start, grid, level, slope, s0, sse)
            k = 2 + 2 * int(trend) + (m if has_season else 0)  # alpha and level, beta/phi/trend, gamma/season
            if n - k - 1 <= 0 or not np.isfinite(sse).any():
                continue
            g = int(np.nanargmin(sse))
            v = max(float(sse[g]), 1e-300)
            ic = n * np.log(v / n) + 2 * k + 2 * k * (k + 1) / (n - k - 1)
            if ic < best_ic:
                best_ic = ic
                best = np.concatenate([[_form(trend, has_season)], grid[g], [WEIGHT]])
    return best, best_ic, start


def _choose_pair(y, season, log=True):
    """The ``PARAMS`` rows (6,) chosen for one series ``y`` (1-D, NaN where missing) on its own
    scale and, with ``log``, on its logarithm (see :func:`choose_one`; NaN where no form on the
    logarithm wins)."""
    none = np.full(len(PARAMS), np.nan)
    y, _ = _observed_part(y)
    if y is None:
        return none, none
    best, ic, start = _best(y, season)
    if log and np.nanmin(y) > 0:
        z = np.log(y)
        on_log, ic_log, _ = _best(z, season)
        if ic_log + 2 * np.nansum(z[start:]) < ic:
            on_log[0] += LOG
            return best, on_log
    return best, none


def choose_one(y, season, log=False):
    """The ``PARAMS`` row (6,) chosen for one series ``y`` (1-D, NaN where missing), the
    weight ``WEIGHT``. With ``log``, a series whose observed values are all above 0 may
    take a form on their logarithm (its code plus ``LOG``) instead, where that form's AICc,
    counted on the series' own scale (plus twice the sum of the logarithms of the scored
    observations: the Jacobian of the transform), is lower."""
    best, on_log = _choose_pair(y, season, log)
    return on_log if np.isfinite(on_log[0]) else best


def form_name(code):
    """The name of a member's form from its code (``FORMS``, on the logarithm from ``LOG`` on)."""
    code = int(code)
    return FORMS[code % LOG] + (", on the logarithm" if code >= LOG else "")


def choose(values, season, log=False):
    """The members' ``PARAMS`` (S, k, 6) for targets ``values`` (S, T, k) in data units (with
    ``log``, forms on the logarithm too: see :func:`choose_one`)."""
    plain, on_log = choose_pair(values, season, log)
    return np.where(np.isfinite(on_log[..., :1]), on_log, plain)


def choose_pair(values, season, log=True):
    """The members chosen for targets ``values`` (S, T, k, data units) on their own scale and on
    their logarithm: two ``PARAMS`` arrays (S, k, 6), the second NaN except where a form on the
    logarithm had the lower AICc (see :func:`choose_one`; NaN everywhere without ``log``);
    :func:`prefer_log` picks between them."""
    n_series, _, n_targets = values.shape
    out = np.full((2, n_series, n_targets, len(PARAMS)), np.nan)
    for s in range(n_series):
        for j in range(n_targets):
            out[0, s, j], out[1, s, j] = _choose_pair(values[s, :, j], season, log)
    return out[0], out[1]


def forecast(values, params, season, series, origins, horizon, median=False):
    """The members' forecasts (n, horizon, k) in data units: row ``i`` from step
    ``origins[i]`` of series ``series[i]`` of ``values`` (S, T, k), its filter run from
    the series' first observation with ``params`` (S, k, 6). NaN where a series has no
    member, or where its initial state would read steps after the origin (origins within
    the first season or two, or the first ten steps, of its record). A form on the logarithm
    forecasts the exponential of its filter's forecast (the median, if its errors are symmetric).
    With ``median``, each lead's forecast moves by the median less the mean of the filter's
    errors at that lead over the record known at the origin (see :func:`median_shifts`)."""
    n_targets = values.shape[2]
    out = np.full((len(series), horizon, n_targets), np.nan)
    for s in np.unique(series):
        rows = np.flatnonzero(series == s)
        for j in range(n_targets):
            p = params[s, j]
            if np.isnan(p[0]):
                continue
            y, first = _observed_part(values[s, :, j])
            if y is None:
                continue
            form = int(p[0])
            logged, form = form >= LOG, form % LOG
            trend, has_season = bool(form // 2), bool(form % 2)
            if logged:  # a value at or below 0 (none was at fit) reads as missing
                y = np.log(np.where(y > 0, y, np.nan))
            mm = (season or 1) if has_season else 1
            level, slope, s0, steps = _initial(y, mm, trend, has_season)
            at = origins[rows] - first
            keep = at >= steps - 1
            order = np.argsort(at[keep], kind="stable")
            res = np.full((int(keep.sum()), horizon), np.nan)
            queries = np.ascontiguousarray(at[keep][order], dtype=np.int64)
            _kernels.forecasts(y, mm, np.ascontiguousarray(p[1:5]), level, slope, s0, queries, res)
            if median:
                res += median_shifts(y, mm, p, (level, slope, s0), steps, queries, horizon)
            out[rows[keep][order], :, j] = np.exp(res) if logged else res
    return out


def median_shifts(y, m, params, state, steps, queries, horizon):
    """Per origin of ``queries`` (ascending steps of ``y``, the observed part of a series on the
    scale its filter runs), the median less the mean of the filter's errors at each lead
    (q, horizon) over the forecasts from every origin of the record whose outcome is known by
    then (0 where none is). The filter's parameters are chosen by their squared errors, so it
    forecasts a mean; on a skewed series (rain, counts, discharge) the median lies elsewhere, and
    under the absolute error the median is the forecast to give. The mean is taken off so that
    only the skew moves it: a bias the filter had over the record (a trend it was slow to follow,
    a start read from the first season) is no guide to its bias now."""
    shifts = np.zeros((queries.size, horizon))
    _kernels.error_shifts(y, m, np.ascontiguousarray(params[1:5]), state[0], state[1], state[2], steps - 1,
                          queries, shifts)
    return shifts


def from_end(values, params, season, horizon, median=False):
    """The members' forecasts (S, horizon, k) from the last step of each series of ``values``
    (S, T, k): what ``predict()`` without data mixes in (``median``: see :func:`forecast`)."""
    n_series, n_time = values.shape[:2]
    return forecast(values, params, season, np.arange(n_series), np.full(n_series, n_time - 1), horizon, median)


def observed_after(values, series, origins, horizon):
    """``values`` (S, T, k) at the ``horizon`` steps after each of ``origins`` of ``series``:
    (n, horizon, k), NaN past the record's end."""
    n_time = values.shape[1]
    at = origins[:, None] + np.arange(1, horizon + 1)
    return np.where((at < n_time)[..., None], values[series[:, None], np.minimum(at, n_time - 1)], np.nan)


def naive_after(values, codes, season, series, origins, horizon):
    """The naive forecasts (n, horizon, k) from ``origins`` of ``series`` of ``values`` (S, T, k):
    per lead seasonal naive where the baseline ``codes`` (S, horizon, k) is 2, else persistence."""
    naive = np.broadcast_to(values[series, origins][:, None, :], (len(series), horizon, values.shape[2]))
    if not season:
        return naive
    lead = np.arange(1, horizon + 1)
    back = origins[:, None] + lead - season * np.ceil(lead / season).astype(np.intp)
    return np.where(codes[series] == 2, values[series[:, None], back], naive)


def paired_errors(first, second, truth, series, n_series):
    """The absolute errors of forecasts ``first`` and ``second`` (n, horizon, k) against ``truth``,
    summed over the windows of each series (``series`` (n,)) on the steps where both are finite:
    (2, n_series, k)."""
    err = np.stack([np.abs(first - truth), np.abs(second - truth)])
    both = np.isfinite(err).all(axis=0)
    sums = np.zeros((2, n_series, err.shape[-1]))
    for i in range(2):
        np.add.at(sums[i], series, np.where(both, err[i], 0.0).sum(axis=1))
    return sums


def screen(values, params, codes, season, series, origins, horizon, median=False):
    """``params`` (S, k, 6) with the member of every series and target removed (NaN) whose
    forecasts from ``origins`` of ``series`` (the fit's validation windows) had a higher mean
    absolute error than the naive baseline chosen for it (``codes`` (S, horizon, k): seasonal
    naive where 2, else persistence), on the same steps of ``values`` (S, T, k, data units).
    A member with no such step to judge it on is kept (``median``: see :func:`forecast`)."""
    params = params.copy()
    if len(series) == 0 or np.isnan(params[..., 0]).all():  # nothing to judge
        return params
    sums = paired_errors(forecast(values, params, season, series, origins, horizon, median),
                         naive_after(values, codes, season, series, origins, horizon),
                         observed_after(values, series, origins, horizon), series, values.shape[0])
    params[sums[0] > sums[1]] = np.nan
    return params


def with_weight(params):
    """``params`` (S, k, 6), or the five columns of a model from before the weights (S, k, 5) with
    the weight ``WEIGHT`` each had then added; None stays None."""
    if params is None or params.shape[-1] == len(PARAMS):
        return params
    return np.concatenate([params, np.where(np.isnan(params[..., :1]), np.nan, WEIGHT)], axis=-1)


def window_errors(forecast, truth, series, n_series):
    """The absolute error of ``forecast`` (n, horizon, k) against ``truth`` (the same shape, NaN
    where not observed) summed over the windows of each series (``series`` (n,)): (n_series, k)."""
    err = np.abs(forecast - truth)
    sums = np.zeros((n_series, forecast.shape[-1]))
    np.add.at(sums, series, np.where(np.isfinite(err), err, 0.0).sum(axis=1))
    return sums


def weigh(params, pipeline, member, truth, series):
    """``params`` (S, k, 6) with each member's weight (the last column) chosen from ``CHOICES``: the
    one whose mix of the ``pipeline``'s and ``member``'s forecasts (n, horizon, k, data units, from
    windows of ``series``) had the lowest absolute error summed over the observed steps of
    ``truth``, where that is at most ``MARGIN`` times the error with ``WEIGHT``; else ``WEIGHT``
    (a member with no step to judge it on too). The windows overlap and are few on a short
    record, so a small lead is no evidence: on the skill benchmark's 42 development data sets the
    lowest error alone moved one series' weight from a half to 1 on a 2% lead and raised its
    test error by 16%."""
    params = params.copy()
    step = np.where(np.isfinite(member), member - pipeline, 0.0)
    errors = np.stack([window_errors(pipeline + w * step, truth, series, params.shape[0]) for w in CHOICES])
    best = np.argmin(errors, axis=0)
    clear = np.take_along_axis(errors, best[None], axis=0)[0] <= MARGIN * errors[0]
    weight = np.asarray(CHOICES)[np.where(clear, best, 0)]
    params[..., -1] = np.where(np.isnan(params[..., 0]), np.nan, weight)
    return params


def prefer_log(params, on_log, pipeline, member, truth, values, season, series, origins, horizon, median=False):
    """``params`` (S, k, 6; weighed, see :func:`weigh`) with the member on the logarithm ``on_log``
    (from :func:`choose_pair`, screened; NaN where there is none) in place of a series' own where
    its mix, at the weight :func:`weigh` gives it, had an absolute error summed over the observed
    steps of ``truth`` at most ``MARGIN`` times the mix with ``params``' member (``member``, its
    forecasts (n, horizon, k) from windows ``(series, origins)`` of ``values``; the pipeline's
    ``pipeline``). A form on the logarithm that merely fits the record better moved as many of
    the skill benchmark's data sets up as down; asked for a clear lead on the validation windows,
    it moved few (see ``docs/how-it-works.md``; ``median``: see :func:`forecast`)."""
    n_series = params.shape[0]
    candidates = np.isfinite(on_log[..., 0])
    rows = np.isin(series, np.flatnonzero(candidates.any(axis=1)))
    if not rows.any():
        return params
    series, origins, pipeline, truth = series[rows], origins[rows], pipeline[rows], truth[rows]
    ahead = forecast(values, on_log, season, series, origins, horizon, median)
    on_log = weigh(on_log, pipeline, ahead, truth, series)

    def error(p, ahead):
        return window_errors(mix(pipeline, ahead, None, p[series, :, -1]), truth, series, n_series)

    take = candidates & (error(on_log, ahead) <= MARGIN * error(params, member[rows]))
    return np.where(take[..., None], on_log, params)


def mix(forecast, member, centre, weight):
    """The Forecaster's forecast from its pipeline's ``forecast`` (n, horizon, k[, Q]) and the
    ``member``'s (n, horizon, k), both in the same units: the point forecast moves to their mean
    weighted by ``weight`` (n, k), the member's; a band or samples (a last axis, with their
    ``centre``) move with it. Where the member is NaN the pipeline's stays."""
    extra = forecast.ndim == member.ndim + 1
    centre = forecast if not extra else centre
    shift = np.where(np.isfinite(member), np.asarray(weight)[:, None, :] * (member - centre), 0.0)
    return forecast + (shift[..., None] if extra else shift)
