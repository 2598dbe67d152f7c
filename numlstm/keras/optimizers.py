"""Keras' ``Adam`` and ``SGD``, with Keras' arguments and defaults (and ``clipnorm``).

They are numlstm's own optimizers (:mod:`numlstm.core.optimizers`), which
follow Keras 3's update rules; ``compile(optimizer="adam")`` makes an
``Adam()``. Other Keras optimizers are refused by ``compile`` with the list of
those numlstm has.
"""

from __future__ import annotations

from numlstm._validation import check_number
from numlstm.core import optimizers as _core

__all__ = ["Adam", "SGD", "get"]


def _clipnorm(value):
    return check_number(value, "clipnorm", low=0, low_open=True, allow_none=True)


class Adam(_core.Adam):
    """``keras.optimizers.Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7)``."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, clipnorm=None,
                 name="adam", **kwargs):
        if amsgrad:
            raise ValueError("Adam(amsgrad=True) is not supported by numlstm; use amsgrad=False.")
        if kwargs:
            raise TypeError(f"Adam got the argument(s) {sorted(kwargs)}, which numlstm does not support; it takes "
                            "learning_rate, beta_1, beta_2, epsilon and clipnorm.")
        super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
        self.clipnorm = _clipnorm(clipnorm)
        self.name = name


class SGD(_core.SGD):
    """``keras.optimizers.SGD(learning_rate=0.01, momentum=0.0, nesterov=False)``."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, clipnorm=None, name="SGD", **kwargs):
        if kwargs:
            raise TypeError(f"SGD got the argument(s) {sorted(kwargs)}, which numlstm does not support; it takes "
                            "learning_rate, momentum, nesterov and clipnorm.")
        super().__init__(learning_rate=learning_rate, momentum=momentum, nesterov=nesterov)
        self.clipnorm = _clipnorm(clipnorm)
        self.name = name


_BY_NAME = {"adam": Adam, "sgd": SGD}
KERAS_ONLY = ("rmsprop", "adagrad", "adadelta", "adamax", "nadam", "ftrl", "adamw", "lion", "adafactor")


def get(identifier):
    """An optimizer from a Keras name (``"adam"``, ``"sgd"``) or an Adam/SGD instance."""
    if isinstance(identifier, (_core.Adam, _core.SGD)):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    what = repr(identifier) if isinstance(identifier, str) else type(identifier).__name__
    extra = (" numlstm has Adam and SGD (Keras' update rules); RMSprop and the other Keras optimizers are not "
             "part of it." if isinstance(identifier, str) and identifier.lower() in KERAS_ONLY else "")
    raise ValueError(f"optimizer {what} is not supported; use 'adam', 'sgd', or "
                     f"numlstm.keras.optimizers.Adam(...)/SGD(...).{extra}")
