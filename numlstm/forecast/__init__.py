"""Forecasting on labeled time series.

- :mod:`numlstm.forecast.forecaster`: the :class:`~numlstm.Forecaster`
  (fit, predict, backtest, calibrate, save) and :func:`~numlstm.load`;
- :mod:`numlstm.forecast.fitting`: the fit pipeline behind ``fit``;
- :mod:`numlstm.forecast.prediction`: forecasting with a fitted model and
  the labeled output, behind ``predict``, ``backtest`` and ``calibrate``;
- :mod:`numlstm.forecast.lazy`: the same on dask-backed data, one task per
  chunk of series;
- :mod:`numlstm.forecast.inputs`: checks of the data and arguments, stacking
  variables into arrays, series bookkeeping, the model's view;
- :mod:`numlstm.forecast.local`: one model per series (``mode="local"``);
- :mod:`numlstm.forecast.streaming`: out-of-core fits;
- :mod:`numlstm.forecast.baselines`: naive forecasts to score against;
- :mod:`numlstm.forecast.timeaxis`: validate, infer and continue time axes,
  for numpy datetimes, cftime calendars and integer steps alike;
- :mod:`numlstm.forecast.frequency`: offset aliases and the step, checked or
  inferred, behind the time axis's functions;
- :mod:`numlstm.forecast.cycles`: calendar features (sin, cos of the day,
  week and year) in any calendar;
- :mod:`numlstm.forecast.windows`: training and prediction windows,
  per-series scaling, relative targets;
- :mod:`numlstm.forecast.skill`: the naive baselines the network corrects,
  the linear stage, the gate, gap filling in the model's view, conformal
  shifts;
- :mod:`numlstm.forecast.modelfile`: the model file layout.
"""
