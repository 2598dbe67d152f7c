"""Forecast skill metrics on xarray objects.

Every metric takes observations and forecasts as ``xr.DataArray`` or
``xr.Dataset`` (a Dataset is scored per data variable present in both, as in
xarray arithmetic) and returns the same kind of object, reduced over ``dim``
(a name, a list of names, or ``None`` for every dimension).

Conventions shared by all metrics:

- A pair where the observation or the forecast is NaN is left out; a
  reduction with no valid pair gives NaN, quietly.
- Coordinates must match exactly; misaligned inputs raise a ValueError
  naming the dimension rather than being silently intersected.
- Dimensions not reduced are kept (e.g. ``station``); the forecast may carry
  dimensions the observations lack (e.g. ``quantile``), which broadcast.
- The result is named like ``obs`` and has ``long_name`` and, where
  meaningful, ``units`` attributes (those of ``obs`` for errors in data units,
  ``"1"`` for the dimensionless scores).
- Only xarray operations are used, so dask-backed inputs stay lazy.
"""

import numpy as np
import xarray as xr

from numlstm._validation import check_number, check_positive_int

__all__ = ["coverage", "crps", "kge", "mae", "mase", "nse", "pinball", "pit_histogram", "rmse"]


# --------------------------------------------------------------------------- validation


def _check_xarray(value, name):
    if not isinstance(value, (xr.DataArray, xr.Dataset)):
        raise TypeError(
            f"{name} must be an xarray DataArray or Dataset, got {type(value).__name__}. "
            f"Wrap arrays first, e.g. xr.DataArray({name}, dims=('time',))."
        )


def _check_numeric(da, label):
    if da.dtype.kind not in "iuf":
        raise TypeError(
            f"{label} must hold numeric (integer or float) data, got dtype {da.dtype}. "
            f"Convert it first, e.g. {label}.astype(float)."
        )


def _reduce_dims(dim, obs, pred, labels, *, keep=()):
    """``dim`` argument -> tuple of dimension names present in ``obs`` or ``pred``."""
    available = tuple(dict.fromkeys((*obs.dims, *pred.dims)))
    if dim is None:
        return tuple(d for d in available if d not in keep)
    names = (dim,) if isinstance(dim, str) else dim
    try:
        names = tuple(names)
    except TypeError:
        names = None
    if names is None or not all(isinstance(d, str) for d in names):
        raise TypeError(
            f"dim must be a dimension name, a list of names, or None, got {type(dim).__name__} {dim!r}."
        )
    if not names:
        raise ValueError(
            f"dim is empty; name the dimension(s) to reduce over, e.g. dim='time', or dim=None for all of {available}."
        )
    missing = [d for d in names if d not in available]
    if missing:
        raise ValueError(
            f"dim {missing[0]!r} is not a dimension of {labels[0]} or {labels[1]}; their dimensions are "
            f"{available}. Pass dim= one of those (or a list of them), or dim=None to reduce over all."
        )
    return tuple(dict.fromkeys(names))


def _describe(da, d):
    index = da.indexes.get(d)
    if index is None:
        return f"{da.sizes[d]} positions without coordinate"
    if len(index) == 0:
        return "no labels"
    return f"{len(index)} labels, {index[0]} to {index[-1]}"


def _align_exact(a, b, labels, fix):
    """``xr.align(join="exact")`` with a message that names the dimension and the fix."""
    try:
        return xr.align(a, b, join="exact", copy=False)
    except ValueError as err:
        la, lb = labels
        differ = []
        for d in a.dims:
            if d not in b.dims:
                continue
            ia, ib = a.indexes.get(d), b.indexes.get(d)
            if a.sizes[d] != b.sizes[d] or (ia is not None and ib is not None and not ia.equals(ib)):
                differ.append(f"{d!r} ({la}: {_describe(a, d)}; {lb}: {_describe(b, d)})")
        where = ", ".join(differ) if differ else f"some dimension ({err})"
        raise ValueError(
            f"{la} and {lb} have different coordinates along {where}. Metrics compare labels exactly and "
            f"never align silently; select the common labels first, e.g. {fix}."
        ) from err


