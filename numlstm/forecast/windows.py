"""Training and prediction windows, per-series scaling, relative targets.

The Forecaster stacks every series of a dataset into one float array
``values`` of shape ``(n_series, n_time, n_features)``; the targets are some
of the features (``target_index``) and NaN marks a missing value. One global
model learns from windows cut out of that array: ``lookback`` past steps of
every feature in, the next ``horizon`` steps of the targets out (direct
multi-step). A window is named by its series and its *origin*, the index of
its last input step, so its targets start at ``origin + 1``.

- :func:`make_windows` cuts every training window (or those at given origins),
  skipping windows with a missing input or no observed target, and masks the
  missing targets that remain;
- :func:`input_windows` cuts the inputs for a forecast, flagging series whose
  inputs are incomplete instead of dropping them; :func:`window_inputs` does
  the same for any (series, origin) pairs, with steps of known future
  features, in a chosen dtype and bounded memory;
- :class:`SeriesScaler` standardises each (series, feature) with statistics
  of a training slice only; :func:`scale_static_across_series` scales the
  static features (constant per series) across series instead;
- :func:`relative_targets` / :func:`absolute_targets` turn targets into
  changes since the last observed value and back.

Everything is vectorised with :func:`numpy.lib.stride_tricks.sliding_window_view`
(no Python loop over windows) and nothing modifies its input arrays.

>>> import numpy as np
>>> values = np.arange(12.0).reshape(1, 6, 2)   # 1 series, 6 steps, 2 features
>>> w = make_windows(values, lookback=2, horizon=2, target_index=[0])
>>> w.origin.tolist(), w.series.tolist()
([1, 2, 3], [0, 0, 0])
>>> w.X[0].tolist(), w.Y[0].tolist()
([[0.0, 1.0], [2.0, 3.0]], [[4.0], [6.0]])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from numlstm._validation import check_positive_int, float_array

__all__ = [
    "SeriesScaler",
    "Windows",
    "absolute_targets",
    "input_windows",
    "make_windows",
    "relative_targets",
    "scale_static_across_series",
    "window_inputs",
]


@dataclass(frozen=True)
class Windows:
    """Training windows cut from ``values``.

    ``X`` (n, lookback, n_features) inputs (None when not asked for); ``Y`` (n, horizon, n_targets)
    targets, 0 where missing; ``mask`` (n, horizon, n_targets) True where the
    target is observed; ``series`` (n,) series index; ``origin`` (n,) time
    index of the last input step.
    """

    X: np.ndarray
    Y: np.ndarray
    mask: np.ndarray
    series: np.ndarray
    origin: np.ndarray

    def __len__(self):
        return len(self.series)


# -- validation --------------------------------------------------------------


def _check_values(values, name="values"):
    arr = float_array(values, name)
    if arr.ndim != 3:
        fix = "For one series with one feature, use values[None, :, None]." if arr.ndim == 1 else (
            "For one series, use values[None]; for one feature per series, use values[..., None]."
            if arr.ndim == 2 else "Stack the series dimensions into one first."
        )
        raise ValueError(
            f"{name} has {arr.ndim} dimension(s) (shape {arr.shape}); expected "
            f"(n_series, n_time, n_features). {fix}"
        )
    return arr


def _check_target_index(target_index, n_features):
    idx = np.asarray(target_index)
    if idx.ndim == 0:
        idx = idx[None]
    if idx.ndim != 1 or idx.size == 0 or (idx.dtype.kind not in "iu"):
        raise TypeError(
            f"target_index must be a non-empty list of integer feature indices, got {target_index!r}. "
            "For one target, use [i]."
        )
    if idx.min() < 0 or idx.max() >= n_features:
        raise ValueError(
            f"target_index {idx.tolist()} is out of range for {n_features} feature(s); "
            f"indices must lie in 0..{n_features - 1}."
        )
    if np.unique(idx).size != idx.size:
        raise ValueError(f"target_index {idx.tolist()} repeats a feature; list each target once.")
    return idx.astype(np.intp)


def _check_origins(origins, low, high, default, what):
    """Origins as an int array within [low, high]; ``default`` when None."""
    if origins is None:
        return default
    arr = np.asarray(origins)
    if arr.ndim == 0:
        arr = arr[None]
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise TypeError(f"origins must be a 1-D array of integer time indices, got {origins!r}.")
    arr = arr.astype(np.intp)
    bad = (arr < low) | (arr > high)
    if bad.any():
        raise ValueError(
            f"origins {arr[bad].tolist()} are out of range: {what} origins must lie in {low}..{high}. "
            "Drop those origins or shorten lookback/horizon."
        )
    return arr


def _check_length(n_time, needed, lookback, horizon):
    if n_time < needed:
        parts = f"lookback ({lookback})" + ("" if horizon is None else f" + horizon ({horizon})")
        raise ValueError(
            f"the series have {n_time} time step(s) but {parts} = {needed} are needed for one window. "
            f"Shorten lookback{'' if horizon is None else ' or horizon'}, or give longer series."
        )


# -- windows -----------------------------------------------------------------


def make_windows(values, lookback, horizon, target_index, *, origins=None, inputs=True):
    """Every training window of ``values`` (or those ending at ``origins``).

    Parameters
    ----------
    values : ndarray, shape (n_series, n_time, n_features), float32/float64
        NaN marks a missing value.
    lookback, horizon : int >= 1
        Input steps and target steps of each window.
    target_index : list of int
        Features that are targets, in the order of ``Y``'s last axis.
    origins : array of int, optional
        Time indices of the last input step, applied to every series. Default:
        all, ``lookback - 1`` to ``n_time - horizon - 1``.
    inputs : bool, default True
        False skips cutting ``X`` (it is None), for callers that build the
        inputs themselves and would otherwise hold them twice.

    Returns
    -------
    Windows
        Windows with a non-finite input, or with no finite target, are
        skipped. Missing targets of the others are 0 in ``Y`` and False in
        ``mask``. Ordered by series, then by origin as given.
    """
    values = _check_values(values)
    lookback = check_positive_int(lookback, "lookback")
    horizon = check_positive_int(horizon, "horizon")
    n_series, n_time, n_features = values.shape
    tidx = _check_target_index(target_index, n_features)
    _check_length(n_time, lookback + horizon, lookback, horizon)
    first, last = lookback - 1, n_time - horizon - 1
    origins = _check_origins(
        origins, first, last, np.arange(first, last + 1), f"with lookback={lookback} and horizon={horizon},"
    )

    step_ok = np.isfinite(values).all(axis=2)  # (S, T)
    targets = values[:, :, tidx]  # (S, T, nt), a copy: values is never touched
    target_ok = np.isfinite(targets)
    # Window of inputs starting at t covers t..t+lookback-1: origin o starts at o-lookback+1.
    inputs_ok = sliding_window_view(step_ok, lookback, axis=1).all(axis=-1)[:, origins - first]  # (S, k)
    any_target = sliding_window_view(target_ok.any(axis=2), horizon, axis=1).any(axis=-1)[:, origins + 1]
    series, which = np.nonzero(inputs_ok & any_target)
    origin = origins[which]

    # sliding_window_view puts the window axis last: (S, starts, F, L) -> gather -> (n, L, F).
    X = None
    if inputs:
        X = np.ascontiguousarray(
            sliding_window_view(values, lookback, axis=1)[series, origin - first].transpose(0, 2, 1))
    Y = sliding_window_view(targets, horizon, axis=1)[series, origin + 1].transpose(0, 2, 1)
    mask = sliding_window_view(target_ok, horizon, axis=1)[series, origin + 1].transpose(0, 2, 1)
    Y = np.where(mask, Y, 0).astype(values.dtype, copy=False)
    return Windows(
        X=X,
        Y=np.ascontiguousarray(Y),
        mask=np.ascontiguousarray(mask),
        series=series.astype(np.intp),
        origin=origin.astype(np.intp),
    )


def input_windows(values, lookback, origins=None):
    """The inputs of a forecast from each series at each origin.

    Returns ``(X, series, origin, ok)``: ``X`` (n_series * n_origins,
    lookback, n_features), ordered by series then origin; ``ok`` is False
    where the inputs contain NaN (those rows of ``X`` are 0), so the caller
    can return NaN forecasts there. Default origin: the last time step.
    """
    values = _check_values(values)
    lookback = check_positive_int(lookback, "lookback")
    n_series, n_time, n_features = values.shape
    _check_length(n_time, lookback, lookback, None)
    first = lookback - 1
    origins = _check_origins(
        origins, first, n_time - 1, np.array([n_time - 1], dtype=np.intp), f"with lookback={lookback},"
    )
    series = np.repeat(np.arange(n_series, dtype=np.intp), origins.size)
    origin = np.tile(origins, n_series)
    X, ok = window_inputs(values, series, origin, lookback, dtype=values.dtype)
    return X, series, origin, ok


WINDOW_CHUNK = 65536  # windows gathered at a time: bounds the float64 temporaries


def window_inputs(features, series, origin, lookback, horizon=0, known=(), dtype=np.float64):
    """Network inputs (``dtype``) for windows ``(series, origin)`` and whether each is complete.

    ``features`` (n_series, n_time, n_features); ``series`` and ``origin`` one
    entry per window, the origin being the window's last input step.

    Without known-future columns: the ``lookback`` steps up to each origin.
    With them: those steps plus ``horizon`` future steps that carry only the
    ``known`` columns (0 elsewhere), and a last flag channel (1 past, 0 future).
    Incomplete windows are all 0. Built in place, ``WINDOW_CHUNK`` windows at a
    time, so the only full-size array is the result.
    """
    known = np.asarray(known, dtype=np.intp)
    n, n_features = len(series), features.shape[2]
    future = known.size > 0
    X = np.zeros((n, lookback + horizon if future else lookback, n_features + future), dtype=dtype)
    ok = np.empty(n, dtype=bool)
    past_view = sliding_window_view(features, lookback, axis=1)  # (S, starts, F, lookback), no copy
    future_view = sliding_window_view(features[:, :, known], horizon, axis=1) if future else None
    for a in range(0, n, WINDOW_CHUNK):
        b = min(n, a + WINDOW_CHUNK)
        s, o = series[a:b], origin[a:b]
        past = past_view[s, o - lookback + 1].transpose(0, 2, 1)
        ok[a:b] = np.isfinite(past).all(axis=(1, 2))
        X[a:b, :lookback, :n_features] = past
        if future:
            fut = future_view[s, o + 1].transpose(0, 2, 1)
            ok[a:b] &= np.isfinite(fut).all(axis=(1, 2))
            X[a:b, :lookback, -1] = 1
            X[a:b, lookback:, known] = fut
    X[~ok] = 0
    return X, ok


# -- scaling -----------------------------------------------------------------


@dataclass(frozen=True)
class SeriesScaler:
    """Per-series, per-feature standardisation: ``(values - mean) / std``.

    ``mean`` and ``std`` have shape (n_series, n_features), float64. Build one
    with :meth:`fit` (statistics of a training slice) or :meth:`from_dict`.
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, values, time_slice=slice(None)):
        """NaN-aware mean and (population) std over ``values[:, time_slice]``.

        Non-finite values are ignored. A (series, feature) with no finite
        value gets mean 0; one whose std is 0 or undefined gets std 1.
        """
        values = _check_values(values)
        if not isinstance(time_slice, slice):
            raise TypeError(f"time_slice must be a slice, e.g. slice(0, n_train), got {time_slice!r}.")
        train = values[:, time_slice].astype(np.float64)
        finite = np.isfinite(train)
        count = finite.sum(axis=1)  # (S, F)
        seen = count > 0
        safe_count = np.where(seen, count, 1)
        filled = np.where(finite, train, 0.0)
        mean = np.where(seen, filled.sum(axis=1) / safe_count, 0.0)
        dev = np.where(finite, train - mean[:, None, :], 0.0)
        std = np.sqrt((dev * dev).sum(axis=1) / safe_count)
        std = np.where(seen & (std > 0) & np.isfinite(std), std, 1.0)
        return cls(mean=mean, std=std)

    def _check(self, values, name, n_features):
        if values.shape[0] != self.mean.shape[0] or values.shape[-1] != n_features:
            raise ValueError(
                f"{name} has shape {values.shape}; the scaler was fitted on {self.mean.shape[0]} series "
                f"and expects {n_features} feature(s) on the last axis."
            )

    def transform(self, values, *, inplace=False):
        """Standardise ``values`` (n_series, n_time, n_features): a new array, or with
        ``inplace`` ``values`` itself, overwritten (a float64 array; where memory is
        the point, as in a streamed fit's buffers)."""
        values = _check_values(values)
        self._check(values, "values", self.mean.shape[1])
        if inplace:
            if values.dtype != np.float64:
                raise TypeError(f"inplace=True needs float64 values, got {values.dtype}; drop inplace to get a "
                                "new array of the values' dtype.")
            values -= self.mean[:, None, :]
            values /= self.std[:, None, :]
            return values
        out = (values - self.mean[:, None, :]) / self.std[:, None, :]
        return out.astype(values.dtype, copy=False)

    def inverse_transform(self, values, feature_index=None, *, series=None):
        """Undo :meth:`transform` on ``values`` whose last axis is ``feature_index``.

        ``values`` has shape (n_series, ..., k) with ``k`` features listed in
        ``feature_index`` (default: all). With ``series`` (one series index per
        row), the leading axis is rows instead, e.g. windows.
        """
        values = float_array(values, "values")
        fidx = np.arange(self.mean.shape[1]) if feature_index is None else _check_target_index(
            feature_index, self.mean.shape[1]
        )
        if values.ndim < 2:
            raise ValueError(f"values has shape {values.shape}; expected (rows, ..., {fidx.size}).")
        mean, std = self.mean[:, fidx], self.std[:, fidx]
        if series is None:
            self._check(values, "values", fidx.size)
        else:
            series = np.asarray(series)
            if series.shape != values.shape[:1] or (series.size and series.dtype.kind not in "iu"):
                raise ValueError(
                    f"series must hold one integer series index per row of values "
                    f"({values.shape[0]}), got shape {series.shape}."
                )
            if series.size and (series.min() < 0 or series.max() >= self.mean.shape[0]):
                raise ValueError(f"series indices must lie in 0..{self.mean.shape[0] - 1}.")
            if values.shape[-1] != fidx.size:
                raise ValueError(f"values has {values.shape[-1]} feature(s) on the last axis; expected {fidx.size}.")
            mean, std = mean[series], std[series]
        shape = (mean.shape[0],) + (1,) * (values.ndim - 2) + (fidx.size,)
        out = values * std.reshape(shape) + mean.reshape(shape)
        return out.astype(values.dtype, copy=False)

    def inverse_transform_targets(self, Y, series, target_index):
        """Undo the scaling of window targets ``Y`` (n, horizon, n_targets)."""
        return self.inverse_transform(Y, target_index, series=series)

    def to_dict(self):
        """``{"mean": array, "std": array}`` (copies), for saving."""
        return {"mean": self.mean.copy(), "std": self.std.copy()}

    @classmethod
    def from_dict(cls, d):
        """A scaler from :meth:`to_dict`'s output."""
        try:
            mean = np.array(d["mean"], dtype=np.float64)
            std = np.array(d["std"], dtype=np.float64)
        except (KeyError, TypeError) as err:
            raise ValueError(f"expected a dict with 'mean' and 'std' arrays, got {type(d).__name__}.") from err
        if mean.ndim != 2 or mean.shape != std.shape:
            raise ValueError(
                f"mean {mean.shape} and std {std.shape} must both have shape (n_series, n_features)."
            )
        if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
            raise ValueError("mean must be finite and std finite and > 0.")
        return cls(mean=mean, std=std)


