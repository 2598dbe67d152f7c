"""Forecasting on labeled time series: time axes, and (later) the Forecaster.

:mod:`numlstm.forecast.timeaxis` validates a time coordinate, infers or checks
its frequency, continues it past the last label, and derives cyclic calendar
features, for numpy datetimes, cftime calendars and integer steps alike.
"""