def _pair(obs, pred, labels):
    _check_numeric(obs, labels[0])
    _check_numeric(pred, labels[1])
    return _align_exact(obs, pred, labels, "obs, pred = xr.align(obs, pred, join='inner')")


def _mask(obs, pred):
    """Both inputs with NaN wherever either is NaN (broadcast to their common dims)."""
    valid = obs.notnull() & pred.notnull()
    return obs.where(valid), pred.where(valid)


def _quantile_levels(pred, obs, quantile_dim, labels):
    lo, lp = labels
    if quantile_dim not in pred.dims:
        raise ValueError(
            f"{lp} has no {quantile_dim!r} dimension (its dimensions are {tuple(pred.dims)}); quantile "
            f"forecasts need one, with the levels as its coordinate, e.g. pred.expand_dims({quantile_dim}=[0.5]) "
            f"for a median forecast, or pass quantile_dim= the name used."
        )
    if quantile_dim in obs.dims:
        raise ValueError(
            f"{lo} has a {quantile_dim!r} dimension; observations must not. "
            f"Select one, e.g. obs.isel({quantile_dim}=0)."
        )
    if quantile_dim not in pred.indexes:
        raise ValueError(
            f"{lp}'s {quantile_dim!r} dimension has no coordinate; assign the quantile levels, e.g. "
            f"pred.assign_coords({quantile_dim}=[0.1, 0.5, 0.9])."
        )
    levels = np.asarray(pred.indexes[quantile_dim])
    if levels.dtype.kind not in "iuf":
        raise ValueError(
            f"{lp}'s {quantile_dim!r} coordinate must hold numeric quantile levels in (0, 1), "
            f"got dtype {levels.dtype}."
        )
    inside = np.isfinite(levels)
    inside[inside] = (levels[inside] > 0) & (levels[inside] < 1)
    if not inside.all():
        hint = " For percentiles, divide by 100." if np.all(inside | ((levels > 0) & (levels < 100))) else ""
        raise ValueError(
            f"{lp}'s {quantile_dim!r} coordinate must hold quantile levels strictly between 0 and 1, "
            f"got {levels[~inside].tolist()}.{hint}"
        )


# --------------------------------------------------------------------------- plumbing


def _pick(value, name, arg):
    """Per-variable argument: a Dataset gives its variable ``name``, anything else is shared."""
    if name is None or not isinstance(value, xr.Dataset):
        return value, arg
    if name not in value.data_vars:
        raise ValueError(
            f"{arg} is a Dataset without the variable {name!r} scored in obs and pred "
            f"(it has {sorted(map(str, value.data_vars))}); add it or pass one value for all."
        )
    return value[name], f"{arg}[{name!r}]"


def _map_pairs(score, obs, pred, **per_variable):
    """Call ``score(obs_da, pred_da, labels, **kwargs)`` per pair of DataArrays.

    Datasets pair up data variables by name (those present in both); a
    DataArray against a Dataset is used for every variable. Keyword arguments
    that are Datasets are split per variable the same way.
    """
    _check_xarray(obs, "obs")
    _check_xarray(pred, "pred")
    if isinstance(obs, xr.DataArray) and isinstance(pred, xr.DataArray):
        return score(obs, pred, ("obs", "pred"), **per_variable)
    if isinstance(obs, xr.Dataset) and isinstance(pred, xr.Dataset):
        names = [n for n in obs.data_vars if n in pred.data_vars]
        if not names:
            raise ValueError(
                f"obs and pred have no data variables in common (obs: {sorted(map(str, obs.data_vars))}, "
                f"pred: {sorted(map(str, pred.data_vars))}); rename them to match, e.g. pred.rename(...)."
            )
    else:
        names = list((obs if isinstance(obs, xr.Dataset) else pred).data_vars)
    scores = {}
    for name in names:
        o = obs[name] if isinstance(obs, xr.Dataset) else obs
        p = pred[name] if isinstance(pred, xr.Dataset) else pred
        labels = (f"obs[{name!r}]" if isinstance(obs, xr.Dataset) else "obs",
                  f"pred[{name!r}]" if isinstance(pred, xr.Dataset) else "pred")
        kwargs = {}
        for arg, value in per_variable.items():
            kwargs[arg], kwargs[arg + "_label"] = _pick(value, name, arg)
        scores[name] = score(o, p, labels, **kwargs)
    return xr.Dataset(scores)


