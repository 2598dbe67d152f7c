"""numlstm: LSTM networks for labeled time series, with Numba kernels.

The xarray :class:`Forecaster` (labeled data in, labeled forecasts out, saved
and read back with :meth:`Forecaster.save` / :func:`load`), the functional
kernels :func:`lstm_forward` / :func:`lstm_backward` (and :func:`gru_forward` /
:func:`gru_backward` for one GRU layer), the scikit-learn style
estimators :class:`LSTMRegressor` / :class:`LSTMClassifier`,
weight interop with PyTorch and Keras (:mod:`numlstm.interop`), shipped data
(:mod:`numlstm.datasets`), text to token sequences (:mod:`numlstm.text`), and
control of threads and compilation.
"""

import importlib
from typing import TYPE_CHECKING

# First: NUMLSTM_VECTOR_WIDTH takes effect on import, before the first compile sets up Numba's CPU target.
from numlstm import _vectors  # noqa: F401, I001
from numlstm import interop, text
from numlstm.core import losses, optimizers
from numlstm.core.distributed import WorkerLostError
from numlstm.core.training import FitInterruptedWarning, NonFiniteLossError
from numlstm.estimators import LSTMClassifier, LSTMRegressor, NotFittedError
from numlstm.functional import gru_backward, gru_forward, lstm_backward, lstm_forward
from numlstm._cache import CacheWarning
from numlstm._version import __version__
from numlstm.runtime import cache_clear, cache_info, compile_stats, get_num_threads, info, set_num_threads, warmup

# What needs xarray is imported on first use, so that the array front doors (the
# estimators, numlstm.keras) start without paying for xarray and pandas.
if TYPE_CHECKING:  # for static readers (type checkers, the API docs)
    from numlstm import datasets, metrics
    from numlstm.forecast.forecaster import Forecaster, MissingInputWarning, load

_LAZY = {"datasets": ("numlstm.datasets", None), "metrics": ("numlstm.metrics", None),
         "Forecaster": ("numlstm.forecast.forecaster", "Forecaster"),
         "MissingInputWarning": ("numlstm.forecast.forecaster", "MissingInputWarning"),
         "load": ("numlstm.forecast.forecaster", "load")}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'numlstm' has no attribute {name!r}")
    module, attribute = _LAZY[name]
    value = importlib.import_module(module)
    value = value if attribute is None else getattr(value, attribute)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "CacheWarning",
    "FitInterruptedWarning",
    "Forecaster",
    "LSTMClassifier",
    "LSTMRegressor",
    "NonFiniteLossError",
    "MissingInputWarning",
    "NotFittedError",
    "WorkerLostError",
    "cache_clear",
    "cache_info",
    "compile_stats",
    "datasets",
    "get_num_threads",
    "gru_backward",
    "gru_forward",
    "info",
    "interop",
    "losses",
    "load",
    "lstm_backward",
    "lstm_forward",
    "metrics",
    "optimizers",
    "text",
    "set_num_threads",
    "warmup",
    "__version__",
]
