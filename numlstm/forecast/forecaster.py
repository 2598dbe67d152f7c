"""The Forecaster: a labeled dataset in, a labeled forecast out.

Every dimension of the target other than the time dimension is a *series* dimension
(station, lat/lon, ensemble member, ...). The Forecaster flattens the series dimensions
into one axis, so that every variable becomes an array ``(n_series, n_time,
n_features)``, and fits one global network on windows from every series
(:mod:`numlstm.forecast.windows`). Outputs are reshaped back, so series dimensions and
every coordinate on them come out as they went in; the time axis is continued at the
data's step for any calendar (:mod:`numlstm.forecast.timeaxis`).

The network sees, at each of the ``lookback`` past steps, the scaled targets,
covariates and calendar features. When the future is partly known (future
covariates, calendar features) the input sequence goes on for ``horizon``
more steps that carry only the known features, with a flag channel set to 0
there and 1 in the past. The network's last hidden state gives every
horizon step at once (direct multi-step), as the correction to a naive
forecast (persistence or seasonal naive, per series and lead) in units of the
series' standard deviation; missing inputs are carried forward in the
network's view with an indicator per variable (:mod:`numlstm.forecast.skill`).

This module holds the public face: the parameters, the argument checks of
``fit`` and the public methods. Each job behind them has its own module: the
inputs and their checks (:mod:`~numlstm.forecast.inputs`), scaling
(:mod:`~numlstm.forecast.windows`), the fit pipeline
(:mod:`~numlstm.forecast.fitting`), local models (:mod:`~numlstm.forecast.local`),
forecasting and the labeled output (:mod:`~numlstm.forecast.prediction`), the
dask side (:mod:`~numlstm.forecast.lazy`) and model files
(:mod:`~numlstm.forecast.modelfile`).
"""

from __future__ import annotations

import numpy as np

from numlstm._params import ParamsMixin
from numlstm._validation import check_positive_int
from numlstm.core import training as _training
from numlstm.forecast import timeaxis
from numlstm.forecast.fitting import Fitting
from numlstm.forecast.inputs import (
    MissingInputWarning,
    _as_dataset,
    _calendar_choice,
    _check_disjoint,
    _fit_dims,
    _is_lazy,
    _names,
)
from numlstm.forecast.lazy import LazyForecasts
from numlstm.forecast.prediction import Forecasting

__all__ = ["Forecaster", "MissingInputWarning", "load"]