# -- relative targets --------------------------------------------------------


def _last_target(X, target_index):
    X = float_array(X, "X")
    if X.ndim != 3:
        raise ValueError(f"X has shape {X.shape}; expected (n, lookback, n_features).")
    tidx = _check_target_index(target_index, X.shape[2])
    return X[:, -1, tidx][:, None, :]


def relative_targets(X, Y, target_index):
    """Targets as changes since the last input value: ``Y - X[:, -1, target_index]``."""
    last = _last_target(X, target_index)
    Y = float_array(Y, "Y")
    if Y.ndim != 3 or Y.shape[0] != last.shape[0] or Y.shape[2] != last.shape[2]:
        raise ValueError(f"Y has shape {Y.shape}; expected ({last.shape[0]}, horizon, {last.shape[2]}).")
    return Y - last


def absolute_targets(X, Yrel, target_index):
    """Undo :func:`relative_targets`: ``Yrel + X[:, -1, target_index]``."""
    last = _last_target(X, target_index)
    Yrel = float_array(Yrel, "Yrel")
    if Yrel.ndim != 3 or Yrel.shape[0] != last.shape[0] or Yrel.shape[2] != last.shape[2]:
        raise ValueError(f"Yrel has shape {Yrel.shape}; expected ({last.shape[0]}, horizon, {last.shape[2]}).")
    return Yrel + last


def scale_static_across_series(scaler, first, static):
    """``scaler`` with the ``static`` features (no time dimension) scaled across series:
    per series they are constant, and would all scale to 0. ``first`` (S, F) holds
    each feature's first value."""
    if not static:
        return scaler
    column = first[:, static]
    mean, std = np.nanmean(column, axis=0), np.nanstd(column, axis=0)
    std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    new_mean, new_std = scaler.mean.copy(), scaler.std.copy()
    new_mean[:, static], new_std[:, static] = mean, std
    return SeriesScaler(mean=new_mean, std=new_std)
