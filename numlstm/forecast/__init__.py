"""Forecasting on labeled time series.

- :mod:`numlstm.forecast.forecaster`: the :class:`~numlstm.Forecaster`
  (fit, predict, backtest, save) and :func:`~numlstm.load`;
- :mod:`numlstm.forecast.inputs`: checks of the data and arguments, stacking
  variables into arrays, series bookkeeping;
- :mod:`numlstm.forecast.local`: one model per series (``mode="local"``);
- :mod:`numlstm.forecast.timeaxis`: validate, infer, continue and featurise
  time axes, for numpy datetimes, cftime calendars and integer steps alike;
- :mod:`numlstm.forecast.windows`: training and prediction windows,
  per-series scaling, relative targets;
- :mod:`numlstm.forecast.skill`: the naive baselines the network corrects,
  the linear stage, the gate, and gap filling in the model's view;
- :mod:`numlstm.forecast.modelfile`: the model file layout.
"""