class Forecaster(Fitting, Forecasting, LazyForecasts, ParamsMixin):
    """A global LSTM forecaster for labeled time series (xarray in, xarray out).

    Parameters
    ----------
    lookback : int, default 48
        Past time steps the network reads for each forecast.
    horizon : int, default 12
        Steps forecast at once (direct multi-step output).
    units : int or list of int, default 64
        Hidden units per LSTM layer.
    layers : int, default 1
        Stacked LSTM layers.
    quantiles : sequence of float, optional
        Quantile levels in (0, 1), e.g. ``[0.1, 0.5, 0.9]``: the network is
        trained with the pinball loss and forecasts get a ``quantile``
        dimension. Quantiles never cross. Default: point forecasts.
    loss : {"auto", "mae", "mse"}, default "auto"
        The network's training loss for point forecasts: ``"mae"`` (absolute
        error: a median; what ``"auto"`` takes since 2026-12-06), ``"mse"``
        (squared error: a mean). Quantile models use the pinball loss.
    epochs : int, default 100
        At most this many passes over the training windows (early stopping
        usually ends sooner).
    batch_size : int, default 64
        Windows per gradient step.
    learning_rate : float, default 1e-3
        Adam's step size.
    baseline : {"auto", "persistence", "seasonal"} or None, default "auto"
        The naive forecast the network corrects: the network learns, in units
        of each series' standard deviation, the difference between the truth
        and this baseline, and its output layer starts at the baseline plus
        the training windows' average difference (naive with drift).
        ``"auto"`` picks, per series, target and lead, persistence (the last
        value) or seasonal naive (the value one ``season`` before), whichever
        had the lower error on the training windows (``baseline_``). None: no
        baseline, the network forecasts the scaled values. A gate fitted on
        the validation windows then scales the correction, per lead, by the
        factor in [0, 1] that serves it best (``shrink_``): where the
        network's correction does not help on held-out time, the forecast
        falls back towards the baseline. See docs/how-it-works.md.
    season : "auto", int or None, default "auto"
        The season in steps for the seasonal-naive baseline: ``"auto"`` takes
        a day for sub-daily steps (24 hourly), a week for daily steps and a
        year for weekly, monthly and quarterly ones (52, 12, 4), when it fits
        in ``lookback``; none for yearly or integer axes.
    stages : {"mean", "sum"}, default "mean"
        How the baseline, the linear stage (ridge regression on the past
        values, between the baseline and the network) and the gated network
        make the forecast. ``"mean"``: the mean of three forecasts, the
        baseline with the linear stage's drift, that plus the stage's lag
        terms, and that plus the network (``stage_weights_`` (2/3, 1/3));
        robust where a stage fitted on a few dozen validation windows does
        not carry over. ``"sum"``: all three added up, the default before
        2026-12-06, stronger where the stages' gains are real. Without a
        baseline, and in streamed fits (no linear stage), the stages are
        always summed. See docs/how-it-works.md.
    smoothing : "auto" or bool, default "auto"
        Average with each series' own exponential smoothing where it beat the naive forecast on
        the validation windows, half each unless those clearly prefer one (it reads the whole record,
        and moves to its errors' median unless loss="mse"; ``"auto"``: only without covariates).
    nonnegative : "auto" or bool, default "auto"
        Floor forecasts at 0 (every quantile and sample too): ``"auto"`` for each
        series and target observed only >= 0 in the fit's data (rain, counts,
        discharge; ``nonnegative_``), and for a series new at ``predict`` or
        ``backtest`` by its own history in the data given; True for every target;
        False never. A floored series observed at exactly 0 also has forecasts
        below half its smallest positive value set to 0 (``zeros_``): no observed
        value lies there, and 0 is nearer the truth whenever it is 0.
    relative : "auto" or bool, default "auto"
        The older knob for the baseline: True is ``baseline="persistence"``,
        False ``baseline=None``; ``"auto"`` follows ``baseline``.
    calendar : "auto", None or sequence of str, default "auto"
        Cyclic calendar features from the time labels, known in the future
        too (see :func:`numlstm.forecast.cycles.calendar_features`):
        ``"auto"`` picks ``("hour", "dow", "doy")`` for sub-daily steps,
        ``("dow", "doy")`` for steps of one to six days, ``("doy",)`` for
        weekly to 27 days, ``("month",)`` for monthly to quarterly, and none
        for yearly or integer time axes (no ``"dow"`` on the 360_day
        calendar, which has no weeks).
    validation_fraction : float, default 0.2
        The last fraction of the forecast origins (in time, not at random)
        held out for ``val_loss``; the scaling is fitted on the time before.
        0 trains on every window.
    early_stopping : bool, default True
        Stop when the monitored loss (``val_loss`` when validating) has not
        improved for ``patience`` epochs and keep the best weights.
    patience : int, default 5
    clipnorm : float or None, default 1.0
        Clip the gradient to this global norm.
    dtype : {"float32", "float64"}, default "float32"
    device : {"cpu", "cuda", "auto"}, default "cpu"
        Where to train and forecast: ``"cuda"`` on an NVIDIA GPU (the
        training windows, weights and optimizer state stay on the device
        during ``fit``), ``"auto"`` on the GPU when one is usable.
    random_state : int, Generator or None
        Seeds the initial weights and the shuffling.
    verbose : {0, 1, 2}, default 0
        0 silent, 1 a progress bar, 2 one log line per epoch (per series
        fitted, in local mode).
    mode : {"global", "local"}, default "global"
        ``"global"`` fits one network to the windows of every series.
        ``"local"`` fits an independent network of the same shape to each
        series (each station, each grid cell), in parallel over Numba's
        threads; the weights then have a series dimension (``local_params_``,
        and in the model file). Each series gets its own seed, drawn from
        ``random_state``. CPU only.
    cell : {"lstm", "gru"}, default "lstm"
        The recurrent layer: LSTM, or GRU (Keras ``reset_after=True``
        layout, a third fewer weights per unit).
    dropout, recurrent_dropout : float in [0, 1), default 0.0
        Dropout on each layer's inputs and on the state entering the recurrent
        product during training, as Keras (one mask per window, reused at
        every step; off in predict). A model fitted with either can sample
        forecasts with Monte-Carlo dropout: ``predict(..., samples=100)``.

    Attributes
    ----------
    network_ : numlstm.core.network.Network
    scaler_ : numlstm.forecast.windows.SeriesScaler
        Per-series mean and standard deviation of every input variable,
        from the training data.
    history_ : dict
        Per-epoch ``"loss"`` (and ``"val_loss"``).
    targets_, covariates_, future_covariates_ : list of str
    dim_ : str
        The time dimension.
    freq_ : str or int
        The time step, inferred or given at fit.
    series_dims_ : tuple of str
    calendar_features_ : tuple of str
    device_ : {"cpu", "cuda"}
        Where the model was fitted and forecasts.
    local_params_ : ndarray, shape (n_series, n_params)
        In local mode, each series' weights (the layout of ``network_.params``;
        series flattened in the order of the data). None in global mode.
    local_seeds_ : ndarray of int, shape (n_series,)
        In local mode, each series' seed: ``Forecaster(random_state=seed)``
        fitted on that series alone gives the same model. None in global mode.
    relative_ : bool
        Whether every series' baseline is persistence.
    baseline_ : ndarray of str, shape (n_series, horizon, n_targets)
        The baseline of each fitted series, lead and target: "persistence",
        "seasonal" or "none".
    season_ : int or None
        The season of the seasonal-naive baseline, in steps.
    shrink_ : ndarray, shape (horizon, n_targets), or None
        The gate on the network's correction, per lead and target; in local
        mode one per series, shape (n_series, horizon, n_targets). None for
        quantile models and models with dropout: the correction is used whole.
    linear_ : ndarray, shape (lookback * n_targets + 1, horizon * n_targets), or None
        The linear stage between the baseline and the network: ridge
        regression of the correction on the targets' past values and a
        constant (the drift, shrunk with the lags), its penalty chosen on
        three time-ordered blocks of windows (all 0 when none helps there);
        in local mode one per series (a leading series axis). On a baseline
        a target's lag coefficients sum to 0 (the correction does not move
        with the level; see docs/how-it-works.md). None for streamed fits.
    stage_weights_ : tuple of two floats
        The weights of the linear stage's lag terms and of the gated network
        in the forecast: (2/3, 1/3) with ``stages="mean"``, the forecast being
        the mean of the baseline with the linear stage's intercept (its
        drift), that plus the lags, and that plus the network (quantile bands
        and Monte-Carlo samples keep their spread around the network's
        centre). (1, 1), the stages summed, with ``stages="sum"``, without a
        baseline, for streamed fits and for models saved before the weights.
        The gate (``shrink_``) and the validation loss are those of the
        network on top of the whole linear stage, as fitted.
    smoothing_ : ndarray (n_series, n_targets, 6) or None
        Each series' smoothing form (4-7: on the logarithm), alpha, beta, phi, gamma and weight; None without;
        ``member_median_``: whether its forecasts move to the median of its errors.
    nonnegative_ : ndarray of bool, shape (n_series, n_targets)
        Which fitted series and targets are floored at 0 (``nonnegative``); none before it.
    zeros_ : (ndarray of bool, ndarray), each (n_series, n_targets), or None
        Whether each was observed at exactly 0, and its smallest value above 0.
    calibration_ : ndarray, shape (horizon, n_targets, n_quantiles), or None
        Conformal shifts of the quantiles, in units of each series' standard
        deviation, set by :meth:`calibrate`.
    gap_fill_ : bool
        Whether missing inputs are filled in the model's view (with an
        indicator per variable) rather than blanking the window's forecast.
        False for streamed fits and models saved before gaps were filled.
    n_windows_ : int
        Training windows used (validation windows not counted).

    Examples
    --------
    >>> import numlstm
    >>> ds = numlstm.datasets.load("us_population")
    >>> fc = numlstm.Forecaster(lookback=8, horizon=4, units=16, epochs=5, random_state=0)
    >>> fc = fc.fit(ds, "population")
    >>> out = fc.predict()
    >>> out["population"].dims, out.sizes["time"]
    (('time',), 4)
    >>> str(out["time"].values[0])[:10]        # one quarter after 2009-07-01
    '2009-10-01'
    """

    def __init__(self, lookback=48, horizon=12, units=64, layers=1, quantiles=None, epochs=100, batch_size=64,
                 learning_rate=1e-3, relative="auto", calendar="auto", validation_fraction=0.2,
                 early_stopping=True, patience=5, clipnorm=1.0, dtype="float32", device="cpu",
                 random_state=None, verbose=0, mode="global", cell="lstm", dropout=0.0, recurrent_dropout=0.0,
                 baseline="auto", season="auto", stages="mean", smoothing="auto",
                 loss="auto", nonnegative="auto"):
        self.lookback = lookback
        self.horizon = horizon
        self.units = units
        self.layers = layers
        self.quantiles = quantiles
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.relative = relative
        self.calendar = calendar
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience
        self.clipnorm = clipnorm
        self.dtype = dtype
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.mode = mode
        self.cell = cell
        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout
        self.baseline = baseline
        self.season = season
        self.stages = stages
        self.smoothing = smoothing
        self.loss = loss
        self.nonnegative = nonnegative

    # ------------------------------------------------------------------ fit

    def fit(self, data, target, *, covariates=None, future_covariates=None, dim="time", freq=None, client=None,
            stream="auto", warm_start=False, rescale=False, checkpoint=None, checkpoint_every=1, resume=None):
        """Fit one global model to every series of ``data``.

        Parameters
        ----------
        data : xarray.Dataset or named xarray.DataArray
            Dask-backed data is loaded into memory (a copy; ``data`` is not
            modified), or streamed chunk by chunk when it is large (``stream``).
        target : str or list of str
            Variable(s) to forecast. They must share their dimensions: ``dim``
            and the series dimensions.
        covariates : str or list of str, optional
            Past covariates: observed up to the forecast origin, not in the
            future. A covariate may lack some series dimensions (it is
            broadcast) or the time dimension (a static feature).
        future_covariates : str or list of str, optional
            Covariates known ahead (e.g. a weather forecast, a schedule):
            :meth:`predict` then needs their values for the horizon.
        dim : str, default "time"
            The time dimension.
        freq : str or int, optional
            The time step (``"D"``, ``"h"``, ``"MS"``, ...; an int for integer
            axes). Inferred when omitted; a given one is checked.
        client : distributed.Client, optional
            Train data-parallel on this dask.distributed cluster: the windows
            are split into one shard per worker, each worker computes the
            gradient over its part of every batch, and the client applies the
            summed update synchronously, so the result equals a local fit on
            the same batches up to floating-point rounding. One round trip per
            batch: worth it when a batch is large. CPU only. With
            ``mode="local"``, the per-series models are fitted as tasks on the
            cluster instead (groups of series, each task sent only its own
            windows), with the same seeds and results as on this machine.
        stream : "auto", bool, default "auto"
            Train out of core: windows are streamed from one dask chunk of
            series at a time through a shuffle buffer, and the scaling
            statistics come from one pass over the data, so the whole array is
            never in memory (:mod:`numlstm.forecast.streaming`). ``"auto"``
            streams dask-backed data whose training windows would take more
            than a quarter of this machine's memory; ``True`` streams any
            dask-backed data. CPU, ``mode="global"`` and no ``client`` only.
        warm_start : bool, default False
            Continue from the fitted weights instead of starting afresh
            (fine-tuning a model trained on many stations to one, or updating
            it as data arrive): the scaling, baselines and linear stage are
            kept (a series not seen before is scaled by its own history, as in
            :meth:`predict`), the network trains on ``data`` for up to
            ``epochs`` more epochs, the gate is refitted on ``data``'s
            validation windows and ``history_`` goes on from where it was.
            The variables must be those of the first fit. Global mode, in
            memory (never streamed: data too big to load is refused), without
            ``client`` only. A calibration (:meth:`calibrate`) was for the
            weights before: it is dropped, with a warning; calibrate again.
        rescale : bool, default False
            With ``warm_start``: refit the scaling of each series in ``data``
            on its own training stretch instead of keeping the first fit's (a
            station whose level or spread has moved since, a sensor replaced).
            Static covariates keep the first fit's scaling; the fitted series
            not in ``data`` keep theirs.
        checkpoint : str or os.PathLike, optional
            A ``.nc`` file to write, atomically, every ``checkpoint_every``
            epochs and when the fit is interrupted: a model file of the fit so
            far (:func:`numlstm.load` reads it) with the training state added.
            ``mode="global"``, in memory (not streamed).
        checkpoint_every : int, default 1
        resume : str or os.PathLike, optional
            A checkpoint to continue from: with the same parameters and data,
            the fit ends where the uninterrupted one would have (on the CPU:
            the same numbers).

        Returns
        -------
        self

        Raises
        ------
        TypeError, ValueError
            For a missing or non-numeric variable, a missing time dimension,
            unsorted or duplicate or irregular times, series shorter than
            ``lookback + horizon``, an all-NaN target, or bad parameters.

        Notes
        -----
        Ctrl-C (``KeyboardInterrupt``) propagates and leaves the model fitted
        with the last completed epoch's weights (the best ones under early
        stopping) and its ``history_``.
        """
        params = self._check_params()
        if client is not None:
            if not all(hasattr(client, a) for a in ("scatter", "submit", "gather", "scheduler_info")):
                raise TypeError(f"client must be a dask.distributed Client, got {type(client).__name__}. "
                                "For example: client = distributed.Client(distributed.LocalCluster()).")
        engine = _training.resolve_engine(params["device"], client)
        if self.mode == "local":
            engine.require("per_series", "mode='local' (one small model per series)",
                           "use device='cpu' (or mode='global' on the GPU).")
        ds = _as_dataset(data, "data")
        targets = _names(target, "target", ds, required=True)
        past = _names(covariates, "covariates", ds)
        future = _names(future_covariates, "future_covariates", ds)
        _check_disjoint(targets, past, future)
        if not isinstance(dim, str):
            raise TypeError(f"dim must be the name of the time dimension (a str), got {dim!r}.")
        series_dims = _fit_dims(ds, targets, past, future, dim)
        variables = targets + past + future
        axis = timeaxis.check_time_axis(ds[dim], name=dim)
        freq = timeaxis.infer_frequency(axis, freq, name=dim)
        calendar = _calendar_choice(self.calendar, axis, dim)
        lookback, horizon = params["lookback"], params["horizon"]
        n_time = len(axis)
        if n_time < lookback + horizon:
            raise ValueError(
                f"data has {n_time} time step(s) along {dim!r} but lookback ({lookback}) + horizon ({horizon}) = "
                f"{lookback + horizon} are needed for one training window. Shorten lookback or horizon, or "
                "give a longer record.")
        if (checkpoint is not None or resume is not None) and self.mode == "local":
            raise ValueError("checkpoint= and resume= work with mode='global'; fit per-series models without them.")
        warm = self._check_warm(warm_start, (targets, past, future), dim, client, stream, rescale, resume)
        streams = self._streams(stream, ds, variables, series_dims, n_time, len(calendar), params)
        if warm and streams:
            raise ValueError(
                "warm_start=True continues a model fitted in memory, but data is dask-backed and its training "
                "windows would take more than a quarter of this machine's memory (stream='auto' would stream it). "
                "Fine-tune on a selection (data.sel(...)), or pass stream=False to load it anyway.")
        if streams:
            streamed = _training.resolve_engine(params["device"], client, streamed=True)
            if self.mode == "local":
                streamed.require("per_series", "mode='local'", "use mode='global', or pass stream=False to load "
                                 "the data.")
            if checkpoint is not None or resume is not None:
                streamed.require("checkpoint", "checkpoint= and resume=", "they need the data in memory; pass "
                                 "stream=False.")
            return self._fit_streamed(ds, targets, past, future, dim, series_dims, axis, freq, calendar, params)

        return self._fit_in_memory(ds, (targets, past, future), dim, series_dims, axis, freq, calendar, params,
                                   client=client, warm=warm, rescale=rescale, checkpoint=checkpoint,
                                   checkpoint_every=checkpoint_every, resume=resume)

    # ----------------------------------------------------------- forecasts

    def predict(self, data=None, *, horizon=None, future_covariates=None, samples=None, seed=0):
        """Forecast the next ``horizon`` steps after the end of ``data``.

        Parameters
        ----------
        data : xarray.Dataset or named DataArray, optional
            The recent past: at least ``lookback`` steps of the target(s) and
            covariates, for any series: fitted ones (all or some, in any
            order) keep their fitted scaling; a series not seen at fit (a new
            or ungauged station, in a global model) is scaled by its own
            observed history in ``data`` (give it a long stretch), its static
            covariates by the fit's. Default: the end of the data given to
            :meth:`fit`. On dask-backed data the result is lazy, one task per
            chunk of series.
        horizon : int, optional
            Steps to forecast, at most the fitted ``horizon`` (the default).
        future_covariates : xarray.Dataset, optional
            Required when the model was fitted with future covariates: their
            values at the ``horizon`` time labels that follow ``data``.
        samples : int, optional
            Monte-Carlo dropout: for a model fitted with ``dropout`` or
            ``recurrent_dropout``, run the network ``samples`` times with dropout
            left on (fresh masks each time) and return every run along a
            trailing ``sample`` dimension, an ensemble whose spread estimates
            the model's uncertainty (Gal and Ghahramani, 2016): take
            ``.quantile([0.1, 0.9], dim="sample")`` for a band, ``.mean("sample")``
            for a point forecast. Not with ``quantiles``.
        seed : int, default 0
            Seeds the Monte-Carlo masks: the same seed gives the same samples
            of a series, whichever other series are predicted with it and
            however dask data is chunked.

        Returns
        -------
        xarray.Dataset
            One variable per target, with the target's dimensions and
            attributes; the time coordinate continues the data's own, one step
            after its last label. With ``quantiles``, a trailing ``quantile``
            dimension; with ``samples``, a trailing ``sample`` dimension. Series
            whose last ``lookback`` inputs are incomplete get NaN (with a
            :class:`MissingInputWarning`).

        Examples
        --------
        >>> import numlstm
        >>> ds = numlstm.datasets.load("seattle_weather")
        >>> fc = numlstm.Forecaster(lookback=30, horizon=7, units=8, epochs=1, random_state=0)
        >>> fc = fc.fit(ds, "temp_max", covariates=["precipitation"])
        >>> out = fc.predict(ds.isel(time=slice(0, 200)), horizon=3)
        >>> [str(t)[:10] for t in out["time"].values]
        ['2012-07-19', '2012-07-20', '2012-07-21']
        """
        self._check_fitted()
        h = self._check_horizon(horizon)
        sampling = self._check_sampling(samples, seed)
        if data is not None and _is_lazy(_as_dataset(data, "data"), self._variables):
            return self._lazy_predict(_as_dataset(data, "data"), h, future_covariates, sampling)
        features, tables, frame, new_time, time_attrs, member = self._prediction_features(data, future_covariates)
        rows = np.arange(features.shape[0])
        out = self._forecast(features, tables, rows, np.full(rows.size, self.lookback - 1), sampling, member)[:, :h]
        self._warn_missing(out, "the last lookback steps")
        return self._dataset(out, frame, {self.dim_: (self.dim_, new_time[:h], dict(time_attrs))}, (self.dim_,),
                             sampling)

    def backtest(self, data, *, start, stride=1, horizon=None):
        """Rolling-origin forecasts over ``data``, without refitting.

        Every ``stride``-th time step from ``start`` on is a forecast origin
        (``init_time``: the last observed step); from each, the next
        ``horizon`` steps are forecast from the ``lookback`` steps up to it.
        Only origins whose whole horizon lies inside ``data`` are used. All
        origins of all series run through the network in one batched pass.

        Parameters
        ----------
        data : xarray.Dataset or named DataArray
            The record, with the training variables and series. On dask-backed
            data the result is lazy, one task per chunk of series.
        start : label or str
            The first origin: a label of the time axis, or anything comparable
            with it (``"2015-01-01"`` for a datetime axis).
        stride : int, default 1
            Steps between origins.
        horizon : int, optional
            Lead times to forecast, at most the fitted ``horizon``.

        Returns
        -------
        xarray.Dataset
            One variable per target with dimensions ``(init_time, lead,
            *series dims)`` (and ``quantile``); ``lead`` counts steps (1 is
            the step after the origin) and the 2-D coordinate
            ``valid_time(init_time, lead)`` holds the time each forecast is
            for. :func:`numlstm.forecast.baselines.observed` lines the
            observations up with the forecasts, and
            :mod:`numlstm.forecast.baselines` gives naive forecasts on the
            same layout to score against.

        Examples
        --------
        >>> import numlstm
        >>> ds = numlstm.datasets.load("us_population")
        >>> fc = numlstm.Forecaster(lookback=8, horizon=4, units=8, epochs=2, random_state=0).fit(ds, "population")
        >>> bt = fc.backtest(ds, start="2000-01-01", stride=4)
        >>> dict(bt.sizes)
        {'init_time': 9, 'lead': 4}
        >>> str(bt["valid_time"].values[0, 0])[:10]
        '2000-04-01'
        """
        self._check_fitted()
        h = self._check_horizon(horizon)
        stride = check_positive_int(stride, "stride")
        ds = _as_dataset(data, "data")
        if _is_lazy(ds, self._variables):
            return self._lazy_backtest(ds, start, stride, h)
        values, time, time_attrs, positions = self._read(ds)
        origins = self._origins(ds, start, stride)
        tables = self._tables(values, positions, upto=int(origins[0]) + 1)
        features = self._features(values, tables, time)
        n_series = values.shape[0]
        series, at = np.repeat(np.arange(n_series), origins.size), np.tile(origins, n_series)
        out = self._forecast(features, tables, series, at, member=self._member(values, tables, series, at))[:, :h]
        self._warn_missing(out, "the lookback steps before some origins")
        out = out.reshape((n_series, origins.size) + out.shape[1:])
        return self._dataset(out, self._frame(ds), self._backtest_coords(ds, origins, h), ("init_time", "lead"))

    def calibrate(self, data, *, start, stride=1):
        """Calibrate the quantile bands on held-out data (split conformal, by lead).

        Backtests ``data`` from ``start`` (use time the model was not fitted
        on), and shifts each quantile of each lead and target by the conformal
        quantile of its residuals, in units of each series' standard
        deviation: a quantile at level ``q`` then has, on data like these, at
        least a share ``q`` of the observations below it, up to the finite
        sample. The shifts are stored in ``calibration_`` (and in the model
        file) and apply to every later :meth:`predict` and :meth:`backtest`;
        calibrating again replaces them.

        Parameters
        ----------
        data : xarray.Dataset or named DataArray
            A record with the fitted variables (new series allowed).
        start, stride
            As in :meth:`backtest`.

        Returns
        -------
        self
        """
        self._check_fitted()
        if not self.quantiles_:
            raise ValueError("calibrate adjusts quantile bands, and this model forecasts points; fit it with "
                             "quantiles=[0.1, 0.5, 0.9] (for example) first.")
        ds = _as_dataset(data, "data")
        if _is_lazy(ds, self._variables):
            ds = ds[self._variables].compute()
        self.calibration_ = None
        self.calibration_ = self._conformal_shifts(ds, self.backtest(ds, start=start, stride=stride))
        return self

    # --------------------------------------------------------- model files

    def save(self, path):
        """Write the fitted model to ``path`` (``.nc`` netCDF or ``.zarr``).

        The file holds the weights as variables with named dimensions, the
        scaling statistics, the series coordinates, the last ``lookback``
        steps of the training data (for :meth:`predict` without data) and a
        JSON configuration with a format version in the attributes. netCDF is
        written with the scipy engine, so no netCDF C library is needed. The
        write is atomic: a temporary file renamed into place, so a failure
        leaves no partial file and an existing file intact. Read it back with
        :func:`numlstm.load`; no pickle is involved.
        """
        from numlstm import io
        from numlstm.forecast import modelfile

        self._check_fitted()
        io.write_dataset(modelfile.to_dataset(self), path)