def _mean(x, dims):
    """NaN-skipping mean that gives NaN, without a RuntimeWarning, when nothing is left."""
    count = x.notnull().sum(dims)
    total = x.sum(dims, skipna=True)
    return total / count.where(count > 0).astype(total.dtype)


def _divide(num, den):
    """``num / den`` with NaN (and no warning) where ``den`` is 0."""
    return num / den.where(den != 0)


def _finish(result, obs, pred, long_name, units):
    result.name = obs.name if obs.name is not None else pred.name
    of = obs.attrs.get("long_name", obs.name)
    attrs = {"long_name": f"{long_name} of {of}" if of is not None else long_name}
    if units is not None:
        attrs["units"] = units
    result.attrs = attrs
    return result


def _units(obs):
    return obs.attrs.get("units")


# --------------------------------------------------------------------------- metrics


def mae(obs, pred, dim="time"):
    """Mean absolute error, ``mean(|pred - obs|)`` over ``dim``.

    Parameters
    ----------
    obs, pred : xr.DataArray or xr.Dataset
        Observations and forecasts, with identical coordinates on shared
        dimensions. ``pred`` may have extra dimensions (e.g. ``quantile``).
    dim : str, list of str or None, default "time"
        Dimension(s) to reduce over; ``None`` reduces over all of them.

    Returns
    -------
    xr.DataArray or xr.Dataset
        The MAE, in the units of ``obs``; pairs with a NaN are skipped, and a
        reduction with no valid pair is NaN.

    Examples
    --------
    >>> import xarray as xr
    >>> obs = xr.DataArray([1.0, 2.0, 4.0], dims="time")
    >>> pred = xr.DataArray([2.0, 2.0, 1.0], dims="time")
    >>> round(float(mae(obs, pred)), 6)
    1.333333
    """

    def score(o, p, labels):
        o, p = _pair(o, p, labels)
        dims = _reduce_dims(dim, o, p, labels)
        mo, mp = _mask(o, p)
        return _finish(_mean(abs(mp - mo), dims), o, p, "mean absolute error", _units(o))

    return _map_pairs(score, obs, pred)


def rmse(obs, pred, dim="time"):
    """Root mean squared error, ``sqrt(mean((pred - obs)**2))`` over ``dim``.

    Parameters
    ----------
    obs, pred : xr.DataArray or xr.Dataset
        Observations and forecasts, with identical coordinates on shared
        dimensions.
    dim : str, list of str or None, default "time"
        Dimension(s) to reduce over; ``None`` reduces over all of them.

    Returns
    -------
    xr.DataArray or xr.Dataset
        The RMSE, in the units of ``obs``; NaN pairs are skipped.

    Examples
    --------
    >>> import xarray as xr
    >>> obs = xr.DataArray([1.0, 2.0, 4.0], dims="time")
    >>> pred = xr.DataArray([2.0, 2.0, 1.0], dims="time")
    >>> round(float(rmse(obs, pred)), 6)  # sqrt((1 + 0 + 9) / 3)
    1.825742
    """

    def score(o, p, labels):
        o, p = _pair(o, p, labels)
        dims = _reduce_dims(dim, o, p, labels)
        mo, mp = _mask(o, p)
        return _finish(np.sqrt(_mean((mp - mo) ** 2, dims)), o, p, "root mean squared error", _units(o))

    return _map_pairs(score, obs, pred)


