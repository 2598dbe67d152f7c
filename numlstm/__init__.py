"""numlstm: LSTM networks for labeled time series, with Numba kernels.

The functional kernels :func:`lstm_forward` / :func:`lstm_backward`, the
scikit-learn style estimators :class:`LSTMRegressor` / :class:`LSTMClassifier`,
and helpers for threads and compilation.
"""

from numlstm.functional import lstm_backward, lstm_forward

__version__ = "0.1.0"

__all__ = ["lstm_forward", "lstm_backward", "__version__"]