def load(path):
    """Load a :class:`Forecaster` written by :meth:`Forecaster.save`.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.nc`` or ``.zarr`` model file.

    Returns
    -------
    Forecaster
        Fitted, ready to :meth:`~Forecaster.predict` and
        :meth:`~Forecaster.backtest`.

    Raises
    ------
    ValueError
        If the file is not a numlstm model, was written by a newer numlstm
        (a higher format version), or is incomplete.

    Examples
    --------
    >>> import os, tempfile
    >>> import xarray as xr, numlstm
    >>> ds = numlstm.datasets.load("us_population")
    >>> fc = numlstm.Forecaster(lookback=8, horizon=4, units=8, epochs=2, random_state=0).fit(ds, "population")
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     fc.save(os.path.join(folder, "model.nc"))
    ...     again = numlstm.load(os.path.join(folder, "model.nc"))
    >>> xr.testing.assert_identical(again.predict(), fc.predict())
    >>> numlstm.load("model.pkl")
    Traceback (most recent call last):
    ...
    ValueError: path 'model.pkl' must end in .nc (netCDF) or .zarr (zarr store); got '.pkl'. For example: model.nc.
    """
    from numlstm import io
    from numlstm.forecast import modelfile

    return modelfile.from_dataset(io.read_model(path, modelfile.FORMAT_NAME, modelfile.FORMAT_VERSION), Forecaster)