def _naive_scale(train, season, time_dim, label):
    """In-sample mean absolute error of the ``season``-step naive forecast along ``time_dim``."""
    _check_numeric(train, label)
    if time_dim not in train.dims:
        raise ValueError(
            f"{label} has no {time_dim!r} dimension (its dimensions are {tuple(train.dims)}); "
            f"pass time_dim= the name of its time dimension."
        )
    n_steps = train.sizes[time_dim]
    if n_steps <= season:
        raise ValueError(
            f"{label} has {n_steps} step(s) along {time_dim!r}; a season={season} naive forecast needs at "
            f"least {season + 1}. Pass a longer training period, or scale= directly."
        )
    naive_error = abs(train - train.shift({time_dim: season}))
    return _mean(naive_error, time_dim)


def mase(obs, pred, dim="time", *, scale=None, train=None, season=1, time_dim="time"):
    """Mean absolute scaled error (Hyndman & Koehler, 2006).

    Each absolute error is divided by the in-sample MAE of the ``season``-step
    naive forecast ``y[t] = y[t - season]`` on the training data, then
    averaged over ``dim``: ``mean(|pred - obs| / scale)``. For one series this
    is ``MAE / scale``; with a scale per series (e.g. per station) the scaled
    errors are pooled, so series of different magnitude weigh alike. Values
    below 1 beat the in-sample naive forecast.

    Parameters
    ----------
    obs, pred : xr.DataArray or xr.Dataset
        Observations and forecasts, with identical coordinates on shared
        dimensions.
    dim : str, list of str or None, default "time"
        Dimension(s) to reduce over; ``None`` reduces over all of them.
    scale : float or xr.DataArray or xr.Dataset, optional
        The naive-forecast MAE to divide by (per series if a DataArray, per
        variable if a Dataset). Zero or NaN scales give NaN.
    train : xr.DataArray or xr.Dataset, optional
        Training observations, from which the scale is computed along
        ``time_dim`` (NaN pairs skipped). Exactly one of ``scale`` and
        ``train`` is required.
    season : int, default 1
        Lag of the naive forecast (1: persistence; e.g. 7 for daily data with
        a weekly cycle).
    time_dim : str, default "time"
        Time dimension of ``train``.

    Returns
    -------
    xr.DataArray or xr.Dataset
        The MASE (dimensionless, units "1").

    Examples
    --------
    >>> import xarray as xr
    >>> train = xr.DataArray([1.0, 3.0, 2.0, 4.0], dims="time")  # naive errors 2, 1, 2
    >>> obs = xr.DataArray([5.0, 6.0], dims="time")
    >>> pred = xr.DataArray([4.0, 6.0], dims="time")
    >>> round(float(mase(obs, pred, train=train)), 6)  # MAE 0.5 / scale 5/3
    0.3
    >>> float(mase(obs, pred, scale=0.25))
    2.0
    """
    if scale is None and train is None:
        raise ValueError(
            "mase needs the scale of the naive forecast: pass train= (the training observations, "
            "from which it is computed) or scale= (a number or DataArray)."
        )
    if scale is not None and train is not None:
        raise ValueError("pass one of scale= or train= to mase, not both.")
    season = check_positive_int(season, "season")
    if not isinstance(time_dim, str):
        raise TypeError(f"time_dim must be a dimension name (str), got {type(time_dim).__name__} {time_dim!r}.")
    if scale is not None and not isinstance(scale, (xr.DataArray, xr.Dataset)):
        scale = check_number(scale, "scale", low=0, low_open=True)
    if train is not None:
        _check_xarray(train, "train")

    def score(o, p, labels, scale=None, scale_label="scale", train=None, train_label="train"):
        for arg, value in (("scale", scale), ("train", train)):
            if isinstance(value, xr.Dataset):
                raise TypeError(
                    f"{arg} is a Dataset but obs and pred are DataArrays; pass one of its variables, "
                    f"e.g. {arg}[{next(iter(value.data_vars), 'name')!r}]."
                )
        o, p = _pair(o, p, labels)
        dims = _reduce_dims(dim, o, p, labels)
        if train is not None:
            s = _naive_scale(train, season, time_dim, train_label)
            fix = f"obs, train = xr.align(obs, train, join='inner', exclude=[{time_dim!r}])"
            o, s = _align_exact(o, s, (labels[0], f"the scale from {train_label}"), fix)
        elif isinstance(scale, xr.DataArray):
            _check_numeric(scale, scale_label)
            fix = "obs, scale = xr.align(obs, scale, join='inner')"
            o, s = _align_exact(o, scale, (labels[0], scale_label), fix)
        else:
            s = scale
        if isinstance(s, xr.DataArray):
            s = s.where(s > 0)
        mo, mp = _mask(o, p)
        return _finish(_mean(abs(mp - mo) / s, dims), o, p, "mean absolute scaled error", "1")

    return _map_pairs(score, obs, pred, scale=scale, train=train)


def nse(obs, pred, dim="time"):
    """Nash–Sutcliffe efficiency (Nash & Sutcliffe, 1970).

    ``1 - sum((pred - obs)**2) / sum((obs - mean(obs))**2)``, over the pairs
    where both are valid (``mean(obs)`` too). 1 is a perfect forecast, 0 is
    no better than the observed mean; unbounded below.

    Parameters
    ----------
    obs, pred : xr.DataArray or xr.Dataset
        Observations and forecasts, with identical coordinates on shared
        dimensions.
    dim : str, list of str or None, default "time"
        Dimension(s) to reduce over; ``None`` reduces over all of them.

    Returns
    -------
    xr.DataArray or xr.Dataset
        The NSE (units "1"); NaN where there is no valid pair or the
        observations are constant.

    Examples
    --------
    >>> import xarray as xr
    >>> obs = xr.DataArray([1.0, 2.0, 3.0], dims="time")
    >>> pred = xr.DataArray([1.0, 2.0, 4.0], dims="time")
    >>> float(nse(obs, pred))  # 1 - 1 / 2
    0.5
    """

    def score(o, p, labels):
        o, p = _pair(o, p, labels)
        dims = _reduce_dims(dim, o, p, labels)
        mo, mp = _mask(o, p)
        sse = ((mp - mo) ** 2).sum(dims)
        sst = ((mo - _mean(mo, dims)) ** 2).sum(dims)
        result = 1 - _divide(sse, sst)  # no valid pair: sst is 0, so NaN
        return _finish(result, o, p, "Nash-Sutcliffe efficiency", "1")

    return _map_pairs(score, obs, pred)


def kge(obs, pred, dim="time"):
    """Kling–Gupta efficiency (Gupta et al., 2009).

    ``1 - sqrt((r - 1)**2 + (alpha - 1)**2 + (beta - 1)**2)`` with ``r`` the
    Pearson correlation, ``alpha = std(pred) / std(obs)`` and
    ``beta = mean(pred) / mean(obs)``, all over the pairs where both are
    valid (population standard deviations). 1 is a perfect forecast.

    Parameters
    ----------
    obs, pred : xr.DataArray or xr.Dataset
        Observations and forecasts, with identical coordinates on shared
        dimensions.
    dim : str, list of str or None, default "time"
        Dimension(s) to reduce over; ``None`` reduces over all of them.

    Returns
    -------
    xr.DataArray or xr.Dataset
        The KGE (units "1"); NaN where a ratio is undefined (constant series,
        zero observed mean, no valid pair).

    References
    ----------
    Gupta, H. V., Kling, H., Yilmaz, K. K. and Martinez, G. F. (2009):
    Decomposition of the mean squared error and NSE performance criteria,
    J. Hydrol. 377, 80-91.

    Examples
    --------
    >>> import xarray as xr
    >>> obs = xr.DataArray([1.0, 2.0, 3.0], dims="time")
    >>> pred = xr.DataArray([2.0, 4.0, 6.0], dims="time")  # r = 1, alpha = 2, beta = 2
    >>> round(float(kge(obs, pred)), 6)  # 1 - sqrt(2)
    -0.414214
    """

    def score(o, p, labels):
        o, p = _pair(o, p, labels)
        dims = _reduce_dims(dim, o, p, labels)
        mo, mp = _mask(o, p)
        mean_o, mean_p = _mean(mo, dims), _mean(mp, dims)
        dev_o, dev_p = mo - mean_o, mp - mean_p
        std_o, std_p = np.sqrt(_mean(dev_o**2, dims)), np.sqrt(_mean(dev_p**2, dims))
        r = _divide(_mean(dev_o * dev_p, dims), std_o * std_p)
        alpha = _divide(std_p, std_o)
        beta = _divide(mean_p, mean_o)
        result = 1 - np.sqrt((r - 1) ** 2 + (alpha - 1) ** 2 + (beta - 1) ** 2)
        return _finish(result, o, p, "Kling-Gupta efficiency", "1")

    return _map_pairs(score, obs, pred)


def _check_quantile_dim(quantile_dim):
    if not isinstance(quantile_dim, str):
        raise TypeError(f"quantile_dim must be a dimension name (str), got {type(quantile_dim).__name__}.")


def _pinball(dim, quantile_dim, keep_quantiles):
    """Mean pinball loss per quantile level, reduced over ``dim`` (and the levels unless kept)."""
    _check_quantile_dim(quantile_dim)

    def score(o, p, labels):
        o, p = _pair(o, p, labels)
        _quantile_levels(p, o, quantile_dim, labels)
        dims = _reduce_dims(dim, o, p, labels, keep=(quantile_dim,))
        if quantile_dim in dims:
            if keep_quantiles:
                raise ValueError(
                    f"dim includes {quantile_dim!r} but keep_quantiles=True; drop it from dim, "
                    f"or pass keep_quantiles=False."
                )
            dims = tuple(d for d in dims if d != quantile_dim)  # reduced below, after the per-level mean
        mo, mp = _mask(o, p)
        error = mo - mp
        level = p[quantile_dim].astype(error.dtype)
        # max(q e, (q - 1) e) without a comparison: the same number, no branch, no NaN compare
        loss = _mean(0.5 * abs(error) + (level - 0.5) * error, dims)
        if not keep_quantiles:
            loss = _mean(loss, quantile_dim)
        return loss, o, p

    return score


def pinball(obs, pred, dim="time", *, quantile_dim="quantile", keep_quantiles=False):
    """Mean pinball (quantile) loss of quantile forecasts.

    For level ``q`` and error ``e = obs - pred_q`` the loss is ``q * e`` when
    ``e >= 0`` and ``(q - 1) * e`` otherwise. It is averaged over ``dim`` per
    level, then over the levels (unless ``keep_quantiles``).

    Parameters
    ----------
    obs : xr.DataArray or xr.Dataset
        Observations, without the quantile dimension.
    pred : xr.DataArray or xr.Dataset
        Quantile forecasts with a ``quantile_dim`` dimension whose coordinate
        holds the levels, strictly between 0 and 1.
    dim : str, list of str or None, default "time"
        Dimension(s) to reduce over; ``None`` reduces over all of them (but
        the quantile dimension when ``keep_quantiles``).
    quantile_dim : str, default "quantile"
        Name of the quantile dimension of ``pred``.
    keep_quantiles : bool, default False
        Keep the quantile dimension: one loss per level.

    Returns
    -------
    xr.DataArray or xr.Dataset
        The mean pinball loss, in the units of ``obs``.

    Examples
    --------
    >>> import xarray as xr
    >>> obs = xr.DataArray([1.0, 3.0], dims="time")
    >>> pred = xr.DataArray([[0.0, 2.0], [2.0, 4.0]], dims=("time", "quantile"),
    ...                     coords={"quantile": [0.1, 0.9]})
    >>> pinball(obs, pred, keep_quantiles=True).values.round(6).tolist()
    [0.1, 0.1]
    >>> round(float(pinball(obs, pred)), 6)
    0.1
    """
    score = _pinball(dim, quantile_dim, keep_quantiles)

    def finish(o, p, labels):
        loss, o, p = score(o, p, labels)
        return _finish(loss, o, p, "mean pinball loss", _units(o))

    return _map_pairs(finish, obs, pred)


def crps(obs, pred, dim="time", *, quantile_dim="quantile"):
    """Continuous ranked probability score, approximated from quantile forecasts.

    Uses ``CRPS(F, y) = 2 * integral_0^1 pinball_q(F^-1(q), y) dq``
    (Laio & Tamea, 2007; Gneiting & Ranjan, 2011), with the integral replaced
    by the mean over the available levels: ``2 * pinball(obs, pred, dim)``.
    This approximation is good for many evenly spaced levels, such as
    ``(k - 0.5) / K``; with few or uneven levels it is biased (a single 0.5
    level gives the MAE of the median).

    Parameters
    ----------
    obs : xr.DataArray or xr.Dataset
        Observations, without the quantile dimension.
    pred : xr.DataArray or xr.Dataset
        Quantile forecasts with a ``quantile_dim`` dimension whose coordinate
        holds the levels, strictly between 0 and 1.
    dim : str, list of str or None, default "time"
        Dimension(s) to reduce over; ``None`` reduces over all of them.
    quantile_dim : str, default "quantile"
        Name of the quantile dimension of ``pred``.

    Returns
    -------
    xr.DataArray or xr.Dataset
        The approximate CRPS, in the units of ``obs`` (lower is better).

    References
    ----------
    Laio, F. and Tamea, S. (2007): Verification tools for probabilistic
    forecasts of continuous hydrological variables, Hydrol. Earth Syst. Sci.
    11, 1267-1277.
    Gneiting, T. and Ranjan, R. (2011): Comparing density forecasts using
    threshold- and quantile-weighted scoring rules, J. Bus. Econ. Stat. 29,
    411-422.

    Examples
    --------
    >>> import xarray as xr
    >>> obs = xr.DataArray([1.0, 3.0], dims="time")
    >>> pred = xr.DataArray([[0.0, 2.0], [2.0, 4.0]], dims=("time", "quantile"),
    ...                     coords={"quantile": [0.1, 0.9]})
    >>> round(float(crps(obs, pred)), 6)
    0.2
    """
    score = _pinball(dim, quantile_dim, False)

    def finish(o, p, labels):
        loss, o, p = score(o, p, labels)
        return _finish(2 * loss, o, p, "continuous ranked probability score (from quantiles)", _units(o))

    return _map_pairs(finish, obs, pred)


def _quantile_score(dim, quantile_dim, compute):
    _check_quantile_dim(quantile_dim)

    def score(o, p, labels):
        o, p = _pair(o, p, labels)
        _quantile_levels(p, o, quantile_dim, labels)
        dims = tuple(d for d in _reduce_dims(dim, o, p, labels, keep=(quantile_dim,)) if d != quantile_dim)
        valid = o.notnull() & p.notnull().all(quantile_dim)
        return compute(o, p.sortby(quantile_dim), valid, dims), o, p

    return score


def coverage(obs, pred, dim="time", *, quantile_dim="quantile", lower=None, upper=None):
    """Share of observations inside a forecast band (between two quantile levels).

    Parameters
    ----------
    obs : xr.DataArray or xr.Dataset
        Observations, without the quantile dimension.
    pred : xr.DataArray or xr.Dataset
        Quantile forecasts with a ``quantile_dim`` dimension holding the levels.
    dim : str, list of str or None, default "time"
        Dimension(s) to reduce over.
    lower, upper : float, optional
        The band's levels, two of the forecast's; default its lowest and
        highest. A calibrated band covers ``upper - lower`` of the observations.

    Returns
    -------
    xr.DataArray or xr.Dataset
        The empirical coverage, dimensionless, in [0, 1].

    Examples
    --------
    >>> import xarray as xr
    >>> obs = xr.DataArray([1.0, 3.0, 5.0, 7.0], dims="time")
    >>> pred = xr.DataArray([[0.0, 2.0]] * 4, dims=("time", "quantile"), coords={"quantile": [0.1, 0.9]})
    >>> float(coverage(obs, pred))
    0.25
    """
    def compute(o, p, valid, dims):
        levels = p[quantile_dim].values
        lo = levels.min() if lower is None else lower
        hi = levels.max() if upper is None else upper
        for name, level in (("lower", lo), ("upper", hi)):
            if not np.isclose(levels, level).any():
                raise ValueError(f"{name}={level!r} is not a level of pred's {quantile_dim!r} coordinate "
                                 f"{levels.tolist()}; pass one of them.")
        if not lo < hi:
            raise ValueError(f"lower ({lo}) must be below upper ({hi}).")
        a = p.sel({quantile_dim: lo}, method="nearest").drop_vars(quantile_dim)
        b = p.sel({quantile_dim: hi}, method="nearest").drop_vars(quantile_dim)
        inside = ((o >= a) & (o <= b)).astype(float).where(valid)
        return _mean(inside, dims)

    score = _quantile_score(dim, quantile_dim, compute)

    def finish(o, p, labels):
        result, o, p = score(o, p, labels)
        return _finish(result, o, p, "coverage", "1")

    return _map_pairs(finish, obs, pred)


def pit_histogram(obs, pred, dim="time", *, quantile_dim="quantile"):
    """Probability integral transform histogram of quantile forecasts.

    With levels ``q_1 < ... < q_K`` the observation falls in one of ``K + 1``
    bins: below ``q_1``, between consecutive levels, above ``q_K``. The result
    is the share of observations in each bin, along a new ``bin`` dimension
    with coordinates ``bin_lower`` and ``bin_upper`` (the levels bounding it,
    0 and 1 at the ends). Calibrated forecasts give shares equal to
    ``bin_upper - bin_lower`` (a flat PIT histogram per unit of probability);
    too many observations in the outer bins mean bands too narrow.

    Examples
    --------
    >>> import xarray as xr
    >>> obs = xr.DataArray([1.0, 3.0, 5.0, 7.0], dims="time")
    >>> pred = xr.DataArray([[2.0, 6.0]] * 4, dims=("time", "quantile"), coords={"quantile": [0.25, 0.75]})
    >>> pit_histogram(obs, pred).values.tolist()
    [0.25, 0.5, 0.25]
    >>> pit_histogram(obs + 1.5, pred).values.tolist()    # forecasts too low: observations pile up high
    [0.0, 0.5, 0.5]
    """
    def compute(o, p, valid, dims):
        levels = p[quantile_dim].values
        below = (o < p).astype(float)  # per level: is the observation below the quantile
        n_below = below.sum(quantile_dim)  # index of the observation's bin
        edges = np.concatenate([[0.0], levels, [1.0]])
        shares = [_mean((n_below == len(levels) - k).astype(float).where(valid), dims)  # bin k, from below
                  for k in range(len(levels) + 1)]
        out = xr.concat(shares, dim="bin")
        return out.assign_coords(bin=np.arange(len(levels) + 1), bin_lower=("bin", edges[:-1]),
                                 bin_upper=("bin", edges[1:]))

    score = _quantile_score(dim, quantile_dim, compute)

    def finish(o, p, labels):
        result, o, p = score(o, p, labels)
        return _finish(result, o, p, "PIT histogram", "1")

    return _map_pairs(finish, obs, pred)
